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

#[cfg(test)]
mod scenario_sums {
    //! The sums `gui_input_ram.ron` expects from `ram_fb` for each
    //! terminal's view once the script has played: the grid the terminal
    //! binary builds (greeting, prompt, the typed line, its echo, a new
    //! prompt), drawn by [`draw_row`], summed by the checksum ram_fb logs.
    extern crate std;

    use super::*;
    use arbor_sessions::framebuffer::{Mode, PixelFormat, Rect, checksum};

    fn sum_after(greeting: &str, line: &str) -> u64 {
        let mut grid = Grid::new(16, 6);
        grid.write(greeting);
        grid.put('\n');
        grid.write("> ");
        grid.write(line);
        grid.put('\n');
        grid.write("echo: ");
        grid.write(line);
        grid.put('\n');
        grid.write("> ");
        let (width, height) = buffer_size(&grid);
        let mut pixels = std::vec![0u32; (width * height) as usize];
        for row in 0..grid.rows() {
            draw_row(&grid, &mut pixels, row);
        }
        let mode = Mode::new(width, height, PixelFormat::Xrgb8888).unwrap();
        checksum(&pixels, &mode, &Rect::new(0, 0, width, height)).1
    }

    #[test]
    fn gui_input_ram_expected_sums() {
        let left = sum_after("left", "hi");
        let right = sum_after("right", "yo");
        std::println!("left 0x{left:016x}, right 0x{right:016x}");
        assert_eq!(
            (left, right),
            (0xca75_a49d_7f99_8225, 0xf336_5d1d_bb03_2265)
        );
    }
}
