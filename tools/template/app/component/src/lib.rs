//! {{name}}'s decisions, kept apart from the kernel so that `cargo test`
//! runs them on the host: what its config says and what it logs
//! ([`config`]). `src/main.rs` only connects them to its sessions.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
