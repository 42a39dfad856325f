//! Damage and the refresh budget.
//!
//! A client's refresh does not paint at once: its damage is collected
//! ([`Damage`], a few rectangles, merged into their bounding box when there
//! are too many) and painted at the next frame. Each client may refresh
//! [`Budget::per_frame`] times per frame; further refreshes in the same
//! frame are refused, and the refusal is reported once per frame so the log
//! is not flooded either. The painting work per frame is therefore bounded
//! by the screen size, whatever one client sends, and every client's
//! refreshes within its budget are painted in the next frame.

use crate::scene::ClientId;
use alloc::vec::Vec;
use arbor_sessions::framebuffer::Rect;

/// Rectangles a damage list keeps before merging.
pub const DAMAGE_RECTS: usize = 8;

/// Damaged screen rectangles awaiting the next frame.
#[derive(Clone, Debug, Default)]
pub struct Damage {
    rects: Vec<Rect>,
}

impl Damage {
    /// Nothing damaged.
    pub const fn new() -> Self {
        Damage { rects: Vec::new() }
    }

    /// Adds `rect`: merged into a rectangle it overlaps, or kept apart;
    /// when [`DAMAGE_RECTS`] are kept, all become their bounding box.
    pub fn add(&mut self, rect: Rect) {
        if rect.is_empty() {
            return;
        }
        let mut merged = rect;
        self.rects.retain(|kept| {
            if kept.intersect(&merged).is_empty() {
                true
            } else {
                merged = merged.union(kept);
                false
            }
        });
        if self.rects.len() >= DAMAGE_RECTS || self.rects.try_reserve(1).is_err() {
            let all = self
                .rects
                .drain(..)
                .fold(merged, |all, kept| all.union(&kept));
            self.rects.push(all);
            return;
        }
        self.rects.push(merged);
    }

    /// Takes the rectangles, leaving nothing damaged.
    pub fn take(&mut self) -> Vec<Rect> {
        core::mem::take(&mut self.rects)
    }

    /// True when nothing is damaged.
    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }
}

/// Whether a refresh was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Within the budget.
    Accepted,
    /// Over the budget; the first refusal in this frame (log it).
    RefusedFirst,
    /// Over the budget again in this frame.
    Refused,
}

/// Refreshes per client per frame.
#[derive(Clone, Debug)]
pub struct Budget {
    per_frame: u32,
    used: Vec<(ClientId, u32)>,
}

impl Budget {
    /// `per_frame` refreshes per client per frame (at least 1).
    pub fn new(per_frame: u32) -> Self {
        Budget {
            per_frame: per_frame.max(1),
            used: Vec::new(),
        }
    }

    /// Refreshes allowed per frame.
    pub fn per_frame(&self) -> u32 {
        self.per_frame
    }

    /// Counts one refresh of `client`.
    pub fn admit(&mut self, client: ClientId) -> Admission {
        let index = match self.used.iter().position(|&(owner, _)| owner == client) {
            Some(index) => index,
            None => {
                if self.used.try_reserve(1).is_err() {
                    return Admission::Refused;
                }
                self.used.push((client, 0));
                self.used.len() - 1
            }
        };
        let used = &mut self.used[index].1;
        *used = used.saturating_add(1);
        match (*used).cmp(&(self.per_frame + 1)) {
            core::cmp::Ordering::Less => Admission::Accepted,
            core::cmp::Ordering::Equal => Admission::RefusedFirst,
            core::cmp::Ordering::Greater => Admission::Refused,
        }
    }

    /// A frame was painted: every client's budget is full again.
    pub fn next_frame(&mut self) {
        self.used.clear();
    }
}

/// Refusals one client gets logged per frame; the rest are counted and
/// summed up in one line, so a client sending garbage in a loop cannot
/// flood the log (and slow every other component's Log path) either.
pub const COMPLAINTS_PER_FRAME: u32 = 8;

/// One client's logged refusals in the current frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Complaints {
    this_frame: u32,
}

impl Complaints {
    /// Counts a refusal; whether to log it.
    pub fn admit(&mut self) -> bool {
        self.this_frame = self.this_frame.saturating_add(1);
        self.this_frame <= COMPLAINTS_PER_FRAME
    }

    /// A new frame: how many refusals of the last one went unlogged.
    pub fn next_frame(&mut self) -> u32 {
        let unlogged = self.this_frame.saturating_sub(COMPLAINTS_PER_FRAME);
        self.this_frame = 0;
        unlogged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_are_logged_up_to_the_limit_and_the_rest_counted() {
        let mut complaints = Complaints::default();
        let logged = (0..1000).filter(|_| complaints.admit()).count();
        assert_eq!(logged, COMPLAINTS_PER_FRAME as usize);
        assert_eq!(complaints.next_frame(), 1000 - COMPLAINTS_PER_FRAME);
        assert!(complaints.admit());
        assert_eq!(complaints.next_frame(), 0);
    }

    #[test]
    fn overlapping_damage_merges_and_too_much_collapses() {
        let mut damage = Damage::new();
        damage.add(Rect::new(0, 0, 10, 10));
        damage.add(Rect::new(5, 5, 10, 10));
        damage.add(Rect::new(100, 100, 1, 1));
        damage.add(Rect::new(3, 3, 0, 50));
        assert_eq!(
            damage.take(),
            [Rect::new(0, 0, 15, 15), Rect::new(100, 100, 1, 1)]
        );
        assert!(damage.is_empty());
        for i in 0..1000 {
            damage.add(Rect::new(i * 20, 0, 1, 1));
        }
        let rects = damage.take();
        assert!(rects.len() <= DAMAGE_RECTS);
        let all = rects.iter().fold(Rect::default(), |a, r| a.union(r));
        assert_eq!(all, Rect::new(0, 0, 19_981, 1));
    }

    #[test]
    fn a_flooding_client_is_refused_and_others_are_not() {
        let mut budget = Budget::new(3);
        for _ in 0..3 {
            assert_eq!(budget.admit(1), Admission::Accepted);
        }
        assert_eq!(budget.admit(1), Admission::RefusedFirst);
        for _ in 0..10_000 {
            assert_eq!(budget.admit(1), Admission::Refused);
        }
        assert_eq!(
            budget.admit(2),
            Admission::Accepted,
            "others keep their budget"
        );
        budget.next_frame();
        assert_eq!(budget.admit(1), Admission::Accepted);
        assert_eq!(Budget::new(0).per_frame(), 1);
    }
}
