//! The pattern `gui_client` draws, and (in its tests) the screen checksums
//! the GUI scenarios expect, computed on the host with the compositor's own
//! painting code and the checksum `ram_fb` logs.
//!
//! `gui_ram.ron` and `gui_hostile_ram.ron` expect `ram_fb` lines
//! `watch NAME (...): sum 0x...`; the sums there are the constants the
//! tests below compute and pin — change the scene in a scenario and the
//! matching test says what the new sum is.
#![no_std]
#![forbid(unsafe_code)]

/// The colour of pixel (`x`, `y`) of pattern `seed`: every pixel differs
/// from its neighbours and from every other seed's.
pub fn pattern(seed: u32, x: u32, y: u32) -> u32 {
    let mixed = seed
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(x.wrapping_mul(0x85eb_ca6b))
        .wrapping_add(y.wrapping_mul(0xc2b2_ae35));
    (mixed ^ (mixed >> 15)) & 0x00ff_ffff
}

/// Fills a `width`-wide buffer with pattern `seed`.
pub fn fill(pixels: &mut [u32], width: u32, seed: u32) {
    let width = width.max(1);
    for (index, pixel) in pixels.iter_mut().enumerate() {
        let index = index as u32;
        *pixel = pattern(seed, index % width, index / width);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use arbor_sessions::framebuffer::{Mode, PixelFormat, Rect, checksum};
    use compositor::compose::{Buffer, Clients, paint};
    use compositor::policy::Policy;
    use compositor::scene::{ClientId, Scene};
    use std::string::String;
    use std::vec::Vec;
    use std::{println, vec};

    /// One client of a scenario: label, seed of its final picture, buffer
    /// size and where its view goes.
    struct Client {
        label: String,
        colour: u32,
        pixels: Vec<u32>,
        width: u32,
        height: u32,
        view: Rect,
    }

    struct Clientele(Vec<Client>);

    impl Clients for Clientele {
        fn buffer(&self, client: ClientId) -> Option<Buffer<'_>> {
            self.0.get(client as usize).map(|c| Buffer {
                pixels: &c.pixels,
                width: c.width,
                height: c.height,
            })
        }
        fn label(&self, client: ClientId) -> &str {
            &self.0[client as usize].label
        }
        fn strip_colour(&self, client: ClientId) -> u32 {
            self.0[client as usize].colour
        }
    }

    fn client(name: &str, seed: u32, width: u32, height: u32, view: Rect) -> Client {
        // The label the compositor sees is relative to the init that routes
        // the session: the child's name.
        let label = String::from(name);
        let mut pixels = vec![0; (width * height) as usize];
        fill(&mut pixels, width, seed);
        Client {
            colour: Policy::default().decide(&label).colour,
            label,
            pixels,
            width,
            height,
            view,
        }
    }

    /// The sums `ram_fb` logs for `watches` once `clients` are painted.
    fn sums(clients: Vec<Client>, watches: &[Rect]) -> Vec<u64> {
        let mode = Mode::new(320, 240, PixelFormat::Xrgb8888).unwrap();
        let mut scene = Scene::new();
        for (index, client) in clients.iter().enumerate() {
            let view = scene.create(index as ClientId).unwrap();
            scene.place(index as ClientId, view, client.view).unwrap();
        }
        let mut screen = vec![0; mode.pixels() as usize];
        paint(
            &scene,
            &Clientele(clients),
            &mut screen,
            &mode,
            mode.bounds(),
        );
        watches
            .iter()
            .map(|rect| {
                let sum = checksum(&screen, &mode, rect).1;
                println!("{rect:?}: 0x{sum:016x}");
                sum
            })
            .collect()
    }

    /// The two honest clients of both scenarios, in their final state
    /// (seed + updates: 1 + 20 and 2 + 20).
    fn honest() -> Vec<Client> {
        vec![
            client("painter", 21, 64, 48, Rect::new(16, 40, 64, 48)),
            client("untrusted_painter", 22, 64, 48, Rect::new(160, 100, 64, 48)),
        ]
    }

    const WATCHES: [Rect; 5] = [
        Rect::new(16, 40, 64, 48),   // painter's content
        Rect::new(16, 28, 64, 12),   // painter's strip
        Rect::new(160, 100, 64, 48), // untrusted_painter's content
        Rect::new(160, 88, 64, 12),  // untrusted_painter's strip (red)
        Rect::new(40, 20, 32, 44),   // where the hostile view was (frame)
    ];

    #[test]
    fn gui_ram_expected_sums() {
        let sums = sums(honest(), &WATCHES);
        assert_eq!(
            sums,
            [
                0x633e_319d_564e_649b,
                0x15ad_2d0b_5f3d_550c,
                0x3442_e286_16d8_bf46,
                0x9691_3b17_d9db_b55c,
                0x28ec_3908_3f36_7f34,
            ]
        );
    }

    #[test]
    fn strips_show_the_label_in_the_policy_colour() {
        let clients = honest();
        assert_eq!(
            clients[1].colour,
            compositor::policy::UNTRUSTED_STRIP_COLOUR
        );
        assert_eq!(clients[0].colour, compositor::policy::DEFAULT_STRIP_COLOUR);
    }

    #[test]
    fn patterns_differ_by_seed_and_position() {
        assert_ne!(pattern(1, 0, 0), pattern(2, 0, 0));
        assert_ne!(pattern(1, 0, 0), pattern(1, 1, 0));
        assert_ne!(pattern(1, 0, 0), pattern(1, 0, 1));
        let mut pixels = [0; 6];
        fill(&mut pixels, 3, 5);
        assert_eq!(pixels[4], pattern(5, 1, 1));
        fill(&mut pixels, 0, 5);
    }
}
