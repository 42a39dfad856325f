//! pit_timer's decisions, apart from the hardware and the kernel so that they
//! are tested on the host: how PIT ticks become milliseconds ([`clock`]) and
//! which Timer session is due when ([`schedule`]).
//!
//! The driver never trusts a client: a session is known by the badge the
//! kernel put on its capability, every duration is range-checked, and each
//! session's state is paid from the RAM the client donated for it.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod clock;
pub mod schedule;
