//! Views, their stacking and their title strips.
//!
//! A view belongs to one client (the session's badge) and shows the top
//! left of that client's buffer in its content rectangle. Above the content
//! sits the view's title strip, [`STRIP_HEIGHT`] pixels tall, which the
//! compositor paints with the client's label. Strips are painted over every
//! client's content (see [`crate::compose`]), so a view placed over another
//! client's strip is clipped there: no client can hide or imitate another's
//! label. Strips overlap each other in stacking order: the upper view's
//! strip, with its own label, shows. Views are kept bottom to top; placing
//! a view raises it.
//!
//! Every change returns the screen rectangle it damaged, so the caller
//! repaints exactly that.

use alloc::vec::Vec;
use arbor_sessions::SessionError;
use arbor_sessions::framebuffer::Rect;
use arbor_sessions::gui::{VIEWS_PER_SESSION, ViewId};

/// Height of a title strip in pixels: an 8-pixel glyph with 2 pixels above
/// and below.
pub const STRIP_HEIGHT: u32 = 12;

/// Views the whole scene holds at most.
pub const MAX_VIEWS: usize = 64;

/// A client, known by its session badge.
pub type ClientId = u64;

/// One view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Its owner.
    pub client: ClientId,
    /// Its name within the owner's session.
    pub id: ViewId,
    /// Where its content goes on screen (empty until placed).
    pub content: Rect,
}

impl View {
    /// The title strip: as wide as the content, directly above it.
    pub fn strip(&self) -> Rect {
        if self.content.is_empty() {
            return Rect::default();
        }
        Rect::from_edges(
            i64::from(self.content.x),
            i64::from(self.content.y) - i64::from(STRIP_HEIGHT),
            self.content.right(),
            i64::from(self.content.y),
        )
    }

    /// Strip and content together.
    pub fn frame(&self) -> Rect {
        self.strip().union(&self.content)
    }
}

/// What placing a view did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Screen area to repaint (old and new frame).
    pub damage: Rect,
    /// A client whose strip the new content overlaps (the strip stays on
    /// top; the caller logs it).
    pub covers_strip_of: Option<ClientId>,
}

/// All views, bottom to top.
#[derive(Clone, Debug, Default)]
pub struct Scene {
    views: Vec<View>,
    next_id: Vec<(ClientId, u32)>,
}

impl Scene {
    /// No views.
    pub const fn new() -> Self {
        Scene {
            views: Vec::new(),
            next_id: Vec::new(),
        }
    }

    /// Views bottom to top.
    pub fn views(&self) -> &[View] {
        &self.views
    }

    fn position(&self, client: ClientId, id: ViewId) -> Result<usize, SessionError> {
        self.views
            .iter()
            .position(|view| view.client == client && view.id == id)
            .ok_or(SessionError::BadRequest)
    }

    /// A new, unplaced view for `client`; refused beyond
    /// [`VIEWS_PER_SESSION`] per client or [`MAX_VIEWS`] in all.
    pub fn create(&mut self, client: ClientId) -> Result<ViewId, SessionError> {
        let owned = self
            .views
            .iter()
            .filter(|view| view.client == client)
            .count();
        if owned >= VIEWS_PER_SESSION || self.views.len() >= MAX_VIEWS {
            return Err(SessionError::InsufficientQuota { needed: 0 });
        }
        let slot = match self.next_id.iter().position(|&(owner, _)| owner == client) {
            Some(slot) => slot,
            None => {
                self.next_id
                    .try_reserve(1)
                    .map_err(|_| SessionError::InsufficientQuota { needed: 4096 })?;
                self.next_id.push((client, 1));
                self.next_id.len() - 1
            }
        };
        self.views
            .try_reserve(1)
            .map_err(|_| SessionError::InsufficientQuota { needed: 4096 })?;
        let id = ViewId(self.next_id[slot].1);
        self.next_id[slot].1 = self.next_id[slot].1.wrapping_add(1).max(1);
        self.views.push(View {
            client,
            id,
            content: Rect::default(),
        });
        Ok(id)
    }

    /// Moves `client`'s view `id` to `content` and raises it to the top.
    /// Another client's view id is `BadRequest`: ids name views only within
    /// their owner's session.
    pub fn place(
        &mut self,
        client: ClientId,
        id: ViewId,
        content: Rect,
    ) -> Result<Placement, SessionError> {
        let index = self.position(client, id)?;
        let mut view = self.views.remove(index);
        let old = view.frame();
        view.content = content;
        let covers_strip_of = self
            .views
            .iter()
            .find(|other| other.client != client && !other.strip().intersect(&content).is_empty())
            .map(|other| other.client);
        let damage = old.union(&view.frame());
        self.views.push(view);
        Ok(Placement {
            damage,
            covers_strip_of,
        })
    }

    /// Removes `client`'s view `id`; the area it covered.
    pub fn destroy(&mut self, client: ClientId, id: ViewId) -> Result<Rect, SessionError> {
        let index = self.position(client, id)?;
        Ok(self.views.remove(index).frame())
    }

    /// Removes every view of `client` (it closed its session or died); the
    /// area they covered.
    pub fn remove_client(&mut self, client: ClientId) -> Rect {
        let mut damage = Rect::default();
        self.views.retain(|view| {
            if view.client == client {
                damage = damage.union(&view.frame());
                false
            } else {
                true
            }
        });
        self.next_id.retain(|&(owner, _)| owner != client);
        damage
    }

    /// The topmost view whose frame (strip or content) holds the pixel.
    pub fn view_at(&self, x: i64, y: i64) -> Option<&View> {
        self.views
            .iter()
            .rev()
            .find(|view| view.frame().contains(x, y))
    }

