//! The terminal's logic, tested on the host: a character grid with a
//! cursor that wraps and scrolls ([`grid`]), key codes to characters and a
//! line editor ([`keys`]), and drawing the grid into a pixel buffer with
//! the compositor's font ([`render`]).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod grid;
pub mod keys;
pub mod render;
