//! `cargo arbor bench`: Arbor's figures beside a Linux guest's, measured the
//! same way in one run, with their ratios.
//!
//! Two modes (see `tools/arbor/BENCH.md`):
//! - `icount` (`--exact`, and the default where KVM is missing or was found
//!   slow): every guest runs under QEMU TCG with `-icount shift=0`, where the
//!   time-stamp counter advances by one per retired guest instruction and
//!   idle time is skipped as virtual nanoseconds. Figures are instruction
//!   counts, identical from run to run and from machine to machine.
//! - `kvm`: guests run under KVM and figures are TSC cycles of this CPU;
//!   they mean something only on a host with a real (not nested,
//!   paravirtual) KVM. A run that finds KVM slow switches to `icount`.
//!
//! Arbor's figures come from the `runtime-configs/bench_*.ron` scenarios
//! (`BENCH {...}` lines) and from booting [`BOOT_SCENARIO`]; Linux's from
//! the baseline guest ([`linux_guest`]). Each ratio is Linux's figure over
//! Arbor's counterpart ([`COUNTERPARTS`]), from figures of the same mode
//! and unit. `kernel_lines` is counted in the source. The host's own pipe
//! round trip (`host_pipe_roundtrip`) runs only when a filter asks for it
//! and is never part of a ratio: it is not the same work on the same machine.

mod boot_time;
mod cpio;
mod figure;
mod http;
mod kernel_lines;
mod linux_guest;
mod pipe_roundtrip;
mod storage;

use crate::archive;
use crate::qemu::{self, AccelChoice, Continue, GuestEnd, Launch};
use crate::scenarios::{self, LoadedScenario};
use crate::workspace;
use figure::Figure;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Scenario files whose name starts with this are benchmarks.
const SCENARIO_PREFIX: &str = "bench_";

/// How long a benchmark scenario without a `test` timeout may run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the Linux guest may take to boot and run its workloads.
const LINUX_TIMEOUT: Duration = Duration::from_secs(600);

/// Round trips the Linux guest times per figure (as bench_ipc.ron's core_args).
const LINUX_ITERATIONS: u64 = 100_000;

/// How many log lines are shown when a benchmark guest fails.
const LOG_TAIL: usize = 25;

/// The scenario whose boot gives `kernel_to_ready`, and how often it is
/// booted under KVM (under icount one boot is exact).
const BOOT_SCENARIO: &str = "hello";
const KVM_BOOTS: usize = 5;

/// The QEMU arguments of the `icount` mode: one instruction per nanosecond
/// of virtual time, no pacing to the host clock, idle time skipped; a fixed
/// random seed and a virtual real-time clock starting at a fixed date, so
/// that nothing of the host leaks in and runs are byte-identical.
pub const ICOUNT_ARGS: [&str; 6] = [
    "-icount",
    "shift=0,align=off,sleep=off",
    "-seed",
    "1",
    "-rtc",
    "base=2025-01-01T00:00:00,clock=vm",
];

/// (Linux figure, Arbor figure): each pair's ratio is reported.
pub const COUNTERPARTS: [(&str, &str); 6] = [
    ("linux_pipe_roundtrip", "ipc_roundtrip"),
    ("linux_futex_roundtrip", "ipc_roundtrip"),
    ("linux_pipe_roundtrip_3584", "ipc_roundtrip_3584"),
    ("linux_null_syscall", "null_syscall"),
    ("linux_futex_roundtrip", "notification_roundtrip"),
    ("linux_kernel_to_init", "kernel_to_ready"),
];

/// The figures the Linux guest reports.
const LINUX_FIGURES: [&str; 5] = [
    "linux_pipe_roundtrip",
    "linux_pipe_roundtrip_3584",
    "linux_futex_roundtrip",
    "linux_null_syscall",
    "linux_kernel_to_init",
];

/// The host's own pipe round trip: host-only, never in a ratio.
const HOST_PIPE: &str = "host_pipe_roundtrip";

/// How guests are timed in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// TCG with `-icount shift=0`: TSC ticks are retired instructions.
    Icount,
    /// KVM: TSC ticks are cycles of this CPU.
    Kvm,
}

