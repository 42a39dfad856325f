//! fat_fs's side that the host compiles and tests: the sector cache over
//! any block device ([`cache`]), the FAT backend over lamfat ([`backend`]),
//! calendar arithmetic for timestamps ([`clock`]), the config ([`config`])
//! and the read-ahead bookkeeping of the Block client ([`readahead`]).
//! Nothing here trusts a client; it sees only paths already checked and
//! confined by `arbor_sessions::file_system`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod backend;
pub mod cache;
pub mod clock;
pub mod config;
pub mod readahead;
