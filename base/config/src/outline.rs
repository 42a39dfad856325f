//! Where each value sits in the scenario text.
//!
//! ron decodes values without keeping their positions, but a semantic error
//! ("duplicate child name") must point at the offending text. This module
//! reads the same text a second time into an outline: a tree that records,
//! for every struct field, sequence item and enum argument, the byte range it
//! covers. The validator then asks for a path such as
//! `init.children[2].routes[0].to` and gets a line and column.
//!
//! It only has to understand text that ron already accepted, but it must
//! never panic on anything: unknown input yields a partial outline, and depth
//! is bounded so hostile nesting cannot overflow the stack.

use crate::error::Location;
use alloc::string::String;
use alloc::vec::Vec;

/// Nesting deeper than this is not outlined (ron refuses it too).
const MAX_DEPTH: usize = 100;

/// A byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// One value and what it contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The whole value, including a struct or variant name before `(`.
    pub range: ByteRange,
    /// Its parts.
    pub kind: NodeKind,
}

/// The shape of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// `(name: value, ...)`, optionally named.
    Fields(Vec<Field>),
    /// `[a, b]`, `(a, b)`, `Variant(a)`, or a map's keys and values in turn.
    Items(Vec<Node>),
    /// A string, number, char, identifier or anything else indivisible.
    Atom,
}

/// `name: value` inside a struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name as written.
    pub name: String,
    /// Where the name is.
    pub name_range: ByteRange,
    /// The value.
    pub value: Node,
}

/// One step of a path into the outline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A struct field by name.
    Field(String),
    /// A sequence item or enum argument by position.
    Index(usize),
}

/// A path from the top of the document to a value, e.g. `init.children[2].name`.
pub type Path = Vec<Step>;

/// Extends `path` by a field.
pub fn field(path: &[Step], name: &str) -> Path {
    let mut extended = path.to_vec();
    extended.push(Step::Field(String::from(name)));
    extended
}

/// Extends `path` by an index.
pub fn index(path: &[Step], position: usize) -> Path {
    let mut extended = path.to_vec();
    extended.push(Step::Index(position));
    extended
}

/// The outline of one text.
#[derive(Clone, Debug)]
pub struct Outline<'t> {
    text: &'t str,
    root: Option<Node>,
}

impl<'t> Outline<'t> {
    /// Outlines `text`; never fails, at worst the outline is empty or partial.
    pub fn new(text: &'t str) -> Self {
        let mut reader = Reader { text, at: 0 };
        reader.skip_trivia();
        let root = reader.value(0);
        Self { text, root }
    }

    /// The outermost value, if the text has one.
    pub fn root(&self) -> Option<&Node> {
        self.root.as_ref()
    }

    /// The value at `path`, if the text has it.
    pub fn find(&self, path: &[Step]) -> Option<&Node> {
        let mut node = self.root.as_ref()?;
        for step in path {
            node = match (step, &node.kind) {
                (Step::Field(name), NodeKind::Fields(fields)) => {
                    &fields.iter().find(|f| &f.name == name)?.value
                }
                (Step::Index(i), NodeKind::Items(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The range of the value at `path`, or of the deepest value on the way
    /// to it that the text has (so a defaulted field points at its struct).
    pub fn locate(&self, path: &[Step]) -> Option<ByteRange> {
        (0..=path.len())
            .rev()
            .find_map(|depth| path.get(..depth).and_then(|p| self.find(p)))
            .map(|node| node.range)
    }

    /// The range of the name of the field at the end of `path`.
    pub fn field_name(&self, path: &[Step]) -> Option<ByteRange> {
        let (Step::Field(name), parent) = path.split_last()? else {
            return None;
        };
        match &self.find(parent)?.kind {
            NodeKind::Fields(fields) => Some(fields.iter().find(|f| &f.name == name)?.name_range),
            _ => None,
        }
    }

    /// Line and column (both from 1, columns in characters) of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        location_in(self.text, offset)
    }
}

/// Line and column (both from 1, columns in characters) of byte `offset` in `text`.
pub fn location_in(text: &str, offset: usize) -> Location {
    let mut line = 1;
    let mut column = 1;
    for (at, c) in text.char_indices() {
        if at >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Location { line, column }
}

/// The byte offset of a line and column in `text`, if it lies within it.
pub fn offset_in(text: &str, location: Location) -> Option<usize> {
    let mut line = 1;
    let mut column = 1;
    for (at, c) in text.char_indices() {
        if line == location.line && column == location.column {
            return Some(at);
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line == location.line && column == location.column).then_some(text.len())
}

struct Reader<'t> {
    text: &'t str,
    at: usize,
}

impl Reader<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.at..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.at += c.len_utf8();
        }
    }

    /// Skips whitespace, `//` and (nested) `/* */` comments, and `#![...]` attributes.
    fn skip_trivia(&mut self) {
        loop {
            let rest = self.rest();
            if rest.starts_with("//") {
                let length = rest.find('\n').unwrap_or(rest.len());
                self.at += length;
            } else if rest.starts_with("/*") {
                self.skip_block_comment();
            } else if rest.starts_with("#!") {
                let length = rest.find(']').map_or(rest.len(), |i| i + 1);
                self.at += length;
            } else if self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            } else {
                return;
            }
        }
    }

    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while !self.rest().is_empty() {
            if self.rest().starts_with("/*") {
                depth += 1;
                self.at += 2;
            } else if self.rest().starts_with("*/") {
                depth = depth.saturating_sub(1);
                self.at += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.bump();
            }
        }
    }

