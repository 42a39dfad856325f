//! The one syntax for the names a scenario gives to children and services.
//!
//! A child's name is the first element of every label its sessions carry,
//! and a service's name travels in every session request and log line, so
//! both are kept to what reads the same everywhere: ASCII letters, digits,
//! `_`, `-` and `.`, at least one character and at most [`MAX_NAME_LEN`]
//! bytes. Every such name is also a valid label element
//! ([`crate::label::check_element`] is asked first, so the two rules can
//! never disagree). `cargo arbor check` and init apply the same
//! [`check_name`]: init refuses at start a child that check would refuse.

use crate::label::{LabelError, check_element};
use core::fmt;

/// The longest child or service name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// What a name is: a child's or a service's (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A child of an init.
    Child,
    /// A service in `provides`, `parent_provides` or a route.
    Service,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Child => "child name",
            NameKind::Service => "service name",
        })
    }
}

/// Why a name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name is not a usable label element.
    Label(LabelError),
    /// The name holds a character outside the allowed set.
    Character {
        /// The first such character.
        found: char,
        /// Its position in characters, from 0.
        position: usize,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("a name must not be empty"),
            NameError::TooLong { len } => {
                write!(
                    f,
                    "a name is at most {MAX_NAME_LEN} bytes, this one has {len}"
                )
            }
            NameError::Label(error) => write!(f, "{error}"),
            NameError::Character { found, position } => write!(
                f,
                "character {position} is {:?}; names use ASCII letters, digits, '_', '-' and '.' only",
                found
            ),
        }
    }
}

/// Whether `c` may appear in a name.
pub fn name_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Checks a child or service name against the one syntax.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    check_element(name).map_err(NameError::Label)?;
    if let Some((position, found)) = name.chars().enumerate().find(|(_, c)| !name_character(*c)) {
        return Err(NameError::Character { found, position });
    }
    Ok(())
}

/// Checks every name a child brings: its own, each service it provides and
/// each service its routes name (`"*"` is a route's wildcard). init calls
/// this before it starts a child, so a name check refuses never runs.
pub fn check_child(child: &crate::Child) -> Result<(), alloc::string::String> {
    use alloc::format;
    check_name(&child.name)
        .map_err(|error| format!("child name \"{}\": {error}", Shown(&child.name)))?;
    let routed = child
        .routes
        .iter()
        .map(|route| route.service.as_str())
        .filter(|service| *service != crate::ANY_SERVICE);
    for service in child.provides.iter().map(|s| s.as_str()).chain(routed) {
        check_name(service)
            .map_err(|error| format!("service name \"{}\": {error}", Shown(service)))?;
    }
    Ok(())
}

/// A name for messages: escaped, and cut after [`SHOWN_CHARS`] characters
/// with its length, so a 10,000-character name does not fill the screen.
pub struct Shown<'a>(pub &'a str);

/// How many characters of a name [`Shown`] prints.
pub const SHOWN_CHARS: usize = 40;

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.chars().count();
        for c in self.0.chars().take(SHOWN_CHARS) {
            write!(f, "{}", c.escape_debug())?;
        }
        if count > SHOWN_CHARS {
            write!(f, "... ({} bytes in all)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in ["timer", "pit_timer", "net-0", "fs.root", "A9"] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
        assert_eq!(check_name(&"x".repeat(MAX_NAME_LEN)), Ok(()));
    }

    #[test]
    fn empty_long_and_odd_names_say_why() {
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(
            check_name(&"x".repeat(10_000)),
            Err(NameError::TooLong { len: 10_000 })
        );
        assert_eq!(
            check_name("a->b"),
            Err(NameError::Label(LabelError::ContainsSeparator))
        );
        assert_eq!(
            check_name("evil\u{202E}txt"),
            Err(NameError::Label(LabelError::ControlCharacter))
        );
        assert_eq!(
            check_name("*"),
            Err(NameError::Character {
                found: '*',
                position: 0
            })
        );
        assert_eq!(
            check_name("my timer"),
            Err(NameError::Character {
                found: ' ',
                position: 2
            })
        );
        assert_eq!(
            check_name("zeitgeber-ü"),
            Err(NameError::Character {
                found: 'ü',
                position: 10
            })
        );
    }

    #[test]
    fn a_child_is_checked_whole() {
        let child = |name: &str, provides: &str, routed: &str| crate::Child {
            name: name.into(),
            binary: None,
            quota: None,
            provides: alloc::vec![provides.into()],
            routes: alloc::vec![crate::Route {
                service: routed.into(),
                label: None,
                to: crate::RouteTarget::Parent,
            }],
            restart: crate::Restart::Never,
            config: None,
            hardware: crate::Hardware::default(),
        };
        assert_eq!(check_child(&child("timer", "Timer", "*")), Ok(()));
        assert!(
            check_child(&child("", "Timer", "Log"))
                .unwrap_err()
                .starts_with("child name")
        );
        let error = check_child(&child("t", "*", "Log")).unwrap_err();
        assert!(error.contains("service name \"*\""), "{error}");
        let long = "x".repeat(10_000);
        let error = check_child(&child("t", "Timer", &long)).unwrap_err();
        assert!(error.contains("... (10000 bytes in all)"), "{error}");
        assert!(error.len() < 200, "{error}");
    }

    #[test]
    fn every_name_is_a_label_element() {
        for name in ["a", "a.b-c_d", &"z".repeat(MAX_NAME_LEN)] {
            assert!(check_name(name).is_ok());
            assert!(check_element(name).is_ok());
        }
    }
}
