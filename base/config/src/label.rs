//! Session labels: a sequence of elements, one added by each parent on the
//! way up ("init -> hello -> timer"), written with [`SEPARATOR`] between
//! them.
//!
//! A label is only worth something if nobody can forge its structure: a
//! child asking for a ROM labelled `"bin/ -> config"` must not look to a
//! route `Prefix("bin/")` like the element `"bin/"`, nor to core like a
//! request for the module `"config"`. So every element is checked
//! ([`check_element`]) before a request is routed: no element may contain
//! the separator's arrow, control characters or text-direction overrides,
//! and none may be longer than [`MAX_ELEMENT_LEN`]. A leaf component may
//! send exactly one element; only a nested init, which composes the labels
//! of its own children, may send several ([`check_request_label`]). With
//! that, splitting at [`SEPARATOR`] gives back exactly the elements that
//! were added, and routes, server policies and `cargo arbor check
//! --explain` all see the same structure.

use core::fmt;

/// What stands between two elements of a composed label.
pub const SEPARATOR: &str = " -> ";

/// The part of [`SEPARATOR`] that no element may contain.
const ARROW: &str = "->";

/// The longest element, in bytes: enough for any name a person writes,
/// short enough that no label swamps a log line.
pub const MAX_ELEMENT_LEN: usize = 100;

/// The most elements a label a nested init forwards may have (its depth).
pub const MAX_ELEMENTS: usize = 16;

/// Why a label (or one of its elements) is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelError {
    /// An element contains "->", so it could pass for two elements.
    ContainsSeparator,
    /// An element contains a control character or a text-direction
    /// override, which would make log lines lie about what they say.
    ControlCharacter,
    /// An element is longer than [`MAX_ELEMENT_LEN`] bytes.
    TooLong,
    /// An element of a composed label is empty.
    EmptyElement,
    /// A composed label has more than [`MAX_ELEMENTS`] elements.
    TooManyElements,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::ContainsSeparator => {
                write!(f, "a label element must not contain \"{ARROW}\"")
            }
            LabelError::ControlCharacter => f.write_str(
                "a label element must not contain control characters or text-direction overrides",
            ),
            LabelError::TooLong => {
                write!(f, "a label element must be at most {MAX_ELEMENT_LEN} bytes")
            }
            LabelError::EmptyElement => f.write_str("a composed label has an empty element"),
            LabelError::TooManyElements => {
                write!(f, "a composed label has more than {MAX_ELEMENTS} elements")
            }
        }
    }
}

