//! What the scenario's `config:` for hello says, and the one function that
//! reads it: hello at start and `cargo arbor check` on the host.

use alloc::string::String;
use serde::Deserialize;

/// What the scenario's `config:` says.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The text of every greeting.
    pub greeting: String,
    /// How many greetings.
    pub count: u32,
    /// Milliseconds before each greeting.
    pub period_ms: u64,
}

/// Decodes config text (a config ROM's bytes, maybe zero-padded) as hello
/// does; the error says where it went wrong.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_config_decodes() {
        let config = parse(br#"(greeting: "Hi", count: 3, period_ms: 10)"#).unwrap();
        assert_eq!(config.count, 3);
    }

    #[test]
    fn wrong_types_and_typos_are_refused() {
        for text in [
            r#"(greeting: 5, count: 3, period_ms: 10)"#,
            r#"(greeting: "Hi", count: "three", period_ms: 10)"#,
            r#"(greeting: "Hi", count: 3, period_ms: -1)"#,
            r#"(greeting: "Hi", cuont: 3, period_ms: 10)"#,
            "",
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text}");
        }
    }
}
