//! The kernel binary: the PVH entry stub and the panic handler. Everything
//! else is in the library (`lib.rs`), so that its logic is testable on the host.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod entry {
    use arbor_kernel::arch::{self, Verdict};

    core::arch::global_asm!(include_str!("arch/boot.s"), options(att_syntax));

    /// Called by `arch/boot.s` in long mode, on the boot stack.
    #[unsafe(no_mangle)]
    extern "C" fn kernel_main(start_info: u64) -> ! {
        arbor_kernel::start(start_info)
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        arbor_kernel::kprintln!("KERNEL PANIC: {info}");
        arch::exit(Verdict::Failure)
    }
}

/// On the host the kernel is only a library under test.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("arbor-kernel runs on x86_64-unknown-none; boot it with `cargo arbor run`");
}
