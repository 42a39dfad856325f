//! hostile: issues random system calls — random numbers (invalid ones
//! included), slots and arguments (kernel-half, non-canonical and unaligned
//! addresses included) — to show that nothing a Pd asks can crash the
//! kernel or leak memory. Its start argument is the number of calls.
//!
//! Fair game: blocking calls (`Call`, `Send`, `Recv`, `ReplyRecv`, `Wait`
//! without timeout), destroying and deleting its own objects, `Unmap` of
//! unclamped ranges (the whole user half of Pds it made; everything above
//! its scratch region in its own), device dataspaces anywhere in the 52-bit
//! physical space (its parent grants it the Platform capability), and its
//! IPC buffer moved onto device memory, read-only RAM or nothing mid-run.
//!
//! What keeps it alive to report: a *watchdog* thread of the same priority
//! that runs whenever the main thread blocks and wakes it — first by
//! signalling the notification bound to it and the object it waits on, then
//! by destroying that object. It never destroys its own Pd, threads, the
//! watchdog's objects or the way home, and never unmaps its code or stack.
//! At the end it prints its count and calls its parent with label [`DONE`].
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor::abi::{CapSlot, MsgInfo, ObjectKind, Rights, Syscall, info, map, slot};
use arbor::layout;
use arbor::println;
use arbor::sys::{self, Message};
use core::sync::atomic::{AtomicU64, Ordering};

/// The label of the final call to the parent; word 0 = calls made.
pub const DONE: u32 = 0xD0E;

arbor::entry!(rampage);

use arbor::random::XorShift as Random;

/// Where random addresses come from: mostly the hostile's scratch region,
/// often somewhere nasty.
const SCRATCH: u64 = 0x3000_0000_0000;
/// Own-Pd unmaps may reach up to here (the stack and IPC buffer lie above).
const OWN_UNMAP_END: u64 = 0x7000_0000_0000;
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

/// Slots the hostile keeps for itself; never destroyed or emptied.
const WATCHDOG_THREAD: CapSlot = CapSlot(8);
const WATCHDOG_TIMER: CapSlot = CapSlot(9);
const BOUND: CapSlot = CapSlot(10);
const WATCHDOG_STACK: CapSlot = CapSlot(11);
const HOME_BUFFER: CapSlot = CapSlot(12);
const STRANGE_BUFFER: CapSlot = CapSlot(13);
const RESERVED: [CapSlot; 6] = [
    WATCHDOG_THREAD,
    WATCHDOG_TIMER,
    BOUND,
    WATCHDOG_STACK,
    HOME_BUFFER,
    STRANGE_BUFFER,
];
/// An endpoint (or notification) kept around to block on; remade when
/// the watchdog (or the rampage) destroyed it.
const BLOCK_HERE: CapSlot = CapSlot(14);
/// The watchdog's stack lies just below the scratch region.
const WATCHDOG_STACK_BASE: u64 = SCRATCH - 0x10_0000;
const WATCHDOG_STACK_SIZE: u64 = 16 * 1024;

/// The slot the main thread may be blocked on (0 = none) ...
static BLOCKED_ON: AtomicU64 = AtomicU64::new(0);
/// ... and a count of its blocking calls, so the watchdog sees progress.
static BLOCKING_CALLS: AtomicU64 = AtomicU64::new(0);

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

/// A physical address anywhere in the 52-bit space, often on an edge: RAM,
/// the kernel image, the interrupt controllers, 2^44 aliases, the top.
fn physical(random: &mut Random) -> u64 {
    let page = !0xFFF;
    match random.below(8) {
        0 => random.next() & ((1 << 52) - 1) & page,
        1 => (1 << (32 + random.below(21))) + random.below(1 << 20) * 0x1000,
        2 => (1 << 44) + random.below(0x800) * 0x1000,
        3 => [0xFEE0_0000, 0xFEC0_0000, 0x10_0000, 0xB8000][random.below(4) as usize],
        4 => random.below(1 << 20) * 0x1000,
        5 => (1 << 52) - 0x1000 * random.below(4),
        6 => random.next() & page,
        _ => (1 << 38) + random.below(1 << 10) * 0x1000,
    }
}

fn kind_and_rights(slot: u64) -> Option<(ObjectKind, Rights)> {
    sys::info(info::CAP_KIND, slot)
        .ok()
        .and_then(|(kind, rights)| Some((ObjectKind::from_raw(kind)?, Rights(rights as u8))))
}

