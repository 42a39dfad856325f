//! virtio_blk's side that the host compiles too: its config and how a
//! Block request is cut into virtio requests that fit the DMA pool
//! ([`plan`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod plan;
