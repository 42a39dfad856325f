//! bench_core: Arbor's side of `cargo arbor bench`, started as core. Each
//! figure is the median of `iterations` (from `core_args`) round trips, each
//! timed with `rdtsc` around the operation (under QEMU's `-icount shift=0`
//! one tick per retired instruction), after a tenth as many untimed ones:
//!
//! - `ipc_roundtrip`: `call` with one word to `bench_partner` in another Pd,
//!   which answers with `reply_recv`;
//! - `ipc_roundtrip_3584`: the same carrying [`PAYLOAD_MAX`] bytes (the
//!   largest payload the ABI allows; 4 KiB does not fit) each way;
//! - `null_syscall`: `info(TSC_PER_MS)`, the cheapest call that does
//!   nothing but answer;
//! - `notification_roundtrip`: signal a notification the partner waits on,
//!   then wait for the one it signals back (two Pds).
//!
//! Prints one `BENCH {...}` line per figure, then ends the run through
//! `isa-debug-exit` with success when every figure was measured.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use arbor::abi::{CapSlot, Error, MsgInfo, ObjectKind, PAYLOAD_MAX, Rights, info, slot};
use arbor::loader::{self, Child, ChildSpec};
use arbor::sys::{self, Message};
use arbor::{ipc, println, rom, slots};
use bench_core::{bench_line, iterations, median};
use bench_partner as proto;

arbor::entry!(run);

fn run(_argument: u64) {
    let core_args = rom::module("core_args")
        .ok()
        .and_then(|bytes| core::str::from_utf8(bytes).ok())
        .unwrap_or("");
    let iterations = iterations(core_args);
    println!("bench_core: {iterations} timed round trips per figure");
    let figures: [(&str, usize, Measure); 4] = [
        ("ipc_roundtrip", 0, |n| ipc_roundtrip(n, 0)),
        ("ipc_roundtrip_3584", PAYLOAD_MAX, |n| {
            ipc_roundtrip(n, PAYLOAD_MAX)
        }),
        ("null_syscall", 0, null_syscall),
        ("notification_roundtrip", 0, notification_roundtrip),
    ];
    let warm_up = iterations / 10;
    let mut success = true;
    for (name, payload_bytes, measure) in figures {
        match measure(warm_up + iterations) {
            Ok(mut samples) => {
                let timed = samples.get_mut(warm_up as usize..).unwrap_or_default();
                let value = median(timed).unwrap_or(0);
                println!("{}", bench_line(name, value, iterations, payload_bytes));
            }
            Err(failure) => {
                println!("bench_core: {name} failed: {} ({:?})", failure.0, failure.1);
                success = false;
            }
        }
    }
    println!("bench_core: done");
    let error = arbor::platform::qemu_exit(success);
    println!("bench_core: cannot end the run: {error}");
}

/// What failed, and the kernel's answer.
struct Failure(&'static str, Error);

/// Times the given number of round trips; returns one sample per round trip.
type Measure = fn(u64) -> Result<Vec<u64>, Failure>;

fn rdtsc() -> u64 {
    let low: u32;
    let high: u32;
    // SAFETY: `rdtsc` reads the time-stamp counter into edx:eax and touches
    // nothing else.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// A new object of `kind` in a fresh slot of the own table.
fn create(kind: ObjectKind, what: &'static str) -> Result<CapSlot, Failure> {
    let cap = slots::allocate().map_err(|e| Failure(what, e))?;
    sys::create(kind, slot::OWN_PD, cap, 0).map_err(|e| Failure(what, e))?;
    Ok(cap)
}

/// Starts `bench_partner` in `role` with `grants` besides the console.
fn spawn_partner(role: u64, grants: &[(CapSlot, CapSlot, Rights)]) -> Result<Child, Failure> {
    let image = rom::module("bench_partner").map_err(|e| Failure("find bench_partner", e))?;
    let mut all = Vec::from(grants);
    all.push((slot::CONSOLE, slot::CONSOLE, Rights::WRITE));
    loader::spawn(&ChildSpec {
        image,
        ram: 512 * 1024,
        caps: 64,
        priority: 1,
        argument: role,
        fault_endpoint: None,
        grants: &all,
    })
    .map_err(|error| {
        println!("bench_core: cannot start bench_partner: {error}");
        Failure("start bench_partner", Error::InvalidArgument)
    })
}

/// `rounds` calls carrying one word and `payload` bytes, each timed.
fn ipc_roundtrip(rounds: u64, payload: usize) -> Result<Vec<u64>, Failure> {
    let endpoint = create(ObjectKind::Endpoint, "create the endpoint")?;
    let partner = spawn_partner(
        proto::ROLE_ECHO,
        &[(
            endpoint,
            CapSlot(proto::ENDPOINT_SLOT),
            Rights::READ.union(Rights::WRITE),
        )],
    )?;
    let mut bytes = [0u8; PAYLOAD_MAX];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = index as u8;
    }
    // Written once: the echo brings the same bytes back into this buffer.
    let len = ipc::write_payload(&bytes[..payload]);
    let info = MsgInfo::new(proto::ECHO, len as u16, 0);
    let mut samples = Vec::with_capacity(rounds as usize);
    let mut result = Ok(());
    for round in 0..rounds {
        let message = Message {
            info,
            words: [round, 0, 0, 0],
        };
        let start = rdtsc();
        let reply = sys::call(endpoint, message);
        let ticks = rdtsc().wrapping_sub(start);
        match reply {
            Ok(reply) if reply.words[0] == round && reply.info.payload_len() == len => {
                samples.push(ticks);
            }
            Ok(_) => {
                result = Err(Failure("the echo answered wrongly", Error::InvalidArgument));
                break;
            }
            Err(error) => {
                result = Err(Failure("call", error));
                break;
            }
        }
    }
    let _ = partner.destroy();
    let _ = sys::destroy(endpoint);
    slots::release(endpoint);
    result.map(|()| samples)
}

/// `rounds` null system calls, each timed.
fn null_syscall(rounds: u64) -> Result<Vec<u64>, Failure> {
    let mut samples = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let start = rdtsc();
        let answer = sys::info(info::TSC_PER_MS, 0);
        let ticks = rdtsc().wrapping_sub(start);
        answer.map_err(|e| Failure("info", e))?;
        samples.push(ticks);
    }
    Ok(samples)
}

/// `rounds` signal-and-wait round trips with the partner, each timed.
fn notification_roundtrip(rounds: u64) -> Result<Vec<u64>, Failure> {
    let ping = create(ObjectKind::Notification, "create a notification")?;
    let pong = create(ObjectKind::Notification, "create a notification")?;
    let both = Rights::READ.union(Rights::WRITE);
    let partner = spawn_partner(
        proto::ROLE_NOTIFY,
        &[
            (ping, CapSlot(proto::PING_SLOT), both),
            (pong, CapSlot(proto::PONG_SLOT), both),
        ],
    )?;
    let mut samples = Vec::with_capacity(rounds as usize);
    let mut result = Ok(());
    for _ in 0..rounds {
        let start = rdtsc();
        let answer = sys::signal(ping).and_then(|()| sys::wait(pong));
        let ticks = rdtsc().wrapping_sub(start);
        if let Err(error) = answer {
            result = Err(Failure("signal and wait", error));
            break;
        }
        samples.push(ticks);
    }
    let _ = partner.destroy();
    for cap in [ping, pong] {
        let _ = sys::destroy(cap);
        slots::release(cap);
    }
    result.map(|()| samples)
}
