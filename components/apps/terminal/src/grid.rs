//! A fixed grid of characters with a cursor.
//!
//! Text is written at the cursor; a newline or the right edge moves it to
//! the next row, and past the bottom row every row moves up one (the top
//! row is lost). Backspace moves the cursor back within the row and clears
//! the cell. Every change records the rows it touched, so only those are
//! redrawn.

use alloc::vec;
use alloc::vec::Vec;

/// A grid of `columns` x `rows` characters.
#[derive(Clone, Debug)]
pub struct Grid {
    columns: usize,
    rows: usize,
    cells: Vec<char>,
    cursor: (usize, usize),
    dirty_rows: Vec<bool>,
    scrolled: bool,
}

impl Grid {
    /// An empty grid (at least 1 x 1).
    pub fn new(columns: usize, rows: usize) -> Self {
        let (columns, rows) = (columns.max(1), rows.max(1));
        Grid {
            columns,
            rows,
            cells: vec![' '; columns * rows],
            cursor: (0, 0),
            dirty_rows: vec![true; rows],
            scrolled: false,
        }
    }

    /// Columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Cursor as (column, row).
    pub fn cursor(&self) -> (usize, usize) {
        self.cursor
    }

    /// The character at (`column`, `row`), a space outside the grid.
    pub fn at(&self, column: usize, row: usize) -> char {
        if column >= self.columns || row >= self.rows {
            return ' ';
        }
        self.cells[row * self.columns + column]
    }

    /// The text of `row`, trailing spaces removed.
    pub fn row_text(&self, row: usize) -> alloc::string::String {
        let text: alloc::string::String = (0..self.columns).map(|c| self.at(c, row)).collect();
        alloc::string::String::from(text.trim_end())
    }

    fn newline(&mut self) {
        self.dirty_rows[self.cursor.1] = true;
        self.cursor.0 = 0;
        if self.cursor.1 + 1 < self.rows {
            self.cursor.1 += 1;
        } else {
            self.cells.copy_within(self.columns.., 0);
            let last = (self.rows - 1) * self.columns;
            self.cells[last..].fill(' ');
            self.dirty_rows.fill(true);
            self.scrolled = true;
        }
        self.dirty_rows[self.cursor.1] = true;
    }

    /// Writes one character at the cursor (`\n` starts a new row, `\r`
    /// returns to column 0, other control characters are shown as a box
    /// by the font).
    pub fn put(&mut self, character: char) {
        match character {
            '\n' => self.newline(),
            '\r' => {
                self.cursor.0 = 0;
            }
            character => {
                if self.cursor.0 >= self.columns {
                    self.newline();
                }
                let (column, row) = self.cursor;
                self.cells[row * self.columns + column] = character;
                self.dirty_rows[row] = true;
                self.cursor.0 += 1;
            }
        }
    }

    /// Writes a string.
    pub fn write(&mut self, text: &str) {
        text.chars().for_each(|character| self.put(character));
    }

    /// Moves the cursor back one cell in its row and clears it.
    pub fn backspace(&mut self) {
        if self.cursor.0 == 0 {
            return;
        }
        self.cursor.0 -= 1;
        let (column, row) = self.cursor;
        self.cells[row * self.columns + column] = ' ';
        self.dirty_rows[row] = true;
    }

    /// Rows changed since the last call (and whether the grid scrolled).
    pub fn take_dirty(&mut self) -> (Vec<usize>, bool) {
        let rows = (0..self.rows).filter(|&row| self.dirty_rows[row]).collect();
        self.dirty_rows.fill(false);
        (rows, core::mem::take(&mut self.scrolled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_the_edge_and_newlines_move_down() {
        let mut grid = Grid::new(4, 3);
        grid.write("abcdef\nxy");
        assert_eq!(grid.row_text(0), "abcd");
        assert_eq!(grid.row_text(1), "ef");
        assert_eq!(grid.row_text(2), "xy");
        assert_eq!(grid.cursor(), (2, 2));
    }

    #[test]
    fn writing_past_the_bottom_scrolls_and_marks_every_row() {
        let mut grid = Grid::new(3, 2);
        grid.take_dirty();
        grid.write("1\n2\n3");
        assert_eq!(grid.row_text(0), "2");
        assert_eq!(grid.row_text(1), "3");
        assert_eq!(grid.take_dirty(), (vec![0, 1], true));
        assert_eq!(grid.take_dirty(), (vec![], false));
        for _ in 0..1000 {
            grid.write("zz\n");
        }
        assert_eq!(grid.cursor(), (0, 1));
    }

    #[test]
    fn backspace_stops_at_the_row_start_and_only_dirty_rows_are_reported() {
        let mut grid = Grid::new(5, 3);
        grid.write("ab");
        grid.take_dirty();
        grid.backspace();
        grid.backspace();
        grid.backspace();
        assert_eq!(grid.cursor(), (0, 0));
        assert_eq!(grid.row_text(0), "");
        assert_eq!(grid.take_dirty(), (vec![0], false));
        assert_eq!(grid.at(99, 99), ' ');
        let tiny = Grid::new(0, 0);
        assert_eq!((tiny.columns(), tiny.rows()), (1, 1));
    }
}
