//! Diagnostics: what `arbor check` reports and init refuses, each with the
//! place in the text, a one-line message and, where we can give one, a hint.
//!
//! Rendering (source line, caret) is the host tool's business; this module
//! only produces values, so init can log the same findings on the target.

use crate::error::{ConfigError, Location};
use crate::outline::location_in;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Suspicious but harmless; does not fail a check.
    Warning,
    /// The scenario cannot run as written.
    Error,
}

/// A stretch of the scenario text, as lines and columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Where it starts.
    pub start: Location,
    /// Where it ends (exclusive).
    pub end: Location,
}

/// One finding about a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The text at fault, when there is one.
    pub span: Option<Span>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Option<Span>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Option<Span>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(span, message)
        }
    }

    /// The same finding with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this finding fails a check.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The finding as the error type [`crate::parse_scenario`] returns.
    pub fn to_config_error(&self) -> ConfigError {
        ConfigError {
            location: self.span.map(|s| s.start),
            message: self.message.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = self.span {
            write!(f, "{}:{}: ", span.start.line, span.start.column)?;
        }
        f.write_str(&self.message)
    }
}

/// Edit distance between two names (Levenshtein, by characters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The candidate closest to `wrong`, if it is close enough to be a likely typo.
pub fn closest<'c>(wrong: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let wrong = wrong.to_lowercase();
    let limit = (wrong.chars().count() / 3).max(1);
    // A shared start of four or more characters is a likely typo too ("childs").
    let stem: String = wrong.chars().take(4).collect();
    candidates
        .into_iter()
        .map(|c| {
            let candidate = c.to_lowercase();
            let distance = edit_distance(&wrong, &candidate);
            let related = stem.chars().count() == 4 && candidate.starts_with(stem.as_str());
            (
                if related {
                    distance.min(limit)
                } else {
                    distance
                },
                c,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns ron's error into a diagnostic with a hint; `base` is the offset of
/// the parsed text within `source` (non-zero for a nested init's config).
pub(crate) fn from_ron(error: &ron::error::SpannedError, source: &str, base: usize) -> Diagnostic {
    use ron::error::Error;
    let shift = |position: ron::error::Position| {
        let start = location_in(source, base);
        if position.line <= 1 {
            Location {
                line: start.line,
                column: start.column + position.col.saturating_sub(1),
            }
        } else {
            Location {
                line: start.line + position.line - 1,
                column: position.col,
            }
        }
    };
    let mut start = shift(error.span.start);
    let mut end = shift(error.span.end);
    if end == start {
        end.column += 1;
    }
    let (message, hint) = match &error.code {
        Error::NoSuchStructField {
            expected,
            found,
            outer,
        } => {
            let place = outer
                .as_deref()
                .map(|o| format!(" in `{o}`"))
                .unwrap_or_default();
            let hint = match closest(found, expected.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("the fields here are {}", quoted_list(expected)),
            };
            (format!("unknown field `{found}`{place}"), Some(hint))
        }
        Error::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => {
            let place = outer
                .as_deref()
                .map(|o| format!(" for `{o}`"))
                .unwrap_or_default();
            let hint = match closest(found, expected.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("write one of {}", quoted_list(expected)),
            };
            (format!("unknown variant `{found}`{place}"), Some(hint))
        }
        Error::MissingStructField { field, outer } => {
            let place = outer
                .as_deref()
                .map(|o| format!(" in `{o}`"))
                .unwrap_or_default();
            (
                format!("missing field `{field}`{place}"),
                Some(format!("add `{field}: ...`")),
            )
        }
        Error::DuplicateStructField { field, .. } => (
            format!("field `{field}` is given twice"),
            Some(String::from("keep one of them")),
        ),
        Error::Message(text)
            if text.contains("is not a size") || text.contains("is not a duration") =>
        {
            // The quantity parser's message names the accepted forms after the colon.
            match text.split_once(": ") {
                Some((what, forms)) => (String::from(what), Some(String::from(forms))),
                None => (text.clone(), None),
            }
        }
        Error::ExpectedComma => {
            // ron notices at the next item; the comma belongs after the previous one.
            let error_offset = crate::outline::offset_in(
                source.get(base..).unwrap_or(""),
                Location {
                    line: error.span.start.line,
                    column: error.span.start.col,
                },
            )
            .map_or(base, |o| base + o);
            let before = source.get(..error_offset).unwrap_or("").trim_end().len();
            if before > 0 {
                start = location_in(source, before);
                end = Location {
                    column: start.column + 1,
                    ..start
                };
            }
            (
                String::from("expected a comma"),
                Some(String::from("separate fields and list items with `,`")),
            )
        }
        Error::ExpectedInteger => (
            String::from("expected a whole number"),
            Some(String::from("write digits without quotes, e.g. `caps: 64`")),
        ),
        Error::ExpectedStringEnd => (
            String::from("this string is never closed"),
            Some(String::from("add the closing `\"`")),
        ),
        Error::Eof => {
            // ron reports the end of input; point at the last character instead of past it.
            start = location_in(
                source,
                base + source.get(base..).map_or(0, |s| s.trim_end().len()),
            );
            end = Location {
                column: start.column + 1,
                ..start
            };
            (
                String::from("the text ends too early"),
                Some(String::from("a bracket or quote is left open")),
            )
        }
        other => (other.to_string(), None),
    };
    let diagnostic = Diagnostic::error(Some(Span { start, end }), message);
    match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("routes", "routes"), 0);
        assert_eq!(edit_distance("rotues", "routes"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("provide", "provides"), 1);
    }

    #[test]
    fn suggestions_are_close_or_absent() {
        let fields = ["name", "binary", "quota", "provides", "routes"];
        assert_eq!(closest("rootes", fields), Some("routes"));
        assert_eq!(closest("Binary", fields), Some("binary"));
        assert_eq!(closest("colour", fields), None);
        assert_eq!(
            closest("childs", ["parent_provides", "children"]),
            Some("children")
        );
    }
}
