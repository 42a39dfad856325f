//! The platform driver's deciding logic, compiled and tested on the host:
//! its config (one policy per client), which devices a policy names, how a
//! function's BARs and interrupt line are read from configuration space,
//! and which configuration-space accesses a client may make.
//!
//! It never trusts a client: every index, offset and size a request carries
//! is checked here before `main.rs` touches hardware for it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod pci;
pub mod policy;
