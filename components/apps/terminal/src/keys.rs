//! Key codes to characters (US layout, with shift) and a line editor.
//!
//! The editor keeps the line being typed; printable keys append (up to
//! [`LINE_MAX`] characters, the rest are refused), backspace removes the
//! last character, enter hands the line over. What it returns says what
//! the grid must show, so the echo on screen and the line stay in step.

use alloc::string::String;
use arbor_sessions::input::{Event, KeyCode};

/// Longest line the editor keeps.
pub const LINE_MAX: usize = 120;

const UNSHIFTED: &[(u16, char)] = &[
    (2, '1'),
    (3, '2'),
    (4, '3'),
    (5, '4'),
    (6, '5'),
    (7, '6'),
    (8, '7'),
    (9, '8'),
    (10, '9'),
    (11, '0'),
    (12, '-'),
    (13, '='),
    (16, 'q'),
    (17, 'w'),
    (18, 'e'),
    (19, 'r'),
    (20, 't'),
    (21, 'y'),
    (22, 'u'),
    (23, 'i'),
    (24, 'o'),
    (25, 'p'),
    (26, '['),
    (27, ']'),
    (30, 'a'),
    (31, 's'),
    (32, 'd'),
    (33, 'f'),
    (34, 'g'),
    (35, 'h'),
    (36, 'j'),
    (37, 'k'),
    (38, 'l'),
    (39, ';'),
    (40, '\''),
    (41, '`'),
    (43, '\\'),
    (44, 'z'),
    (45, 'x'),
    (46, 'c'),
    (47, 'v'),
    (48, 'b'),
    (49, 'n'),
    (50, 'm'),
    (51, ','),
    (52, '.'),
    (53, '/'),
    (57, ' '),
];

const SHIFTED: &str = "!@#$%^&*()_+";

/// The character a key types, if it types one.
pub fn character(code: KeyCode, shift: bool) -> Option<char> {
    let &(_, plain) = UNSHIFTED.iter().find(|&&(key, _)| key == code.0)?;
    if !shift {
        return Some(plain);
    }
    Some(match plain {
        'a'..='z' => plain.to_ascii_uppercase(),
        '1'..='9' => SHIFTED
            .chars()
            .nth(plain as usize - '1' as usize)
            .unwrap_or(plain),
        '0' => ')',
        '-' => '_',
        '=' => '+',
        '[' => '{',
        ']' => '}',
        ';' => ':',
        '\'' => '"',
        '`' => '~',
        '\\' => '|',
        ',' => '<',
        '.' => '>',
        '/' => '?',
        other => other,
    })
}

/// What one key did to the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Nothing to show.
    None,
    /// A character was appended (echo it).
    Typed(char),
    /// The last character was removed (erase it).
    Erased,
    /// Enter: the finished line.
    Line(String),
}

/// The line being typed and the shift state.
#[derive(Clone, Debug, Default)]
pub struct LineEditor {
    line: String,
    shift_keys: u8,
}

impl LineEditor {
    /// An empty line.
    pub const fn new() -> Self {
        LineEditor {
            line: String::new(),
            shift_keys: 0,
        }
    }

    /// One input event.
    pub fn event(&mut self, event: Event) -> Edit {
        let is_shift = |code| code == KeyCode::LEFT_SHIFT || code == KeyCode::RIGHT_SHIFT;
        match event {
            Event::Press(code) if is_shift(code) => {
                self.shift_keys = self.shift_keys.saturating_add(1).min(2);
                Edit::None
            }
            Event::Release(code) if is_shift(code) => {
                self.shift_keys = self.shift_keys.saturating_sub(1);
                Edit::None
            }
            Event::Press(KeyCode::ENTER) => Edit::Line(core::mem::take(&mut self.line)),
            Event::Press(KeyCode::BACKSPACE) => match self.line.pop() {
                Some(_) => Edit::Erased,
                None => Edit::None,
            },
            Event::Press(code) => match character(code, self.shift_keys > 0) {
                Some(typed) if self.line.len() < LINE_MAX => {
                    self.line.push(typed);
                    Edit::Typed(typed)
                }
                _ => Edit::None,
            },
            // Losing focus forgets held keys: their releases go elsewhere.
            Event::Focus(false) => {
                self.shift_keys = 0;
                Edit::None
            }
            _ => Edit::None,
        }
    }

    /// The line so far.
    pub fn line(&self) -> &str {
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: u16) -> Event {
        Event::Press(KeyCode(code))
    }

    #[test]
    fn keys_type_characters_with_and_without_shift() {
        assert_eq!(character(KeyCode(30), false), Some('a'));
        assert_eq!(character(KeyCode(30), true), Some('A'));
        assert_eq!(character(KeyCode(2), true), Some('!'));
        assert_eq!(character(KeyCode(10), true), Some('('));
        assert_eq!(character(KeyCode(11), true), Some(')'));
        assert_eq!(character(KeyCode::SPACE, true), Some(' '));
        assert_eq!(character(KeyCode::ESCAPE, false), None);
        assert_eq!(character(KeyCode(0x2ff), false), None);
    }

    #[test]
    fn the_editor_builds_erases_and_hands_over_lines() {
        let mut editor = LineEditor::new();
        assert_eq!(editor.event(press(35)), Edit::Typed('h'));
        assert_eq!(editor.event(press(42)), Edit::None);
        assert_eq!(editor.event(press(23)), Edit::Typed('I'));
        assert_eq!(editor.event(Event::Release(KeyCode(42))), Edit::None);
        assert_eq!(editor.event(press(17)), Edit::Typed('w'));
        assert_eq!(editor.event(press(14)), Edit::Erased);
        assert_eq!(editor.event(press(28)), Edit::Line("hI".into()));
        assert_eq!(editor.event(press(14)), Edit::None);
        assert_eq!(editor.line(), "");
    }

    #[test]
    fn lines_are_bounded_and_focus_loss_drops_shift() {
        let mut editor = LineEditor::new();
        for _ in 0..LINE_MAX {
            editor.event(press(30));
        }
        assert_eq!(editor.event(press(30)), Edit::None);
        assert_eq!(editor.line().len(), LINE_MAX);
        editor.event(press(42));
        editor.event(Event::Focus(false));
        editor.event(press(28));
        assert_eq!(editor.event(press(30)), Edit::Typed('a'));
        // A flood of releases cannot underflow the shift count.
        for _ in 0..10 {
            editor.event(Event::Release(KeyCode(54)));
        }
        assert_eq!(editor.event(press(30)), Edit::Typed('a'));
    }
}
