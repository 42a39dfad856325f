//! Painting the screen: background, then each view's content bottom to
//! top, then every strip on top of all content.
//!
//! Only the damaged rectangle is painted, and every pixel is a function of
//! the scene, the clients' buffers and the labels, so tests can predict any
//! pixel ([`expected_pixel`]) and compare. A view larger than its client's
//! buffer shows [`NO_CONTENT`] beyond the buffer — never stale pixels or
//! another client's.

use crate::font;
use crate::scene::{ClientId, STRIP_HEIGHT, Scene, View};
use arbor_sessions::framebuffer::{Mode, Rect};

/// Screen background.
pub const BACKGROUND: u32 = 0x0020_2020;
/// What a view shows where its client's buffer has no pixel.
pub const NO_CONTENT: u32 = 0x0000_0000;
/// Left margin of the label inside its strip.
pub const LABEL_INSET: u32 = 2;

/// A client's pixel buffer, as the compositor maps it.
#[derive(Clone, Copy, Debug)]
pub struct Buffer<'a> {
    /// Pixels, row after row.
    pub pixels: &'a [u32],
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

impl Buffer<'_> {
    /// The pixel at (`x`, `y`), if the buffer has one there.
    pub fn pixel(&self, x: i64, y: i64) -> Option<u32> {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return None;
        }
        self.pixels
            .get((y * i64::from(self.width) + x) as usize)
            .copied()
    }
}

/// What the compositor knows about each client while painting.
pub trait Clients {
    /// The client's buffer, if it has one.
    fn buffer(&self, client: ClientId) -> Option<Buffer<'_>>;
    /// The text of its strips.
    fn label(&self, client: ClientId) -> &str;
    /// The colour of its strips.
    fn strip_colour(&self, client: ClientId) -> u32;
}

/// Text colour on a strip of `colour`: white on dark, black on light.
pub fn label_colour(colour: u32) -> u32 {
    let [blue, green, red, _] = colour.to_le_bytes();
    let luma = 299 * u32::from(red) + 587 * u32::from(green) + 114 * u32::from(blue);
    if luma > 128_000 { 0 } else { 0x00ff_ffff }
}

/// The pixel at (`x`, `y`) of a strip (strip coordinates) for `label` on
/// `colour`.
pub fn strip_pixel(label: &str, colour: u32, x: u32, y: u32) -> u32 {
    let inset = (STRIP_HEIGHT - font::GLYPH_SIZE) / 2;
    let inked =
        x >= LABEL_INSET && y >= inset && font::text_pixel(label, x - LABEL_INSET, y - inset);
    if inked { label_colour(colour) } else { colour }
}

fn content_pixel(view: &View, clients: &dyn Clients, x: i64, y: i64) -> u32 {
    clients
        .buffer(view.client)
        .and_then(|buffer| {
            buffer.pixel(x - i64::from(view.content.x), y - i64::from(view.content.y))
        })
        .unwrap_or(NO_CONTENT)
}

/// The pixel the screen shows at (`x`, `y`): the reference every test
/// compares [`paint`] against, written the slow, obvious way.
pub fn expected_pixel(scene: &Scene, clients: &dyn Clients, x: i64, y: i64) -> u32 {
    if let Some(view) = scene
        .views()
        .iter()
        .rev()
        .find(|v| v.strip().contains(x, y))
    {
        let strip = view.strip();
        return strip_pixel(
            clients.label(view.client),
            clients.strip_colour(view.client),
            (x - i64::from(strip.x)) as u32,
            (y - i64::from(strip.y)) as u32,
        );
    }
    match scene
        .views()
        .iter()
        .rev()
        .find(|v| v.content.contains(x, y))
    {
        Some(view) => content_pixel(view, clients, x, y),
        None => BACKGROUND,
    }
}

