//! The scenario: one RON file that says what machine QEMU provides, what the
//! kernel is told, what init starts and how it routes, and what a test
//! expects to see.
//!
//! This crate is the single source of truth for the schema, its validation
//! and session routing. The host tool (`cargo arbor run/test/check/graph`)
//! and init on the target parse with the same [`parse_scenario`] /
//! [`check_scenario`] and route with the same [`route_session`], so a
//! scenario that passes the check cannot be rejected at boot for a reason
//! the check could see, and `--explain` shows what init will do.
//!
//! It is `no_std` + `alloc` and never panics on input: every struct is
//! `deny_unknown_fields`, and every finding carries the line and column
//! where it was found.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod decode;
mod diagnostics;
mod error;
mod explain;
pub mod hardware;
mod init;
pub mod label;
pub mod names;
pub mod outline;
mod quantity;
mod routing;
mod scenario;
mod validate;

pub use decode::MAX_NESTING;
pub use diagnostics::{Diagnostic, Severity, Span, closest, edit_distance};
pub use error::{ConfigError, Location};
pub use explain::{Explanation, Hop, Outcome, describe, explain_route};
pub use hardware::{Claim, Hardware, MemoryRange, PortRange};
pub use init::{
    ANY_SERVICE, CapCount, Child, ComponentConfig, INIT_BINARY, INIT_SERVICES, INIT_STATE_SERVICE,
    InitConfig, LabelMatch, Quota, Restart, Route, RouteTarget,
};
pub use quantity::{ByteSize, Duration, QuantityError};
pub use routing::{
    Denial, RouteDecision, compose_label, providers, resolve_route, route_matches, route_session,
};
pub use scenario::{
    DefaultReject, Device, DiskFile, DiskFormat, DisplayAction, DisplayStep, ExitOutcome, Forward,
    HostCheck, Kernel, MAX_SLOT, Machine, Scenario, ScreenCheck, TestSpec, assign_slots, forwards,
    named_guest_ports,
};
pub use validate::{
    ComponentNeeds, ConfigParser, ConfigRefusal, Environment, KERNEL_AND_CORE_RESERVE,
    MAX_NESTED_INITS, ROOT_CAPS, starting_cost, usable_ram,
};

use alloc::vec::Vec;

/// Everything a check found, and the scenario when it could be read at all.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The decoded scenario; `None` when the text does not decode.
    pub scenario: Option<Scenario>,
    /// Every finding, ordered by place in the text.
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// Decodes an init config (a nested init's config ROM) without validating it.
pub(crate) fn parse_init_text(text: &str) -> Result<InitConfig, ron::error::SpannedError> {
    ron_options().from_str(text)
}

/// Decodes a scenario without validating it (what a tool needs to look at
/// before checking, e.g. which disk files it names); `None` if it does not
/// decode.
pub fn decode_scenario(text: &str) -> Option<Scenario> {
    ron_options().from_str(text).ok()
}

/// Decodes `text` and reports every problem that can be seen without running
/// it, given what exists in `environment`: every field that does not decode
/// and every semantic error, sorted by place in the text.
pub fn check_scenario(text: &str, environment: &Environment) -> CheckReport {
    let decoded = decode::decode_all::<Scenario>(text, text, 0);
    let mut found = decoded.diagnostics;
    if let Some(scenario) = &decoded.value
        && !decoded.dropped_items
    {
        let mut checker = validate::Checker::new(text, environment);
        checker.scenario(scenario);
        found.extend(checker.diagnostics);
    }
    found.sort_by_key(|d| d.span.map(|s| (s.start.line, s.start.column)));
    found.dedup();
    CheckReport {
        scenario: decoded.value,
        diagnostics: found,
    }
}

/// Like [`check_scenario`], for bytes as read from a file: text that is not
/// UTF-8 is refused with the byte offset (and line) of the first bad byte.
pub fn check_scenario_bytes(bytes: &[u8], environment: &Environment) -> CheckReport {
    match core::str::from_utf8(bytes) {
        Ok(text) => check_scenario(text, environment),
        Err(error) => {
            let offset = error.valid_up_to();
            let valid = core::str::from_utf8(&bytes[..offset]).unwrap_or("");
            let start = outline::location_in(valid, offset);
            let end = Location {
                column: start.column + 1,
                ..start
            };
            let byte = bytes.get(offset).copied().unwrap_or(0);
            CheckReport {
                scenario: None,
                diagnostics: alloc::vec![
                    Diagnostic::error(
                        Some(Span { start, end }),
                        alloc::format!(
                            "the file is not UTF-8 text: byte offset {offset} holds 0x{byte:02X}"
                        ),
                    )
                    .with_hint("save the scenario as UTF-8")
                ],
            }
        }
    }
}

/// Parses and validates a scenario from its RON text; the first error, if
/// any, is returned. Binaries are not checked (see [`check_scenario`]).
pub fn parse_scenario(text: &str) -> Result<Scenario, ConfigError> {
    let report = check_scenario(text, &Environment::default());
    if let Some(error) = report.diagnostics.iter().find(|d| d.is_error()) {
        return Err(error.to_config_error());
    }
    report
        .scenario
        .ok_or_else(|| ConfigError::general("the scenario could not be decoded"))
}

/// Parses and validates an init config on its own, as a nested init reads
/// its config ROM. `has` is the quota the nested init was given.
pub fn parse_init_config(
    text: &str,
    has: Quota,
    environment: &Environment,
) -> Result<InitConfig, ConfigError> {
    let config = parse_init_text(text)
        .map_err(|error| diagnostics::from_ron(&error, text, 0).to_config_error())?;
    let mut checker = validate::Checker::new(text, environment);
    checker.init(&config, &[], has, "this init's quota");
    match checker.diagnostics.iter().find(|d| d.is_error()) {
        Some(error) => Err(error.to_config_error()),
        None => Ok(config),
    }
}

#[cfg(test)]
mod tests;
