//! What the scenario's `config:` for {{name}} says, and the one function
//! that reads it: {{name}} at start, and `cargo arbor check` on the host
//! (it is named in Cargo.toml's `config_parser`).

use arbor_sessions::env::{ConfigError, parse_config};
use serde::Deserialize;

/// The config, decoded from RON; a misspelt field is an error.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How many update interrupts to log before exiting.
    pub ticks: u32,
}

/// Decodes a config ROM's bytes as {{name}} does; the error says where.
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_decode_and_typos_are_refused() {
        assert_eq!(parse(b"(ticks: 3)").unwrap(), Config { ticks: 3 });
        assert!(parse(b"(tikcs: 3)").is_err());
        assert!(parse(b"(ticks: -1)").is_err());
    }
}
