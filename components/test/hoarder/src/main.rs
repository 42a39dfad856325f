//! hoarder: allocates without bound until its RAM quota is spent, says how
//! far it got, and keeps running: it logs a heartbeat a few times (trying
//! once more to allocate each time, which must still fail), then holds its
//! hoard for good, so that whatever its siblings do afterwards happens
//! while its quota is spent. They must not notice: the quota is its own.
//!
//! Once the heap is full nothing here may allocate, so its messages are
//! formatted into a buffer on the stack.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use arbor::abi::{ObjectKind, slot};
use arbor::{slots, sys};
use arbor_sessions::client::Log;
use core::fmt::Write;

arbor::entry!(run);

/// Bytes taken per allocation.
const CHUNK: usize = 16 * 1024;
/// How many heartbeats follow the exhaustion.
const HEARTBEATS: u32 = 3;
/// Yields between two heartbeats (there is no timer in this scenario).
const YIELDS_PER_HEARTBEAT: u32 = 2000;

fn run(_argument: u64) {
    let Ok(log) = Log::open("") else { return };
    let say = |args: core::fmt::Arguments<'_>| {
        let mut line = StackText::new();
        let _ = line.write_fmt(args);
        let _ = log.write(line.as_str());
    };
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    while let Some(chunk) = take_chunk(&mut hoard) {
        hoard.push(chunk);
    }
    let held_kib = hoard.len() * CHUNK / 1024;
    say(format_args!(
        "hoarder: out of quota after {held_kib} KiB, still running"
    ));
    for beat in 1..=HEARTBEATS {
        for _ in 0..YIELDS_PER_HEARTBEAT {
            sys::yield_now();
        }
        let refused = take_chunk(&mut hoard).is_none();
        say(format_args!(
            "hoarder: heartbeat {beat}, holding {held_kib} KiB, more {}",
            if refused { "refused" } else { "granted" }
        ));
    }
    say(format_args!("hoarder: holding {held_kib} KiB for good"));
    hold_forever();
    drop(hoard);
}

/// Blocks for good on a notification nobody signals; if none can be made
/// (no quota left for it), yields for good instead.
fn hold_forever() {
    if let Ok(notification) = slots::allocate()
        && sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0).is_ok()
    {
        loop {
            let _ = sys::wait(notification);
        }
    }
    loop {
        sys::yield_now();
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

/// A line of text formatted without the heap; what does not fit is cut.
struct StackText {
    bytes: [u8; 160],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            bytes: [0; 160],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s (cut at a char boundary) are ever copied in.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for StackText {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let room = self.bytes.len() - self.len;
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        if take < text.len() {
            Err(core::fmt::Error)
        } else {
            Ok(())
        }
    }
}
