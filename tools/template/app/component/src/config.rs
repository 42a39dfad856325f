//! What the scenario's `config:` for {{name}} says, and the lines it logs.
//!
//! The config is a claim by whoever wrote the scenario: [`Config::check`]
//! refuses values the component cannot use, with a message that says which.

use alloc::format;
use alloc::string::String;
use arbor_config::ConfigRefusal;
use arbor_sessions::env::{ConfigError, parse_config};
use serde::Deserialize;

/// The config, decoded from RON. `deny_unknown_fields` makes a misspelt
/// field an error with line and column instead of a silently ignored one.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The text of every line.
    pub message: String,
    /// How many lines to log.
    pub count: u32,
    /// Milliseconds to wait before each line.
    pub period_ms: u64,
}

/// The most lines a config may ask for.
pub const MAX_COUNT: u32 = 1000;
/// The longest wait a config may ask for: a minute.
pub const MAX_PERIOD_MS: u64 = 60_000;

impl Config {
    /// The config if every value is usable, or what is wrong with it.
    pub fn check(self) -> Result<Self, String> {
        if !(1..=MAX_COUNT).contains(&self.count) {
            return Err(format!(
                "config: count must be 1..={MAX_COUNT}, not {}",
                self.count
            ));
        }
        if !(1..=MAX_PERIOD_MS).contains(&self.period_ms) {
            return Err(format!(
                "config: period_ms must be 1..={MAX_PERIOD_MS}, not {}",
                self.period_ms
            ));
        }
        Ok(self)
    }

    /// The `n`th line logged (counting from 1).
    pub fn line(&self, n: u32) -> String {
        format!("{} #{n}", self.message)
    }
}

/// Reads a config ROM's bytes as {{name}} does at start: decoded (with the
/// line and column of what does not decode), then [`Config::check`]ed.
/// `cargo arbor check` calls this too (it is named in Cargo.toml's
/// `config_parser`), so a scenario it accepts has a config {{name}} accepts.
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigRefusal> {
    let config: Config = parse_config(bytes).map_err(|error| match error {
        ConfigError::Invalid(error) => ConfigRefusal::Decode(error),
        other => ConfigRefusal::Value(format!("{other}")),
    })?;
    config.check().map_err(ConfigRefusal::Value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        super::parse(text.as_bytes()).map_err(|error| format!("{error}"))
    }

    #[test]
    fn a_good_config_gives_numbered_lines() {
        let config = parse(r#"(message: "Hi", count: 3, period_ms: 200)"#).unwrap();
        assert_eq!(config.count, 3);
        assert_eq!(config.line(2), "Hi #2");
    }

    #[test]
    fn unusable_values_are_refused_with_the_field_name() {
        let error = parse(r#"(message: "Hi", count: 0, period_ms: 200)"#).unwrap_err();
        assert!(error.contains("count"), "{error}");
        let error = parse(r#"(message: "Hi", count: 1, period_ms: 0)"#).unwrap_err();
        assert!(error.contains("period_ms"), "{error}");
    }

    #[test]
    fn a_misspelt_field_is_an_error() {
        let error = parse(r#"(mesage: "Hi", count: 1, period_ms: 1)"#).unwrap_err();
        assert!(error.contains("mesage"), "{error}");
    }
}
