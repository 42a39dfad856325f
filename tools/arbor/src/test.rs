//! `cargo arbor test`: host unit tests, then every scenario's expectations.

use crate::archive;
use crate::qemu::{self, AccelChoice, GuestEnd};
use crate::scenarios;
use crate::workspace;
use arbor_config::{ExitOutcome, TestSpec};
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

/// Follows a run's expected lines as they arrive, to stop a scenario that
/// keeps running ([`ExitOutcome::Running`]) once all of them appeared.
pub struct Progress<'a> {
    spec: &'a TestSpec,
    seen: usize,
    unordered_seen: Vec<bool>,
}

impl<'a> Progress<'a> {
    /// Nothing seen yet.
    pub fn new(spec: &'a TestSpec) -> Self {
        Progress {
            spec,
            seen: 0,
            unordered_seen: vec![false; spec.expect_unordered.len()],
        }
    }

    /// Takes one line; says whether the guest should be stopped now.
    pub fn feed(&mut self, line: &str) -> qemu::Continue {
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

/// Judges one finished run against its expectations: every expected
/// substring on a line after the previous one's, and the declared ending.
pub fn judge(spec: &TestSpec, log: &[String], end: &GuestEnd) -> Verdict {
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

/// `cargo arbor test [FILTER]`.
pub fn test_command(
    filter: Option<&str>,
    scenarios_only: bool,
    accel: AccelChoice,
) -> Result<ExitCode, String> {
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
    for path in scenarios::all_paths()? {
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
            let launch = qemu::prepare_with(scenario, kernel.clone(), accel)?;
            let mut log = Vec::new();
            let timeout = Duration::from_millis(spec.timeout.millis);
            let mut progress = Progress::new(spec);
            let end = qemu::boot(&launch, Some(timeout), |line| {
                log.push(line.to_string());
                progress.feed(line)
            })?;
            match judge(spec, &log, &end) {
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
}
