//! The broken-scenario corpus: every file in `tests/broken/` starts with
//! the diagnostics the checker must produce for it, one comment line each:
//! `// expect: LINE:COLUMN: message` for every error, in order (so a file
//! with eight mistakes lists eight), or a single
//! `// warn: LINE:COLUMN: message` (the first warning, and no errors).
//!
//! `ARBOR_BLESS=1 cargo test -p arbor-config --test corpus` rewrites those
//! lines from what the checker says now; review the diff before
//! committing it.

use arbor_config::{
    ByteSize, CapCount, ComponentNeeds, ConfigRefusal, Diagnostic, Environment,
    check_scenario_bytes,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A component config as a component would declare it, for `configured`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct GreeterConfig {
    greeting: String,
    count: u32,
    period_ms: u64,
}

/// `configured`'s config parser: the same decoding components use (plain ron).
fn greeter(text: &str) -> Result<(), ConfigRefusal> {
    ron::from_str::<GreeterConfig>(text)
        .map(drop)
        .map_err(ConfigRefusal::Decode)
}

/// The components the corpus scenarios may name: `big` has declared
/// minimums, `loaded` an ELF whose loading costs 384K, `configured` a config
/// parser.
fn environment() -> Environment {
    let mut components = BTreeMap::new();
    for name in ["pit_timer", "hello", "shell"] {
        components.insert(name.to_string(), ComponentNeeds::default());
    }
    components.insert(
        "big".to_string(),
        ComponentNeeds {
            min_ram: Some(ByteSize(4 << 20)),
            min_caps: Some(CapCount(100)),
            ..ComponentNeeds::default()
        },
    );
    components.insert(
        "loaded".to_string(),
        ComponentNeeds {
            min_ram: Some(ByteSize(256 << 10)),
            load_ram: Some(ByteSize(384 << 10)),
            ..ComponentNeeds::default()
        },
    );
    components.insert(
        "configured".to_string(),
        ComponentNeeds {
            config: Some(greeter),
            ..ComponentNeeds::default()
        },
    );
    Environment::with_components(components)
}

fn describe(diagnostic: &Diagnostic) -> String {
    match diagnostic.span {
        Some(span) => format!(
            "{}:{}: {}",
            span.start.line, span.start.column, diagnostic.message
        ),
        None => format!("-: {}", diagnostic.message),
    }
}

#[test]
fn every_broken_scenario_gets_its_exact_diagnostic() {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 30,
        "the corpus has only {} files",
        paths.len()
    );
    let bless = std::env::var_os("ARBOR_BLESS").is_some();
    let environment = environment();
    let mut failures = Vec::new();
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let header_len = header_length(&bytes);
        let header = String::from_utf8_lossy(&bytes[..header_len]).into_owned();
        let report = check_scenario_bytes(&bytes, &environment);
        let errors: Vec<&Diagnostic> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
        let warnings: Vec<&Diagnostic> = report
            .diagnostics
            .iter()
            .filter(|d| !d.is_error())
            .collect();
        let actual = match (errors.is_empty(), warnings.first()) {
            (false, _) => errors
                .iter()
                .map(|e| format!("// expect: {}\n", describe(e)))
                .collect::<String>(),
            (true, Some(warning)) => format!("// warn: {}\n", describe(warning)),
            (true, None) => "// clean\n".to_string(),
        };
        if bless {
            let mut blessed = actual.clone().into_bytes();
            blessed.extend_from_slice(&bytes[header_len..]);
            std::fs::write(path, blessed).unwrap();
        } else if actual != header {
            failures.push(format!(
                "{}:\n  wanted {header}\n  got    {actual}",
                path.display()
            ));
        }
        // Every located finding must point inside the text.
        let lines = bytes.split(|b| *b == b'\n').count();
        for diagnostic in &report.diagnostics {
            if let Some(span) = diagnostic.span {
                assert!(
                    span.start.line <= lines + 1,
                    "{}: {diagnostic}",
                    path.display()
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The length of the leading `// expect:`, `// warn:` or `// clean` lines.
fn header_length(bytes: &[u8]) -> usize {
    let mut at = 0;
    while bytes[at..].starts_with(b"// expect:")
        || bytes[at..].starts_with(b"// warn:")
        || bytes[at..].starts_with(b"// clean")
    {
        match bytes[at..].iter().position(|b| *b == b'\n') {
            Some(end) => at += end + 1,
            None => return bytes.len(),
        }
    }
    at
}
