//! What the scenario's `config:` for virtio_net says.

use serde::Deserialize;

/// virtio_net's config.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Fault injection for the restart test: after this many frames moved
    /// (both ways) the driver faults, with frames on its queues.
    #[serde(default)]
    pub crash_after_frames: Option<u64>,
}

/// Decodes config text as virtio_net does.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_decode() {
        assert_eq!(parse(b"()").unwrap(), Config::default());
        assert_eq!(
            parse(b"(crash_after_frames: Some(500))")
                .unwrap()
                .crash_after_frames,
            Some(500)
        );
        assert!(parse(b"(crash_after: 5)").is_err());
    }
}
