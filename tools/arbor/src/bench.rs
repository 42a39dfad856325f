//! `cargo arbor bench`: boots every `runtime-configs/bench_*.ron` scenario,
//! collects the `BENCH {...}` figures its guest prints, measures the host-side
//! figures in the same run (the Linux pipe baseline, the kernel's size), and
//! prints them as a table or as one JSON object per line.
//!
//! Machines are noisy: every figure is a median from this one run, and the
//! ratio of the guest's IPC round trip to the host's pipe round trip is the
//! number to compare across machines. Under TCG cycle counts mean nothing,
//! so every figure says whether KVM was on.

mod boot_time;
mod figure;
mod kernel_lines;
mod pipe_roundtrip;

use crate::archive;
use crate::qemu::{self, AccelChoice, GuestEnd};
use crate::scenarios::{self, LoadedScenario};
use crate::workspace;
use figure::Figure;
use std::process::ExitCode;
use std::time::Duration;

/// Scenario files whose name starts with this are benchmarks.
const SCENARIO_PREFIX: &str = "bench_";

/// How long a benchmark scenario without a `test` timeout may run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How many log lines are shown when a benchmark scenario fails.
const LOG_TAIL: usize = 25;

/// The scenario whose boot is timed, and how often.
const BOOT_SCENARIO: &str = "hello";
const BOOTS: usize = 5;

/// The guest figure and the host baseline whose ratio is reported.
const GUEST_IPC: &str = "ipc_roundtrip";
const HOST_PIPE: &str = "linux_pipe_roundtrip";
const RATIO: &str = "ipc_roundtrip_per_pipe_roundtrip";

/// `cargo arbor bench [FILTER] [--json] [--accel auto|kvm|tcg]`.
///
/// FILTER selects benchmark scenarios and host benchmarks whose name contains
/// it; the pipe baseline also runs whenever a guest benchmark does, so that
/// the ratio always comes from one run.
pub fn bench_command(
    filter: Option<&str>,
    json: bool,
    accel: AccelChoice,
) -> Result<ExitCode, String> {
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    let mut figures = Vec::new();
    let mut failures = 0;

    // Guest benchmarks first, so the host's own measurement does not compete
    // with QEMU for the CPU.
    let accel = accel.resolve().map_err(|e| format!("{e:#}"))?;
    let kvm = accel == qemu::Accel::Kvm;
    let (scenarios, load_failures) = bench_scenarios(&selected)?;
    failures += load_failures;
    if scenarios.is_empty() && load_failures == 0 {
        eprintln!(
            "arbor: no benchmark scenario (runtime-configs/{SCENARIO_PREFIX}*.ron){}; \
             guest figures are missing, host figures follow",
            filter.map_or(String::new(), |f| format!(" matches \"{f}\""))
        );
    }
    if !scenarios.is_empty() {
        match run_guests(&scenarios, accel) {
            Ok((mut guest_figures, guest_failures)) => {
                figures.append(&mut guest_figures);
                failures += guest_failures;
            }
            Err(error) => {
                eprintln!("arbor: the benchmark scenarios could not run: {error}");
                failures += 1;
            }
        }
    }

    if selected("kernel_to_ready_ms") || selected("boot_to_ready_ms") {
        failures += boot_figures(&mut figures);
    }

    if selected(HOST_PIPE) || !scenarios.is_empty() {
        match pipe_roundtrip::measure(pipe_roundtrip::ITERATIONS) {
            Ok(result) => {
                eprintln!(
                    "arbor: timed {} pipe round trips on CPU {}",
                    result.iterations, result.cpu
                );
                figures.push(Figure::host(HOST_PIPE, result.median_cycles, "cycles", kvm));
            }
            Err(error) => {
                eprintln!("arbor: {HOST_PIPE} failed: {error}");
                failures += 1;
            }
        }
    }

    if selected("kernel_lines") || selected("kernel_asm_lines") {
        let source = workspace::root().join("base/kernel/src");
        match kernel_lines::count_tree(&source) {
            Ok(lines) => {
                figures.push(Figure::host("kernel_lines", lines.rust, "lines", kvm));
                figures.push(Figure::host("kernel_asm_lines", lines.asm, "lines", kvm));
            }
            Err(error) => {
                eprintln!("arbor: kernel_lines failed: {error}");
                failures += 1;
            }
        }
    }

    let ratio = ipc_to_pipe_ratio(&figures);
    if ratio.is_none() && figures.iter().any(|f| f.bench == HOST_PIPE) {
        eprintln!(
            "arbor: no {GUEST_IPC} figure from the guest in this run, so no ratio to {HOST_PIPE}"
        );
    }
    if json {
        for figure in &figures {
            println!("{}", figure.to_json());
        }
        if let Some(ratio) = ratio {
            println!("{}", ratio_figure(ratio, kvm).to_json());
        }
    } else {
        print!("{}", table(&figures, ratio, accel));
    }

    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("arbor: {failures} benchmark(s) failed to run");
        ExitCode::FAILURE
    })
}

