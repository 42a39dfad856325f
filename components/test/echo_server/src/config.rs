//! Reading a test component's `config` ROM, where no config at all means
//! the defaults. The text is decoded by `arbor_sessions::env`'s parser;
//! this only adds the "nothing given" case, which `env::config` refuses
//! (empty text is no RON value).

use crate::protocol::ECHO;
use alloc::string::{String, ToString};
use arbor_config::ByteSize;
use arbor_sessions::client::Rom;
use arbor_sessions::env::{self, ConfigError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// What echo_server's own config may say (both optional), read with
/// [`parse`] by the server and by `cargo arbor check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The service to announce.
    pub service: String,
    /// What one session costs.
    pub session_ram: ByteSize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            service: ECHO.to_string(),
            session_ram: ByteSize(4096),
        }
    }
}

/// The component's config decoded as `T`; empty text is `T::default()`.
pub fn read<T: DeserializeOwned + Default>() -> Result<T, ConfigError> {
    // The session stays open: its dataspace is mapped for the component's life.
    let rom = Rom::open("config").map_err(ConfigError::Rom)?;
    parse(rom.bytes)
}

/// `bytes` (a config ROM, maybe zero-padded) decoded as `T`; text that is
/// empty or only blanks is `T::default()`.
pub fn parse<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ConfigError> {
    let blank = bytes.iter().all(|b| b.is_ascii_whitespace() || *b == 0);
    if blank {
        return Ok(T::default());
    }
    env::parse_config(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        count: u32,
    }

    #[test]
    fn nothing_given_is_the_default() {
        assert!(matches!(parse::<Sample>(b""), Ok(Sample { count: 0 })));
        assert!(matches!(
            parse::<Sample>(b" \n\0\0"),
            Ok(Sample { count: 0 })
        ));
    }

    #[test]
    fn text_is_decoded_and_typos_refused() {
        assert!(matches!(
            parse::<Sample>(b"(count: 3)\0"),
            Ok(Sample { count: 3 })
        ));
        assert!(matches!(
            parse::<Sample>(b"(cuont: 3)"),
            Err(ConfigError::Invalid(_))
        ));
    }
}
