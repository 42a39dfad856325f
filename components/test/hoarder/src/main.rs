//! hoarder: allocates without bound until its RAM quota is spent, says how
//! far it got, and keeps running: it logs a heartbeat a few times (trying
//! once more to allocate each time, which must still fail), then holds its
//! hoard for good, so that whatever its siblings do afterwards happens
//! while its quota is spent. They must not notice: the quota is its own.
//!
//! Once the heap is full nothing here may allocate; `log!` formats into a
//! fixed buffer, so it still works.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use arbor::abi::{ObjectKind, slot};
use arbor::{slots, sys};
use arbor_sessions::log;

arbor::entry!(run);

/// Bytes taken per allocation.
const CHUNK: usize = 16 * 1024;
/// How many heartbeats follow the exhaustion.
const HEARTBEATS: u32 = 3;
/// Milliseconds between two heartbeats.
const HEARTBEAT_MS: u64 = 100;

fn run(_argument: u64) {
    // Made first, while there is quota: the notification the heartbeats
    // wait on (nobody signals it, so each wait runs to its timeout).
    let notification = slots::allocate()
        .ok()
        .filter(|&cap| sys::create(ObjectKind::Notification, slot::OWN_PD, cap, 0).is_ok());
    // The Log session, too, before the quota is gone.
    log!("hoarder: allocating {} KiB at a time", CHUNK / 1024);
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    while let Some(chunk) = take_chunk(&mut hoard) {
        hoard.push(chunk);
    }
    let held_kib = hoard.len() * CHUNK / 1024;
    log!("hoarder: out of quota after {held_kib} KiB, still running");
    let pause = |ms| match notification {
        Some(notification) if sys::wait_timeout(notification, ms).is_ok() => {}
        _ => sys::yield_now(),
    };
    for beat in 1..=HEARTBEATS {
        pause(HEARTBEAT_MS);
        let refused = take_chunk(&mut hoard).is_none();
        log!(
            "hoarder: heartbeat {beat}, holding {held_kib} KiB, more {}",
            if refused { "refused" } else { "granted" }
        );
    }
    log!("hoarder: holding {held_kib} KiB for good");
    loop {
        // Forever: the wait has no timeout.
        pause(0);
    }
}

/// One more chunk, filled so that it is really used; None when the heap
/// (or the list holding the chunks) cannot grow.
fn take_chunk(hoard: &mut Vec<Vec<u8>>) -> Option<Vec<u8>> {
    hoard.try_reserve(1).ok()?;
    let mut chunk = Vec::new();
    chunk.try_reserve_exact(CHUNK).ok()?;
    chunk.resize(CHUNK, 0x5A);
    Some(chunk)
}
