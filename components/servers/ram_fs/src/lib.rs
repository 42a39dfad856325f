//! ram_fs's side that the host compiles too: the file system in memory
//! ([`memory`]) and its config ([`config`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod memory;
