//! net's decisions, apart from smoltcp, sessions and the kernel so that
//! they are tested on the host: what its config says ([`config`]), which
//! client may do what ([`policy`]) and each client's sockets with the quota
//! they cost ([`sockets`]).
//!
//! The stack never trusts an application: a socket handle is looked up in
//! the caller's own table (never another session's), a port is checked
//! against the caller's policy before a listener exists, and every socket's
//! buffers are paid from the RAM the caller donated for its session.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod policy;
pub mod sockets;
