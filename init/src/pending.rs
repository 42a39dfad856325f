//! Work init has queued for its child servers: session creations, upgrades
//! and closes waiting to be fetched ([`WorkQueue::next_for`]) or delivered
//! ([`WorkQueue::take`]), each with a deadline. Pure bookkeeping, tested on
//! the host: which quota sits where while an item is outstanding, so that a
//! refusal, an expired deadline or a dead server returns exactly what was
//! donated.
//!
//! Where an item's quota is:
//! - a queued create or upgrade: all of it at init (moved from the client);
//! - a fetched create: everything but [`PARENT_SESSION_CAPS`] at the server
//!   (init keeps those for the session capability it will hold), a fetched
//!   upgrade: all of it at the server;
//! - a close: the session's quota at the server, until it acknowledges.

use alloc::string::String;
use alloc::vec::Vec;
use arbor_sessions::parent::PARENT_SESSION_CAPS;
use arbor_sessions::table::Quota;

/// What a work item asks of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// Create a session of `service` for `label`.
    Create {
        service: String,
        label: String,
        args: Vec<u8>,
    },
    /// More quota for the session `badge`.
    Upgrade { badge: u64 },
    /// Close the session `badge`.
    Close { badge: u64 },
}

/// Who asked, and so who is told and refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Child `client`'s session `session` (None: the client is gone, its
    /// quota stays with init).
    Child { client: Option<usize>, session: u32 },
    /// init's parent, through an exported service: its work item `id`.
    Parent { id: u32 },
}

/// One outstanding item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkItem {
    /// The id the server fetches and delivers it by.
    pub id: u32,
    /// The child that serves it.
    pub provider: usize,
    pub kind: ItemKind,
    pub origin: Origin,
    /// The quota that travels with it (a close: what goes back).
    pub quota: Quota,
    /// Whether the server fetched it.
    pub fetched: bool,
    /// When (init's milliseconds) it expires.
    pub deadline_ms: u64,
}

impl WorkItem {
    /// The part of the item's quota that is in the server's Pd now.
    pub fn at_provider(&self) -> Quota {
        match (&self.kind, self.fetched) {
            (ItemKind::Close { .. }, _) => self.quota,
            (ItemKind::Create { .. }, true) => Quota {
                ram: self.quota.ram,
                caps: self.quota.caps.saturating_sub(PARENT_SESSION_CAPS),
            },
            (ItemKind::Upgrade { .. }, true) => self.quota,
            (_, false) => Quota::default(),
        }
    }

    /// The part of the item's quota that is in init's Pd now.
    pub fn at_init(&self) -> Quota {
        let provider = self.at_provider();
        Quota {
            ram: self.quota.ram - provider.ram,
            caps: self.quota.caps - provider.caps,
        }
    }

    /// What moves to the server when it fetches the item.
    pub fn moves_on_fetch(&self) -> Quota {
        match self.kind {
            ItemKind::Close { .. } => Quota::default(),
            _ => WorkItem {
                fetched: true,
                ..self.clone()
            }
            .at_provider(),
        }
    }

    /// A short name of what was asked, for reports.
    pub fn what(&self) -> String {
        match &self.kind {
            ItemKind::Create { service, .. } => alloc::format!("{service} session request"),
            ItemKind::Upgrade { .. } => String::from("session upgrade"),
            ItemKind::Close { .. } => String::from("session close"),
        }
    }
}

/// Why a delivery was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such item (never was, delivered already, or expired).
    Unknown,
    /// The item belongs to another server.
    NotYours,
    /// The server has not fetched it.
    NotFetched,
}

/// Every outstanding item, oldest first.
#[derive(Debug, Default)]
pub struct WorkQueue {
    items: Vec<WorkItem>,
    next_id: u32,
}

