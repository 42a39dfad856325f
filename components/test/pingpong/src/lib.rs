//! The protocol between kernel_test and pingpong: message labels and what
//! each reply carries. Both sides compile this module; nothing here runs.
#![no_std]
#![forbid(unsafe_code)]

/// Reply with the same label + 1 and every word + 1.
pub const ECHO: u32 = 1;
/// The payload arrives; reply with it upper-cased (ASCII), same length.
pub const UPPERCASE: u32 = 2;
/// One capability arrives in the slot pingpong offers ([`RECEIVE_SLOT`]);
/// pingpong reports its kind in word 0, signals it if it is a notification,
/// then deletes it.
pub const TAKE_CAP: u32 = 3;
/// Sent (not called): pingpong answers with a `send` of label
/// [`SENT_BACK`] and the same words on the same endpoint.
pub const SEND_BACK: u32 = 4;
/// The label of pingpong's answer to [`SEND_BACK`].
pub const SENT_BACK: u32 = 5;
/// Reply with the bits of the last bound-notification wake-up in word 0
/// (and clear them).
pub const LAST_NOTIFICATION: u32 = 6;

/// The slot where pingpong finds its endpoint to kernel_test.
pub const ENDPOINT_SLOT: u32 = 3;
/// The empty slot pingpong offers for a received capability.
pub const RECEIVE_SLOT: u32 = 40;
