//! ram_block's side that the host compiles too: its config and the disk
//! it serves ([`disk`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod disk;