/// Repaints `damage` (clipped to the screen) of `screen`, a `mode`-sized
/// pixel buffer. Returns the rectangle actually painted.
pub fn paint(
    scene: &Scene,
    clients: &dyn Clients,
    screen: &mut [u32],
    mode: &Mode,
    damage: Rect,
) -> Rect {
    let area = damage.clipped_to(mode);
    if area.is_empty() || screen.len() < mode.pixels() as usize {
        return Rect::default();
    }
    let width = mode.width as usize;
    let fill = |screen: &mut [u32], rect: Rect, pixel: &dyn Fn(i64, i64) -> u32| {
        for y in rect.y..(rect.bottom() as i32) {
            let row = y as usize * width;
            for x in rect.x..(rect.right() as i32) {
                screen[row + x as usize] = pixel(i64::from(x), i64::from(y));
            }
        }
    };
    fill_rect(screen, width, area, BACKGROUND);
    for view in scene.views() {
        let part = view.content.intersect(&area);
        if part.is_empty() {
            continue;
        }
        match clients.buffer(view.client) {
            Some(buffer) => copy_content(screen, width, part, view, &buffer),
            None => fill_rect(screen, width, part, NO_CONTENT),
        }
    }
    for view in scene.views() {
        let strip = view.strip();
        let part = strip.intersect(&area);
        if part.is_empty() {
            continue;
        }
        let label = clients.label(view.client);
        let colour = clients.strip_colour(view.client);
        fill(screen, part, &|x, y| {
            strip_pixel(
                label,
                colour,
                (x - i64::from(strip.x)) as u32,
                (y - i64::from(strip.y)) as u32,
            )
        });
    }
    area
}

/// Fills `rect` (inside the screen) of a `width`-wide screen with `pixel`.
fn fill_rect(screen: &mut [u32], width: usize, rect: Rect, pixel: u32) {
    for y in rect.y..(rect.bottom() as i32) {
        let start = y as usize * width + rect.x as usize;
        if let Some(row) = screen.get_mut(start..start + rect.width as usize) {
            row.fill(pixel);
        }
    }
}

