//! The kernel command line: space-separated `key=value` words.

#![forbid(unsafe_code)]

/// The value of `key` in `cmdline`, if present.
pub fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// Exceptions the kernel can provoke in itself on request (`selftest=NAME`),
/// so that scenarios prove that the exception path reports and stops cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// `ud2`: invalid opcode (#UD).
    InvalidOpcode,
    /// A read from an unmapped address (#PF).
    PageFault,
    /// An integer division by zero (#DE).
    DivideError,
    /// A read through a non-canonical address (#GP).
    GeneralProtection,
    /// `int3` (#BP).
    Breakpoint,
    /// Unbounded recursion on the kernel stack: must hit the guard page
    /// and end in a double-fault report, never in silent corruption.
    StackOverflow,
}

impl SelfTest {
    /// Every self-test, with its command-line name.
    pub const ALL: [(&'static str, SelfTest); 6] = [
        ("invalid_opcode", SelfTest::InvalidOpcode),
        ("page_fault", SelfTest::PageFault),
        ("divide_error", SelfTest::DivideError),
        ("general_protection", SelfTest::GeneralProtection),
        ("breakpoint", SelfTest::Breakpoint),
        ("stack_overflow", SelfTest::StackOverflow),
    ];

    /// The self-test `name` names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, test)| test)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_key() {
        assert_eq!(
            value("a=1 selftest=page_fault b", "selftest"),
            Some("page_fault")
        );
        assert_eq!(value("selftest", "selftest"), None);
        assert_eq!(value("", "selftest"), None);
        assert_eq!(value("x=1", "selftest"), None);
    }

    #[test]
    fn self_tests_are_named() {
        assert_eq!(SelfTest::from_name("page_fault"), Some(SelfTest::PageFault));
        assert_eq!(SelfTest::from_name("reboot"), None);
    }
}
