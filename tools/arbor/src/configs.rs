//! The config parsers `cargo arbor check` runs: each component that takes
//! a config exposes the function it decodes its config ROM with in its
//! library target and names it in its Cargo.toml
//! (`[package.metadata.arbor] config_parser = "hello::config::parse"`);
//! `build.rs` links every such dependency of this crate into [`parsers`],
//! so a child's `config:` is judged by exactly the code that will read it
//! at start. `cargo arbor new` adds the dependency ([`link`]) for a
//! template that has a parser. A component not linked gets no config check
//! (its config must still be valid RON).

use arbor_config::{ConfigParser, ConfigRefusal};
use arbor_sessions::env::ConfigError;

/// What a component's parser may fail with, as check reports it.
trait IntoRefusal {
    fn into_refusal(self) -> ConfigRefusal;
}

impl IntoRefusal for ConfigError {
    fn into_refusal(self) -> ConfigRefusal {
        match self {
            ConfigError::Invalid(error) => ConfigRefusal::Decode(error),
            other => ConfigRefusal::Value(format!("{other}")),
        }
    }
}

impl IntoRefusal for ConfigRefusal {
    fn into_refusal(self) -> ConfigRefusal {
        self
    }
}

impl IntoRefusal for String {
    fn into_refusal(self) -> ConfigRefusal {
        ConfigRefusal::Value(self)
    }
}

/// A parser's result as check takes it.
fn refusal<T, E: IntoRefusal>(result: Result<T, E>) -> Result<(), ConfigRefusal> {
    result.map(drop).map_err(IntoRefusal::into_refusal)
}

include!(concat!(env!("OUT_DIR"), "/configs.rs"));

/// Links the config parser of the new component `package` at `path` into
/// the host tool, when its manifest `text` names one: the next build of
/// the tool checks its configs.
pub fn link_new(
    root: &std::path::Path,
    package: &str,
    path: &str,
    text: &str,
) -> Result<(), String> {
    if !text.contains("config_parser = ") {
        return Ok(());
    }
    let tool = root.join("tools/arbor/Cargo.toml");
    let manifest = std::fs::read_to_string(&tool)
        .map_err(|e| format!("cannot read {}: {e}", tool.display()))?;
    std::fs::write(&tool, link(&manifest, package, path)?)
        .map_err(|e| format!("cannot write {}: {e}", tool.display()))
}

/// This crate's manifest with a path dependency on the component `package`
/// at `path` (relative to the workspace root) added to `[dependencies]`, so
/// that its config parser is linked; unchanged if it is there already.
pub fn link(manifest: &str, package: &str, path: &str) -> Result<String, String> {
    let line = format!("{package} = {{ path = \"../../{path}\" }}");
    if manifest.lines().any(|l| l.trim() == line) {
        return Ok(manifest.to_string());
    }
    let mut out = String::with_capacity(manifest.len() + line.len() + 1);
    let mut added = false;
    let mut in_dependencies = false;
    for current in manifest.lines() {
        if current.trim().starts_with('[') {
            if in_dependencies && !added {
                // The section ended: add before the blank lines closing it.
                while out.ends_with("\n\n") {
                    out.pop();
                }
                out.push_str(&line);
                out.push_str("\n\n");
                added = true;
            }
            in_dependencies = current.trim() == "[dependencies]";
        }
        out.push_str(current);
        out.push('\n');
    }
    if in_dependencies && !added {
        out.push_str(&line);
        out.push('\n');
        added = true;
    }
    if !added {
        return Err("the host tool's Cargo.toml has no [dependencies] section".into());
    }
    Ok(out)
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
        assert_eq!((error.span.start.line, error.span.start.col), (1, 11));
        assert!(hello("").is_err(), "hello cannot start without a config");
    }

    #[test]
    fn a_new_component_is_linked_once() {
        let manifest = "[package]\nname = \"t\"\n\n[dependencies]\nclap = \"4\"\n\n[lints]\nworkspace = true\n";
        let linked = link(manifest, "demo", "components/apps/demo").unwrap();
        assert_eq!(
            linked,
            "[package]\nname = \"t\"\n\n[dependencies]\nclap = \"4\"\ndemo = { path = \"../../components/apps/demo\" }\n\n[lints]\nworkspace = true\n"
        );
        assert_eq!(
            link(&linked, "demo", "components/apps/demo").unwrap(),
            linked
        );
        assert!(link("[package]\n", "demo", "x").is_err());
    }

    #[test]
    fn every_component_naming_a_parser_is_linked() {
        let root = crate::workspace::root();
        let manifest = std::fs::read_to_string(root.join("tools/arbor/Cargo.toml")).unwrap();
        let linked: Vec<&str> = parsers().iter().map(|(name, _)| *name).collect();
        for group in [
            "components/apps",
            "components/drivers",
            "components/servers",
            "components/test",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(group)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(text) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else {
                    continue;
                };
                if text.contains("config_parser = ") {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    assert!(
                        linked.contains(&name.as_str()),
                        "{name} names a config parser, but tools/arbor/Cargo.toml does not depend on it:\n{manifest}"
                    );
                }
            }
        }
        assert!(linked.contains(&"hello") && linked.contains(&"echo_server"));
    }

    #[test]
    fn echo_server_takes_nothing_or_its_fields() {
        let echo = parser("echo_server");
        assert!(echo("").is_ok());
        assert!(echo(r#"(service: "Mirror")"#).is_ok());
        assert!(echo(r#"(servcie: "Mirror")"#).is_err());
    }
}