impl Mode {
    /// The name figures carry.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Icount => "icount",
            Mode::Kvm => "kvm",
        }
    }

    fn accel(self) -> qemu::Accel {
        match self {
            Mode::Icount => qemu::Accel::Tcg,
            Mode::Kvm => qemu::Accel::Kvm,
        }
    }

    fn qemu_args(self) -> Vec<String> {
        match self {
            Mode::Icount => ICOUNT_ARGS.iter().map(|a| a.to_string()).collect(),
            Mode::Kvm => Vec::new(),
        }
    }
}

/// The mode for `--exact` and `--accel`: exact or TCG means icount (plain
/// TCG cycle counts compare with nothing); KVM (as `auto` resolves it, which
/// already prefers TCG where an earlier run found KVM slow) means kvm.
pub fn choose_mode(exact: bool, accel: qemu::Accel) -> Mode {
    if exact || accel == qemu::Accel::Tcg {
        Mode::Icount
    } else {
        Mode::Kvm
    }
}

/// `cargo arbor bench [FILTER] [--exact] [--json] [--accel auto|kvm|tcg]`.
///
/// FILTER selects figures whose name contains it (and the scenarios whose
/// name does); the Linux guest runs whenever one of its figures or of their
/// Arbor counterparts is selected, so that every ratio comes from one run.
pub fn bench_command(
    filter: Option<&str>,
    json: bool,
    accel: AccelChoice,
    exact: bool,
) -> Result<ExitCode, String> {
    let started = Instant::now();
    let mode = if exact {
        Mode::Icount
    } else {
        choose_mode(false, accel.resolve().map_err(|e| format!("{e:#}"))?)
    };
    eprintln!(
        "arbor: bench mode {} ({})",
        mode.name(),
        match mode {
            Mode::Icount => "TCG -icount shift=0: guest figures in retired instructions, exact",
            Mode::Kvm => "KVM: guest figures in this CPU's cycles",
        }
    );
    // Asked for KVM by name, the run stays with it (and says what it found);
    // `auto` leaves a KVM found slow for icount.
    let may_switch = accel == AccelChoice::Auto;
    let mut run = run_all(filter, mode, may_switch)?;
    if mode == Mode::Kvm && run.kvm_slow {
        if may_switch {
            eprintln!(
                "arbor: KVM here leaves syscall in ring 3 (nested, paravirtual): its cycle \
                 counts mean nothing; measuring again in icount mode"
            );
            run = run_all(filter, Mode::Icount, false)?;
        } else {
            eprintln!(
                "arbor: warning: KVM here leaves syscall in ring 3 (nested, paravirtual): every \
                 system call is repaired from a fault, so these cycle counts measure that \
                 repair, not Arbor; use --exact"
            );
        }
    }
    let mut ratios = ratios(&run.figures);
    ratios.extend(storage::ratios(&run.figures));
    if json {
        for figure in run.figures.iter().chain(&ratios) {
            println!("{}", figure.to_json());
        }
    } else {
        print!("{}", table(&run.figures, &ratios));
    }
    eprintln!("arbor: bench took {:.1}s", started.elapsed().as_secs_f64());
    Ok(if run.failures == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("arbor: {} benchmark(s) failed to run", run.failures);
        ExitCode::FAILURE
    })
}

/// What one pass over the benchmarks found.
struct Run {
    figures: Vec<Figure>,
    failures: u32,
    /// A guest reported that KVM leaves `syscall` in ring 3.
    kvm_slow: bool,
}