fn rampage(iterations: u64) {
    if let Err(error) = start_watchdog() {
        println!("hostile: cannot start the watchdog: {error}");
        return;
    }
    let mut random = Random(0x2545_F491_4F6C_DD1D);
    let mut refused = 0u64;
    let mut buffer_moved = false;
    let mut blocking = 0u64;
    let mut moves = 0u64;
    for iteration in 0..iterations {
        if iteration % 4096 == 4095 {
            buffer_moved = !buffer_moved;
            move_ipc_buffer(&mut random, buffer_moved);
            moves += 1;
        }
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
        if iteration % 64 == 0 && kind_and_rights(u64::from(BLOCK_HERE.0)).is_none() {
            let _ = sys::delete(BLOCK_HERE);
            let kind = if random.below(4) == 0 {
                ObjectKind::Notification
            } else {
                ObjectKind::Endpoint
            };
            let _ = sys::create(kind, slot::OWN_PD, BLOCK_HERE, 0);
        }
        let Some(may_block) = aim(number, &mut args, &mut random) else {
            continue;
        };
        if may_block {
            blocking += 1;
            BLOCKING_CALLS.fetch_add(1, Ordering::Relaxed);
            BLOCKED_ON.store(args[0], Ordering::Relaxed);
        }
        let result = sys::raw_syscall(number, args);
        BLOCKED_ON.store(0, Ordering::Relaxed);
        if result.rax != 0 {
            refused += 1;
        }
    }
    move_ipc_buffer(&mut random, false);
    println!(
        "hostile: {iterations} random system calls done, {refused} refused, {blocking} blocking, IPC buffer moved {moves} times"
    );
    let _ = sys::call(
        slot::PARENT,
        Message::new(DONE, [iterations, refused, blocking, 0]),
    );
}

/// Moves the IPC buffer onto something strange (`away`) or back home.
fn move_ipc_buffer(random: &mut Random, away: bool) {
    let buffer = layout::IPC_BUFFER;
    let _ = sys::unmap(slot::OWN_PD, buffer, 0x1000);
    let _ = sys::destroy(STRANGE_BUFFER);
    let _ = sys::delete(STRANGE_BUFFER);
    let rw = map::READ | map::WRITE;
    if !away {
        let _ = sys::map(slot::OWN_PD, HOME_BUFFER, 0, buffer, 0x1000, rw);
        return;
    }
    match random.below(3) {
        0 => {
            let _ = sys::create_device_dataspace(
                slot::PLATFORM,
                slot::OWN_PD,
                STRANGE_BUFFER,
                physical(random),
                0x1000,
            )
            .and_then(|()| sys::map(slot::OWN_PD, STRANGE_BUFFER, 0, buffer, 0x1000, rw));
        }
        1 => {
            let _ = sys::map(slot::OWN_PD, HOME_BUFFER, 0, buffer, 0x1000, map::READ);
        }
        _ => {}
    }
}

/// Points some calls at things that exist, and adjusts or vetoes calls
/// that would end this run for good. Returns whether the call may block,
/// or None to skip it.
fn aim(number: u64, args: &mut [u64; 6], random: &mut Random) -> Option<bool> {
    let own = [u64::from(slot::OWN_PD.0), u64::from(slot::OWN_THREAD.0)];
    let reserved = |s: u64| RESERVED.iter().any(|r| u64::from(r.0) == s);
    let Some(call) = Syscall::from_raw(number) else {
        return Some(false);
    };
    let target = args[0];
    match call {
        // Its own Pd and thread, the way home, the console and the
        // watchdog's objects stay; everything else it holds may go.
        Syscall::Destroy | Syscall::Delete => (!own.contains(&target)
            && target != u64::from(slot::PARENT.0)
            && target != u64::from(slot::CONSOLE.0)
            && !reserved(target))
        .then_some(false),
        // Unclamped in Pds it made; in its own, anything from the scratch
        // region up to below its stack (code and stack would fault).
        Syscall::Unmap => {
            if own.contains(&target) || target == 0 {
                let start = SCRATCH + (args[1] % 64) * 0x1000;
                args[1] = start;
                args[2] = match random.below(4) {
                    0 => OWN_UNMAP_END - start,
                    _ => (args[2] % (OWN_UNMAP_END - start)) & !0xFFF,
                };
            } else if random.below(4) == 0 {
                args[1] = arbor::abi::USER_MIN;
                args[2] = arbor::abi::USER_END - arbor::abi::USER_MIN;
            }
            Some(false)
        }
        // Often a well-formed creation, so there is plenty to use and destroy.
        Syscall::Create => {
            if random.below(2) == 0 {
                args[0] = 1 + random.below(9);
                args[1] = u64::from(slot::OWN_PD.0);
                args[2] = 16 + random.below(32);
                args[3] = match args[0] {
                    5 => 0x1000 * (1 + random.below(8)),
                    _ => random.below(2),
                };
            }
            Some(false)
        }
        Syscall::Map => {
            if random.below(4) == 0 {
                args[5] = random.below(8);
            }
            Some(false)
        }
        Syscall::CreateDeviceDataspace => {
            if random.below(2) == 0 {
                args[0] = u64::from(slot::PLATFORM.0);
                args[1] = u64::from(slot::OWN_PD.0);
                args[3] = physical(random);
                args[4] = match random.below(3) {
                    0 => 0x1000 * (1 + random.below(16)),
                    1 => 1 << random.below(40),
                    _ => random.next(),
                };
            }
            Some(false)
        }
        Syscall::StartThread => (!own.contains(&target) && !reserved(target)).then_some(false),
        // No second capability to its own Pd or thread (one with CONTROL
        // could unmap its code or end its thread); capabilities of Pds and
        // threads it made are not copied either, as they cannot be told
        // apart from its own.
        Syscall::Derive | Syscall::Grant => {
            let source = if call == Syscall::Derive {
                args[0]
            } else {
                args[1]
            };
            match kind_and_rights(source) {
                Some((ObjectKind::Pd | ObjectKind::Thread, _)) => None,
                _ => Some(false),
            }
        }
        // Blocking on an endpoint is fine while the watchdog can end it:
        // it destroys the object, which needs CONTROL.
        Syscall::Call | Syscall::ReplyRecv | Syscall::Send | Syscall::Recv => {
            match random.below(4) {
                0 => args[0] = u64::from(BLOCK_HERE.0),
                1 => args[0] = 16 + random.below(32),
                _ => {}
            }
            if random.below(2) == 0 {
                args[1] = MsgInfo::new(random.below(64) as u32, 0, 0).0;
            }
            match kind_and_rights(args[0]) {
                Some((ObjectKind::Endpoint, rights)) => rights
                    .contains(Rights::CONTROL)
                    .then_some(true)
                    .filter(|_| !reserved(args[0])),
                _ => Some(false),
            }
        }
        Syscall::Wait => match kind_and_rights(if random.below(4) == 0 {
            args[0] = u64::from(BLOCK_HERE.0);
            args[0]
        } else {
            target
        }) {
            Some((ObjectKind::Notification, rights)) => {
                if reserved(args[0]) {
                    None
                } else if args[1] == 0 || args[1] > 5 {
                    // Without a timeout only if the watchdog can end it.
                    args[1] = if rights.contains(Rights::CONTROL) {
                        0
                    } else {
                        1
                    };
                    Some(args[1] == 0)
                } else {
                    Some(false)
                }
            }
            _ => Some(false),
        },
        // Console spam would drown the log.
        Syscall::ConsoleWrite => (target != u64::from(slot::CONSOLE.0)).then_some(false),
        _ => Some(false),
    }
}

