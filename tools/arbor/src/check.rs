//! `cargo arbor check`: validates scenarios without building or booting,
//! prints every finding rustc-style (place, source line, caret, hint), and
//! with `--explain` follows one session request through the tree.
//!
//! All the judging is done by `arbor-config`, the crate init uses on the
//! target; this module only finds the workspace's binaries and renders.

use crate::needs;
use crate::scenarios;
use crate::workspace;
use arbor_config::label::Printable;
use arbor_config::outline::Outline;
use arbor_config::{
    Denial, Diagnostic, Environment, Hop, Outcome, RouteDecision, Severity, check_scenario,
    check_scenario_bytes, describe, explain_route,
};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// What `cargo arbor check` was asked to do besides checking.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckOptions {
    /// Do not require every `binary` to be built by the workspace.
    pub allow_missing_binaries: bool,
    /// Print each child's declared quota against what it needs.
    pub quota: bool,
    /// Use the ELFs already built instead of building them first.
    pub no_build: bool,
}

/// `cargo arbor check SCENARIO... [--explain CHILD SERVICE [LABEL]] [--quota]`.
/// With `allow_missing_binaries`, `binary` names and minimum quotas are not
/// checked (for scenarios that name components the workspace does not have yet).
pub fn check_command(
    names: &[String],
    explain: Option<&[String]>,
    options: CheckOptions,
) -> Result<ExitCode, String> {
    let targets: Vec<String> = if names.is_empty() {
        scenarios::all_paths()?
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    } else {
        names.to_vec()
    };
    let mut files = Vec::new();
    for name in &targets {
        let path = scenarios::locate(name)?;
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        files.push((display_path(&path), bytes));
    }
    let environment = if options.allow_missing_binaries {
        eprintln!("arbor: not checking binaries against the workspace (--allow-missing-binaries)");
        Environment::default()
    } else {
        let texts: Vec<&[u8]> = files.iter().map(|(_, b)| b.as_slice()).collect();
        needs::environment(&workspace::root(), &texts, !options.no_build)?
    };
    let mut failed = false;
    let (mut total_errors, mut total_warnings) = (0, 0);
    for (shown, bytes) in &files {
        let mut environment = environment.clone();
        environment.existing_disks = Some(existing_disks(Path::new(shown), bytes));
        let (output, errors, warnings) = check_bytes(shown, bytes, &environment);
        print!("{output}");
        failed |= errors > 0;
        total_errors += errors;
        total_warnings += warnings;
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        if options.quota {
            print!("{}", needs::quota_table(shown, text, &environment));
        }
        if let Some(request) = explain {
            let (output, ok) = explain_text(shown, text, request)?;
            print!("{output}");
            failed |= !ok;
        }
    }
    if files.len() > 1 {
        println!(
            "{} scenarios checked: {}",
            files.len(),
            verdict(total_errors, total_warnings)
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The disks a scenario's `VirtioBlk` devices name that exist beside it
/// (where `cargo arbor run` looks for them).
fn existing_disks(path: &Path, bytes: &[u8]) -> std::collections::BTreeSet<String> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let Some(scenario) = std::str::from_utf8(bytes)
        .ok()
        .and_then(arbor_config::decode_scenario)
    else {
        return Default::default();
    };
    scenario
        .machine
        .devices
        .iter()
        .filter_map(|device| match device {
            arbor_config::Device::VirtioBlk { disk, .. } => disk.as_ref(),
            _ => None,
        })
        .filter(|disk| directory.join(disk).exists())
        .cloned()
        .collect()
}

/// The path as the user would type it: relative to the current directory when inside it.
fn display_path(path: &Path) -> String {
    let absolute = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    std::env::current_dir()
        .ok()
        .and_then(|cwd| absolute.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or(absolute)
        .display()
        .to_string()
}

/// Checks one scenario text; returns the rendered findings and the error count.
#[cfg(test)]
pub fn check_text(shown: &str, text: &str, environment: &Environment) -> (String, usize) {
    let (output, errors, _) = check_bytes(shown, text.as_bytes(), environment);
    (output, errors)
}

/// Checks one scenario file's bytes; returns the rendered findings (each
/// in the order of the text, then a summary line) and the error and
/// warning counts.
pub fn check_bytes(shown: &str, bytes: &[u8], environment: &Environment) -> (String, usize, usize) {
    let report = check_scenario_bytes(bytes, environment);
    let text = String::from_utf8_lossy(bytes);
    let mut output = String::new();
    for diagnostic in &report.diagnostics {
        output.push_str(&render(shown, &text, diagnostic));
        output.push('\n');
    }
    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = report.diagnostics.len() - errors;
    let _ = writeln!(output, "{shown}: {}", verdict(errors, warnings));
    (output, errors, warnings)
}

fn verdict(errors: usize, warnings: usize) -> String {
    match (errors, warnings) {
        (0, 0) => "ok".to_string(),
        (0, w) => format!("ok, {w} warning{}", plural(w)),
        (e, 0) => format!("{e} error{}", plural(e)),
        (e, w) => format!("{e} error{}, {w} warning{}", plural(e), plural(w)),
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// One finding, rustc-style: what, where, the source line with a caret, and a hint.
pub fn render(shown: &str, text: &str, diagnostic: &Diagnostic) -> String {
    let severity = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut output = format!("{severity}: {}\n", diagnostic.message);
    let gutter;
    match diagnostic.span {
        Some(span) => {
            let line_number = span.start.line.to_string();
            gutter = " ".repeat(line_number.len());
            let _ = writeln!(
                output,
                "{gutter}--> {shown}:{}:{}",
                span.start.line, span.start.column
            );
            let source = text
                .lines()
                .nth(span.start.line.saturating_sub(1))
                .unwrap_or("");
            let source = source.replace('\t', " ");
            let width = if span.end.line == span.start.line {
                span.end.column.saturating_sub(span.start.column).max(1)
            } else {
                source
                    .chars()
                    .count()
                    .saturating_sub(span.start.column - 1)
                    .max(1)
            };
            let (source, column, width) = excerpt(&source, span.start.column, width);
            let _ = writeln!(output, "{gutter} |");
            let _ = writeln!(output, "{line_number} | {source}");
            let _ = writeln!(
                output,
                "{gutter} | {}{}",
                " ".repeat(column.saturating_sub(1)),
                "^".repeat(width)
            );
        }
        None => {
            gutter = String::new();
            let _ = writeln!(output, " --> {shown}");
        }
    }
    if let Some(hint) = &diagnostic.hint {
        let _ = writeln!(output, "{gutter} = hint: {hint}");
    }
    output
}

/// The widest source line `check` prints, in characters.
pub const MAX_SHOWN_LINE: usize = 100;

/// A source line cut to at most [`MAX_SHOWN_LINE`] characters around the
/// caret (with `...` where text was cut), and the caret's column and width
/// within what is shown. Control characters are shown as spaces, so a
/// line cannot rewrite the terminal.
fn excerpt(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let width = width.clamp(1, MAX_SHOWN_LINE / 2);
    if chars.len() <= MAX_SHOWN_LINE {
        return (chars.into_iter().collect(), column, width);
    }
    const MARK: &str = "...";
    let room = MAX_SHOWN_LINE - 2 * MARK.len();
    let caret = column.saturating_sub(1).min(chars.len());
    let start = caret
        .saturating_sub(room / 3)
        .min(chars.len().saturating_sub(room));
    let end = (start + room).min(chars.len());
    let mut shown = String::new();
    let mut offset = 0;
    if start > 0 {
        shown.push_str(MARK);
        offset = MARK.len();
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push_str(MARK);
    }
    let column = caret - start + offset + 1;
    let width = width.min(end.saturating_sub(caret).max(1));
    (shown, column, width)
}

/// `--explain CHILD SERVICE [LABEL]`: every hop, with route line numbers.
/// Returns the text and whether the request is served.
pub fn explain_text(shown: &str, text: &str, request: &[String]) -> Result<(String, bool), String> {
    let (child, service, label) = match request {
        [child, service] => (child, service, ""),
        [child, service, label] => (child, service, label.as_str()),
        _ => return Err("--explain takes CHILD SERVICE [LABEL]".to_string()),
    };
    let report = check_scenario(text, &Environment::default());
    let Some(init) = report.scenario.and_then(|s| s.init) else {
        return Err(format!(
            "{shown} has no init section (or does not parse); there are no routes to explain"
        ));
    };
    let explanation = explain_route(&init, child, service, label)?;
    let outline = Outline::new(text);
    let mut output = format!(
        "\n\"{child}\" asks for a \"{service}\" session{}:\n",
        if label.is_empty() {
            String::new()
        } else {
            format!(" labelled \"{label}\"")
        }
    );
    for (step, hop) in explanation.hops.iter().enumerate() {
        let number = step + 1;
        match hop {
            Hop::Routed {
                init,
                child,
                label,
                decision,
                route_path,
            } => {
                let _ = writeln!(
                    output,
                    "  {number}. {}: request from \"{child}\", label \"{}\"",
                    describe(init),
                    Printable(label)
                );
                let place = route_path.as_ref().and_then(|p| outline.locate(p));
                if let Some(range) = place {
                    let at = outline.location(range.start);
                    let written = text.get(range.start..range.end).unwrap_or("");
                    let written: String = written.split_whitespace().collect::<Vec<_>>().join(" ");
                    let _ = writeln!(
                        output,
                        "     route {} at {shown}:{}:{} matches: {written}",
                        decision.route_index().map_or(0, |r| r + 1),
                        at.line,
                        at.column
                    );
                } else if matches!(
                    decision,
                    RouteDecision::Denied {
                        reason: Denial::BadLabel(_),
                        ..
                    }
                ) {
                    let _ = writeln!(
                        output,
                        "     the label is refused before any route is tried"
                    );
                } else {
                    let _ = writeln!(output, "     no route of \"{child}\" matches");
                }
                let verdict = match decision {
                    RouteDecision::Parent { label, .. } => {
                        format!("-> forwarded to the parent as \"{label}\"")
                    }
                    RouteDecision::Child {
                        provider, label, ..
                    } => format!("-> handed to sibling \"{provider}\" as \"{label}\""),
                    RouteDecision::Init { .. } => "-> served by this init itself".to_string(),
                    RouteDecision::Denied { reason, .. } => format!("-> denied: {reason}"),
                };
                let _ = writeln!(output, "     {verdict}");
            }
            Hop::Delegated {
                init,
                provider,
                provides_path,
            } => {
                let at = outline
                    .locate(provides_path)
                    .map(|r| outline.location(r.start));
                let _ = writeln!(
                    output,
                    "  {number}. {} serves it through its child \"{provider}\"{}",
                    describe(init),
                    at.map(|a| format!(" (provides at {shown}:{}:{})", a.line, a.column))
                        .unwrap_or_default()
                );
            }
        }
    }
    let served = match &explanation.outcome {
        Outcome::Provided { provider, label } => {
            let _ = writeln!(
                output,
                "  => served by \"{}\", which sees the label \"{label}\"",
                provider.join("/")
            );
            true
        }
        Outcome::Core { label } => {
            let _ = writeln!(
                output,
                "  => served by core (the root's parent), which sees the label \"{label}\""
            );
            true
        }
        Outcome::Denied(reason) => {
            let _ = writeln!(output, "  => DENIED: {reason}");
            false
        }
    };
    Ok((output, served))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_config::{Location, Span};

    #[test]
    fn render_points_a_caret_at_the_span() {
        let text = "Scenario(\n    description: 5,\n)";
        let diagnostic = Diagnostic::error(
            Some(Span {
                start: Location {
                    line: 2,
                    column: 18,
                },
                end: Location {
                    line: 2,
                    column: 19,
                },
            }),
            "expected a string",
        )
        .with_hint("quote it");
        assert_eq!(
            render("x.ron", text, &diagnostic),
            "error: expected a string\n --> x.ron:2:18\n  |\n2 |     description: 5,\n  |                  ^\n  = hint: quote it\n"
        );
    }

    #[test]
    fn a_long_line_is_cut_around_the_caret() {
        let names: Vec<String> = (0..600).map(|i| format!("\"S{i}\"")).collect();
        let text = format!(
            "Scenario(\n  description: \"x\",\n  init: (parent_provides: [{}, 42, {}]),\n)",
            names.join(", "),
            names.join(", ")
        );
        let (output, errors) = check_text("l.ron", &text, &Environment::default());
        assert_eq!(errors, 1, "{output}");
        let shown: Vec<&str> = output.lines().collect();
        assert_eq!(shown[1], " --> l.ron:3:4718");
        // Both ends cut, the caret under the 42 it complains about.
        let source = shown[3];
        let caret = shown[4];
        assert!(
            source.starts_with("3 | ...") && source.ends_with("..."),
            "{output}"
        );
        assert!(source.chars().count() <= MAX_SHOWN_LINE + 4, "{output}");
        let at = caret.find('^').unwrap();
        assert_eq!(&source[at..at + 2], "42", "{output}");
    }

    #[test]
    fn excerpts_keep_short_lines_and_cut_long_ones() {
        assert_eq!(excerpt("abc", 2, 1), ("abc".to_string(), 2, 1));
        let long = "x".repeat(4000);
        let (shown, column, width) = excerpt(&long, 4000, 4000);
        assert_eq!(shown.chars().count(), MAX_SHOWN_LINE - 3);
        assert!(shown.starts_with("...") && !shown.ends_with("..."));
        assert_eq!((column, width), (MAX_SHOWN_LINE - 3, 1));
        let (shown, column, _) = excerpt(&long, 1, 1);
        assert!(shown.ends_with("...") && column == 1);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_by_offset() {
        let (output, errors, _) = check_bytes(
            "u.ron",
            b"Scenario(\n    description: \"caf\xE9\",\n)",
            &Environment::default(),
        );
        assert_eq!(errors, 1);
        assert!(
            output.starts_with(
                "error: the file is not UTF-8 text: byte offset 31 holds 0xE9\n --> u.ron:2:22\n"
            ),
            "{output}"
        );
    }

    #[test]
    fn clean_scenario_says_ok() {
        let (output, errors) = check_text(
            "k.ron",
            "Scenario(description: \"kernel only\")",
            &Environment::default(),
        );
        assert_eq!(errors, 0);
        assert_eq!(output, "k.ron: ok\n");
    }

    #[test]
    fn misspelled_field_renders_with_suggestion() {
        let (output, errors) = check_text(
            "b.ron",
            "Scenario(\n  description: \"x\",\n  machin: (),\n)",
            &Environment::default(),
        );
        assert_eq!(errors, 1);
        assert!(
            output.starts_with("error: unknown field `machin` in `Scenario`\n --> b.ron:3:3\n"),
            "{output}"
        );
        assert!(
            output.contains("3 |   machin: (),\n  |   ^^^^^^\n  = hint: did you mean `machine`?"),
            "{output}"
        );
    }

    #[test]
    fn overlapping_hardware_renders_both_places() {
        let path = workspace::root().join("base/config/tests/broken/hardware_sibling_overlap.ron");
        let text = std::fs::read_to_string(path).unwrap();
        let (output, errors) = check_text("o.ron", &text, &Environment::default());
        assert_eq!(errors, 1, "{output}");
        assert!(
            output.starts_with(
                "error: \"hello\" declares IoPort 0x43..0x44, which overlaps IoPort 0x40..0x44 declared by \"timer\" on line 7\n --> o.ron:8:51\n"
            ),
            "{output}"
        );
        assert!(
            output.contains("= hint: core gives each port, line and page to one session at a time"),
            "{output}"
        );
    }

    #[test]
    fn demo_explains_a_nested_request_with_line_numbers() {
        let path = workspace::root().join("runtime-configs/examples/routing_demo.ron");
        let text = std::fs::read_to_string(path).unwrap();
        let request = ["net/stack".to_string(), "Timer".to_string()];
        let (output, served) = explain_text("demo.ron", &text, &request).unwrap();
        assert!(served, "{output}");
        assert!(
            output.contains("1. init \"net\": request from \"stack\""),
            "{output}"
        );
        assert!(
            output.contains("2. the root init: request from \"net\", label \"stack\""),
            "{output}"
        );
        assert!(
            output.contains("=> served by \"timer\", which sees the label \"net -> stack\""),
            "{output}"
        );
        let denied = [
            "platform".to_string(),
            "Rom".to_string(),
            "firmware".to_string(),
        ];
        let (output, served) = explain_text("demo.ron", &text, &denied).unwrap();
        assert!(!served);
        assert!(
            output.contains("-> denied: the route says Deny"),
            "{output}"
        );
    }
}
