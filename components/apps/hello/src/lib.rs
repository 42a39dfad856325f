//! hello's side that the host compiles too: its config type and the parser
//! it reads its config ROM with ([`config`]), so that `cargo arbor check`
//! refuses a config hello would refuse, at its line and column.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
