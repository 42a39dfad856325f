//! Decoding that finds every problem, not just the first.
//!
//! ron stops at the first field it cannot decode. To report all of them in
//! one run, [`decode_all`] decodes again after each such error with the
//! offending field blanked out (its characters replaced by spaces, so lines
//! and columns stay where they were), until the text decodes or an error is
//! one that blanking cannot get past (broken syntax: a missing comma, an
//! unclosed bracket or string). A field that is missing is reported, and
//! decoding continues without the list item (child, route) that lacks it.
//!
//! Before any of that, [`nesting`] refuses text that nests brackets deeper
//! than [`MAX_NESTING`], with the depth and the place, so hostile or
//! runaway input gets an Arbor message instead of the parser's.

use crate::diagnostics::{Diagnostic, Span, closest, from_ron};
use crate::outline::{Field, Node, NodeKind, Outline, location_in, offset_in};
use crate::{Location, ron_options};
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ron::error::Error;
use serde::de::DeserializeOwned;

/// The deepest nesting of `(`, `[` and `{` a scenario may have: room for
/// far more nested inits than labels allow (each level of init costs
/// three), and far below where the parser would give up.
pub const MAX_NESTING: usize = 64;

/// How many errors one decode reports at most before it gives up.
const MAX_ERRORS: usize = 100;

/// A decoded value and what was found on the way.
pub(crate) struct Decoded<T> {
    /// The value, when the text (with bad fields blanked) decodes.
    pub value: Option<T>,
    /// Every decoding error, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether list items had to be dropped to decode: the value then lacks
    /// whole children or routes, and checks across siblings would mislead.
    pub dropped_items: bool,
}

/// Where `text` first nests deeper than [`MAX_NESTING`], as an error
/// located in `source` (`text` starts at byte `base` of it).
pub(crate) fn nesting(text: &str, source: &str, base: usize) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                // Skip the string, escapes included.
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek().map(|(_, c)| *c) == Some('/') => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    let start = location_in(source, base + at);
                    let end = Location {
                        column: start.column + 1,
                        ..start
                    };
                    return Some(
                        Diagnostic::error(
                            Some(Span { start, end }),
                            format!(
                                "the text nests {depth} levels of brackets deep here; at most {MAX_NESTING} are allowed"
                            ),
                        )
                        .with_hint(format!(
                            "a scenario may nest at most {MAX_NESTING} levels of (), [] and {{}}; flatten it"
                        )),
                    );
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Errors after which the text is still well-formed RON around the field
/// at fault, so blanking that field lets decoding go on.
fn continuable(error: &Error) -> bool {
    matches!(
        error,
        Error::Message(_)
            | Error::ExpectedBoolean
            | Error::ExpectedChar
            | Error::ExpectedFloat
            | Error::ExpectedInteger
            | Error::ExpectedOption
            | Error::ExpectedString
            | Error::ExpectedStructLike
            | Error::ExpectedNamedStructLike(_)
            | Error::ExpectedDifferentStructName { .. }
            | Error::ExpectedArray
            | Error::ExpectedMap
            | Error::ExpectedUnit
            | Error::IntegerOutOfBounds
            | Error::InvalidValueForType { .. }
            | Error::ExpectedDifferentLength { .. }
            | Error::NoSuchEnumVariant { .. }
            | Error::NoSuchStructField { .. }
            | Error::MissingStructField { .. }
            | Error::DuplicateStructField { .. }
    )
}

/// The byte range of `name: value` (and the comma after it) of the deepest
/// struct field that contains `offset`; for a missing field (`item`), of
/// the deepest list item that contains it instead.
fn enclosing<'n>(node: &'n Node, offset: usize, item: bool, found: &mut Option<Found<'n>>) {
    match &node.kind {
        NodeKind::Fields(fields) => {
            for field in fields {
                let (start, end) = (field.name_range.start, field.value.range.end);
                if (start..end.max(start + 1)).contains(&offset) {
                    if !item {
                        *found = Some(Found {
                            start,
                            end,
                            field: Some(field),
                            siblings: fields,
                        });
                    }
                    enclosing(&field.value, offset, item, found);
                }
            }
        }
        NodeKind::Items(items) => {
            for child in items {
                let range = child.range;
                if (range.start..range.end.max(range.start + 1)).contains(&offset) {
                    if item {
                        *found = Some(Found {
                            start: range.start,
                            end: range.end,
                            field: None,
                            siblings: &[],
                        });
                    }
                    enclosing(child, offset, item, found);
                }
            }
        }
        NodeKind::Atom => {}
    }
}

