//! Who gets which input event.
//!
//! The pointer's position comes only from the input driver; no client can
//! set it. A button press focuses the client whose view (strip or content)
//! is topmost under the pointer — unless focus is pinned by policy. Keys go
//! to the focused client alone. Motion and buttons go to the client under
//! the pointer, with coordinates relative to its view's content, so a client
//! learns where the pointer is only while it is over one of its own views.

use crate::scene::{ClientId, Scene};
use alloc::vec::Vec;
use arbor_sessions::input::Event;

/// One event for one client.
pub type Delivery = (ClientId, Event);

/// Pointer position and focus.
#[derive(Clone, Debug, Default)]
pub struct Focus {
    focused: Option<ClientId>,
    pinned: Option<ClientId>,
    pointer: (i32, i32),
}

impl Focus {
    /// Nobody focused, pointer at (0, 0).
    pub const fn new() -> Self {
        Focus {
            focused: None,
            pinned: None,
            pointer: (0, 0),
        }
    }

    /// The focused client.
    pub fn focused(&self) -> Option<ClientId> {
        self.focused
    }

    /// Where the pointer is.
    pub fn pointer(&self) -> (i32, i32) {
        self.pointer
    }

    fn change_focus(&mut self, to: Option<ClientId>, out: &mut Vec<Delivery>) {
        if self.focused == to {
            return;
        }
        if let Some(old) = self.focused {
            out.push((old, Event::Focus(false)));
        }
        if let Some(new) = to {
            out.push((new, Event::Focus(true)));
        }
        self.focused = to;
    }

    /// Pins focus to `client` (policy): clicks no longer move it.
    pub fn pin(&mut self, client: ClientId) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.pinned = Some(client);
        self.change_focus(Some(client), &mut out);
        out
    }

    /// `client` is gone: it loses focus and any pin.
    pub fn forget(&mut self, client: ClientId) {
        if self.focused == Some(client) {
            self.focused = None;
        }
        if self.pinned == Some(client) {
            self.pinned = None;
        }
    }

    /// Routes one event from the input driver.
    pub fn route(&mut self, scene: &Scene, event: Event) -> Vec<Delivery> {
        let mut out = Vec::new();
        let (x, y) = (i64::from(self.pointer.0), i64::from(self.pointer.1));
        let under = scene.view_at(x, y).copied();
        let relative = |view: &crate::scene::View, x: i64, y: i64| Event::Motion {
            x: (x - i64::from(view.content.x)).clamp(i64::from(i32::MIN), i64::from(i32::MAX))
                as i32,
            y: (y - i64::from(view.content.y)).clamp(i64::from(i32::MIN), i64::from(i32::MAX))
                as i32,
        };
        match event {
            Event::Motion { x, y } => {
                self.pointer = (x, y);
                if let Some(view) = scene.view_at(x.into(), y.into()) {
                    out.push((view.client, relative(view, x.into(), y.into())));
                }
            }
            Event::ButtonPress(_) => {
                if self.pinned.is_none() {
                    self.change_focus(under.map(|view| view.client), &mut out);
                }
                if let Some(view) = under {
                    out.push((view.client, event));
                }
            }
            Event::ButtonRelease(_) => {
                if let Some(view) = under {
                    out.push((view.client, event));
                }
            }
            Event::Press(_) | Event::Release(_) => {
                if let Some(client) = self.focused {
                    out.push((client, event));
                }
            }
            // Focus events are the compositor's to make, never a driver's.
            Event::Focus(_) => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_sessions::framebuffer::Rect;
    use arbor_sessions::input::{Button, KeyCode};

    fn two_views() -> Scene {
        let mut scene = Scene::new();
        let a = scene.create(1).unwrap();
        let b = scene.create(2).unwrap();
        scene.place(1, a, Rect::new(0, 12, 100, 100)).unwrap();
        scene.place(2, b, Rect::new(200, 12, 100, 100)).unwrap();
        scene
    }

    const KEY: Event = Event::Press(KeyCode(30));
    const CLICK: Event = Event::ButtonPress(Button::Left);

    #[test]
    fn keys_go_only_to_the_focused_client_and_a_click_moves_focus() {
        let scene = two_views();
        let mut focus = Focus::new();
        assert!(focus.route(&scene, KEY).is_empty(), "nobody focused");
        focus.route(&scene, Event::Motion { x: 10, y: 50 });
        assert_eq!(
            focus.route(&scene, CLICK),
            [(1, Event::Focus(true)), (1, CLICK)]
        );
        assert_eq!(focus.route(&scene, KEY), [(1, KEY)]);
        assert_eq!(
            focus.route(&scene, Event::Motion { x: 210, y: 5 }),
            [(2, Event::Motion { x: 10, y: -7 })],
            "motion over the strip goes to its owner, relative to the content"
        );
        assert_eq!(
            focus.route(&scene, KEY),
            [(1, KEY)],
            "hovering is not focus"
        );
        assert_eq!(
            focus.route(&scene, CLICK),
            [
                (1, Event::Focus(false)),
                (2, Event::Focus(true)),
                (2, CLICK)
            ]
        );
        assert_eq!(focus.route(&scene, KEY), [(2, KEY)]);
        // A click on the background unfocuses.
        focus.route(&scene, Event::Motion { x: 150, y: 50 });
        assert_eq!(focus.route(&scene, CLICK), [(2, Event::Focus(false))]);
        assert!(focus.route(&scene, KEY).is_empty());
    }

    #[test]
    fn pinned_focus_ignores_clicks() {
        let scene = two_views();
        let mut focus = Focus::new();
        assert_eq!(focus.pin(2), [(2, Event::Focus(true))]);
        focus.route(&scene, Event::Motion { x: 10, y: 50 });
        assert_eq!(focus.route(&scene, CLICK), [(1, CLICK)]);
        assert_eq!(focus.route(&scene, KEY), [(2, KEY)]);
        focus.forget(2);
        assert!(focus.route(&scene, KEY).is_empty());
        assert_eq!(
            focus.route(&scene, CLICK),
            [(1, Event::Focus(true)), (1, CLICK)]
        );
    }

    #[test]
    fn a_dead_client_gets_nothing_and_forged_focus_events_are_dropped() {
        let mut scene = two_views();
        let mut focus = Focus::new();
        focus.route(&scene, Event::Motion { x: 10, y: 50 });
        focus.route(&scene, CLICK);
        scene.remove_client(1);
        focus.forget(1);
        assert!(focus.route(&scene, KEY).is_empty());
        assert!(focus.route(&scene, Event::Focus(true)).is_empty());
        assert!(
            focus
                .route(&scene, Event::Motion { x: 10, y: 50 })
                .is_empty()
        );
        // Extreme pointer values neither panic nor wrap.
        assert!(
            focus
                .route(
                    &scene,
                    Event::Motion {
                        x: i32::MIN,
                        y: i32::MAX
                    }
                )
                .is_empty()
        );
    }
}