    /// Screen damage of `client` changing `dirty` of its buffer (buffer
    /// coordinates): the dirty part of each of its views' content.
    pub fn refresh_damage(&self, client: ClientId, dirty: Rect) -> impl Iterator<Item = Rect> + '_ {
        self.views
            .iter()
            .filter(move |view| view.client == client)
            .map(move |view| {
                dirty
                    .translated(i64::from(view.content.x), i64::from(view.content.y))
                    .intersect(&view.content)
            })
            .filter(|rect| !rect.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_sit_above_the_content_and_survive_extreme_coordinates() {
        let view = View {
            client: 1,
            id: ViewId(1),
            content: Rect::new(10, 20, 30, 40),
        };
        assert_eq!(view.strip(), Rect::new(10, 8, 30, 12));
        assert_eq!(view.frame(), Rect::new(10, 8, 30, 52));
        let top = View {
            content: Rect::new(0, i32::MIN, 5, 5),
            ..view
        };
        // No room above: the strip is clamped away, never wraps around.
        assert!(top.strip().is_empty());
        let huge = View {
            content: Rect::new(i32::MAX - 1, i32::MAX - 1, u32::MAX, u32::MAX),
            ..view
        };
        assert_eq!(huge.strip().height, STRIP_HEIGHT);
        assert!(
            View {
                content: Rect::default(),
                ..view
            }
            .strip()
            .is_empty()
        );
    }

    #[test]
    fn views_belong_to_their_client_and_are_bounded() {
        let mut scene = Scene::new();
        let a = scene.create(1).unwrap();
        let b = scene.create(2).unwrap();
        assert_eq!(a, b, "ids are per client");
        assert_eq!(
            scene.place(2, ViewId(99), Rect::new(0, 0, 1, 1)).err(),
            Some(SessionError::BadRequest)
        );
        scene.place(1, a, Rect::new(0, 20, 10, 10)).unwrap();
        // Client 2 cannot move client 1's view by naming the same id: it
        // moves its own.
        scene.place(2, a, Rect::new(50, 50, 10, 10)).unwrap();
        assert_eq!(scene.views()[0].content, Rect::new(0, 20, 10, 10));
        assert_eq!(
            scene.destroy(2, ViewId(7)).err(),
            Some(SessionError::BadRequest)
        );
        for _ in 0..VIEWS_PER_SESSION {
            scene.create(3).unwrap();
        }
        assert!(scene.create(3).is_err());
        assert!(scene.create(4).is_ok());
    }

    #[test]
    fn placing_raises_and_reports_covered_strips_and_damage() {
        let mut scene = Scene::new();
        let a = scene.create(1).unwrap();
        let b = scene.create(2).unwrap();
        scene.place(1, a, Rect::new(0, 20, 100, 100)).unwrap();
        let placed = scene.place(2, b, Rect::new(50, 10, 100, 100)).unwrap();
        assert_eq!(placed.covers_strip_of, Some(1));
        assert_eq!(placed.damage, Rect::new(50, -2, 100, 112));
        assert_eq!(scene.views()[1].client, 2);
        assert_eq!(scene.view_at(60, 15).map(|v| v.client), Some(2));
        assert_eq!(scene.view_at(10, 15).map(|v| v.client), Some(1));
        assert_eq!(scene.view_at(10, 5).map(|v| v.client), None);
        let moved = scene.place(1, a, Rect::new(300, 300, 10, 10)).unwrap();
        assert_eq!(moved.covers_strip_of, None);
        assert_eq!(moved.damage, Rect::new(0, 8, 310, 302));
        assert_eq!(scene.views()[1].client, 1, "raised");
    }

    #[test]
    fn a_dead_client_leaves_nothing_behind() {
        let mut scene = Scene::new();
        let a = scene.create(1).unwrap();
        let b = scene.create(1).unwrap();
        let c = scene.create(2).unwrap();
        scene.place(1, a, Rect::new(0, 12, 10, 10)).unwrap();
        scene.place(1, b, Rect::new(100, 112, 10, 10)).unwrap();
        scene.place(2, c, Rect::new(40, 52, 10, 10)).unwrap();
        assert_eq!(scene.remove_client(1), Rect::new(0, 0, 110, 122));
        assert_eq!(scene.views().len(), 1);
        assert_eq!(scene.view_at(5, 15), None);
        assert_eq!(scene.remove_client(1), Rect::default());
    }

    #[test]
    fn refresh_damage_is_clipped_to_each_view() {
        let mut scene = Scene::new();
        let a = scene.create(1).unwrap();
        let b = scene.create(1).unwrap();
        scene.place(1, a, Rect::new(10, 20, 4, 4)).unwrap();
        scene.place(1, b, Rect::new(-2, -2, 4, 4)).unwrap();
        let damage: Vec<Rect> = scene.refresh_damage(1, Rect::new(2, 2, 100, 100)).collect();
        assert_eq!(damage, [Rect::new(12, 22, 2, 2), Rect::new(0, 0, 2, 2)]);
        // Outside the buffer's visible part: nothing.
        assert_eq!(
            scene.refresh_damage(1, Rect::new(-50, -50, 10, 10)).count(),
            0
        );
        assert_eq!(scene.refresh_damage(2, Rect::new(0, 0, 9, 9)).count(), 0);
        assert_eq!(
            scene
                .refresh_damage(1, Rect::new(i32::MIN, i32::MIN, u32::MAX, u32::MAX))
                .count(),
            2
        );
    }
}
