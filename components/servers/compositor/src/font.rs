//! Text in 8x8 glyphs, from the `font8x8` crate's basic Latin table.
//!
//! Everything is a function of a pixel position so that the compositor
//! (painting strips), the terminal (painting its grid) and the tests (which
//! predict pixels) compute the same value the same way. Characters outside
//! printable ASCII are drawn as a filled box, so a label cannot hide part of
//! itself behind control characters.

/// Glyph width and height in pixels.
pub const GLYPH_SIZE: u32 = 8;

/// The glyph rows of `character` (bit 0 of a row is its leftmost pixel).
pub fn glyph(character: char) -> [u8; 8] {
    match u32::from(character) {
        code @ 0x20..=0x7e => font8x8::legacy::BASIC_LEGACY[code as usize],
        _ => [0xff; 8],
    }
}

/// Whether the glyph of `character` sets the pixel at (`x`, `y`) of its cell.
pub fn glyph_pixel(character: char, x: u32, y: u32) -> bool {
    if x >= GLYPH_SIZE || y >= GLYPH_SIZE {
        return false;
    }
    glyph(character)[y as usize] & (1 << x) != 0
}

/// Whether text drawn from (0, 0) sets the pixel at (`x`, `y`).
pub fn text_pixel(text: &str, x: u32, y: u32) -> bool {
    if y >= GLYPH_SIZE {
        return false;
    }
    let index = (x / GLYPH_SIZE) as usize;
    text.chars()
        .nth(index)
        .is_some_and(|character| glyph_pixel(character, x % GLYPH_SIZE, y))
}

/// Draws `text` into a `width`-pixel-wide buffer with its top left at
/// (`left`, `top`), setting set pixels to `foreground` and the rest of each
/// cell to `background`; whatever falls outside the buffer is skipped.
pub fn draw_text(
    pixels: &mut [u32],
    width: u32,
    left: i64,
    top: i64,
    text: &str,
    foreground: u32,
    background: u32,
) {
    let height = pixels.len() as i64 / i64::from(width.max(1));
    for (index, character) in text.chars().enumerate() {
        let cell_left = left + index as i64 * i64::from(GLYPH_SIZE);
        if cell_left >= i64::from(width) {
            break;
        }
        for row in 0..GLYPH_SIZE {
            let y = top + i64::from(row);
            if y < 0 || y >= height {
                continue;
            }
            for column in 0..GLYPH_SIZE {
                let x = cell_left + i64::from(column);
                if x < 0 || x >= i64::from(width) {
                    continue;
                }
                let colour = if glyph_pixel(character, column, row) {
                    foreground
                } else {
                    background
                };
                if let Some(pixel) = pixels.get_mut((y * i64::from(width) + x) as usize) {
                    *pixel = colour;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn letters_have_pixels_and_space_has_none() {
        let set = |c| {
            (0..8)
                .flat_map(|y| (0..8).map(move |x| (x, y)))
                .filter(|&(x, y)| glyph_pixel(c, x, y))
                .count()
        };
        assert!(set('A') > 10);
        assert_eq!(set(' '), 0);
        assert_eq!(set('\u{7}'), 64, "control characters show as a box");
        assert_eq!(set('é'), 64);
        assert!(!glyph_pixel('A', 8, 0));
    }

    #[test]
    fn draw_text_agrees_with_text_pixel_and_clips() {
        let width = 20u32;
        let mut pixels = std::vec![7u32; (width * 10) as usize];
        draw_text(&mut pixels, width, -3, 1, "Hi!", 1, 0);
        for y in 0..10u32 {
            for x in 0..width {
                let expected = match (i64::from(x) + 3, i64::from(y) - 1) {
                    (tx, ty) if (0..8).contains(&ty) && tx < 24 => {
                        if text_pixel("Hi!", tx as u32, ty as u32) {
                            1
                        } else {
                            0
                        }
                    }
                    _ => 7,
                };
                assert_eq!(pixels[(y * width + x) as usize], expected, "({x}, {y})");
            }
        }
        // Far off the buffer: nothing drawn, nothing panics.
        draw_text(&mut pixels, width, i64::MIN / 2, i64::MAX / 2, "x", 1, 0);
        draw_text(&mut [], 0, 0, 0, "x", 1, 0);
    }
}
