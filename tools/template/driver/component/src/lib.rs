//! {{name}}'s decisions, kept apart from the hardware and the kernel so
//! that `cargo test` runs them on the host: what the real-time clock's
//! registers mean ([`rtc`]) and what its config says ([`config`]). The
//! port I/O itself is in `src/cmos.rs`.
#![no_std]
#![forbid(unsafe_code)]

pub mod config;
pub mod rtc;