/// Paints `part` (inside the screen and inside `view`'s content) from
/// `buffer`, row by row: the buffer's pixels where it has them,
/// [`NO_CONTENT`] beyond. The same pixels as [`content_pixel`] gives, in
/// one copy per row instead of one call per pixel (a 1280x800 view is a
/// million pixels a frame).
fn copy_content(screen: &mut [u32], width: usize, part: Rect, view: &View, buffer: &Buffer<'_>) {
    // `part` lies inside the content, so both offsets are non-negative.
    let first_column = (i64::from(part.x) - i64::from(view.content.x)) as u64;
    let buffer_width = u64::from(buffer.width);
    let columns = u64::from(part.width);
    let from_buffer = buffer_width.saturating_sub(first_column).min(columns);
    for y in part.y..(part.bottom() as i32) {
        let start = y as usize * width + part.x as usize;
        let Some(row) = screen.get_mut(start..start + part.width as usize) else {
            continue;
        };
        let buffer_row = (i64::from(y) - i64::from(view.content.y)) as u64;
        let source = (buffer_row < u64::from(buffer.height))
            .then(|| buffer_row * buffer_width + first_column)
            .and_then(|at| buffer.pixels.get(at as usize..(at + from_buffer) as usize));
        match source {
            Some(source) => {
                let (shown, beyond) = row.split_at_mut(from_buffer as usize);
                shown.copy_from_slice(source);
                beyond.fill(NO_CONTENT);
            }
            // A short buffer: pixel by pixel, each checked.
            None => {
                for (column, pixel) in row.iter_mut().enumerate() {
                    let x = first_column as i64 + column as i64;
                    *pixel = buffer.pixel(x, buffer_row as i64).unwrap_or(NO_CONTENT);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use arbor_sessions::framebuffer::PixelFormat;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    struct Fake {
        buffers: Vec<(ClientId, Vec<u32>, u32, u32)>,
        labels: Vec<(ClientId, String, u32)>,
    }

    impl Clients for Fake {
        fn buffer(&self, client: ClientId) -> Option<Buffer<'_>> {
            self.buffers
                .iter()
                .find(|b| b.0 == client)
                .map(|(_, pixels, width, height)| Buffer {
                    pixels,
                    width: *width,
                    height: *height,
                })
        }
        fn label(&self, client: ClientId) -> &str {
            self.labels
                .iter()
                .find(|l| l.0 == client)
                .map_or("?", |l| l.1.as_str())
        }
        fn strip_colour(&self, client: ClientId) -> u32 {
            self.labels
                .iter()
                .find(|l| l.0 == client)
                .map_or(0, |l| l.2)
        }
    }

    fn pattern(client: ClientId, width: u32, height: u32) -> Vec<u32> {
        (0..width * height)
            .map(|i| (client as u32) << 20 | i)
            .collect()
    }

    fn fixture() -> (Scene, Fake, Mode) {
        let mut scene = Scene::new();
        let a = scene.create(1).unwrap();
        let b = scene.create(2).unwrap();
        scene.place(1, a, Rect::new(-5, 14, 40, 30)).unwrap();
        // Larger than its 20x20 buffer, over client 1's strip, off the right edge.
        scene.place(2, b, Rect::new(20, 8, 60, 60)).unwrap();
        let fake = Fake {
            buffers: vec![
                (1, pattern(1, 40, 30), 40, 30),
                (2, pattern(2, 20, 20), 20, 20),
            ],
            labels: vec![
                (1, "init -> a".into(), 0x0040_5070),
                (2, "init -> untrusted".into(), 0x00c0_0000),
            ],
        };
        (
            scene,
            fake,
            Mode::new(64, 48, PixelFormat::Xrgb8888).unwrap(),
        )
    }

    fn assert_matches_reference(scene: &Scene, fake: &Fake, mode: &Mode, screen: &[u32]) {
        for y in 0..mode.height {
            for x in 0..mode.width {
                assert_eq!(
                    screen[(y * mode.width + x) as usize],
                    expected_pixel(scene, fake, x.into(), y.into()),
                    "pixel ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn full_paint_matches_the_reference_everywhere() {
        let (scene, fake, mode) = fixture();
        let mut screen = vec![0xdead_beef; mode.pixels() as usize];
        let painted = paint(
            &scene,
            &fake,
            &mut screen,
            &mode,
            Rect::new(-100, -100, 1000, 1000),
        );
        assert_eq!(painted, mode.bounds());
        assert_matches_reference(&scene, &fake, &mode, &screen);
    }

    #[test]
    fn strips_stay_on_top_of_other_clients_content() {
        let (scene, fake, mode) = fixture();
        let mut screen = vec![0; mode.pixels() as usize];
        paint(&scene, &fake, &mut screen, &mode, mode.bounds());
        // Client 1's strip is rows 2..14, x -5..35; client 2's content
        // starts at (20, 8) and is on top, yet the strip shows there.
        for y in 8..14u32 {
            for x in 20..35u32 {
                let pixel = screen[(y * mode.width + x) as usize];
                let expected = strip_pixel("init -> a", 0x0040_5070, x + 5, y - 2);
                // Where client 2's own strip (rows -4..8) does not reach.
                assert_eq!(pixel, expected, "({x}, {y})");
            }
        }
    }

    #[test]
    fn a_view_beyond_its_buffer_shows_no_content_not_stale_pixels() {
        let (scene, fake, mode) = fixture();
        let mut screen = vec![0x00ab_cdef; mode.pixels() as usize];
        paint(&scene, &fake, &mut screen, &mode, mode.bounds());
        // (45, 30) is in client 2's view, past its 20-pixel buffer.
        assert_eq!(screen[(30 * mode.width + 45) as usize], NO_CONTENT);
        // (25, 20): buffer pixel (5, 12) of client 2.
        assert_eq!(
            screen[(20 * mode.width + 25) as usize],
            2 << 20 | (12 * 20 + 5)
        );
    }

    #[test]
    fn partial_damage_paints_only_inside_it() {
        let (scene, fake, mode) = fixture();
        let mut screen = vec![1u32; mode.pixels() as usize];
        let damage = Rect::new(10, 10, 5, 5);
        assert_eq!(paint(&scene, &fake, &mut screen, &mode, damage), damage);
        for y in 0..mode.height {
            for x in 0..mode.width {
                let inside = damage.contains(x.into(), y.into());
                let pixel = screen[(y * mode.width + x) as usize];
                if inside {
                    assert_eq!(pixel, expected_pixel(&scene, &fake, x.into(), y.into()));
                } else {
                    assert_eq!(pixel, 1);
                }
            }
        }
        // Entirely off screen, or a screen buffer too small: nothing.
        assert!(paint(&scene, &fake, &mut screen, &mode, Rect::new(-9, -9, 9, 9)).is_empty());
        assert!(paint(&scene, &fake, &mut [0; 4], &mode, mode.bounds()).is_empty());
    }

    #[test]
    fn a_client_without_buffer_or_with_a_short_one_shows_no_content() {
        let (scene, mut fake, mode) = fixture();
        fake.buffers[0].1.truncate(10);
        fake.buffers.remove(1);
        let mut screen = vec![0; mode.pixels() as usize];
        paint(&scene, &fake, &mut screen, &mode, mode.bounds());
        assert_matches_reference(&scene, &fake, &mode, &screen);
        assert_eq!(screen[(30 * mode.width + 50) as usize], NO_CONTENT);
    }

    /// A xorshift generator of numbers below each call's limit.
    fn random_below(mut state: u64) -> impl FnMut(u64) -> u64 {
        move |limit| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % limit
        }
    }

    #[test]
    fn random_scenes_always_match_the_reference() {
        let mut next = random_below(0x5eed_1234_abcd_0001u64);
        for _ in 0..40 {
            let mode = Mode::new(
                1 + next(48) as u32,
                1 + next(40) as u32,
                PixelFormat::Xrgb8888,
            )
            .unwrap();
            let mut scene = Scene::new();
            let mut fake = Fake {
                buffers: vec![],
                labels: vec![],
            };
            for client in 1..=3u64 {
                let (w, h) = (1 + next(30) as u32, 1 + next(30) as u32);
                fake.buffers.push((client, pattern(client, w, h), w, h));
                fake.labels
                    .push((client, "x <- y".into(), next(0x0100_0000) as u32));
                for _ in 0..2 {
                    let id = scene.create(client).unwrap();
                    let rect = Rect::new(
                        next(80) as i32 - 20,
                        next(80) as i32 - 20,
                        next(50) as u32,
                        next(50) as u32,
                    );
                    scene.place(client, id, rect).unwrap();
                }
            }
            let mut screen = vec![7; mode.pixels() as usize];
            paint(&scene, &fake, &mut screen, &mode, mode.bounds());
            assert_matches_reference(&scene, &fake, &mode, &screen);
        }
    }

    #[test]
    fn partial_damage_over_views_wider_and_taller_than_their_buffers_matches_the_reference() {
        // The row copies of `copy_content` start mid-buffer, stop at the
        // buffer's right edge or bottom, and meet short buffers.
        let (mut scene, mut fake, mode) = fixture();
        let c = scene.create(3).unwrap();
        scene.place(3, c, Rect::new(30, 20, 30, 20)).unwrap();
        // A buffer that claims 12x10 but holds 3 rows and 4 pixels.
        fake.buffers
            .push((3, pattern(3, 12, 4)[..40].to_vec(), 12, 10));
        fake.labels.push((3, "short".into(), 0x0030_3030));
        let mut next = random_below(0x0dd_ba11_u64);
        for _ in 0..200 {
            let damage = Rect::new(
                next(80) as i32 - 10,
                next(70) as i32 - 10,
                next(40) as u32,
                next(40) as u32,
            );
            let mut screen = vec![7; mode.pixels() as usize];
            let painted = paint(&scene, &fake, &mut screen, &mode, damage);
            assert_eq!(painted, damage.clipped_to(&mode));
            for y in 0..mode.height {
                for x in 0..mode.width {
                    let pixel = screen[(y * mode.width + x) as usize];
                    if painted.contains(x.into(), y.into()) {
                        let expected = expected_pixel(&scene, &fake, x.into(), y.into());
                        assert_eq!(pixel, expected, "({x}, {y}) in {damage:?}");
                    } else {
                        assert_eq!(pixel, 7, "({x}, {y}) outside {damage:?} was painted");
                    }
                }
            }
        }
    }

    #[test]
    fn label_text_is_readable_on_any_strip_colour() {
        assert_eq!(label_colour(0x00c0_0000), 0x00ff_ffff);
        assert_eq!(label_colour(0x00ff_ff00), 0);
        // Glyph pixels of the label appear in the strip.
        let inked = (0..80)
            .flat_map(|x| (0..STRIP_HEIGHT).map(move |y| (x, y)))
            .filter(|&(x, y)| strip_pixel("untrusted", 0x00c0_0000, x, y) == 0x00ff_ffff)
            .count();
        assert!(inked > 40);
        assert_eq!(strip_pixel("untrusted", 0x00c0_0000, 0, 0), 0x00c0_0000);
    }
}
