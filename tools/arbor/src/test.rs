//! `cargo arbor test`: host unit tests, then every scenario's expectations.
//!
//! A scenario's test passes when its expected lines appear in order, the run
//! ends as declared, and no line matches a *reject*: the scenario's own
//! `reject` substrings and the [`DefaultReject`]s — a kernel exception or
//! panic, a component's panic, a leak init found, a child init could not
//! start — unless the scenario names one in `allow` (and then it must
//! appear). The first rejected line stops the run (after a short linger for
//! the lines that explain it) instead of letting it wait for its timeout.

use crate::archive;
use crate::qemu::{self, AccelChoice, GuestEnd};
use crate::scenarios;
use crate::workspace;
use anyhow::{Result, anyhow};
use arbor_config::{DefaultReject, DisplayAction, ExitOutcome, TestSpec};
use std::process::ExitCode;
use std::time::Duration;

/// How many log lines a failure report shows.
const LOG_TAIL: usize = 25;

/// Why a scenario's run did not meet its `test` section.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
}

/// The exact text each default reject's line contains, as printed by the
/// kernel (`arch/entry.rs`, `main.rs`), the panic handlers (`base/lib`
/// `rt.rs`, `base/sessions` `env.rs`: `panic: {info}`, and a `PanicInfo`
/// prints `panicked at FILE:LINE`) and init (`children.rs`).
pub fn default_pattern(kind: DefaultReject) -> &'static str {
    match kind {
        DefaultReject::KernelException => "KERNEL EXCEPTION #",
        DefaultReject::KernelPanic => "KERNEL PANIC: ",
        DefaultReject::Panic => "panic: panicked at ",
        DefaultReject::Leak => ", LEAKED ",
        DefaultReject::ChildCannotStart => "] cannot start ",
    }
}

/// Whether `line` shows the default reject `kind`. Most are a plain
/// substring; a leak report counts only when something is missing: init
/// prints `LEAKED R bytes and C caps since its first fault` with the
/// difference of its whole free quota, which comes out negative when a
/// sibling returned quota in between (not a leak). A report that cannot be
/// read counts as a leak.
pub fn shows(kind: DefaultReject, line: &str) -> bool {
    let Some(at) = line.find(default_pattern(kind)) else {
        return false;
    };
    if kind != DefaultReject::Leak {
        return true;
    }
    let rest = &line[at + default_pattern(kind).len()..];
    let mut words = rest.split_whitespace();
    let bytes = words.next().and_then(|w| w.parse::<i64>().ok());
    let caps = words.nth(2).and_then(|w| w.parse::<i64>().ok());
    match (bytes, caps) {
        (Some(bytes), Some(caps)) => bytes > 0 || caps > 0,
        _ => true,
    }
}

/// What a default reject means, for failure reports.
fn describe(kind: DefaultReject) -> &'static str {
    match kind {
        DefaultReject::KernelException => "the kernel took an exception",
        DefaultReject::KernelPanic => "the kernel panicked",
        DefaultReject::Panic => "a component panicked",
        DefaultReject::Leak => "init reports a leak",
        DefaultReject::ChildCannotStart => "init cannot start a child",
    }
}

/// One substring that fails a test on any line containing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pattern: String,
    /// Which default it is; `None` for the scenario's own `reject` entries.
    kind: Option<DefaultReject>,
}

impl Reject {
    /// Why a line matching this fails the test.
    fn reason(&self, number: usize, line: &str) -> String {
        match self.kind {
            Some(kind) => format!(
                "line {number}: {} (default reject {kind:?}; a scenario that provokes it on purpose says `allow: [{kind:?}]`): {line}",
                describe(kind)
            ),
            None => format!(
                "line {number} contains the rejected \"{}\": {line}",
                self.pattern
            ),
        }
    }
}

/// The rejects in force for `spec`: its own, and every default it does not allow.
pub fn rejects(spec: &TestSpec) -> Vec<Reject> {
    let own = spec.reject.iter().map(|pattern| Reject {
        pattern: pattern.clone(),
        kind: None,
    });
    let defaults = DefaultReject::ALL
        .into_iter()
        .filter(|kind| !spec.allow.contains(kind))
        .map(|kind| Reject {
            pattern: default_pattern(kind).to_string(),
            kind: Some(kind),
        });
    own.chain(defaults).collect()
}

