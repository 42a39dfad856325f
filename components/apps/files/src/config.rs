//! What the scenario's `config:` for files says: the steps to run, in order.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// files' config.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to do, in order.
    pub steps: Vec<Step>,
    /// Whether a failed step ends the run with exit code 1 (default true);
    /// false for a client that is meant to be refused.
    #[serde(default = "yes")]
    pub stop_on_error: bool,
}

fn yes() -> bool {
    true
}

/// One thing to do.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum Step {
    /// Write `text` as the whole content of `path`.
    Write {
        /// The file.
        path: String,
        /// Its content.
        text: String,
    },
    /// Make a directory.
    Mkdir {
        /// Where.
        path: String,
    },
    /// Log every entry of a directory.
    List {
        /// The directory.
        path: String,
    },
    /// Copy a file.
    Copy {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Append `line` and a newline to a file (created if missing).
    Append {
        /// The log file.
        path: String,
        /// The line.
        line: String,
    },
    /// Log a file's content.
    Read {
        /// The file.
        path: String,
    },
    /// Write `chunk`-byte pieces to `path` until the file system says it is
    /// full, then smaller ones down to a byte; log how far it got.
    Fill {
        /// The file.
        path: String,
        /// Bytes per write.
        chunk: u32,
    },
    /// Remove a file or an empty directory.
    Remove {
        /// What.
        path: String,
    },
    /// Rename.
    Rename {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Ask the server to write everything to its medium.
    Sync,
    /// Write `bytes` bytes of [`pattern_byte`] to `path` (in 64 KiB
    /// pieces), then read them back and check every byte; the host can
    /// make the same bytes to compare (`i % 251`).
    Pattern {
        /// The file.
        path: String,
        /// Its length.
        bytes: u32,
    },
}

/// Byte `index` of a [`Step::Pattern`] file: `index % 251` (a prime, so
/// the pattern does not line up with sector or cluster sizes).
pub fn pattern_byte(index: u64) -> u8 {
    (index % 251) as u8
}

/// Decodes config text as files does.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_the_one_the_host_makes() {
        // The host's check: bytes(i % 251 for i in range(n)).
        assert_eq!(pattern_byte(0), 0);
        assert_eq!(pattern_byte(250), 250);
        assert_eq!(pattern_byte(251), 0);
        assert_eq!(pattern_byte(1 << 20), ((1u64 << 20) % 251) as u8);
        let step = parse(b"(steps: [Pattern(path: \"/p.bin\", bytes: 1048576)])").unwrap();
        assert!(matches!(
            &step.steps[0],
            Step::Pattern { bytes: 1048576, .. }
        ));
    }

    #[test]
    fn steps_decode_and_typos_are_refused() {
        let config = parse(
            br#"(steps: [Mkdir(path: "/d"), Write(path: "/d/a", text: "x"), Copy(from: "/d/a", to: "/b"), List(path: "/"), Append(path: "/log", line: "l"), Fill(path: "/f", chunk: 512), Sync])"#,
        )
        .unwrap();
        assert_eq!(config.steps.len(), 7);
        assert!(config.stop_on_error);
        assert!(parse(br#"(steps: [Wrte(path: "/a", text: "")])"#).is_err());
        assert!(parse(br#"(steps: [Write(path: "/a")])"#).is_err());
    }
}
