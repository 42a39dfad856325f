//! fault_child: provokes the CPU fault its start argument names, so that
//! kernel_test can watch the kernel report it. 1 = page fault (null read),
//! 2 = general protection (`hlt` in user mode), 3 = divide error,
//! 4 = invalid opcode (`ud2`), 5 = breakpoint (`int3`); anything else
//! prints a line and ends normally.
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor::println;

arbor::entry!(provoke);

fn provoke(argument: u64) {
    match argument {
        1 => {
            // SAFETY: none needed for soundness — the read of address 0 is
            // the point: page 0 is never mapped, so it faults before any
            // value is produced, and the thread never resumes.
            let value = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
            println!("fault_child: null read returned {value}?");
        }
        2 => {
            // SAFETY: `hlt` is privileged; in ring 3 it raises #GP and
            // touches nothing.
            unsafe { core::arch::asm!("hlt", options(nomem, nostack)) };
        }
        3 => {
            // Rust's `/` checks for zero, so the division is done in asm.
            // SAFETY: `div` reads only the named registers; with a zero
            // divisor it raises #DE.
            unsafe {
                core::arch::asm!(
                    "div {divisor}",
                    divisor = in(reg) 0u64,
                    inout("rax") 1u64 => _,
                    inout("rdx") 0u64 => _,
                    options(nomem, nostack),
                );
            }
        }
        4 => {
            // SAFETY: `ud2` only raises #UD.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
        }
        5 => {
            // SAFETY: `int3` only raises #BP.
            unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
        }
        6 => {
            // SAFETY: reading port 0x80 (POST diagnostics) changes nothing;
            // the parent opened it for this Pd and revoked it again, so the
            // access raises #GP.
            let _value: u8 = unsafe {
                let value;
                core::arch::asm!("in al, dx", in("dx") 0x80u16, out("al") value, options(nomem, nostack));
                value
            };
        }
        other => println!("fault_child: argument {other} names no fault; ending"),
    }
    println!("fault_child: still running after fault {argument} (unexpected)");
}
