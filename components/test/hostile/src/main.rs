//! hostile: issues random system calls — random numbers (invalid ones
//! included), slots and arguments (kernel-half, non-canonical and unaligned
//! addresses included) — to show that nothing a Pd asks can crash the
//! kernel or leak memory. Its start argument is the number of calls.
//!
//! It avoids only what would end its own run early (destroying or
//! unmapping itself, blocking forever), because the test needs it to
//! finish and report; everything else is fair game. At the end it prints
//! its count and calls its parent with label [`DONE`].
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor::abi::{ObjectKind, Syscall, info, slot};
use arbor::println;
use arbor::sys::{self, Message};

/// The label of the final call to the parent; word 0 = calls made.
pub const DONE: u32 = 0xD0E;

arbor::entry!(rampage);

/// xorshift64: small, deterministic, good enough to scatter arguments.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Where random addresses come from: mostly the hostile's scratch region,
/// often somewhere nasty.
const SCRATCH: u64 = 0x3000_0000_0000;
const NASTY: [u64; 10] = [
    0,
    1,
    0xFFF,
    0x1000,
    0x0000_7FFF_FFFF_F000,
    0x0000_8000_0000_0000,
    0xFFFF_8000_0000_0000,
    0xFFFF_FFFF_FFFF_F000,
    u64::MAX,
    0x7FFF_FFF0_0000,
];

fn address(random: &mut Random) -> u64 {
    match random.below(4) {
        0 => NASTY[random.below(NASTY.len() as u64) as usize],
        1 => random.next(),
        _ => SCRATCH + random.below(64) * 0x1000 + if random.below(8) == 0 { 8 } else { 0 },
    }
}

fn argument(random: &mut Random) -> u64 {
    match random.below(5) {
        0 => random.below(64),
        1 => random.below(16) * 0x1000,
        2 => address(random),
        3 => random.next(),
        _ => random.below(10),
    }
}

/// A slot: mostly ones it may hold, sometimes out of range.
fn slot_arg(random: &mut Random) -> u64 {
    match random.below(8) {
        0 => random.next(),
        1 => u64::from(u32::MAX),
        _ => random.below(48),
    }
}

fn kind_of(slot: u64) -> Option<ObjectKind> {
    sys::info(info::CAP_KIND, slot)
        .ok()
        .and_then(|(kind, _)| ObjectKind::from_raw(kind))
}

fn rampage(iterations: u64) {
    let mut random = Random(0x2545_F491_4F6C_DD1D);
    let mut refused = 0u64;
    for _ in 0..iterations {
        let number = match random.below(16) {
            0 => random.next(),
            1 => Syscall::LAST + 1 + random.below(8),
            _ => random.below(Syscall::LAST + 1),
        };
        let mut args = [0u64; 6];
        for arg in args.iter_mut() {
            *arg = argument(&mut random);
        }
        args[0] = slot_arg(&mut random);
        if random.below(2) == 0 {
            args[1] = slot_arg(&mut random);
            args[2] = slot_arg(&mut random);
        }
        if !harmless_to_self(number, &mut args) {
            continue;
        }
        if sys::raw_syscall(number, args).rax != 0 {
            refused += 1;
        }
    }
    println!("hostile: {iterations} random system calls done, {refused} refused");
    let _ = sys::call(
        slot::PARENT,
        Message::new(DONE, [iterations, refused, 0, 0]),
    );
}

/// Adjusts or vetoes calls that would stop this thread for good, so the run
/// reaches its report. Returns false to skip the call.
fn harmless_to_self(number: u64, args: &mut [u64; 6]) -> bool {
    let own = [u64::from(slot::OWN_PD.0), u64::from(slot::OWN_THREAD.0)];
    let Some(call) = Syscall::from_raw(number) else {
        return true;
    };
    let target = args[0];
    match call {
        // Destroying or emptying its own Pd or thread, the way home or the
        // console ends the run (or its report).
        Syscall::Destroy | Syscall::Delete => {
            !own.contains(&target)
                && target != u64::from(slot::PARENT.0)
                && target != u64::from(slot::CONSOLE.0)
        }
        // Unmapping its own code, stack or IPC buffer would fault.
        Syscall::Unmap => {
            if own.contains(&target) || target == 0 {
                args[1] = SCRATCH + (args[1] % 64) * 0x1000;
                args[2] %= 0x10_0000;
            }
            true
        }
        // Mapping over itself is refused (AlreadyMapped) — fine; but a
        // dataspace mapped over nothing it uses cannot hurt, so no change.
        Syscall::Map => true,
        // Restarting its own thread elsewhere would lose the run.
        Syscall::StartThread => !own.contains(&target),
        // Blocking on an endpoint or a zero notification never returns.
        Syscall::Call | Syscall::ReplyRecv | Syscall::Send | Syscall::Recv => {
            !matches!(kind_of(target), Some(ObjectKind::Endpoint))
        }
        Syscall::Wait => !matches!(kind_of(target), Some(ObjectKind::Notification)),
        // Console spam would drown the log.
        Syscall::ConsoleWrite => target != u64::from(slot::CONSOLE.0),
        _ => true,
    }
}
