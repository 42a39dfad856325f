//! The scenario: one RON file that says what machine QEMU provides, what the
//! kernel is told, and what a test expects to see.
//!
//! This crate is the single source of truth for the schema. The host tool
//! (`cargo arbor run/test/check`) and, later, init on the target parse with
//! the same [`parse_scenario`], so a scenario that passes on the host cannot
//! be rejected at boot for a reason the host could have seen.
//!
//! It is `no_std` + `alloc` and never panics on input: every field is
//! `deny_unknown_fields`, and every error carries the line and column where
//! it was found.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod error;
mod quantity;
mod scenario;

pub use error::{ConfigError, Location};
pub use quantity::{ByteSize, Duration, QuantityError};
pub use scenario::{ExitOutcome, Kernel, Machine, Scenario, TestSpec};

/// Parses and validates a scenario from its RON text.
pub fn parse_scenario(text: &str) -> Result<Scenario, ConfigError> {
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let scenario: Scenario = options.from_str(text).map_err(ConfigError::from_ron)?;
    scenario.validate()?;
    Ok(scenario)
}

#[cfg(test)]
mod tests;
