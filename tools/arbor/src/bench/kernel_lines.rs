//! `kernel_lines` and `kernel_asm_lines`: how much code the kernel is, counted
//! the same way every time so the figure can be compared across commits.
//!
//! A line counts when it holds code: blank lines and comments (`//`, `///`,
//! `//!`, `/* */`, and `#` in assembly) do not. Test code does not count
//! either: files named `tests.rs`, anything under a `tests/` directory, and
//! every item marked `#[cfg(test)]` (the `mod tests { ... }` at a file's end).
#![forbid(unsafe_code)]

use std::path::Path;

/// The kernel's size in code lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelLines {
    /// Lines of Rust outside tests.
    pub rust: u64,
    /// Lines of assembly in `.s` / `.S` files.
    pub asm: u64,
}

/// Counts the code lines of every source file under `source_dir`
/// (the kernel's `src/`), leaving test files out.
pub fn count_tree(source_dir: &Path) -> Result<KernelLines, String> {
    let mut total = KernelLines::default();
    let entries = std::fs::read_dir(source_dir)
        .map_err(|e| format!("cannot read {}: {e}", source_dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", source_dir.display()))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        let name = entry.file_name();
        if file_type.is_dir() {
            if name != "tests" {
                let below = count_tree(&path)?;
                total.rust += below.rust;
                total.asm += below.asm;
            }
            continue;
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let is_rust = extension == "rs" && name != "tests.rs";
        let is_asm = extension == "s" || extension == "S";
        if !is_rust && !is_asm {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if is_rust {
            total.rust += rust_code_lines(&text);
        } else {
            total.asm += asm_code_lines(&text);
        }
    }
    Ok(total)
}

/// Code lines of one Rust file, leaving out comments and `#[cfg(test)]` items.
pub fn rust_code_lines(text: &str) -> u64 {
    let lines = strip_comments(text, &RUST);
    let mut count = 0;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim();
        if let Some(after) = line.strip_prefix("#[cfg(test)]") {
            index = end_of_item(&lines, index, after) + 1;
            continue;
        }
        if !line.is_empty() {
            count += 1;
        }
        index += 1;
    }
    count
}

/// Code lines of one GNU assembler file.
pub fn asm_code_lines(text: &str) -> u64 {
    let lines = strip_comments(text, &GNU_ASM);
    lines.iter().filter(|line| !line.trim().is_empty()).count() as u64
}

/// The index of the line on which the item starting after an attribute ends:
/// at a `;` outside any brackets (`mod tests;`, `use x;`) or at the `}` that
/// closes its body. `after` is the rest of the attribute's own line. An item
/// that never ends runs to the end of the file.
fn end_of_item(lines: &[String], attribute_line: usize, after: &str) -> usize {
    let mut depth: i64 = 0;
    let rest = std::iter::once(after).chain(lines[attribute_line + 1..].iter().map(String::as_str));
    for (offset, line) in rest.enumerate() {
        for c in line.chars() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' => depth -= 1,
                '}' => {
                    depth -= 1;
                    if depth <= 0 {
                        return attribute_line + offset;
                    }
                }
                ';' if depth <= 0 => return attribute_line + offset,
                _ => {}
            }
        }
    }
    lines.len().saturating_sub(1)
}

/// What counts as a comment or a literal in one language.
struct Syntax {
    /// Markers that comment out the rest of a line.
    line_comments: &'static [&'static str],
    /// Rust's block comments nest; the assembler's do not.
    nested_blocks: bool,
    /// Rust's character literals and raw strings, whose quotes must not be
    /// taken for the start of a string.
    rust_literals: bool,
}

const RUST: Syntax = Syntax {
    line_comments: &["//"],
    nested_blocks: true,
    rust_literals: true,
};

const GNU_ASM: Syntax = Syntax {
    line_comments: &["#", "//"],
    nested_blocks: false,
    rust_literals: false,
};

/// Where the scanner is at the start of a character.
#[derive(Clone, Copy)]
enum State {
    Code,
    BlockComment { depth: u32 },
    Str,
    RawStr { hashes: usize },
}

