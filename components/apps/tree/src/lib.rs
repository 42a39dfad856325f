//! The tree view's drawing, tested on the host: the lines of
//! `arbor_sessions::init_state::render` in a pixel buffer of `columns` x
//! `rows` 8x8 cells, init's header line in its own colour, every line cut
//! at the last column and rows past the last left blank.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use compositor::font::{self, GLYPH_SIZE};

/// Text colour of the children's lines.
pub const FOREGROUND: u32 = 0x00c0_c0c0;
/// Text colour of init's header line.
pub const HEADER: u32 = 0x0080_c0ff;
/// Background colour.
pub const BACKGROUND: u32 = 0x0000_0000;

/// The buffer a grid of `columns` x `rows` cells needs: (width, height) in
/// pixels, each side at least one cell and at most 200 cells.
pub fn buffer_size(columns: u32, rows: u32) -> (u32, u32) {
    (
        columns.clamp(1, 200) * GLYPH_SIZE,
        rows.clamp(1, 200) * GLYPH_SIZE,
    )
}

/// Draws `text`'s lines into `pixels` (`width` pixels wide): line 0 in
/// [`HEADER`], the rest in [`FOREGROUND`], everything else [`BACKGROUND`].
pub fn draw(pixels: &mut [u32], width: u32, text: &str) {
    pixels.fill(BACKGROUND);
    let rows = pixels.len() / (width.max(1) as usize) / GLYPH_SIZE as usize;
    for (row, line) in text.lines().take(rows).enumerate() {
        let colour = if row == 0 { HEADER } else { FOREGROUND };
        let top = (row as u32 * GLYPH_SIZE) as i64;
        font::draw_text(pixels, width, 0, top, line, colour, BACKGROUND);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use arbor_sessions::framebuffer::{Mode, PixelFormat, Rect, checksum};
    use arbor_sessions::init_state::{ChildReport, ChildState, InitReport, Usage, render};
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    fn child(name: &str, binary: &str) -> ChildReport {
        ChildReport {
            name: String::from(name),
            binary: String::from(binary),
            state: ChildState::Running,
            restarts: 0,
            ram: Usage {
                quota: 524_288,
                used: 100_000,
            },
            caps: Usage { quota: 32, used: 9 },
            uptime_ms: 900,
            services: vec![],
        }
    }

    #[test]
    fn lines_are_drawn_cut_and_coloured() {
        let (width, height) = buffer_size(4, 2);
        assert_eq!((width, height), (32, 16));
        let mut pixels = vec![7u32; (width * height) as usize];
        draw(&mut pixels, width, "AB\nCDEFGH\nnot shown\n");
        for y in 0..8 {
            for x in 0..8 {
                let at = |dx: u32, dy: u32| pixels[((y + dy) * width + x + dx) as usize];
                let expect = |c: char, ink: u32| {
                    if font::glyph_pixel(c, x, y) {
                        ink
                    } else {
                        BACKGROUND
                    }
                };
                assert_eq!(at(0, 0), expect('A', HEADER));
                assert_eq!(at(8, 0), expect('B', HEADER));
                assert_eq!(at(16, 0), BACKGROUND);
                assert_eq!(at(0, 8), expect('C', FOREGROUND));
                // Cut at the fourth column: F is the last.
                assert_eq!(at(24, 8), expect('F', FOREGROUND));
            }
        }
        // A zero-width buffer or an empty one does not panic.
        draw(&mut [], 0, "x");
        draw(&mut [0; 3], 8, "x");
    }

    /// The sum `tree_ram.ron` expects from `ram_fb` for its watch `timer`:
    /// the third line of the view (the first child, timer, running
    /// pit_timer), its first 24 columns — the indent, the name and binary
    /// columns, as wide as "compositor" — which stay the same while it runs.
    #[test]
    fn tree_ram_expected_sum() {
        let report = InitReport {
            children: vec![
                child("timer", "pit_timer"),
                child("ram_fb", "ram_fb"),
                child("compositor", "compositor"),
                child("tree", "tree"),
            ],
            ..InitReport::default()
        };
        let text = render(&report);
        let third: Vec<&str> = text.lines().skip(2).take(1).collect();
        assert!(third[0].starts_with("  timer      pit_timer  running"));
        let (width, height) = buffer_size(78, 16);
        let mut pixels = vec![0u32; (width * height) as usize];
        draw(&mut pixels, width, &text);
        let mode = Mode::new(width, height, PixelFormat::Xrgb8888).unwrap();
        let (_, sum) = checksum(&pixels, &mode, &Rect::new(0, 16, 192, 8));
        assert_eq!(sum, 0x1541_f6d0_c582_01a5);
    }
}
