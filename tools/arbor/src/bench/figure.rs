//! One benchmark figure, as a guest claims it on its serial line and as
//! `cargo arbor bench` prints it.
//!
//! Everything a guest prints is an allegation: a line that is not valid JSON,
//! lacks a field, or names its benchmark with characters that could garble a
//! terminal is refused with a reason, never trusted and never a crash.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::Number;

/// What a guest line starts with when it reports a figure.
pub const GUEST_MARKER: &str = "BENCH ";

/// Longest benchmark or unit name accepted from a guest.
const MAX_NAME_LENGTH: usize = 64;

/// One measured figure with where and how it was measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// The benchmark's name, e.g. `ipc_roundtrip`.
    pub bench: String,
    /// The measured value, exactly as the guest or host gave it.
    pub value: Number,
    /// Its unit: `instructions`, `cycles`, `ns`, `lines`, `ratio`.
    pub unit: String,
    /// How it was measured: `icount` (QEMU TCG counting retired
    /// instructions, exact), `kvm` (cycles on real hardware), `host` (on
    /// the host, compares with no guest figure) or `source` (counted in
    /// the source tree).
    pub mode: String,
    /// The scenario (or guest) that printed the figure; absent for host-side figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

impl Figure {
    /// A figure measured outside any guest (`mode` `host` or `source`).
    pub fn host(bench: &str, value: u64, unit: &str, mode: &str) -> Self {
        Self {
            bench: bench.into(),
            value: value.into(),
            unit: unit.into(),
            mode: mode.into(),
            scenario: None,
        }
    }

    /// A figure measured from a guest's boot by the host.
    pub fn guest(bench: &str, value: u64, unit: &str, mode: &str, scenario: &str) -> Self {
        Self {
            scenario: Some(scenario.into()),
            ..Self::host(bench, value, unit, mode)
        }
    }

    /// The figure as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, a number and a bool always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The fields a guest reports; anything else it adds is ignored.
#[derive(Deserialize)]
struct GuestClaim {
    bench: String,
    value: Number,
    unit: String,
}

/// The unit guests report: time-stamp counter ticks, which the host names
/// for the mode ([`tsc_unit`]).
pub const TSC_UNIT: &str = "tsc";

/// What a TSC tick is in `mode`: one retired instruction under icount
/// (`-icount shift=0`), one cycle under KVM.
pub fn tsc_unit(mode: &str) -> &'static str {
    if mode == "icount" {
        "instructions"
    } else {
        "cycles"
    }
}

/// Reads one serial line: `None` when it is not a benchmark report, the
/// figure when it is a well-formed one, or why it was refused. A figure in
/// [`TSC_UNIT`] gets the unit of `mode`.
pub fn parse_guest_line(line: &str, scenario: &str, mode: &str) -> Option<Result<Figure, String>> {
    // The kernel may label a component's lines (`[core] BENCH {...}`), so the
    // marker is looked for anywhere, followed by the JSON object.
    let start = line.find(GUEST_MARKER)?;
    let json = line[start + GUEST_MARKER.len()..].trim();
    if !json.starts_with('{') {
        return None;
    }
    Some(parse_claim(json).map(|claim| Figure {
        bench: claim.bench,
        value: claim.value,
        unit: if claim.unit == TSC_UNIT {
            tsc_unit(mode).into()
        } else {
            claim.unit
        },
        mode: mode.into(),
        scenario: Some(scenario.into()),
    }))
}

fn parse_claim(json: &str) -> Result<GuestClaim, String> {
    let claim: GuestClaim =
        serde_json::from_str(json).map_err(|e| format!("not a benchmark figure: {e}"))?;
    check_name("bench", &claim.bench)?;
    check_name("unit", &claim.unit)?;
    if claim.value.as_f64().is_none_or(|v| !v.is_finite()) {
        return Err(format!("\"value\" {} is not a finite number", claim.value));
    }
    Ok(claim)
}

/// Names go into tables and other tools' inputs: printable ASCII, no spaces,
/// no quotes, and short.
fn check_name(field: &str, name: &str) -> Result<(), String> {
    let printable = name
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if name.is_empty() || name.len() > MAX_NAME_LENGTH || !printable {
        return Err(format!(
            "\"{field}\" must be 1 to {MAX_NAME_LENGTH} printable ASCII characters without quotes, got {:?}",
            name.chars().take(MAX_NAME_LENGTH + 1).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_line_becomes_a_figure() {
        let line = r#"BENCH {"bench":"ipc_roundtrip","value":2419,"unit":"tsc"}"#;
        let figure = parse_guest_line(line, "bench_ipc", "icount")
            .expect("a report")
            .expect("well formed");
        assert_eq!(
            figure.to_json(),
            r#"{"bench":"ipc_roundtrip","value":2419,"unit":"instructions","mode":"icount","scenario":"bench_ipc"}"#
        );
        let figure = parse_guest_line(line, "bench_ipc", "kvm").unwrap().unwrap();
        assert_eq!(figure.unit, "cycles");
    }

    #[test]
    fn labelled_lines_and_extra_fields_are_accepted() {
        let line = r#"[core] BENCH {"bench":"x","value":1.5,"unit":"ns","iterations":100000}"#;
        let figure = parse_guest_line(line, "s", "icount").expect("a report");
        assert_eq!(figure.map(|f| f.value.to_string()), Ok("1.5".into()));
    }

    #[test]
    fn other_lines_are_not_reports() {
        assert!(parse_guest_line("Arbor kernel", "s", "icount").is_none());
        assert!(parse_guest_line("BENCH starting", "s", "icount").is_none());
    }

    #[test]
    fn malformed_reports_are_refused_with_a_reason() {
        let cases = [
            r#"BENCH {"bench":"ipc","value":812"#,
            r#"BENCH {"bench":"ipc","unit":"cycles"}"#,
            r#"BENCH {"bench":"ipc","value":"812","unit":"cycles"}"#,
            r#"BENCH {"bench":"","value":1,"unit":"cycles"}"#,
            r#"BENCH {"bench":"a b","value":1,"unit":"cycles"}"#,
            "BENCH {\"bench\":\"\\u001b[2J\",\"value\":1,\"unit\":\"cycles\"}",
        ];
        for line in cases {
            let parsed = parse_guest_line(line, "s", "icount").expect("a report");
            assert!(parsed.is_err(), "{line} was accepted");
        }
    }
}
