//! Reading a component's `config` ROM as RON into its own schema.

use alloc::format;
use alloc::string::String;
use arbor_sessions::client::Rom;
use serde::de::DeserializeOwned;

/// The component's config decoded as `T`; an absent or empty config is
/// `T::default()`. The error names what was wrong, with line and column.
pub fn read<T: DeserializeOwned + Default>() -> Result<T, String> {
    let rom = Rom::open("config").map_err(|e| format!("cannot read config ROM: {e}"))?;
    parse(rom.bytes)
}

/// `bytes` decoded as `T`; empty text is `T::default()`.
pub fn parse<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, String> {
    let text = core::str::from_utf8(bytes).map_err(|_| String::from("config is not UTF-8"))?;
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    // As in scenario files, an optional field takes its value without `Some(…)`.
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    options.from_str(text).map_err(|e| {
        format!(
            "config:{}:{}: {}",
            e.span.start.line, e.span.start.col, e.code
        )
    })
}