impl WorkQueue {
    /// Queues an item for `provider`, due `deadline_ms` after `now_ms`; its id.
    pub fn push(
        &mut self,
        provider: usize,
        kind: ItemKind,
        origin: Origin,
        quota: Quota,
        now_ms: u64,
        deadline_ms: u64,
    ) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        self.items.push(WorkItem {
            id,
            provider,
            kind,
            origin,
            quota,
            fetched: false,
            deadline_ms: now_ms.saturating_add(deadline_ms),
        });
        id
    }

    /// The oldest item `provider` has not fetched yet, now marked fetched.
    pub fn next_for(&mut self, provider: usize) -> Option<&WorkItem> {
        let item = self
            .items
            .iter_mut()
            .find(|item| item.provider == provider && !item.fetched)?;
        item.fetched = true;
        Some(item)
    }

    /// Takes item `id` back as never fetched (handing it out failed, so its
    /// quota never moved).
    pub fn withdraw(&mut self, id: u32) -> Option<WorkItem> {
        let index = self.items.iter().position(|item| item.id == id)?;
        let mut item = self.items.remove(index);
        item.fetched = false;
        Some(item)
    }

    /// Takes item `id` that `provider` delivers.
    pub fn take(&mut self, provider: usize, id: u32) -> Result<WorkItem, Refusal> {
        let index = self
            .items
            .iter()
            .position(|item| item.id == id)
            .ok_or(Refusal::Unknown)?;
        let item = &self.items[index];
        if item.provider != provider {
            return Err(Refusal::NotYours);
        }
        if !item.fetched {
            return Err(Refusal::NotFetched);
        }
        Ok(self.items.remove(index))
    }

    /// Removes and returns every item whose deadline has passed.
    pub fn expire(&mut self, now_ms: u64) -> Vec<WorkItem> {
        self.remove_where(|item| item.deadline_ms <= now_ms)
    }

    /// Removes and returns every item of `provider` (it is gone).
    pub fn drain_provider(&mut self, provider: usize) -> Vec<WorkItem> {
        self.remove_where(|item| item.provider == provider)
    }

    /// Refunds for child `client`'s items stay with init from now on.
    pub fn forget_client(&mut self, client: usize) {
        for item in &mut self.items {
            if let Origin::Child {
                client: who @ Some(_),
                ..
            } = &mut item.origin
                && *who == Some(client)
            {
                *who = None;
            }
        }
    }

    /// The quota that comes back to init once servers answer: what the
    /// items of clients that are gone hold at their providers now. A leak
    /// check adds it to init's free quota, so that a close still on its
    /// way is not counted as lost.
    pub fn owed_to_init(&self) -> Quota {
        self.items
            .iter()
            .filter(|item| matches!(item.origin, Origin::Child { client: None, .. }))
            .fold(Quota::default(), |sum, item| {
                let held = item.at_provider();
                Quota {
                    ram: sum.ram.saturating_add(held.ram),
                    caps: sum.caps.saturating_add(held.caps),
                }
            })
    }

    #[cfg(test)]
    /// Whether a create for child `client`'s session `session` is outstanding.
    pub fn find_session(&self, client: usize, session: u32) -> Option<&WorkItem> {
        self.items.iter().find(|item| {
            item.origin
                == Origin::Child {
                    client: Some(client),
                    session,
                }
        })
    }

    #[cfg(test)]
    /// How many items are outstanding.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    fn remove_where(&mut self, mut condition: impl FnMut(&WorkItem) -> bool) -> Vec<WorkItem> {
        let (removed, kept) = core::mem::take(&mut self.items)
            .into_iter()
            .partition(|item| condition(item));
        self.items = kept;
        removed
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    const DONATION: Quota = Quota { ram: 8192, caps: 4 };

    fn create() -> ItemKind {
        ItemKind::Create {
            service: "Timer".into(),
            label: "hello".into(),
            args: Vec::new(),
        }
    }

    fn from(client: usize, session: u32) -> Origin {
        Origin::Child {
            client: Some(client),
            session,
        }
    }

    #[test]
    fn ids_are_distinct_and_items_come_oldest_first_per_server() {
        let mut queue = WorkQueue::default();
        let a = queue.push(1, create(), from(0, 10), DONATION, 0, 2000);
        let b = queue.push(2, create(), from(0, 11), DONATION, 0, 2000);
        let c = queue.push(
            1,
            ItemKind::Close { badge: 3 },
            from(0, 12),
            DONATION,
            5,
            2000,
        );
        assert!(a != b && b != c && a != c);
        assert_eq!(queue.next_for(1).map(|i| i.id), Some(a));
        assert_eq!(queue.next_for(1).map(|i| i.id), Some(c));
        assert_eq!(queue.next_for(1).map(|i| i.id), None);
        assert_eq!(queue.next_for(2).map(|i| i.id), Some(b));
    }

    #[test]
    fn a_delivery_must_be_the_servers_own_fetched_item() {
        let mut queue = WorkQueue::default();
        let a = queue.push(1, create(), from(0, 10), DONATION, 0, 2000);
        assert_eq!(queue.take(1, a), Err(Refusal::NotFetched));
        queue.next_for(1);
        assert_eq!(queue.take(2, a), Err(Refusal::NotYours));
        assert_eq!(queue.take(1, a + 100), Err(Refusal::Unknown));
        assert_eq!(queue.take(1, a).map(|i| i.id), Ok(a));
        assert_eq!(queue.take(1, a), Err(Refusal::Unknown));
    }

    #[test]
    fn deadlines_expire_and_an_expired_item_cannot_be_delivered() {
        let mut queue = WorkQueue::default();
        let early = queue.push(1, create(), from(0, 10), DONATION, 0, 2000);
        let late = queue.push(1, create(), from(0, 11), DONATION, 1000, 2000);
        queue.next_for(1);
        assert!(queue.expire(1999).is_empty());
        let expired = queue.expire(2000);
        assert_eq!(expired.iter().map(|i| i.id).collect::<Vec<_>>(), [early]);
        assert_eq!(queue.take(1, early), Err(Refusal::Unknown));
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.expire(u64::MAX).len(), 1);
        assert_eq!(queue.take(1, late), Err(Refusal::Unknown));
    }

    #[test]
    fn quota_is_where_the_item_says_and_always_sums_to_the_donation() {
        let mut queue = WorkQueue::default();
        let a = queue.push(1, create(), from(0, 10), DONATION, 0, 2000);
        let up = queue.push(
            1,
            ItemKind::Upgrade { badge: 1 },
            from(0, 10),
            DONATION,
            0,
            9,
        );
        let close = queue.push(1, ItemKind::Close { badge: 1 }, from(0, 10), DONATION, 0, 9);
        let moves: Vec<Quota> = [a, up, close]
            .iter()
            .map(|&id| {
                let item = queue.items.iter().find(|i| i.id == id).unwrap();
                assert_eq!(item.at_init().ram + item.at_provider().ram, DONATION.ram);
                assert_eq!(item.at_init().caps + item.at_provider().caps, DONATION.caps);
                item.moves_on_fetch()
            })
            .collect();
        assert_eq!(
            moves,
            [
                Quota {
                    ram: 8192,
                    caps: 4 - PARENT_SESSION_CAPS
                },
                DONATION,
                Quota::default()
            ]
        );
        let item = queue.next_for(1).unwrap().clone();
        assert_eq!(item.at_provider(), moves[0]);
        assert_eq!(item.at_init().caps, PARENT_SESSION_CAPS);
        let close_item = queue.drain_provider(1).pop().unwrap();
        assert_eq!(close_item.at_provider(), DONATION);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_withdrawn_item_holds_nothing_at_the_server() {
        let mut queue = WorkQueue::default();
        let a = queue.push(1, create(), from(0, 10), DONATION, 0, 2000);
        queue.next_for(1);
        let item = queue.withdraw(a).unwrap();
        assert_eq!(item.at_provider(), Quota::default());
        assert_eq!(item.at_init(), DONATION);
        assert_eq!(queue.withdraw(a), None);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_gone_client_is_forgotten_but_its_items_stay() {
        let mut queue = WorkQueue::default();
        queue.push(1, create(), from(4, 10), DONATION, 0, 2000);
        queue.push(1, create(), from(5, 11), DONATION, 0, 2000);
        assert!(queue.find_session(4, 10).is_some());
        queue.forget_client(4);
        assert!(queue.find_session(4, 10).is_none());
        assert!(queue.find_session(5, 11).is_some());
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn closes_of_a_gone_client_are_owed_to_init_until_answered() {
        let mut queue = WorkQueue::default();
        let close = ItemKind::Close { badge: 1 };
        let gone = queue.push(1, close.clone(), from(4, 10), DONATION, 0, 2000);
        queue.push(2, close, from(5, 11), DONATION, 0, 2000);
        let unfetched_create = queue.push(1, create(), from(4, 12), DONATION, 0, 2000);
        assert_eq!(queue.owed_to_init(), Quota::default());
        queue.forget_client(4);
        // The close's donation sits at its server; the unfetched create's
        // never left init, so only the close is owed.
        assert_eq!(queue.owed_to_init(), DONATION);
        queue.next_for(1);
        queue.next_for(1);
        let create_at_server = Quota {
            ram: DONATION.ram,
            caps: DONATION.caps - PARENT_SESSION_CAPS,
        };
        assert_eq!(
            queue.owed_to_init(),
            Quota {
                ram: DONATION.ram + create_at_server.ram,
                caps: DONATION.caps + create_at_server.caps,
            }
        );
        queue.take(1, gone).unwrap();
        queue.take(1, unfetched_create).unwrap();
        assert_eq!(queue.owed_to_init(), Quota::default());
    }

    #[test]
    fn random_sequences_keep_every_item_accounted_for_once() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut queue = WorkQueue::default();
        let mut pushed = std::collections::BTreeSet::new();
        let mut left = std::collections::BTreeSet::new();
        let mut now = 0;
        for _ in 0..20_000 {
            now += next() % 50;
            let provider = (next() % 3) as usize;
            match next() % 6 {
                0 | 1 => {
                    let kind = match next() % 3 {
                        0 => create(),
                        1 => ItemKind::Upgrade { badge: next() % 9 },
                        _ => ItemKind::Close { badge: next() % 9 },
                    };
                    let quota = Quota {
                        ram: (next() % 8) * 4096,
                        caps: next() % 5,
                    };
                    let id = queue.push(provider, kind, from(0, 1), quota, now, 2000);
                    assert!(pushed.insert(id), "id {id} handed out twice");
                }
                2 => {
                    if let Some(item) = queue.next_for(provider) {
                        assert_eq!(item.provider, provider);
                        assert!(item.fetched);
                    }
                }
                3 => {
                    let id = (next() % (pushed.len() as u64 + 2)) as u32;
                    if let Ok(item) = queue.take(provider, id) {
                        assert!(item.fetched && item.provider == provider);
                        assert!(left.insert(item.id));
                    }
                }
                4 => {
                    for item in queue.expire(now) {
                        assert!(item.deadline_ms <= now);
                        assert!(left.insert(item.id));
                    }
                }
                _ => {
                    for item in queue.drain_provider(provider) {
                        assert!(left.insert(item.id));
                    }
                }
            }
            for item in &queue.items {
                let (init, server) = (item.at_init(), item.at_provider());
                assert_eq!(init.ram + server.ram, item.quota.ram);
                assert_eq!(init.caps + server.caps, item.quota.caps);
                assert!(!left.contains(&item.id));
            }
        }
        // Every item pushed is either still queued or left exactly once.
        assert_eq!(left.len() + queue.len(), pushed.len());
    }
}