/// Returns each line with its comments removed and each literal's contents
/// replaced by `_`, so that what is left is code, and brackets inside strings
/// cannot confuse the search for an item's end.
fn strip_comments(text: &str, syntax: &Syntax) -> Vec<String> {
    let mut state = State::Code;
    let mut out = Vec::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut kept = String::new();
        let mut at = 0;
        let starts = |at: usize, marker: &str| {
            marker
                .chars()
                .enumerate()
                .all(|(i, m)| chars.get(at + i) == Some(&m))
        };
        while at < chars.len() {
            let c = chars[at];
            match state {
                State::Code => {
                    if syntax.line_comments.iter().any(|m| starts(at, m)) {
                        break;
                    } else if starts(at, "/*") {
                        state = State::BlockComment { depth: 1 };
                        at += 2;
                    } else if c == '"' {
                        kept.push('"');
                        state = State::Str;
                        at += 1;
                    } else if let Some(hashes) = raw_string_start(&chars, at, syntax) {
                        kept.push_str("r\"");
                        state = State::RawStr { hashes };
                        // Past `r`, the hashes and the quote.
                        at += 2 + hashes;
                    } else if c == '\'' && syntax.rust_literals {
                        kept.push('\'');
                        at += char_literal_length(&chars, at);
                    } else {
                        kept.push(c);
                        at += 1;
                    }
                }
                State::BlockComment { depth } => {
                    if starts(at, "*/") {
                        state = if depth <= 1 {
                            State::Code
                        } else {
                            State::BlockComment { depth: depth - 1 }
                        };
                        at += 2;
                    } else if syntax.nested_blocks && starts(at, "/*") {
                        state = State::BlockComment { depth: depth + 1 };
                        at += 2;
                    } else {
                        at += 1;
                    }
                }
                State::Str => {
                    if c == '\\' {
                        kept.push('_');
                        at += 2;
                    } else if c == '"' {
                        kept.push('"');
                        state = State::Code;
                        at += 1;
                    } else {
                        if !c.is_whitespace() {
                            kept.push('_');
                        }
                        at += 1;
                    }
                }
                State::RawStr { hashes } => {
                    if c == '"' && (1..=hashes).all(|i| chars.get(at + i) == Some(&'#')) {
                        kept.push('"');
                        state = State::Code;
                        at += 1 + hashes;
                    } else {
                        if !c.is_whitespace() {
                            kept.push('_');
                        }
                        at += 1;
                    }
                }
            }
        }
        out.push(kept);
    }
    out
}

/// If a Rust raw string (`r"`, `r#"`, `br"` ...) starts at `at` (on its `r`),
/// how many `#` it uses.
fn raw_string_start(chars: &[char], at: usize, syntax: &Syntax) -> Option<usize> {
    if !syntax.rust_literals || chars[at] != 'r' {
        return None;
    }
    // `r` must begin a token (or follow a `b`), not end an identifier like `bar"`.
    let before = at.checked_sub(1).map(|i| chars[i]);
    let token_start = match before {
        None => true,
        Some('b') => at < 2 || !is_identifier_char(chars[at - 2]),
        Some(c) => !is_identifier_char(c),
    };
    if !token_start {
        return None;
    }
    let hashes = chars[at + 1..].iter().take_while(|&&c| c == '#').count();
    (chars.get(at + 1 + hashes) == Some(&'"')).then_some(hashes)
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// How many characters a `'` at `at` takes: a whole character literal
/// (`'x'`, `'\n'`, `'\u{1F600}'`), or just itself when it starts a lifetime.
fn char_literal_length(chars: &[char], at: usize) -> usize {
    if chars.get(at + 1) == Some(&'\\') {
        // An escape: runs to the next quote after the backslash's partner.
        return chars[at + 3.min(chars.len() - at)..]
            .iter()
            .position(|&c| c == '\'')
            .map_or(chars.len() - at, |p| 3 + p + 1);
    }
    if chars.get(at + 2) == Some(&'\'') {
        return 3;
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_do_not_count() {
        let text = r#"//! Crate docs.

/// An item.
pub fn f() -> u32 { // trailing comment: still a code line
    // a comment
    /* a block
       over lines */
    let x = 1; /* inline */
    /* alone */
    x
}
"#;
        assert_eq!(rust_code_lines(text), 4);
    }

    #[test]
    fn nested_block_comments_end_at_the_outer_close() {
        let text = "/* outer /* inner */ still comment */\nlet a = 1;\n";
        assert_eq!(rust_code_lines(text), 1);
    }

    #[test]
    fn comment_markers_inside_literals_are_code() {
        let text = "let url = \"http://x/*\";\nlet c = '\"';\nlet r = r#\"/* \"# ;\nfn f<'a>(x: &'a u8) {}\n";
        assert_eq!(rust_code_lines(text), 4);
    }

    #[test]
    fn multi_line_strings_count_on_every_line() {
        let text = "let s = \"one\n  two\n\";\n";
        assert_eq!(rust_code_lines(text), 3);
    }

    #[test]
    fn cfg_test_module_at_the_end_is_left_out() {
        let text = r#"pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        let s = "}"; // a brace in a string must not end the module
        assert_eq!(add(1, 2), 3);
    }
}
"#;
        assert_eq!(rust_code_lines(text), 3);
    }

    #[test]
    fn cfg_test_declarations_and_items_are_left_out() {
        let text = "#[cfg(test)]\nmod tests;\nconst A: u8 = 1;\n#[cfg(test)]\nconst T: [u8; 2] = [0; 2];\nconst B: u8 = 2;\n";
        assert_eq!(rust_code_lines(text), 2);
    }

    #[test]
    fn assembly_comments_do_not_count() {
        let text = "/* header\n * more */\n    .long 4   /* size */\n# hash comment\n// slash comment\n1:  mov %eax, %ebx\n\n    .asciz \"#not\"\n";
        assert_eq!(asm_code_lines(text), 3);
    }

    #[test]
    fn counts_the_real_kernel() {
        let source = crate::workspace::root().join("base/kernel/src");
        let lines = count_tree(&source).expect("the kernel's sources are readable");
        assert!(lines.rust > 0 && lines.asm > 0, "{lines:?}");
    }
}
