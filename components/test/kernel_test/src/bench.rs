//! Mode `bench`: the IPC round trip between two Pds, timed with `rdtsc`.

use crate::{fresh, spawn_pingpong};
use alloc::vec::Vec;
use arbor::abi::{ObjectKind, slot};
use arbor::println;
use arbor::sys::{self, Message};
use pingpong as proto;

pub(crate) fn rdtsc() -> u64 {
    let low: u32;
    let high: u32;
    // SAFETY: `rdtsc` reads the time-stamp counter into edx:eax and touches
    // nothing else.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Times `iterations` round trips; prints the median.
pub fn run(iterations: u64) -> bool {
    let endpoint = fresh();
    if sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0).is_err() {
        println!("bench: cannot create the endpoint");
        return false;
    }
    let Ok(child) = spawn_pingpong(endpoint) else {
        return false;
    };
    let warm_up = iterations / 10;
    let mut samples: Vec<u64> = Vec::with_capacity(iterations as usize);
    for round in 0..warm_up + iterations {
        let start = rdtsc();
        let reply = sys::call(endpoint, Message::new(proto::ECHO, [round, 0, 0, 0]));
        let cycles = rdtsc().wrapping_sub(start);
        if reply.is_err() {
            println!("bench: call failed: {reply:?}");
            let _ = child.destroy();
            return false;
        }
        if round >= warm_up {
            samples.push(cycles);
        }
    }
    let _ = child.destroy();
    samples.sort_unstable();
    let median = samples.get(samples.len() / 2).copied().unwrap_or(0);
    println!("bench: {} round trips", samples.len());
    println!("BENCH {{\"bench\":\"ipc_roundtrip\",\"value\":{median},\"unit\":\"cycles\"}}");
    true
}