/// Measures everything `filter` selects in `mode`. With `stop_when_slow`,
/// returns as soon as a guest reports slow KVM (the caller measures again).
fn run_all(filter: Option<&str>, mode: Mode, stop_when_slow: bool) -> Result<Run, String> {
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    let mut run = Run {
        figures: Vec::new(),
        failures: 0,
        kvm_slow: false,
    };
    let (scenarios, load_failures) = bench_scenarios(&selected)?;
    run.failures += load_failures;
    if !scenarios.is_empty() {
        if let Err(error) = run_scenarios(&scenarios, mode, stop_when_slow, &mut run) {
            eprintln!("arbor: the benchmark scenarios could not run: {error}");
            run.failures += 1;
        }
        if run.kvm_slow && stop_when_slow {
            return Ok(run);
        }
    }

    if selected("kernel_to_ready") || selected("reset_to_kernel") {
        match boot_figures(mode) {
            Ok(mut found) => run.figures.append(&mut found),
            Err(error) => {
                eprintln!("arbor: boot timing failed: {error}");
                run.failures += 1;
            }
        }
    }

    let linux_wanted = LINUX_FIGURES.iter().any(|name| selected(name))
        || COUNTERPARTS.iter().any(|(_, arbor)| selected(arbor));
    if linux_wanted && let Err(error) = run_linux(mode, &mut run) {
        eprintln!("arbor: the Linux baseline did not run: {error}");
        run.failures += 1;
    }

    http::run(&selected, &mut run.figures, &mut run.failures);

    if selected("kernel_lines") || selected("kernel_asm_lines") {
        let source = workspace::root().join("base/kernel/src");
        match kernel_lines::count_tree(&source) {
            Ok(lines) => {
                run.figures
                    .push(Figure::host("kernel_lines", lines.rust, "lines", "source"));
                run.figures.push(Figure::host(
                    "kernel_asm_lines",
                    lines.asm,
                    "lines",
                    "source",
                ));
            }
            Err(error) => {
                eprintln!("arbor: kernel_lines failed: {error}");
                run.failures += 1;
            }
        }
    }

    if filter.is_some() && selected(HOST_PIPE) {
        match pipe_roundtrip::measure(pipe_roundtrip::ITERATIONS) {
            Ok(result) => {
                eprintln!(
                    "arbor: timed {} host pipe round trips on CPU {} (host-only, in no ratio)",
                    result.iterations, result.cpu
                );
                run.figures.push(Figure::host(
                    HOST_PIPE,
                    result.median_cycles,
                    "cycles",
                    "host",
                ));
            }
            Err(error) => {
                eprintln!("arbor: {HOST_PIPE} failed: {error}");
                run.failures += 1;
            }
        }
    }
    Ok(run)
}