/// Whether `c` may not appear in a label element: control characters, and
/// the Unicode characters that reorder how text is displayed (bidi embedding,
/// override and isolate controls, and the invisible direction marks).
fn forbidden_character(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Checks one element: a child's own label, or a child's name.
/// The empty element is allowed (a session without a label of its own).
pub fn check_element(element: &str) -> Result<(), LabelError> {
    if element.contains(ARROW) {
        return Err(LabelError::ContainsSeparator);
    }
    if element.chars().any(forbidden_character) {
        return Err(LabelError::ControlCharacter);
    }
    if element.len() > MAX_ELEMENT_LEN {
        return Err(LabelError::TooLong);
    }
    Ok(())
}

/// Checks the label a child put on a session request. A leaf component's
/// label is one element; a nested init (`composed`) forwards the labels of
/// its own children, already composed: each of its elements is checked, and
/// none may be empty.
pub fn check_request_label(label: &str, composed: bool) -> Result<(), LabelError> {
    if !composed || label.is_empty() {
        return check_element(label);
    }
    let mut count = 0;
    for element in elements(label) {
        count += 1;
        if count > MAX_ELEMENTS {
            return Err(LabelError::TooManyElements);
        }
        if element.is_empty() {
            return Err(LabelError::EmptyElement);
        }
        check_element(element)?;
    }
    Ok(())
}

/// The elements of a composed label, outermost first.
pub fn elements(label: &str) -> core::str::Split<'_, &'static str> {
    label.split(SEPARATOR)
}

/// The innermost element: what the component at the end of the chain asked
/// for ("init -> hello -> config" → "config").
pub fn last_element(label: &str) -> &str {
    label.rsplit(SEPARATOR).next().unwrap_or(label)
}

/// A label as it may appear in a log line: control and direction characters
/// escaped, and cut after [`MAX_ELEMENT_LEN`] characters, so that a refused
/// label cannot forge or swamp the line that reports it.
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (count, c) in self.0.chars().enumerate() {
            if count == MAX_ELEMENT_LEN {
                return f.write_str("...");
            }
            if forbidden_character(c) || c == '"' || c == '\\' {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    #[test]
    fn ordinary_elements_pass() {
        for element in ["", "config", "bin/hello", "left", "ünïcode ok", "a-b>c"] {
            assert_eq!(check_element(element), Ok(()), "{element:?}");
        }
    }

    #[test]
    fn an_element_cannot_pose_as_two() {
        for forged in ["bin/ -> config", "x->y", "->", "a ->b", "bin/->config"] {
            assert_eq!(
                check_element(forged),
                Err(LabelError::ContainsSeparator),
                "{forged:?}"
            );
            assert_eq!(
                check_request_label(forged, false),
                Err(LabelError::ContainsSeparator)
            );
        }
    }

    #[test]
    fn control_and_direction_characters_are_refused() {
        for forged in [
            "a\nb",
            "tab\there",
            "nul\0",
            "esc\u{1b}[31m",
            "evil\u{202E}gnp.exe",
            "iso\u{2066}late",
            "mark\u{200F}",
        ] {
            assert_eq!(
                check_element(forged),
                Err(LabelError::ControlCharacter),
                "{forged:?}"
            );
        }
    }

    #[test]
    fn length_is_bounded() {
        let longest: String = "x".repeat(MAX_ELEMENT_LEN);
        assert_eq!(check_element(&longest), Ok(()));
        let too_long: String = "x".repeat(MAX_ELEMENT_LEN + 1);
        assert_eq!(check_element(&too_long), Err(LabelError::TooLong));
        let huge: String = "y".repeat(10_000);
        assert_eq!(check_element(&huge), Err(LabelError::TooLong));
    }

    #[test]
    fn a_nested_init_may_forward_composed_labels() {
        assert_eq!(check_request_label("probe -> echo", true), Ok(()));
        assert_eq!(check_request_label("probe", true), Ok(()));
        assert_eq!(check_request_label("", true), Ok(()));
        // ... but each element is still checked.
        assert_eq!(
            check_request_label("probe ->  -> x", true),
            Err(LabelError::EmptyElement)
        );
        assert_eq!(
            check_request_label("probe -> a->b", true),
            Err(LabelError::ContainsSeparator)
        );
        assert_eq!(
            check_request_label("probe -> \u{202E}x", true),
            Err(LabelError::ControlCharacter)
        );
        let deep: Vec<&str> = core::iter::repeat_n("n", MAX_ELEMENTS + 1).collect();
        assert_eq!(
            check_request_label(&deep.join(SEPARATOR), true),
            Err(LabelError::TooManyElements)
        );
    }

    #[test]
    fn printable_labels_cannot_forge_a_log_line() {
        use alloc::format;
        assert_eq!(format!("{}", Printable("a -> b")), "a -> b");
        assert_eq!(
            format!("{}", Printable("x\n[init] ok \"q\"")),
            "x\\n[init] ok \\\"q\\\""
        );
        assert_eq!(format!("{}", Printable("\u{202E}")), "\\u{202e}");
        let long = format!("{}", Printable(&"z".repeat(5_000)));
        assert_eq!(long.len(), MAX_ELEMENT_LEN + 3);
    }

    #[test]
    fn checked_elements_split_back_exactly() {
        let parts = ["init", "nested", "probe", "bin/x"];
        for part in parts {
            assert_eq!(check_element(part), Ok(()));
        }
        let composed = parts.join(SEPARATOR);
        assert_eq!(elements(&composed).collect::<Vec<_>>(), parts);
        assert_eq!(last_element(&composed), "bin/x");
        assert_eq!(last_element("config"), "config");
        assert_eq!(last_element(""), "");
    }
}
