//! The protocol between bench_core and bench_partner. Both sides compile
//! this module; nothing here runs.
#![no_std]
#![forbid(unsafe_code)]

/// Start argument: serve calls on the endpoint in [`ENDPOINT_SLOT`].
pub const ROLE_ECHO: u64 = 0;
/// Start argument: wait on [`PING_SLOT`], signal [`PONG_SLOT`], forever.
pub const ROLE_NOTIFY: u64 = 1;

/// Reply with the same label, words and payload length. The payload the
/// call brought is still in the partner's IPC buffer, so the kernel copies
/// the same bytes back: one copy each way, nothing else.
pub const ECHO: u32 = 1;

/// The endpoint bench_core calls (the child's parent slot).
pub const ENDPOINT_SLOT: u32 = 3;
/// The notification bench_core signals.
pub const PING_SLOT: u32 = 20;
/// The notification bench_partner signals back.
pub const PONG_SLOT: u32 = 21;