/// Loads the selected benchmark scenarios; returns them and how many failed to load.
/// Times the boot of [`BOOT_SCENARIO`] under TCG and, where usable, KVM;
/// returns how many measurements failed.
fn boot_figures(figures: &mut Vec<Figure>) -> u32 {
    let Ok(path) = scenarios::locate(BOOT_SCENARIO) else {
        eprintln!("arbor: no {BOOT_SCENARIO} scenario; boot times are missing");
        return 0;
    };
    let measured = scenarios::load(&path).and_then(|scenario| {
        let kernel =
            qemu::build(&archive::binaries_needed(&scenario)).map_err(|e| format!("{e:#}"))?;
        let mut accels = vec![qemu::Accel::Tcg];
        if qemu::kvm_usable() {
            accels.push(qemu::Accel::Kvm);
        }
        let mut found = Vec::new();
        for accel in accels {
            eprintln!(
                "arbor: timing {BOOTS} boots of {BOOT_SCENARIO} with {}",
                accel.describe()
            );
            let (mut kernel_ms, mut launch_ms) =
                boot_time::measure(&scenario, &kernel, accel, BOOTS)?;
            let kvm = accel == qemu::Accel::Kvm;
            for (name, values) in [
                ("kernel_to_ready_ms", &mut kernel_ms),
                ("boot_to_ready_ms", &mut launch_ms),
            ] {
                if let Some(median) = boot_time::median(values) {
                    found.push(Figure::guest_value(
                        name,
                        (median * 10.0).round() / 10.0,
                        "ms",
                        kvm,
                        BOOT_SCENARIO,
                    ));
                }
            }
        }
        Ok(found)
    });
    match measured {
        Ok(mut found) => {
            figures.append(&mut found);
            0
        }
        Err(error) => {
            eprintln!("arbor: boot timing failed: {error}");
            1
        }
    }
}

fn bench_scenarios(selected: &dyn Fn(&str) -> bool) -> Result<(Vec<LoadedScenario>, u32), String> {
    let mut loaded = Vec::new();
    let mut failures = 0;
    for path in scenarios::all_paths()? {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !name.starts_with(SCENARIO_PREFIX) || !selected(name) {
            continue;
        }
        match scenarios::load(&path) {
            Ok(scenario) => loaded.push(scenario),
            Err(error) => {
                eprintln!("arbor: benchmark scenario {name} cannot be loaded: {error}");
                failures += 1;
            }
        }
    }
    Ok((loaded, failures))
}

/// Builds what the scenarios need once, boots each, and gathers their figures;
/// returns the figures and how many scenarios failed.
fn run_guests(
    scenarios: &[LoadedScenario],
    accel: qemu::Accel,
) -> Result<(Vec<Figure>, u32), String> {
    let mut components: Vec<String> = scenarios
        .iter()
        .flat_map(archive::binaries_needed)
        .collect();
    components.sort();
    components.dedup();
    let kernel = qemu::build(&components).map_err(|e| format!("{e:#}"))?;
    let kvm = accel == qemu::Accel::Kvm;
    let mut figures = Vec::new();
    let mut failures = 0;
    for scenario in scenarios {
        let timeout = scenario
            .scenario
            .test
            .as_ref()
            .map_or(DEFAULT_TIMEOUT, |t| Duration::from_millis(t.timeout.millis));
        eprintln!(
            "arbor: booting benchmark {} with {} (timeout {}s)",
            scenario.name,
            accel.describe(),
            timeout.as_secs()
        );
        let launch =
            qemu::prepare_with(scenario, kernel.clone(), accel).map_err(|e| format!("{e:#}"))?;
        let mut log = Vec::new();
        let mut found = 0;
        let end = qemu::boot(&launch, Some(timeout), |line| {
            match figure::parse_guest_line(line, &scenario.name, kvm) {
                Some(Ok(figure)) => {
                    found += 1;
                    figures.push(figure);
                }
                Some(Err(reason)) => eprintln!(
                    "arbor: warning: scenario {} printed a malformed benchmark line ({reason}): {}",
                    scenario.name,
                    printable(line)
                ),
                None => {}
            }
            log.push(line.to_string());
            qemu::Continue::Go
        })
        .map_err(|e| format!("{e:#}"))?;
        let problem = match end {
            GuestEnd::Success | GuestEnd::Stopped => None,
            GuestEnd::Failure => Some("the guest reported failure".to_string()),
            GuestEnd::NoVerdict { status } => Some(status),
            GuestEnd::Timeout { after } => {
                Some(format!("stopped after {:.1}s", after.as_secs_f32()))
            }
        };
        if let Some(problem) = problem {
            eprintln!("arbor: benchmark {} failed: {problem}", scenario.name);
            eprintln!("    last {} lines of its log:", LOG_TAIL.min(log.len()));
            for line in &log[log.len().saturating_sub(LOG_TAIL)..] {
                eprintln!("    | {}", printable(line));
            }
            failures += 1;
        } else if found == 0 {
            eprintln!(
                "arbor: scenario {} ran but printed no `{}{{...}}` line: its figures are missing",
                scenario.name,
                figure::GUEST_MARKER
            );
        }
    }
    Ok((figures, failures))
}

