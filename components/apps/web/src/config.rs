//! web's config ROM: the port and the files it serves.
//!
//! ```ron
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
    /// The files (until a FileSystem session serves them).
    #[serde(default)]
    pub files: Vec<FileConfig>,
    /// A connection that moves nothing for this long is dropped.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
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
    }
}
