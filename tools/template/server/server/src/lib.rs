//! {{name}}'s decisions, kept apart from the kernel so that `cargo test`
//! runs them on the host: a session's state ([`sessions`]).
//! `src/main.rs` only connects it to the kernel's IPC.
#![no_std]
#![forbid(unsafe_code)]

pub mod sessions;