/// What blanking would remove: a field (with its siblings) or a list item.
struct Found<'n> {
    start: usize,
    end: usize,
    field: Option<&'n Field>,
    siblings: &'n [Field],
}

/// `text` with the misspelt field name at `field` replaced by `meant`
/// (padded, taking blanks around the colon, so that the value and all
/// that follows stay in place), if it fits.
fn rename(text: &str, field: &Field, meant: &str) -> Option<String> {
    let start = field.name_range.start;
    let value = field.value.range.start;
    let between = text.get(start..value)?;
    // `name`, blanks, `:`, blanks: all of it is rewritten.
    if between.len() < meant.len() + 1 || !between.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(text.get(..start)?);
    out.push_str(meant);
    out.push(':');
    for _ in meant.len() + 1..between.len() {
        out.push(' ');
    }
    out.push_str(text.get(value..)?);
    Some(out)
}

/// Replaces `start..end` and a comma right after it by spaces, keeping
/// line breaks, so every other character stays at its line and column.
fn blank(text: &str, start: usize, end: usize) -> String {
    let rest = text.get(end..).unwrap_or("");
    let trimmed = rest.trim_start();
    let end = if trimmed.starts_with(',') {
        end + (rest.len() - trimmed.len()) + 1
    } else {
        end
    };
    let mut out = String::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        if (start..end).contains(&at) && c != '\n' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes `text` (which starts at byte `base` of `source`) as `T`,
/// reporting every field that does not decode.
pub(crate) fn decode_all<T: DeserializeOwned>(text: &str, source: &str, base: usize) -> Decoded<T> {
    decode_with(text, source, base, |current| {
        ron_options().from_str::<T>(current)
    })
}

/// Like [`decode_all`], with any decoder that reports ron's errors (a
/// component's own config parser).
pub(crate) fn decode_with<T>(
    text: &str,
    source: &str,
    base: usize,
    decode: impl Fn(&str) -> Result<T, ron::error::SpannedError>,
) -> Decoded<T> {
    let mut decoded = Decoded {
        value: None,
        diagnostics: Vec::new(),
        dropped_items: false,
    };
    if let Some(too_deep) = nesting(text, source, base) {
        decoded.diagnostics.push(too_deep);
        return decoded;
    }
    let mut current = String::from(text);
    // Fields blanked because their value was bad, or names a blanked
    // unknown field was probably meant to be: their absence is no news.
    let mut expected_missing: BTreeSet<String> = BTreeSet::new();
    let mut last_offset = None;
    while decoded.diagnostics.len() < MAX_ERRORS {
        let error = match decode(&current) {
            Ok(value) => {
                decoded.value = Some(value);
                break;
            }
            Err(error) => error,
        };
        let at = Location {
            line: error.span.start.line,
            column: error.span.start.col,
        };
        let offset = offset_in(&current, at).unwrap_or(current.len());
        let missing = match &error.code {
            Error::MissingStructField { field, .. } => Some(String::from(*field)),
            _ => None,
        };
        let expected = missing
            .as_ref()
            .is_some_and(|field| expected_missing.contains(field));
        if !expected {
            decoded.diagnostics.push(from_ron(&error, source, base));
        }
        if !continuable(&error.code) || last_offset == Some(offset) {
            break;
        }
        last_offset = Some(offset);
        let outline = Outline::new(&current);
        let Some(root) = outline.root() else { break };
        let mut found = None;
        enclosing(root, offset, missing.is_some(), &mut found);
        let Some(Found {
            start,
            end,
            field,
            siblings,
        }) = found
        else {
            break;
        };
        let mut renamed = None;
        match (&error.code, field) {
            (_, None) => decoded.dropped_items = true,
            (
                Error::NoSuchStructField {
                    expected, found, ..
                },
                Some(field),
            ) => {
                // A likely typo of a field not written elsewhere: decode on
                // as if it were spelt right, so later checks still run.
                if let Some(near) = closest(found, expected.iter().copied()) {
                    expected_missing.insert(String::from(near));
                    if !siblings.iter().any(|f| f.name == near) {
                        renamed = rename(&current, field, near);
                    }
                }
            }
            (_, Some(field)) => {
                expected_missing.insert(field.name.clone());
            }
        }
        current = match renamed {
            Some(text) => text,
            None => blank(&current, start, end),
        };
    }
    decoded
}
