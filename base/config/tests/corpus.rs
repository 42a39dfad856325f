//! The broken-scenario corpus: every file in `tests/broken/` starts with the
//! one diagnostic the checker must produce for it, as
//! `// expect: LINE:COLUMN: message` (the first error) or
//! `// warn: LINE:COLUMN: message` (a warning, and no errors at all).
//!
//! `ARBOR_BLESS=1 cargo test -p arbor-config --test corpus` rewrites those
//! first lines from what the checker says now; review the diff before
//! committing it.

use arbor_config::{ByteSize, CapCount, ComponentNeeds, Diagnostic, Environment, check_scenario};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The components the corpus scenarios may name; `big` has minimums.
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
        let text = std::fs::read_to_string(path).unwrap();
        let (first, body) = text.split_once('\n').unwrap();
        let report = check_scenario(&text, &environment);
        let errors: Vec<&Diagnostic> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
        let warnings: Vec<&Diagnostic> = report
            .diagnostics
            .iter()
            .filter(|d| !d.is_error())
            .collect();
        let actual = match (errors.first(), warnings.first()) {
            (Some(error), _) => format!("// expect: {}", describe(error)),
            (None, Some(warning)) => format!("// warn: {}", describe(warning)),
            (None, None) => "// clean".to_string(),
        };
        if bless {
            std::fs::write(path, format!("{actual}\n{body}")).unwrap();
        } else if actual != first {
            failures.push(format!(
                "{}:\n  wanted {first}\n  got    {actual}",
                path.display()
            ));
        }
        // Every located finding must point inside the text.
        for diagnostic in &report.diagnostics {
            if let Some(span) = diagnostic.span {
                assert!(
                    span.start.line <= text.lines().count() + 1,
                    "{}: {diagnostic}",
                    path.display()
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
