//! What the scenario's `config:` for ram_fs says.

use alloc::string::String;
use alloc::vec::Vec;
use arbor_sessions::fs_service::PolicyRule;
use serde::Deserialize;

/// ram_fs's config.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Bytes the file system may hold: file contents plus a fixed cost per
    /// node and its name. Beyond it, writes fail with "no space".
    pub capacity: u64,
    /// Who may open sessions, with which root and rights (first match wins;
    /// a label no rule matches gets no session).
    pub policies: Vec<PolicyRule>,
    /// Files the file system starts with (their directories are made as
    /// needed), counted against the capacity like any other.
    #[serde(default)]
    pub preload: Vec<Preload>,
}

/// One file ram_fs starts with.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Preload {
    /// Where (absolute).
    pub path: String,
    /// Its content.
    pub text: String,
}

/// Decodes config text as ram_fs does.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_decode_and_typos_are_refused() {
        let config = parse(
            br#"(capacity: 4096, policies: [(label: "init -> files", writable: true), (label: "init -> reader", root: "/pub")])"#,
        )
        .unwrap();
        assert_eq!(config.capacity, 4096);
        assert_eq!(config.policies[1].root, "/pub");
        assert!(!config.policies[1].writable);
        assert!(parse(br#"(capacity: 1, policies: [(lable: "x")])"#).is_err());
        assert!(parse(br#"(capacity: -1, policies: [])"#).is_err());
    }
}
