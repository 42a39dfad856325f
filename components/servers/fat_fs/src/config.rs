//! What the scenario's `config:` for fat_fs says.

use alloc::vec::Vec;
use arbor_sessions::fs_service::PolicyRule;
use serde::Deserialize;

/// fat_fs's config.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Sectors the cache holds (default 64).
    #[serde(default = "default_cache")]
    pub cache_sectors: u32,
    /// Who may open sessions, with which root and rights (first match wins).
    pub policies: Vec<PolicyRule>,
    /// Read the CMOS real-time clock (ports 0x70–0x71) for timestamps
    /// (default true); without it files carry 1980-01-01.
    #[serde(default = "yes")]
    pub rtc: bool,
}

fn default_cache() -> u32 {
    64
}

fn yes() -> bool {
    true
}

/// Decodes config text as fat_fs does.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_decode_and_typos_are_refused() {
        let config = parse(br#"(policies: [(label: "files", writable: true)])"#).unwrap();
        assert_eq!(config.cache_sectors, 64);
        assert!(config.rtc);
        assert!(parse(br#"(policies: [], cache: 3)"#).is_err());
    }
}