/// Makes the watchdog thread, its stack and timer, the notification bound
/// to the main thread, and a home page for the IPC buffer. None of them
/// keeps a capability with CONTROL, so no copy the rampage derives can
/// destroy them.
fn start_watchdog() -> Result<(), arbor::abi::Error> {
    let rw = map::READ | map::WRITE;
    let usable = Rights::READ.union(Rights::WRITE);
    let scratch = CapSlot(15);
    let keep = |made: Result<(), arbor::abi::Error>, into: CapSlot| {
        made.and_then(|()| sys::derive(scratch, into, usable, 0))
            .and_then(|()| sys::delete(scratch))
    };
    keep(
        sys::create(ObjectKind::Notification, slot::OWN_PD, scratch, 0),
        WATCHDOG_TIMER,
    )?;
    keep(
        sys::create(ObjectKind::Notification, slot::OWN_PD, scratch, 0),
        BOUND,
    )?;
    sys::bind_notification(slot::OWN_THREAD, BOUND)?;
    keep(
        sys::create(ObjectKind::Dataspace, slot::OWN_PD, scratch, 0x1000),
        HOME_BUFFER,
    )?;
    keep(
        sys::create(
            ObjectKind::Dataspace,
            slot::OWN_PD,
            scratch,
            WATCHDOG_STACK_SIZE,
        ),
        WATCHDOG_STACK,
    )?;
    sys::map(
        slot::OWN_PD,
        WATCHDOG_STACK,
        0,
        WATCHDOG_STACK_BASE,
        WATCHDOG_STACK_SIZE,
        rw,
    )?;
    let priority = 1;
    sys::create(ObjectKind::Thread, slot::OWN_PD, WATCHDOG_THREAD, priority)?;
    // The System V ABI enters a function with rsp + 8 16-byte aligned.
    let stack_top = WATCHDOG_STACK_BASE + WATCHDOG_STACK_SIZE - 8;
    let entry = watchdog as *const () as u64;
    sys::start_thread(WATCHDOG_THREAD, entry, stack_top, 0, 0)?;
    // Running, it needs no capability; without one nothing can stop it.
    sys::delete(WATCHDOG_THREAD)
}

/// The watchdog: whenever the main thread is blocked in a call it flagged,
/// wake it — by signal first, by destroying the object if that was not
/// enough. Otherwise it gives the CPU straight back.
extern "C" fn watchdog(_argument: u64) -> ! {
    let mut last_seen = u64::MAX;
    let mut turns_blocked = 0;
    loop {
        sys::yield_now();
        let blocked_on = BLOCKED_ON.load(Ordering::Relaxed);
        let calls = BLOCKING_CALLS.load(Ordering::Relaxed);
        if blocked_on == 0 || calls != last_seen {
            last_seen = calls;
            turns_blocked = 0;
            continue;
        }
        turns_blocked += 1;
        let slot = CapSlot(blocked_on as u32);
        match turns_blocked {
            1 => {
                let _ = sys::signal(BOUND);
                let _ = sys::signal(slot);
            }
            _ => {
                let _ = sys::destroy(slot);
                // Give a call that blocked again on something else time.
                let _ = sys::wait_timeout(WATCHDOG_TIMER, 1);
            }
        }
    }
}