    fn identifier(&mut self) -> Option<ByteRange> {
        let start = self.at;
        if self.rest().starts_with("r#") {
            self.at += 2;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '+' || c == '-')
        {
            self.bump();
        }
        (self.at > start).then_some(ByteRange {
            start,
            end: self.at,
        })
    }

    /// A `"..."`, `r#"..."#`, `b"..."` string or a `'c'` char, starting here.
    fn quoted(&mut self) -> bool {
        let rest = self.rest();
        let prefix = if rest.starts_with("br") || rest.starts_with("b\"") {
            1
        } else {
            0
        };
        let body = rest.get(prefix..).unwrap_or("");
        if body.starts_with('r') && (body[1..].starts_with('#') || body[1..].starts_with('"')) {
            let hashes = body[1..].chars().take_while(|c| *c == '#').count();
            let opening = 1 + hashes + 1;
            if body.get(1 + hashes..).is_some_and(|b| b.starts_with('"')) {
                let mut closing = String::from("\"");
                closing.extend(core::iter::repeat_n('#', hashes));
                let after = body.get(opening..).unwrap_or("");
                let length = after
                    .find(closing.as_str())
                    .map_or(after.len(), |i| i + closing.len());
                self.at += prefix + opening + length;
                return true;
            }
            return false;
        }
        let Some(quote) = body.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return false;
        };
        self.at += prefix + 1;
        while let Some(c) = self.peek() {
            self.bump();
            if c == '\\' {
                self.bump();
            } else if c == quote {
                break;
            }
        }
        true
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.at;
        let c = self.peek()?;
        let rest = self.rest();
        let quoted_start = c == '"'
            || c == '\''
            || ["b\"", "r\"", "r#\"", "br"]
                .iter()
                .any(|p| rest.starts_with(p));
        if quoted_start && self.quoted() {
            return Some(atom(start, self.at));
        }
        match c {
            '(' => self.group(start, ')', depth),
            '[' => self.group(start, ']', depth),
            '{' => self.group(start, '}', depth),
            _ => {
                let name = self.identifier();
                if name.is_none() {
                    // Something the outline does not know; step over it.
                    self.bump();
                    return Some(atom(start, self.at));
                }
                let end = self.at;
                self.skip_trivia();
                if self.peek() == Some('(') {
                    self.group(start, ')', depth)
                } else {
                    self.at = end;
                    Some(atom(start, end))
                }
            }
        }
    }

    /// Reads from an opening bracket to its closing one; the node starts at `start`.
    fn group(&mut self, start: usize, close: char, depth: usize) -> Option<Node> {
        self.bump();
        self.skip_trivia();
        let mut fields = Vec::new();
        let mut items = Vec::new();
        let structlike = close == ')' && self.starts_field();
        loop {
            self.skip_trivia();
            match self.peek() {
                None => break,
                Some(c) if c == close => {
                    self.bump();
                    break;
                }
                Some(',') | Some(':') => {
                    self.bump();
                    continue;
                }
                Some(')') | Some(']') | Some('}') => {
                    // A mismatched closer: stop here rather than guess.
                    self.bump();
                    break;
                }
                Some(_) => {}
            }
            let before = self.at;
            if structlike && self.starts_field() {
                let name_start = self.at;
                let name_range = self.identifier()?;
                let name = String::from(self.text.get(name_start..name_range.end)?);
                self.skip_trivia();
                self.bump(); // the ':'
                self.skip_trivia();
                let value = self.value(depth + 1)?;
                fields.push(Field {
                    name,
                    name_range,
                    value,
                });
            } else {
                let value = self.value(depth + 1)?;
                items.push(value);
            }
            if self.at == before {
                self.bump();
            }
        }
        let range = ByteRange {
            start,
            end: self.at,
        };
        let kind = if structlike {
            NodeKind::Fields(fields)
        } else {
            NodeKind::Items(items)
        };
        Some(Node { range, kind })
    }

    /// Whether an identifier followed by `:` (a struct field) starts here.
    fn starts_field(&mut self) -> bool {
        let start = self.at;
        let found = self.identifier().is_some() && {
            self.skip_trivia();
            self.peek() == Some(':')
        };
        self.at = start;
        found
    }
}