/// The first reject `line` matches.
pub fn rejected<'r>(rejects: &'r [Reject], line: &str) -> Option<&'r Reject> {
    rejects.iter().find(|reject| match reject.kind {
        Some(kind) => shows(kind, line),
        None => line.contains(reject.pattern.as_str()),
    })
}

/// Follows a run's lines as they arrive: stops a scenario that keeps running
/// ([`ExitOutcome::Running`]) once every expected line appeared, and a run
/// that printed a rejected line (after [`qemu::LINGER`]).
pub struct Progress<'a> {
    spec: &'a TestSpec,
    rejects: Vec<Reject>,
    lines: usize,
    seen: usize,
    unordered_seen: Vec<bool>,
    failure: Option<String>,
}

impl<'a> Progress<'a> {
    /// Nothing seen yet.
    pub fn new(spec: &'a TestSpec) -> Self {
        Progress {
            spec,
            rejects: rejects(spec),
            lines: 0,
            seen: 0,
            unordered_seen: vec![false; spec.expect_unordered.len()],
            failure: None,
        }
    }

    /// The first rejected line seen, as a failure reason.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Takes one line; says whether the guest should be stopped now.
    pub fn feed(&mut self, line: &str) -> qemu::Continue {
        self.lines += 1;
        if self.failure.is_some() {
            return qemu::Continue::Linger;
        }
        if let Some(reject) = rejected(&self.rejects, line) {
            self.failure = Some(reject.reason(self.lines, line));
            return qemu::Continue::Linger;
        }
        if self
            .spec
            .expect
            .get(self.seen)
            .is_some_and(|expected| line.contains(expected.as_str()))
        {
            self.seen += 1;
        }
        for (expected, seen) in self
            .spec
            .expect_unordered
            .iter()
            .zip(self.unordered_seen.iter_mut())
        {
            *seen |= line.contains(expected.as_str());
        }
        let all_seen =
            self.seen == self.spec.expect.len() && self.unordered_seen.iter().all(|s| *s);
        if self.spec.exit == ExitOutcome::Running && all_seen {
            qemu::Continue::Stop
        } else {
            qemu::Continue::Go
        }
    }
}

/// Judges one finished run against its expectations: no rejected line,
/// every expected substring on a line after the previous one's, every
/// allowance used, and the declared ending.
pub fn judge(spec: &TestSpec, log: &[String], end: &GuestEnd) -> Verdict {
    let in_force = rejects(spec);
    for (index, line) in log.iter().enumerate() {
        if let Some(reject) = rejected(&in_force, line) {
            return Verdict::Fail(reject.reason(index + 1, line));
        }
    }
    let mut lines = log.iter();
    for (index, expected) in spec.expect.iter().enumerate() {
        if !lines.any(|line| line.contains(expected.as_str())) {
            let seen = if index == 0 {
                String::new()
            } else {
                format!(" after \"{}\"", spec.expect[index - 1])
            };
            return Verdict::Fail(format!(
                "expected line {} \"{expected}\" never appeared{seen}",
                index + 1
            ));
        }
    }
    for expected in &spec.expect_unordered {
        if !log.iter().any(|line| line.contains(expected.as_str())) {
            return Verdict::Fail(format!(
                "expected \"{expected}\" (in any order) never appeared"
            ));
        }
    }
    for allowed in &spec.allow {
        let pattern = default_pattern(*allowed);
        if !log.iter().any(|line| shows(*allowed, line)) {
            return Verdict::Fail(format!(
                "the scenario allows {allowed:?}, but no line shows \"{pattern}\": remove it from `allow`"
            ));
        }
    }
    match (spec.exit, end) {
        (ExitOutcome::Success, GuestEnd::Success)
        | (ExitOutcome::Failure, GuestEnd::Failure)
        | (ExitOutcome::Running, GuestEnd::Stopped) => Verdict::Pass,
        (_, GuestEnd::Timeout { after }) => {
            Verdict::Fail(format!("timed out after {:.1}s", after.as_secs_f32()))
        }
        (expected, GuestEnd::NoVerdict { status }) => Verdict::Fail(format!(
            "expected the guest to report {expected:?}, but {status}"
        )),
        (expected, got) => Verdict::Fail(format!(
            "expected the guest to report {expected:?}, it reported {got:?}"
        )),
    }
}

