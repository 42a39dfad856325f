//! init_state_hostile: attacks init's `InitState` service and checks that
//! every attack is refused and init goes on answering.
//!
//! Without a route to `InitState` it only asks for the session and logs
//! the refusal. With one, it reads before any snapshot, at absurd offsets,
//! with lengths of 0 and `u32::MAX`, sends requests that do not decode,
//! floods init with snapshot requests, and then reads a whole report,
//! which must still name it. It logs `passed` or `FAILED: what`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use arbor::abi::{CapSlot, info};
use arbor::sys;
use arbor_sessions::client::{self, call};
use arbor_sessions::init_state::{CHUNK_MAX, InitState, InitStateReply, InitStateRequest};
use arbor_sessions::{Interface, SessionError, log};

arbor::entry!(run);

/// Snapshot requests in the flood.
const FLOOD: u32 = 5000;

fn run(_argument: u64) {
    let state = match InitState::open() {
        Ok(state) => state,
        Err(error) => {
            log!("init_state_hostile: InitState session refused: {error}");
            return client::exit(0);
        }
    };
    match attack(&state) {
        Ok(()) => {
            log!("init_state_hostile: passed");
            client::exit(0);
        }
        Err(what) => {
            log!("init_state_hostile: FAILED: {what}");
            client::exit(1);
        }
    }
}

fn ask<R: serde::Serialize>(session: CapSlot, request: &R) -> Result<InitStateReply, SessionError> {
    call::<_, InitStateReply>(session, Interface::Session, request, None, None).map(|(r, _)| r)
}

/// Sends `request` and insists on a `BadRequest` refusal.
fn refused<R: serde::Serialize>(
    session: CapSlot,
    request: &R,
    what: &str,
) -> Result<(), &'static str> {
    match ask(session, request) {
        Ok(InitStateReply::Error(SessionError::BadRequest)) => {
            log!("init_state_hostile: {what}: refused");
            Ok(())
        }
        _ => Err("a hostile request was not refused"),
    }
}

fn read(offset: u32, len: u32) -> InitStateRequest {
    InitStateRequest::Read { offset, len }
}

fn attack(state: &InitState) -> Result<(), &'static str> {
    let session = state.cap();
    refused(session, &read(0, 16), "read before a snapshot")?;
    let size = match ask(session, &InitStateRequest::Snapshot) {
        Ok(InitStateReply::Snapshot { size, .. }) => size,
        _ => return Err("no snapshot"),
    };
    refused(
        session,
        &read(u32::MAX, CHUNK_MAX),
        "read at offset u32::MAX",
    )?;
    refused(session, &read(size + 1, 1), "read one past the end")?;
    refused(session, &read(0, 0), "read of 0 bytes")?;
    refused(session, &read(0, u32::MAX), "read of u32::MAX bytes")?;
    // Not an InitState request at all: an enum index no request has.
    refused(session, &(200u8, u64::MAX), "undecodable request")?;
    let start = milliseconds();
    for _ in 0..FLOOD {
        match ask(session, &InitStateRequest::Snapshot) {
            Ok(InitStateReply::Snapshot { .. }) => {}
            _ => return Err("a snapshot in the flood failed"),
        }
    }
    log!(
        "init_state_hostile: {FLOOD} snapshots answered in {} ms",
        milliseconds().saturating_sub(start)
    );
    let report = state.report().map_err(|_| "no report after the attacks")?;
    if !report.children.iter().any(|c| c.name == "hostile") {
        return Err("the report does not name the reader");
    }
    log!(
        "init_state_hostile: report after the attacks: {} children, version {}",
        report.children.len(),
        report.version
    );
    Ok(())
}

fn milliseconds() -> u64 {
    let per_ms = sys::info(info::TSC_PER_MS, 0).map_or(1, |(tsc, _)| tsc.max(1));
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() / per_ms }
}
