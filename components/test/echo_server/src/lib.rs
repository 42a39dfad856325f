//! echo_server's side that others compile too: the Echo protocol with its
//! client stub ([`protocol`]) and reading a test component's RON config
//! ([`config`]). Its sessions are kept by the server framework
//! (`arbor_sessions::server`).
//!
//! The server never trusts a client: session requests are decoded
//! defensively, a session is admitted only when its donated RAM covers what
//! the server charges, and every badge is looked up before use.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod protocol;
