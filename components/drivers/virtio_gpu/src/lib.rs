//! virtio_gpu's side that the host compiles too: the 2D control commands it
//! sends and the checks on the device's answers ([`protocol`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod protocol;
