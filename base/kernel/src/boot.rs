//! The start-up sequence: from the PVH entry to a kernel with its own page
//! tables that has validated the boot archive.

use crate::arch::{self, Verdict, paging};
use crate::cmdline::{self, SelfTest};
use crate::memory::{FreeFrames, PhysRange};
use crate::pvh::{self, PhysRead};
use crate::{kprint, kprintln};
use arbor_archive::Archive;

/// Reads physical memory below 4 GiB through the physical window, which both
/// the boot page tables and the kernel's own map.
struct BootMemory;

impl PhysRead for BootMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        const LIMIT: u64 = 4 << 30;
        let Some(end) = addr.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > LIMIT {
            return false;
        }
        // SAFETY: [addr, end) lies below 4 GiB, which the physical window maps;
        // the bytes are copied out, never referenced.
        unsafe {
            core::ptr::copy_nonoverlapping(paging::phys_to_virt(addr), buf.as_mut_ptr(), buf.len())
        };
        true
    }
}

/// Prints why the boot cannot go on and stops with a failing verdict.
fn fail(what: &str, error: impl core::fmt::Display) -> ! {
    kprintln!("boot failed: {what}: {error}");
    arch::exit(Verdict::Failure)
}

const MIB: u64 = 1 << 20;

/// Kernel entry after the switch to long mode; `start_info` is the physical
/// address of the PVH `hvm_start_info`.
pub fn start(start_info: u64) -> ! {
    arch::console::init();
    kprintln!(
        "Arbor kernel {} (x86_64, PVH boot)",
        env!("CARGO_PKG_VERSION")
    );
    arch::cpu::init();

    let info =
        pvh::parse(&BootMemory, start_info).unwrap_or_else(|e| fail("reading PVH start info", e));
    kprintln!(
        "memory map: {} MiB usable in {} entries",
        info.usable_bytes() / MIB,
        info.regions.len()
    );
    for region in &info.regions {
        kprintln!(
            "  [{:#012x}, {:#012x}) {:>6} KiB {}",
            region.start,
            region.end(),
            region.size / 1024,
            if region.is_usable() {
                "usable"
            } else {
                "reserved"
            }
        );
    }
    let archive_module = info
        .boot_archive()
        .unwrap_or_else(|e| fail("finding the boot archive", e));

    let module_range = PhysRange {
        start: archive_module.start,
        end: archive_module.start + archive_module.size,
    };
    let (mut frames, dropped) =
        FreeFrames::new(&info.regions, &[paging::kernel_image(), module_range]);
    if dropped > 0 {
        kprintln!("warning: memory map too fragmented, {dropped} free ranges ignored");
    }

    let mut space =
        paging::AddressSpace::new(&mut frames).unwrap_or_else(|e| fail("page tables", e));
    let window = space
        .map_physical_window(&info.regions, &mut frames)
        .unwrap_or_else(|e| fail("page tables", e));
    space
        .map_kernel_image(&mut frames)
        .unwrap_or_else(|e| fail("page tables", e));
    space.activate();
    kprintln!(
        "paging: kernel tables at {:#x}, {} MiB physical window; {} MiB free in {} ranges",
        space.root,
        window / MIB,
        frames.free_bytes() / MIB,
        frames.ranges().len()
    );

    // SAFETY: the module lies in usable RAM (checked by `pvh::parse`), which
    // the physical window maps; the frame allocator never hands these pages
    // out, so the bytes stay valid and unaliased for the kernel's lifetime.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            paging::phys_to_virt(archive_module.start),
            archive_module.size as usize,
        )
    };
    let archive = Archive::parse(bytes).unwrap_or_else(|e| fail("boot archive", e));
    kprintln!(
        "boot archive: {} module(s), {} bytes",
        archive.len(),
        archive.size()
    );
    for module in archive.modules() {
        kprintln!("  {:<24} {:>9} bytes", module.name, module.data.len());
    }

    if let Some(name) = cmdline::value(&info.cmdline, "selftest") {
        match SelfTest::from_name(name) {
            Some(test) => provoke(test),
            None => fail(
                "kernel command line",
                format_args!("unknown selftest \"{name}\""),
            ),
        }
    }

    kprint!("no user space to start yet: ");
    kprintln!("kernel done");
    arch::exit(Verdict::Success)
}

/// Raises the exception a self-test asks for; the exception handler reports
/// it and stops the machine, so this never returns normally.
fn provoke(test: SelfTest) {
    kprintln!("selftest: provoking {test:?}");
    // SAFETY: each instruction below faults on purpose; the exception handler
    // reports it and ends the run without returning here.
    unsafe {
        match test {
            SelfTest::InvalidOpcode => core::arch::asm!("ud2"),
            SelfTest::PageFault => {
                let _ = core::ptr::read_volatile(0xDEAD_0000 as *const u64);
            }
            SelfTest::DivideError => {
                core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _)
            }
            SelfTest::GeneralProtection => {
                let _ = core::ptr::read_volatile(0x8000_0000_0000_0000_u64 as *const u64);
            }
            SelfTest::Breakpoint => core::arch::asm!("int3"),
        }
    }
    // #BP is a trap: execution would continue here if the handler returned.
    fail("selftest", "the provoked exception did not stop the kernel");
}
