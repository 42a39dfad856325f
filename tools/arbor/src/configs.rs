//! The config parsers `cargo arbor check` runs: each component that takes
//! a config exposes its config type (and the function it decodes its
//! config ROM with) in its library target, and this table links them, so a
//! child's `config:` is judged by exactly the code that will read it at
//! start. A component missing here gets no config check (its config is
//! still required to be valid RON).

use arbor_config::{ConfigParser, ConfigRefusal};
use arbor_sessions::env::ConfigError;

/// Maps the component's own decoding result to what check reports.
fn refusal(error: ConfigError) -> ConfigRefusal {
    match error {
        ConfigError::Invalid(error) => ConfigRefusal::Decode(error),
        other => ConfigRefusal::Value(format!("{other}")),
    }
}

fn hello(text: &str) -> Result<(), ConfigRefusal> {
    hello::config::parse(text.as_bytes())
        .map(drop)
        .map_err(refusal)
}

fn echo_server(text: &str) -> Result<(), ConfigRefusal> {
    echo_server::config::parse::<echo_server::config::Config>(text.as_bytes())
        .map(drop)
        .map_err(refusal)
}

/// Every linked parser, by the binary name it reads configs for.
pub fn parsers() -> Vec<(&'static str, ConfigParser)> {
    vec![("hello", hello), ("echo_server", echo_server)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(name: &str) -> ConfigParser {
        parsers().into_iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn hello_refuses_what_hello_refuses() {
        let hello = parser("hello");
        assert!(hello(r#"(greeting: "Hi", count: 3, period_ms: 1)"#).is_ok());
        let Err(ConfigRefusal::Decode(error)) = hello(r#"(greeting: 5, count: 3, period_ms: 1)"#)
        else {
            panic!("a number is no greeting");
        };
        assert_eq!((error.span.start.line, error.span.start.col), (1, 12));
        assert!(hello("").is_err(), "hello cannot start without a config");
    }

    #[test]
    fn echo_server_takes_nothing_or_its_fields() {
        let echo = parser("echo_server");
        assert!(echo("").is_ok());
        assert!(echo(r#"(service: "Mirror")"#).is_ok());
        assert!(echo(r#"(servcie: "Mirror")"#).is_err());
    }
}
