//! What the scenario's `config:` for ram_block says.

use alloc::string::String;
use alloc::vec::Vec;
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
    /// Files to put on the fresh FAT32 volume (directories made as needed),
    /// as the tool's disk images will from host files.
    #[serde(default)]
    pub files: Vec<InitialFile>,
}

/// A file on the volume from the start.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InitialFile {
    /// Where (absolute).
    pub path: String,
    /// Its content.
    pub text: String,
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