/// Loads the selected benchmark scenarios; returns them and how many failed to load.
fn bench_scenarios(selected: &dyn Fn(&str) -> bool) -> Result<(Vec<LoadedScenario>, u32), String> {
    let mut loaded = Vec::new();
    let mut failures = 0;
    for path in scenarios::all_paths()? {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        // A filter naming one of Arbor's figures (null_syscall) runs every
        // benchmark scenario: which one prints it is known only once it ran.
        let wanted = selected(name) || COUNTERPARTS.iter().any(|(_, arbor)| selected(arbor));
        if !name.starts_with(SCENARIO_PREFIX) || !wanted || http::owns(name) {
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

/// What booting one guest gave: its verdict and its log.
struct Boot {
    end: GuestEnd,
    log: Vec<String>,
}

/// Boots `launch` under `mode`, handing each line to `on_line`.
fn boot_guest(
    mut launch: Launch,
    mode: Mode,
    timeout: Duration,
    mut on_line: impl FnMut(&str) -> Continue,
) -> Result<Boot, String> {
    launch.extra_args = mode.qemu_args();
    let mut log = Vec::new();
    let started = Instant::now();
    let end = qemu::boot(&launch, Some(timeout), |line| {
        log.push(line.to_string());
        on_line(line)
    })
    .map_err(|e| format!("{e:#}"))?;
    eprintln!(
        "arbor: the guest ran {:.1}s on this host",
        started.elapsed().as_secs_f64()
    );
    Ok(Boot { end, log })
}

/// Why a guest's run does not count, if it does not.
fn problem(end: &GuestEnd) -> Option<String> {
    match end {
        GuestEnd::Success | GuestEnd::Stopped => None,
        GuestEnd::Failure => Some("the guest reported failure".to_string()),
        GuestEnd::NoVerdict { status } => Some(status.clone()),
        GuestEnd::Timeout { after } => Some(format!("stopped after {:.1}s", after.as_secs_f32())),
    }
}

fn report_failure(name: &str, problem: &str, log: &[String]) {
    eprintln!("arbor: benchmark {name} failed: {problem}");
    eprintln!("    last {} lines of its log:", LOG_TAIL.min(log.len()));
    for line in &log[log.len().saturating_sub(LOG_TAIL)..] {
        eprintln!("    | {}", printable(line));
    }
}

/// Takes a guest's `BENCH {...}` line into `figures`; true when it was one.
fn take_figure(line: &str, origin: &str, mode: Mode, figures: &mut Vec<Figure>) -> bool {
    match figure::parse_guest_line(line, origin, mode.name()) {
        Some(Ok(figure)) => {
            figures.push(figure);
            true
        }
        Some(Err(reason)) => {
            eprintln!(
                "arbor: warning: {origin} printed a malformed benchmark line ({reason}): {}",
                printable(line)
            );
            false
        }
        None => false,
    }
}

/// For a scenario whose system keeps running (`exit: Running`, e.g. the
/// GUI's servers): the lines (expected, in any order) after which its
/// figures are all in and the run is stopped; `None` for one that exits.
fn awaited_lines(scenario: &LoadedScenario) -> Option<Vec<String>> {
    let test = scenario.scenario.test.as_ref()?;
    (test.exit == arbor_config::ExitOutcome::Running).then(|| {
        test.expect
            .iter()
            .chain(&test.expect_unordered)
            .cloned()
            .collect()
    })
}

/// Builds what the scenarios need once, boots each, and gathers their figures.
fn run_scenarios(
    scenarios: &[LoadedScenario],
    mode: Mode,
    stop_when_slow: bool,
    run: &mut Run,
) -> Result<(), String> {
    let mut components: Vec<String> = scenarios
        .iter()
        .flat_map(archive::binaries_needed)
        .collect();
    components.sort();
    components.dedup();
    let kernel = qemu::build(&components).map_err(|e| format!("{e:#}"))?;
    for scenario in scenarios {
        let timeout = scenario
            .scenario
            .test
            .as_ref()
            .map_or(DEFAULT_TIMEOUT, |t| Duration::from_millis(t.timeout.millis));
        eprintln!(
            "arbor: booting benchmark {} in mode {} (timeout {}s)",
            scenario.name,
            mode.name(),
            timeout.as_secs()
        );
        let launch = qemu::prepare_with(scenario, kernel.clone(), mode.accel())
            .map_err(|e| format!("{e:#}"))?;
        let mut found = Vec::new();
        let mut kvm_slow = false;
        let mut awaited = awaited_lines(scenario);
        let boot = boot_guest(launch, mode, timeout, |line| {
            take_figure(line, &scenario.name, mode, &mut found);
            if let Some(awaited) = awaited.as_mut() {
                awaited.retain(|expected| !line.contains(expected.as_str()));
                if awaited.is_empty() {
                    return Continue::Stop;
                }
            }
            if mode == Mode::Kvm && line.contains(qemu::KVM_SLOW_LINE) {
                kvm_slow = true;
                if stop_when_slow {
                    return Continue::Stop;
                }
            }
            Continue::Go
        })?;
        run.kvm_slow |= kvm_slow;
        if kvm_slow && stop_when_slow {
            return Ok(());
        }
        if let Some(problem) = problem(&boot.end) {
            report_failure(&scenario.name, &problem, &boot.log);
            run.failures += 1;
        } else if found.is_empty() {
            eprintln!(
                "arbor: scenario {} ran but printed no `{}{{...}}` line: its figures are missing",
                scenario.name,
                figure::GUEST_MARKER
            );
        }
        run.figures.append(&mut found);
    }
    Ok(())
}

/// `kernel_to_ready` (and, under icount, `reset_to_kernel`) from booting
/// [`BOOT_SCENARIO`]: once under icount (exact), [`KVM_BOOTS`] times under KVM.
fn boot_figures(mode: Mode) -> Result<Vec<Figure>, String> {
    let path = scenarios::locate(BOOT_SCENARIO)?;
    let scenario = scenarios::load(&path)?;
    let kernel = qemu::build(&archive::binaries_needed(&scenario)).map_err(|e| format!("{e:#}"))?;
    let boots = if mode == Mode::Icount { 1 } else { KVM_BOOTS };
    eprintln!(
        "arbor: booting {BOOT_SCENARIO} {boots} time(s) in mode {} for kernel_to_ready",
        mode.name()
    );
    let mut kernel_to_ready = Vec::new();
    let mut reset_to_kernel = None;
    for _ in 0..boots {
        let launch = qemu::prepare_with(&scenario, kernel.clone(), mode.accel())
            .map_err(|e| format!("{e:#}"))?;
        let mut marks = boot_time::BootMarks::default();
        let boot = boot_guest(launch, mode, Duration::from_secs(120), |line| {
            if marks.feed(line) {
                Continue::Stop
            } else {
                Continue::Go
            }
        })?;
        let nanoseconds = match mode {
            // shift=0: the TSC counts virtual nanoseconds.
            Mode::Icount => marks.kernel_to_ready_ticks(),
            Mode::Kvm => marks.kernel_to_ready_ns(),
        };
        match (boot.end, nanoseconds) {
            (GuestEnd::Stopped, Some(ns)) => kernel_to_ready.push(ns),
            (end, _) => {
                let why = problem(&end).unwrap_or_else(|| "no ready marker with a TSC".into());
                report_failure(BOOT_SCENARIO, &why, &boot.log);
                return Err(format!("{BOOT_SCENARIO} never reported ready"));
            }
        }
        reset_to_kernel = marks.kernel_tsc;
    }
    let mut found = Vec::new();
    if let Some(median) = linux_baseline::median(&mut kernel_to_ready) {
        found.push(Figure::guest(
            "kernel_to_ready",
            median,
            "ns",
            mode.name(),
            BOOT_SCENARIO,
        ));
    }
    if let (Mode::Icount, Some(ticks)) = (mode, reset_to_kernel) {
        found.push(Figure::guest(
            "reset_to_kernel",
            ticks,
            "ns",
            mode.name(),
            BOOT_SCENARIO,
        ));
    }
    Ok(found)
}

/// Boots the Linux baseline guest and gathers its figures.
fn run_linux(mode: Mode, run: &mut Run) -> Result<(), String> {
    let guest = linux_guest::prepare()?;
    eprintln!(
        "arbor: booting the Linux baseline ({}) in mode {} (timeout {}s)",
        guest.kernel_description,
        mode.name(),
        LINUX_TIMEOUT.as_secs()
    );
    let launch = Launch {
        kernel: guest.vmlinuz,
        archive: guest.initramfs,
        memory_mib: linux_guest::MEMORY_MIB,
        kernel_args: linux_guest::kernel_args(LINUX_ITERATIONS),
        accel: mode.accel(),
        may_fall_back: false,
        extra_args: Vec::new(),
        devices: Vec::new(),
    };
    const ORIGIN: &str = "linux";
    let mut found = Vec::new();
    let mut done = false;
    let boot = boot_guest(launch, mode, LINUX_TIMEOUT, |line| {
        if let Some(ticks) = linux_guest::init_tsc(line) {
            // Under icount the TSC starts at 0 at reset and counts virtual
            // ns; under KVM it is the host's counter, which says nothing here.
            if mode == Mode::Icount {
                found.push(Figure::guest(
                    "linux_kernel_to_init",
                    ticks,
                    "ns",
                    mode.name(),
                    ORIGIN,
                ));
            }
        }
        take_figure(line, ORIGIN, mode, &mut found);
        done |= line.contains(linux_guest::DONE_MARKER);
        Continue::Go
    })?;
    let problem = problem(&boot.end).or_else(|| {
        (!done).then(|| format!("the guest never printed \"{}\"", linux_guest::DONE_MARKER))
    });
    if let Some(problem) = problem {
        report_failure("linux baseline", &problem, &boot.log);
        run.failures += 1;
    }
    run.figures.append(&mut found);
    Ok(())
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

/// Linux's figure over Arbor's for each of [`COUNTERPARTS`] measured in
/// this run by guests in the same mode and unit.
fn ratios(figures: &[Figure]) -> Vec<Figure> {
    let guest = |name: &str| {
        figures
            .iter()
            .find(|f| f.bench == name && f.scenario.is_some())
    };
    let mut found = Vec::new();
    for (linux, arbor) in COUNTERPARTS {
        let (Some(l), Some(a)) = (guest(linux), guest(arbor)) else {
            continue;
        };
        if l.mode != a.mode || l.unit != a.unit {
            continue;
        }
        let (Some(lv), Some(av)) = (l.value.as_f64(), a.value.as_f64()) else {
            continue;
        };
        if av <= 0.0 {
            continue;
        }
        // Two decimals: the figures are exact, the ratio is for reading.
        let rounded = (lv / av * 100.0).round() / 100.0;
        found.push(Figure {
            bench: format!("{linux}/{arbor}"),
            value: serde_json::Number::from_f64(rounded).unwrap_or_else(|| 0.into()),
            unit: "ratio".into(),
            mode: l.mode.clone(),
            scenario: None,
        });
    }
    found
}

/// The readable form: one row per figure, then the ratios.
fn table(figures: &[Figure], ratios: &[Figure]) -> String {
    let mut rows = vec![[
        "bench".to_string(),
        "value".to_string(),
        "unit".to_string(),
        "mode".to_string(),
        "measured in".to_string(),
    ]];
    for figure in figures.iter().chain(ratios) {
        rows.push([
            figure.bench.clone(),
            figure.value.to_string(),
            figure.unit.clone(),
            figure.mode.clone(),
            match (&figure.scenario, figure.unit.as_str()) {
                (Some(s), _) => format!("guest ({s})"),
                (None, "ratio") => "this run".to_string(),
                (None, _) => figure.mode.clone(),
            },
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
    if ratios.is_empty() {
        out.push_str("\nno ratio: needs a Linux figure and its Arbor counterpart from this run\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(bench: &str, value: u64, mode: &str) -> Figure {
        Figure::guest(bench, value, figure::tsc_unit(mode), mode, "bench_ipc")
    }

    #[test]
    fn ratios_are_linux_over_arbor_in_one_mode() {
        let figures = [
            guest("ipc_roundtrip", 2000, "icount"),
            guest("linux_pipe_roundtrip", 10000, "icount"),
            guest("linux_futex_roundtrip", 7000, "icount"),
        ];
        let found = ratios(&figures);
        assert_eq!(
            found.iter().map(Figure::to_json).collect::<Vec<_>>(),
            [
                r#"{"bench":"linux_pipe_roundtrip/ipc_roundtrip","value":5.0,"unit":"ratio","mode":"icount"}"#,
                r#"{"bench":"linux_futex_roundtrip/ipc_roundtrip","value":3.5,"unit":"ratio","mode":"icount"}"#,
            ]
        );
    }

    #[test]
    fn no_ratio_across_modes_units_or_from_the_host() {
        // Instructions and cycles do not divide.
        let mixed = [
            guest("ipc_roundtrip", 2000, "icount"),
            guest("linux_pipe_roundtrip", 10000, "kvm"),
        ];
        assert!(ratios(&mixed).is_empty());
        // A host figure under a Linux guest's name is not the baseline.
        let host = [
            guest("ipc_roundtrip", 2000, "icount"),
            Figure::host("linux_pipe_roundtrip", 10000, "instructions", "icount"),
        ];
        assert!(ratios(&host).is_empty());
        // Nor does a zero divide.
        let zero = [
            guest("ipc_roundtrip", 0, "icount"),
            guest("linux_pipe_roundtrip", 10000, "icount"),
        ];
        assert!(ratios(&zero).is_empty());
    }

    #[test]
    fn exact_or_tcg_means_icount() {
        assert_eq!(choose_mode(true, qemu::Accel::Kvm), Mode::Icount);
        assert_eq!(choose_mode(false, qemu::Accel::Tcg), Mode::Icount);
        assert_eq!(choose_mode(false, qemu::Accel::Kvm), Mode::Kvm);
        assert!(
            Mode::Icount
                .qemu_args()
                .contains(&"shift=0,align=off,sleep=off".to_string())
        );
        assert!(Mode::Kvm.qemu_args().is_empty());
    }

    #[test]
    fn guest_lines_lose_their_control_characters() {
        assert_eq!(printable("a \"b\"\u{1b}[2J"), "a \"b\"\\u{1b}[2J");
    }

    #[test]
    fn table_lists_every_figure_and_the_ratios() {
        let figures = [
            guest("ipc_roundtrip", 2000, "icount"),
            guest("linux_pipe_roundtrip", 10000, "icount"),
            Figure::host("kernel_lines", 900, "lines", "source"),
        ];
        let text = table(&figures, &ratios(&figures));
        assert!(text.starts_with("bench"));
        assert!(text.contains("ipc_roundtrip"));
        assert!(text.contains("instructions  icount  guest (bench_ipc)"));
        assert!(text.contains("linux_pipe_roundtrip/ipc_roundtrip"));
        assert!(text.contains("lines         source"));
        let alone = table(&figures[..1], &[]);
        assert!(alone.contains("no ratio"));
    }
}