/// What a test's host commands may name: `{port:GUEST}` (the host port
/// forwarded to that guest port) and `{image}` (the scenario's first built
/// disk image).
#[derive(Clone, Debug, Default)]
pub struct HostValues {
    /// The forwards, with the host ports QEMU was given.
    pub forwards: Vec<arbor_config::Forward>,
    /// The first built disk image.
    pub image: Option<std::path::PathBuf>,
}

impl HostValues {
    /// The values of a scenario about to boot as `launch`.
    pub fn of(devices: &[arbor_config::Device], launch: &qemu::Launch) -> Self {
        let image = devices.iter().find_map(|device| match device {
            arbor_config::Device::VirtioBlk {
                image: Some(image), ..
            } => Some(crate::disk_image::path_of(image)),
            _ => None,
        });
        Self {
            forwards: launch.forwards(),
            image,
        }
    }

    /// `command` with every `{port:N}` and `{image}` replaced, or why not.
    pub fn substitute(&self, command: &str) -> Result<String, String> {
        let mut text = command.to_string();
        if text.contains("{image}") {
            let image = self
                .image
                .as_ref()
                .ok_or("`{image}`: the scenario builds no disk image")?;
            text = text.replace("{image}", &image.to_string_lossy());
        }
        let ports = arbor_config::named_guest_ports(command)
            .map_err(|bad| format!("`{bad}` names no port"))?;
        for guest in ports {
            let host = self
                .forwards
                .iter()
                .find(|forward| forward.guest == guest)
                .ok_or(format!(
                    "`{{port:{guest}}}`: no forward to guest port {guest}"
                ))?
                .host;
            text = text.replace(&format!("{{port:{guest}}}"), &host.to_string());
        }
        Ok(text)
    }
}

/// How long a host command may run when its step names no timeout.
pub const HOST_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one host command (`sh -c` in the workspace root, in a process
/// group of its own so that a timeout ends everything it started) and
/// checks that it succeeds within `timeout` and that its standard output
/// holds `expect`, each on a later line; returns that output, or a failure
/// that names the command and shows its output.
pub fn run_host_command(
    command: &str,
    expect: &[String],
    timeout: Duration,
) -> Result<String, String> {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(crate::workspace::root())
        .env("PATH", crate::disk_image::path_with_sbin())
        .env("MTOOLS_SKIP_CHECK", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| format!("`{command}`: {error}"))?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                // SAFETY: kill(2) on the process group this function made
                // (its id is the child's pid); no memory is touched.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).to_string();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).to_string();
    let shown = || {
        let mut text = String::new();
        for line in stdout.lines().chain(stderr.lines()).take(LOG_TAIL) {
            text.push_str(&format!("\n    | {line}"));
        }
        text
    };
    let status = match status {
        Some(status) => status,
        None => {
            return Err(format!(
                "`{command}` was stopped after {:.1}s:{}",
                timeout.as_secs_f32(),
                shown()
            ));
        }
    };
    if !status.success() {
        return Err(format!("`{command}` failed ({status}):{}", shown()));
    }
    let lines: Vec<String> = stdout.lines().map(String::from).collect();
    if let Some(missing) = missing_in_order(expect, &lines) {
        return Err(format!(
            "`{command}` printed no line with \"{missing}\" (in order):{}",
            shown()
        ));
    }
    Ok(stdout)
}

/// Runs the test's `after` host commands (the guest has stopped); the
/// first one that fails or lacks an expected line fails the test, with
/// its output.
fn after_checks(spec: &TestSpec, values: &HostValues) -> Verdict {
    for check in &spec.after {
        let result = values
            .substitute(&check.run)
            .and_then(|command| run_host_command(&command, &check.expect, HOST_COMMAND_TIMEOUT))
            .map(drop);
        if let Err(failure) = result {
            return Verdict::Fail(format!("after the run, {failure}"));
        }
    }
    Verdict::Pass
}

/// The first of `expect` that does not appear, each on a later line than
/// the one before.
fn missing_in_order<'e>(expect: &'e [String], lines: &[String]) -> Option<&'e str> {
    let mut next = 0;
    for wanted in expect {
        match lines[next..]
            .iter()
            .position(|line| line.contains(wanted.as_str()))
        {
            Some(found) => next += found + 1,
            None => return Some(wanted),
        }
    }
    None
}

