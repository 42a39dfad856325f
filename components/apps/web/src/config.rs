//! web's config ROM: the port and where the files it serves come from.
//!
//! ```ron
//! (port: 80, source: FileSystem)
//! (port: 80, files: [Text(path: "/index.html", text: "<h1>Arbor</h1>"), Pattern(path: "/big.bin", size: 262144)])
//! ```

use crate::files::FileConfig;
use alloc::vec::Vec;
use serde::Deserialize;

/// The whole config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The TCP port to listen on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Where the files come from.
    #[serde(default)]
    pub source: Source,
    /// The files, when the source is [`Source::Config`].
    #[serde(default)]
    pub files: Vec<FileConfig>,
    /// A connection that moves nothing for this long is dropped.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
}

/// Where web's files come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Source {
    /// The `files` of this config (tests without storage).
    #[default]
    Config,
    /// A FileSystem session (its root, as the file system's policy for
    /// web's label sets it, is the site's root).
    FileSystem,
}

/// Reads a config ROM as web does (`cargo arbor check` links it).
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

impl Config {
    /// What web refuses to start with although it decodes: `files` listed
    /// for a FileSystem source would never be served.
    pub fn problem(&self) -> Option<&'static str> {
        (self.source == Source::FileSystem && !self.files.is_empty())
            .then_some("`files` are served only with source: Config")
    }
}

fn default_idle_ms() -> u64 {
    5000
}

fn default_port() -> u16 {
    80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_parses_and_typos_do_not() {
        let config: Config = ron::from_str(
            "(port: 8080, files: [Text(path: \"/\", text: \"hi\"), Pattern(path: \"/b\", size: 10)])",
        )
        .unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.files.len(), 2);
        assert!(ron::from_str::<Config>("(prot: 80)").is_err());
        assert_eq!(
            parse(b"(source: FileSystem)").unwrap().source,
            Source::FileSystem
        );
        assert_eq!(parse(b"()").unwrap().source, Source::Config);
        let both = parse(b"(source: FileSystem, files: [Text(path: \"/\", text: \"\")])").unwrap();
        assert!(both.problem().is_some());
    }
}
