//! {{name}}'s decisions, kept apart from the kernel so that `cargo test`
//! runs them on the host: the table of open sessions ([`sessions`]).
//! `src/main.rs` only connects it to the kernel's IPC.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod sessions;
