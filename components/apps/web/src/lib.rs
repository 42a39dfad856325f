//! web's decisions, apart from sockets and the kernel so that they are
//! tested (and fuzzed) on the host: the HTTP/1.1 request parser
//! ([`http`]), one connection's request/response cycle with keep-alive
//! ([`connection`]) and where files come from ([`files`]).
//!
//! The server never trusts a client: header sizes are bounded, every path
//! is normalised and anything reaching above the root (`..`) or holding a
//! byte a file name cannot is refused with 400, an unknown file is 404, and
//! no input makes it panic (the parser is fuzzed).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod connection;
pub mod files;
pub mod http;
