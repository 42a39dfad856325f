//! The `core_args` words: space-separated `key=value` pairs.
#![forbid(unsafe_code)]

/// The value of `key` in `args`, if present.
pub fn value<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split_ascii_whitespace()
        .filter_map(|word| word.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The number under `key`, or `default` when absent or not a number.
pub fn number(args: &str, key: &str, default: u64) -> u64 {
    value(args, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_defaults() {
        let args = "mode=hostile iterations=5000 junk";
        assert_eq!(value(args, "mode"), Some("hostile"));
        assert_eq!(number(args, "iterations", 1), 5000);
        assert_eq!(number(args, "missing", 7), 7);
        assert_eq!(number("iterations=lots", "iterations", 7), 7);
        assert_eq!(value("", "mode"), None);
    }
}