fn atom(start: usize, end: usize) -> Node {
    Node {
        range: ByteRange { start, end },
        kind: NodeKind::Atom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(steps: &[&str]) -> Path {
        steps
            .iter()
            .map(|s| match s.parse() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Field(String::from(*s)),
            })
            .collect()
    }

    const TEXT: &str = "Scenario(\n  // a comment: with (brackets\n  init: (\n    children: [\n      (name: \"a\", routes: [(service: \"*\", to: Child(\"b\"))]),\n      (name: /* x */ \"b\\\"(\", config: Cfg(v: [1, 2], w: {\"k\": r#\"(\"#})),\n    ],\n  ),\n)";

    fn text_at(outline: &Outline, steps: &[&str]) -> String {
        let range = outline.find(&path(steps)).unwrap().range;
        String::from(&TEXT[range.start..range.end])
    }

    #[test]
    fn finds_fields_items_and_variant_arguments() {
        let outline = Outline::new(TEXT);
        assert_eq!(
            text_at(&outline, &["init", "children", "0", "name"]),
            "\"a\""
        );
        assert_eq!(
            text_at(&outline, &["init", "children", "0", "routes", "0", "to"]),
            "Child(\"b\")"
        );
        assert_eq!(
            text_at(
                &outline,
                &["init", "children", "0", "routes", "0", "to", "0"]
            ),
            "\"b\""
        );
        assert_eq!(
            text_at(&outline, &["init", "children", "1", "name"]),
            "\"b\\\"(\""
        );
        assert_eq!(
            text_at(&outline, &["init", "children", "1", "config"]),
            "Cfg(v: [1, 2], w: {\"k\": r#\"(\"#})"
        );
    }

    #[test]
    fn locations_count_lines_and_characters() {
        let outline = Outline::new(TEXT);
        let range = outline
            .find(&path(&["init", "children", "1", "name"]))
            .unwrap()
            .range;
        assert_eq!(
            outline.location(range.start),
            Location {
                line: 6,
                column: 22
            }
        );
        assert_eq!(
            offset_in(
                TEXT,
                Location {
                    line: 6,
                    column: 22
                }
            ),
            Some(range.start)
        );
        let name = outline.field_name(&path(&["init", "children"])).unwrap();
        assert_eq!(
            outline.location(name.start),
            Location { line: 4, column: 5 }
        );
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_value() {
        let outline = Outline::new(TEXT);
        let child = outline
            .find(&path(&["init", "children", "0"]))
            .unwrap()
            .range;
        assert_eq!(
            outline.locate(&path(&["init", "children", "0", "quota", "ram"])),
            Some(child)
        );
        assert_eq!(outline.find(&path(&["init", "children", "9"])), None);
    }

    #[test]
    fn hostile_text_does_not_panic() {
        for text in [
            "",
            "(",
            "[[[[",
            "r#\"",
            "b'",
            "(a: ",
            "\"\\",
            "((((((((((((",
            "é(ü: ß)",
        ] {
            let _ = Outline::new(text).find(&path(&["a", "0"]));
        }
        let deep = "[".repeat(10_000);
        assert!(Outline::new(&deep).find(&path(&["0"])).is_none());
    }
}