/// A guest's line made safe for a terminal: control characters (escape
/// sequences included) are shown as escapes, everything else as it is.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// ipc_roundtrip / linux_pipe_roundtrip, when both were measured in this run.
fn ipc_to_pipe_ratio(figures: &[Figure]) -> Option<f64> {
    // Matched by origin too: a guest claiming to report the host's baseline
    // must not stand in for it.
    let cycles = |name: &str, from_guest: bool| {
        figures
            .iter()
            .find(|f| f.bench == name && f.unit == "cycles" && f.scenario.is_some() == from_guest)
            .and_then(|f| f.value.as_f64())
    };
    let (ipc, pipe) = (cycles(GUEST_IPC, true)?, cycles(HOST_PIPE, false)?);
    (pipe > 0.0).then(|| ipc / pipe)
}

fn ratio_figure(ratio: f64, kvm: bool) -> Figure {
    // Three decimals is more than the noise between runs allows.
    let rounded = (ratio * 1000.0).round() / 1000.0;
    Figure {
        bench: RATIO.into(),
        value: serde_json::Number::from_f64(rounded).unwrap_or_else(|| 0.into()),
        unit: "ratio".into(),
        kvm,
        scenario: None,
    }
}

/// The readable form: one row per figure, then the ratio.
fn table(figures: &[Figure], ratio: Option<f64>, accel: qemu::Accel) -> String {
    let mut rows = vec![[
        "bench".to_string(),
        "value".to_string(),
        "unit".to_string(),
        "kvm".to_string(),
        "measured in".to_string(),
    ]];
    for figure in figures {
        rows.push([
            figure.bench.clone(),
            figure.value.to_string(),
            figure.unit.clone(),
            if figure.kvm { "yes" } else { "no" }.to_string(),
            figure
                .scenario
                .as_deref()
                .map_or("host".to_string(), |s| format!("guest ({s})")),
        ]);
    }
    let mut widths = [0; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                // Numbers right-aligned, words left-aligned.
                if column == 1 {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    match ratio {
        Some(ratio) => out.push_str(&format!(
            "\n{GUEST_IPC} / {HOST_PIPE} = {ratio:.3} (guest under {})\n",
            accel.describe()
        )),
        None => out.push_str(&format!(
            "\n{GUEST_IPC} / {HOST_PIPE}: not available (needs both figures from this run)\n"
        )),
    }
    if accel == qemu::Accel::Tcg {
        out.push_str("note: guests ran under TCG; their cycle counts compare with nothing\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(bench: &str, value: u64) -> Figure {
        Figure {
            scenario: Some("bench_ipc".into()),
            ..Figure::host(bench, value, "cycles", true)
        }
    }

    #[test]
    fn ratio_needs_both_figures() {
        let pipe = Figure::host(HOST_PIPE, 4000, "cycles", true);
        assert_eq!(ipc_to_pipe_ratio(std::slice::from_ref(&pipe)), None);
        assert_eq!(
            ipc_to_pipe_ratio(&[guest(GUEST_IPC, 1000), pipe.clone()]),
            Some(0.25)
        );
        // A guest's figure under the host baseline's name is not the baseline.
        let claims = [guest(HOST_PIPE, 1), guest(GUEST_IPC, 1000)];
        assert_eq!(ipc_to_pipe_ratio(&claims), None);
        let figures = [claims[0].clone(), claims[1].clone(), pipe];
        assert_eq!(ipc_to_pipe_ratio(&figures), Some(0.25));
    }

    #[test]
    fn guest_lines_lose_their_control_characters() {
        assert_eq!(printable("a \"b\"\u{1b}[2J"), "a \"b\"\\u{1b}[2J");
    }

    #[test]
    fn ratio_prints_as_json_with_three_decimals() {
        assert_eq!(
            ratio_figure(1.0 / 3.0, false).to_json(),
            format!(r#"{{"bench":"{RATIO}","value":0.333,"unit":"ratio","kvm":false}}"#)
        );
    }

    #[test]
    fn table_lists_every_figure_and_the_ratio() {
        let figures = [
            guest(GUEST_IPC, 812),
            Figure::host(HOST_PIPE, 8120, "cycles", true),
        ];
        let text = table(&figures, Some(0.1), qemu::Accel::Kvm);
        assert!(text.starts_with("bench"));
        assert!(text.contains("ipc_roundtrip           812  cycles  yes  guest (bench_ipc)"));
        assert!(text.contains("= 0.100 (guest under KVM)"));
        assert!(!text.contains("TCG"));
    }
}
