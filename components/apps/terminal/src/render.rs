//! Drawing the grid into a pixel buffer: one 8x8 cell per character, the
//! cursor as an inverted cell.

use crate::grid::Grid;
use compositor::font::{self, GLYPH_SIZE};

/// Text colour.
pub const FOREGROUND: u32 = 0x00c0_c0c0;
/// Background colour.
pub const BACKGROUND: u32 = 0x0000_0000;

/// The buffer size a grid needs: (width, height) in pixels.
pub fn buffer_size(grid: &Grid) -> (u32, u32) {
    let side = |cells: usize| u32::try_from(cells).unwrap_or(u32::MAX / GLYPH_SIZE) * GLYPH_SIZE;
    (side(grid.columns()), side(grid.rows()))
}

/// The colour of pixel (`x`, `y`) of the grid's picture.
pub fn pixel(grid: &Grid, x: u32, y: u32) -> u32 {
    let (column, row) = ((x / GLYPH_SIZE) as usize, (y / GLYPH_SIZE) as usize);
    let inked = font::glyph_pixel(grid.at(column, row), x % GLYPH_SIZE, y % GLYPH_SIZE);
    let cursor = grid.cursor() == (column, row);
    match inked != cursor {
        true => FOREGROUND,
        false => BACKGROUND,
    }
}

/// Draws `row` into `pixels` (a buffer of [`buffer_size`]).
pub fn draw_row(grid: &Grid, pixels: &mut [u32], row: usize) {
    let (width, _) = buffer_size(grid);
    let top = row * GLYPH_SIZE as usize;
    for y in 0..GLYPH_SIZE as usize {
        for x in 0..width as usize {
            if let Some(target) = pixels.get_mut((top + y) * width as usize + x) {
                *target = pixel(grid, x as u32, (top + y) as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn rows_show_glyphs_and_the_cursor_cell_is_inverted() {
        let mut grid = Grid::new(3, 2);
        grid.write("A");
        let (width, height) = buffer_size(&grid);
        assert_eq!((width, height), (24, 16));
        let mut pixels = std::vec![7u32; (width * height) as usize];
        draw_row(&grid, &mut pixels, 0);
        draw_row(&grid, &mut pixels, 1);
        for y in 0..8 {
            for x in 0..8 {
                let expected = if font::glyph_pixel('A', x, y) {
                    FOREGROUND
                } else {
                    BACKGROUND
                };
                assert_eq!(pixels[(y * width + x) as usize], expected);
                // The cursor sits at column 1: a filled cell.
                assert_eq!(pixels[(y * width + 8 + x) as usize], FOREGROUND);
            }
        }
        assert_eq!(pixels[(8 * width) as usize], BACKGROUND);
        // A row past the grid writes nothing and does not panic.
        draw_row(&grid, &mut pixels, 9);
    }
}
