//! Counting and printing checks: one line per check, a summary at the end.

use arbor::abi::Error;
use arbor::println;
use core::fmt::Debug;

/// Passed and failed checks so far.
#[derive(Default)]
pub struct Checks {
    pub passed: u32,
    pub failed: u32,
}

impl Checks {
    /// Records a check that holds when `holds`; `detail` explains a failure.
    pub fn that(&mut self, name: &str, holds: bool, detail: impl Debug) {
        if holds {
            self.passed += 1;
            println!("ok   {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {detail:?}");
        }
    }

    /// Expects success; returns the value.
    pub fn ok<T: Debug>(&mut self, name: &str, result: Result<T, Error>) -> Option<T> {
        let holds = result.is_ok();
        self.that(name, holds, &result);
        result.ok()
    }

    /// Expects exactly `expected`.
    pub fn err<T: Debug>(&mut self, name: &str, result: Result<T, Error>, expected: Error) {
        let holds = matches!(&result, Err(e) if *e == expected);
        self.that(name, holds, (ExpectedError(expected), result));
    }

    /// Expects one of `expected` (where the ABI leaves the choice open).
    pub fn err_any<T: Debug>(&mut self, name: &str, result: Result<T, Error>, expected: &[Error]) {
        let holds = matches!(&result, Err(e) if expected.contains(e));
        self.that(name, holds, (expected, result));
    }

    /// Prints the summary line the scenarios look for.
    pub fn summary(&self) {
        println!("{} passed, {} failed", self.passed, self.failed);
    }
}

#[derive(Debug)]
struct ExpectedError(#[allow(dead_code)] Error);
