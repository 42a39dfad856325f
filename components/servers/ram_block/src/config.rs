//! What the scenario's `config:` for ram_block says.

use serde::Deserialize;

/// ram_block's config.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// 512-byte sectors of the disk (FAT32 needs at least 69632).
    pub sectors: u64,
    /// Format the disk as FAT32 at start (default true).
    #[serde(default = "yes")]
    pub format_fat32: bool,
    /// Whether clients may write (default true).
    #[serde(default = "yes")]
    pub writable: bool,
}

fn yes() -> bool {
    true
}

/// Decodes config text as ram_block does.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_decode() {
        let config = parse(b"(sectors: 69632)").unwrap();
        assert!(config.format_fat32 && config.writable);
        assert!(parse(b"(sector: 1)").is_err());
    }
}