/// `cargo arbor test [FILTER]`.
pub fn test_command(
    filter: Option<&str>,
    scenarios_only: bool,
    accel: AccelChoice,
) -> Result<ExitCode> {
    let mut passed = 0;
    let mut failed = 0;
    if !scenarios_only {
        if workspace::run_host_tests()? {
            println!("host unit tests ... ok");
            passed += 1;
        } else {
            println!("host unit tests ... FAILED (see cargo test's output above)");
            failed += 1;
        }
    }

    let mut selected = Vec::new();
    for path in scenarios::all_paths().map_err(|e| anyhow!(e))? {
        let loaded = scenarios::load(&path);
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match loaded {
            Ok(scenario) if scenario.scenario.test.is_some() => selected.push(scenario),
            Ok(_) => {}
            Err(error) => {
                println!("scenario {name} ... FAILED\n    {error}");
                failed += 1;
            }
        }
    }

    if !selected.is_empty() {
        let mut components: Vec<String> =
            selected.iter().flat_map(archive::binaries_needed).collect();
        components.sort();
        components.dedup();
        let kernel = qemu::build(&components)?;
        let runs_host_commands = selected.iter().any(|scenario| {
            scenario.scenario.test.as_ref().is_some_and(|spec| {
                spec.display.iter().any(|step| {
                    step.actions
                        .iter()
                        .any(|action| matches!(action, DisplayAction::Run { .. }))
                })
            })
        });
        if runs_host_commands {
            crate::setup::ensure_host_command_tools().map_err(|e| anyhow!(e))?;
        }
        let may_fall_back = accel == AccelChoice::Auto;
        let accel = accel.resolve()?;
        eprintln!(
            "arbor: booting {} scenario(s) with {}",
            selected.len(),
            accel.describe()
        );
        for scenario in &selected {
            let Some(spec) = &scenario.scenario.test else {
                continue;
            };
            let mut launch = qemu::prepare_with(scenario, kernel.clone(), accel)?;
            launch.may_fall_back = may_fall_back;
            let mut log = Vec::new();
            let timeout = Duration::from_millis(spec.timeout.millis);
            let mut progress = Progress::new(spec);
            let values = HostValues::of(&scenario.scenario.machine.devices, &launch);
            let mut display = crate::screenshot::prepare_display(
                &scenario.name,
                spec,
                &mut launch,
                values.clone(),
            )?;
            let end = qemu::boot(&launch, Some(timeout), |line| {
                log.push(line.to_string());
                let verdict = progress.feed(line);
                crate::screenshot::feed_display(display.as_mut(), line, verdict)
            })?;
            let display_failure = display.as_ref().and_then(|d| d.verdict());
            let verdict =
                match display_failure.map_or_else(|| judge(spec, &log, &end), Verdict::Fail) {
                    Verdict::Pass => after_checks(spec, &values),
                    failed => failed,
                };
            match verdict {
                Verdict::Pass => {
                    println!("scenario {} ... ok", scenario.name);
                    passed += 1;
                }
                Verdict::Fail(reason) => {
                    println!("scenario {} ... FAILED\n    {reason}", scenario.name);
                    println!("    last {} lines of the log:", LOG_TAIL.min(log.len()));
                    for line in &log[log.len().saturating_sub(LOG_TAIL)..] {
                        println!("    | {line}");
                    }
                    failed += 1;
                }
            }
        }
    }

    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_config::Duration as ConfigDuration;

    fn spec(expect: &[&str], exit: ExitOutcome) -> TestSpec {
        TestSpec {
            expect: expect.iter().map(|s| s.to_string()).collect(),
            exit,
            expect_unordered: Vec::new(),
            timeout: ConfigDuration { millis: 1000 },
            reject: Vec::new(),
            allow: Vec::new(),
            after: Vec::new(),
            display: Vec::new(),
        }
    }

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expectations_in_order_pass() {
        let verdict = judge(
            &spec(&["a", "c"], ExitOutcome::Success),
            &log(&["a", "b", "c"]),
            &GuestEnd::Success,
        );
        assert_eq!(verdict, Verdict::Pass);
    }

    #[test]
    fn expectations_out_of_order_fail_naming_the_line() {
        let verdict = judge(
            &spec(&["c", "a"], ExitOutcome::Success),
            &log(&["a", "b", "c"]),
            &GuestEnd::Success,
        );
        assert_eq!(
            verdict,
            Verdict::Fail("expected line 2 \"a\" never appeared after \"c\"".into())
        );
    }

    #[test]
    fn one_line_cannot_satisfy_two_expectations() {
        let verdict = judge(
            &spec(&["ab", "ab"], ExitOutcome::Success),
            &log(&["ab"]),
            &GuestEnd::Success,
        );
        assert!(matches!(verdict, Verdict::Fail(_)));
    }

    #[test]
    fn wrong_ending_fails() {
        let verdict = judge(
            &spec(&["a"], ExitOutcome::Failure),
            &log(&["a"]),
            &GuestEnd::Success,
        );
        assert!(matches!(verdict, Verdict::Fail(reason) if reason.contains("Failure")));
        let timeout = GuestEnd::Timeout {
            after: Duration::from_secs(3),
        };
        let verdict = judge(&spec(&["a"], ExitOutcome::Success), &log(&["a"]), &timeout);
        assert_eq!(verdict, Verdict::Fail("timed out after 3.0s".into()));
    }

    #[test]
    fn expected_failure_passes() {
        let verdict = judge(
            &spec(&["EXCEPTION"], ExitOutcome::Failure),
            &log(&["EXCEPTION #UD"]),
            &GuestEnd::Failure,
        );
        assert_eq!(verdict, Verdict::Pass);
    }

    /// One line in the exact shape each default reject's source prints.
    const DEFAULT_REJECT_LINES: [(DefaultReject, &str); 5] = [
        (
            DefaultReject::KernelException,
            "KERNEL EXCEPTION #PF (page fault, vector 14) in kernel mode",
        ),
        (
            DefaultReject::KernelPanic,
            "KERNEL PANIC: panicked at base/kernel/src/kernel/mod.rs:10:5:",
        ),
        (
            DefaultReject::Panic,
            "[init -> panic] panic: panicked at components/test/crasher/src/main.rs:40:9:",
        ),
        (
            DefaultReject::Leak,
            "[init] phoenix gave up after 100 restarts; init has 900 KiB RAM and 60 caps free, LEAKED 4096 bytes and 1 caps since its first fault",
        ),
        (
            DefaultReject::ChildCannotStart,
            "[init -> sub] cannot start hello: binary \"helo\": no ROM module named \"helo\"",
        ),
    ];

    #[test]
    fn every_default_reject_fails_a_run_that_otherwise_passes() {
        for (kind, line) in DEFAULT_REJECT_LINES {
            let verdict = judge(
                &spec(&["a"], ExitOutcome::Success),
                &log(&["a", line]),
                &GuestEnd::Success,
            );
            let Verdict::Fail(reason) = verdict else {
                panic!("{kind:?} was not rejected");
            };
            assert!(reason.contains(&format!("{kind:?}")), "{reason}");
            assert!(reason.starts_with("line 2:"), "{reason}");
        }
    }

    #[test]
    fn only_a_positive_leak_is_a_leak() {
        let report = |bytes: i64, caps: i64| {
            format!(
                "[init] null gave up after 2 restarts; init has 1 KiB RAM and 2 caps free, LEAKED {bytes} bytes and {caps} caps since its first fault"
            )
        };
        assert!(shows(DefaultReject::Leak, &report(4096, 0)));
        assert!(shows(DefaultReject::Leak, &report(0, 1)));
        assert!(shows(DefaultReject::Leak, &report(-4096, 2)));
        // Measured in fault.ron: a sibling returned its quota in between.
        assert!(!shows(DefaultReject::Leak, &report(-4993024, -381)));
        assert!(!shows(DefaultReject::Leak, &report(0, 0)));
        assert!(shows(DefaultReject::Leak, "x, LEAKED some bytes"));
    }

    #[test]
    fn the_same_words_in_another_shape_are_not_rejected() {
        let verdict = judge(
            &spec(&["a"], ExitOutcome::Success),
            &log(&[
                "a",
                "[init] gp faulted: GeneralProtection",
                "[init -> hello] no panic here",
                "[init] phoenix ... the same as after its first fault",
                "[init] started hello (hello), RAM 64 KiB, caps 32",
            ]),
            &GuestEnd::Success,
        );
        assert_eq!(verdict, Verdict::Pass);
    }

    #[test]
    fn allowed_default_passes_and_an_unused_allowance_fails() {
        let mut allowing = spec(&["EXCEPTION"], ExitOutcome::Failure);
        allowing.allow = vec![DefaultReject::KernelException];
        let exception = DEFAULT_REJECT_LINES[0].1;
        assert_eq!(
            judge(&allowing, &log(&[exception]), &GuestEnd::Failure),
            Verdict::Pass
        );
        // Allowing one default leaves the others in force.
        let verdict = judge(
            &allowing,
            &log(&[exception, DEFAULT_REJECT_LINES[2].1]),
            &GuestEnd::Failure,
        );
        assert!(matches!(verdict, Verdict::Fail(r) if r.contains("Panic")));
        // An allowance the run never needed is stale.
        let mut stale = spec(&["a"], ExitOutcome::Success);
        stale.allow = vec![DefaultReject::Leak];
        let verdict = judge(&stale, &log(&["a"]), &GuestEnd::Success);
        assert!(
            matches!(&verdict, Verdict::Fail(r) if r.contains("allows Leak")),
            "{verdict:?}"
        );
    }

    #[test]
    fn scenario_rejects_fail_with_the_line() {
        let mut own = spec(&["a"], ExitOutcome::Success);
        own.reject = vec!["retrying".into()];
        let verdict = judge(&own, &log(&["a", "x retrying y"]), &GuestEnd::Success);
        assert_eq!(
            verdict,
            Verdict::Fail("line 2 contains the rejected \"retrying\": x retrying y".into())
        );
    }

    #[test]
    fn a_rejected_line_stops_the_run_early_and_wins_over_the_timeout() {
        let spec = spec(&["never printed"], ExitOutcome::Success);
        let mut progress = Progress::new(&spec);
        assert_eq!(progress.feed("[init] started hello"), qemu::Continue::Go);
        let cannot_start = DEFAULT_REJECT_LINES[4].1;
        assert_eq!(progress.feed(cannot_start), qemu::Continue::Linger);
        assert_eq!(progress.feed("more"), qemu::Continue::Linger);
        assert!(
            progress
                .failure()
                .is_some_and(|f| f.contains("init cannot start a child")),
            "{:?}",
            progress.failure()
        );
        // The run then ends as Stopped; the verdict names the reject, not a timeout.
        let verdict = judge(
            &spec,
            &log(&["[init] started hello", cannot_start, "more"]),
            &GuestEnd::Stopped,
        );
        assert!(matches!(verdict, Verdict::Fail(r) if r.contains("ChildCannotStart")));
    }

    #[test]
    fn a_running_system_stops_once_all_is_seen_unless_something_was_rejected() {
        let spec = spec(&["a", "b"], ExitOutcome::Running);
        let mut progress = Progress::new(&spec);
        assert_eq!(progress.feed("a"), qemu::Continue::Go);
        assert_eq!(progress.feed("b"), qemu::Continue::Stop);
        let mut progress = Progress::new(&spec);
        assert_eq!(progress.feed("a"), qemu::Continue::Go);
        assert_eq!(
            progress.feed(DEFAULT_REJECT_LINES[2].1),
            qemu::Continue::Linger
        );
        assert_eq!(progress.feed("b"), qemu::Continue::Linger);
    }

    /// The deliberately broken scenarios in `tools/arbor/tests/broken/`, each
    /// with the serial log a real run of it printed: the test must fail on
    /// the default reject, and the run must be told to stop at that line.
    #[test]
    fn recorded_broken_runs_fail_at_their_rejected_line() {
        let dir = workspace::root().join("tools/arbor/tests/broken");
        for (name, kind, stop_line) in [
            ("cannot_start", DefaultReject::ChildCannotStart, 26),
            ("panic", DefaultReject::Panic, 60),
        ] {
            let scenario = scenarios::load(&dir.join(format!("{name}.ron"))).unwrap();
            let spec = scenario.scenario.test.as_ref().unwrap();
            let log: Vec<String> = std::fs::read_to_string(dir.join(format!("{name}.log")))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            let mut progress = Progress::new(spec);
            let first_linger = log
                .iter()
                .position(|line| progress.feed(line) == qemu::Continue::Linger)
                .map(|index| index + 1);
            assert_eq!(first_linger, Some(stop_line), "{name}");
            let Verdict::Fail(reason) = judge(spec, &log, &GuestEnd::Stopped) else {
                panic!("{name} passed");
            };
            assert!(
                reason.starts_with(&format!("line {stop_line}: "))
                    && reason.contains(&format!("{kind:?}")),
                "{name}: {reason}"
            );
        }
    }

    #[test]
    fn after_commands_substitute_the_image_and_check_their_output() {
        let mut spec = spec(&["a"], ExitOutcome::Success);
        spec.after = vec![arbor_config::HostCheck {
            run: String::from("printf 'one\\ntwo {image}\\n'"),
            expect: vec![String::from("one"), String::from("two ")],
        }];
        let values = HostValues {
            forwards: Vec::new(),
            image: Some(workspace::root().join("target/x.img")),
        };
        assert_eq!(after_checks(&spec, &values), Verdict::Pass);
        spec.after[0].expect.reverse();
        assert!(matches!(after_checks(&spec, &values), Verdict::Fail(r) if r.contains("\"one\"")));
        spec.after[0].run = String::from("false");
        assert!(matches!(after_checks(&spec, &values), Verdict::Fail(r) if r.contains("failed")));
    }

    #[test]
    fn host_commands_name_forwarded_ports_and_the_image() {
        let values = HostValues {
            forwards: vec![
                arbor_config::Forward {
                    host: 40123,
                    guest: 80,
                },
                arbor_config::Forward {
                    host: 40124,
                    guest: 7,
                },
            ],
            image: None,
        };
        assert_eq!(
            values.substitute("curl 127.0.0.1:{port:80}/ nc 127.0.0.1 {port:7} {port:80}"),
            Ok(String::from(
                "curl 127.0.0.1:40123/ nc 127.0.0.1 40124 40123"
            ))
        );
        assert!(
            values
                .substitute("{port:81}")
                .unwrap_err()
                .contains("guest port 81")
        );
        assert!(
            values
                .substitute("{port:x}")
                .unwrap_err()
                .contains("names no port")
        );
        assert!(
            values
                .substitute("ls {image}")
                .unwrap_err()
                .contains("no disk image")
        );
    }

    #[test]
    fn a_host_command_that_hangs_is_stopped_with_what_it_printed() {
        let started = std::time::Instant::now();
        let failure = run_host_command(
            "echo started; sleep 30 & sleep 30",
            &[],
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{failure}");
        assert!(
            failure.contains("stopped after 0.3s") && failure.contains("| started"),
            "{failure}"
        );
        let failure = run_host_command("echo out; echo err >&2; exit 3", &[], HOST_COMMAND_TIMEOUT)
            .unwrap_err();
        assert!(
            failure.contains("| out") && failure.contains("| err"),
            "{failure}"
        );
        assert_eq!(
            run_host_command(
                "printf 'a\\nb\\n'",
                &["a".into(), "b".into()],
                HOST_COMMAND_TIMEOUT
            ),
            Ok(String::from("a\nb\n"))
        );
    }
}
