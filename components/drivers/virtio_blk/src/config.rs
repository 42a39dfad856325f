//! What the scenario's `config:` for virtio_blk says.

use serde::Deserialize;

/// virtio_blk's config.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Whether clients may write (default false: a disk is read-only
    /// unless the scenario's policy says otherwise). A device that reports
    /// itself read-only stays read-only whatever this says.
    #[serde(default)]
    pub writable: bool,
    /// Fault injection for the restart test: after this many served
    /// requests the driver faults (with requests in flight on its queue).
    #[serde(default)]
    pub crash_after_requests: Option<u64>,
}

/// Decodes config text as virtio_blk does.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_decode() {
        assert_eq!(parse(b"()").unwrap(), Config::default());
        assert!(parse(b"(writable: true)").unwrap().writable);
        assert!(parse(b"(writeable: true)").is_err());
    }
}
