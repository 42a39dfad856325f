//! The compositor's decisions, apart from the kernel so that they are
//! tested on the host.
//!
//! - [`scene`]: views, their stacking and their title strips; which view is
//!   where; what a client's refresh or a dead client means for the screen.
//! - [`compose`]: painting a damaged rectangle of the screen from the
//!   clients' buffers and the strips.
//! - [`font`]: the one text renderer (8x8 glyphs from `font8x8`) the strips,
//!   the terminal and the tests that predict pixels all use.
//! - [`focus`]: who gets which input event.
//! - [`refresh`]: damage lists and the per-client refresh budget that keeps a
//!   flooding client from starving the others.
//! - [`policy`]: strip colours and pinned focus, chosen by session label.
//! - [`latency`]: refresh-to-flush samples for the `gui_frame_ms` figure.
//!
//! It never trusts a client: every rectangle is clipped here, every view
//! belongs to the session that created it, and nothing a client sends can
//! name another client's view, buffer or strip.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod compose;
pub mod focus;
pub mod font;
pub mod latency;
pub mod policy;
pub mod refresh;
pub mod scene;
