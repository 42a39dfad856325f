//! A server's sessions, keyed by the badge on their capabilities: the pure
//! part of the server framework ([`crate::server`]), tested on the host.
//!
//! Badges are chosen here, start at 1 and are never reused, so a client that
//! kept the capability of a closed session finds no session rather than
//! somebody else's. They stay below [`SESSION_BADGE_LIMIT`]; badge 0 is what
//! a receive woken by the server's own notification reports, so no session
//! call can pass for a notification. Every entry records the quota donated
//! for it, and the table grows only with `try_reserve`: a server that cannot
//! afford one more entry refuses the session instead of running out of heap.

use crate::SessionError;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Session badges are `1..SESSION_BADGE_LIMIT`.
pub const SESSION_BADGE_LIMIT: u64 = 1 << 48;

/// What a session's client donated for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Bytes of RAM quota.
    pub ram: u64,
    /// Capability quota.
    pub caps: u64,
}

impl Quota {
    /// Both amounts added, or `None` on overflow.
    pub fn checked_add(self, more: Quota) -> Option<Quota> {
        Some(Quota {
            ram: self.ram.checked_add(more.ram)?,
            caps: self.caps.checked_add(more.caps)?,
        })
    }

    /// Refuses a donation below `needed`, naming what is missing.
    pub fn require(self, needed: Quota) -> Result<(), SessionError> {
        if self.ram < needed.ram {
            return Err(SessionError::InsufficientQuota {
                needed: needed.ram - self.ram,
            });
        }
        if self.caps < needed.caps {
            return Err(SessionError::InsufficientCaps {
                needed: needed.caps - self.caps,
            });
        }
        Ok(())
    }
}

/// One open session.
#[derive(Debug)]
pub struct Entry<S> {
    /// The badge its capability carries.
    pub badge: u64,
    /// The label its parent composed ("init -> hello").
    pub label: String,
    /// Quota donated so far, upgrades included.
    pub quota: Quota,
    /// The server's own state for it.
    pub state: S,
}

/// Every open session of a server.
#[derive(Debug)]
pub struct SessionTable<S> {
    /// Sorted by badge (badges only grow).
    entries: Vec<Entry<S>>,
    next_badge: u64,
}

impl<S> Default for SessionTable<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> SessionTable<S> {
    /// No sessions.
    pub const fn new() -> Self {
        SessionTable {
            entries: Vec::new(),
            next_badge: 1,
        }
    }

    /// No sessions; badges start at `first` (at least 1), for a server that
    /// shares its endpoint with capabilities of other badges (init's
    /// config-ROM sessions beside its children's parent capabilities).
    pub fn starting_at(first: u64) -> Self {
        SessionTable {
            entries: Vec::new(),
            next_badge: first.max(1),
        }
    }

    /// Admits a session: its badge, or `InsufficientQuota` when the table
    /// cannot grow (the heap is paid from donated quota, so a client that
    /// donates more gets in).
    pub fn admit(&mut self, label: &str, quota: Quota, state: S) -> Result<u64, SessionError> {
        if self.next_badge >= SESSION_BADGE_LIMIT {
            return Err(SessionError::Unavailable);
        }
        let mut owned = String::new();
        let grown = self
            .entries
            .try_reserve(1)
            .and_then(|()| owned.try_reserve(label.len()));
        if grown.is_err() {
            return Err(SessionError::InsufficientQuota { needed: 4096 });
        }
        owned.push_str(label);
        let badge = self.next_badge;
        self.next_badge += 1;
        self.entries.push(Entry {
            badge,
            label: owned,
            quota,
            state,
        });
        Ok(badge)
    }

    fn position(&self, badge: u64) -> Result<usize, SessionError> {
        self.entries
            .binary_search_by_key(&badge, |entry| entry.badge)
            .map_err(|_| SessionError::NoSuchSession)
    }

    /// Session `badge`, if it is open.
    pub fn get(&self, badge: u64) -> Option<&Entry<S>> {
        self.position(badge).ok().map(|i| &self.entries[i])
    }

    /// Session `badge`, if it is open.
    pub fn get_mut(&mut self, badge: u64) -> Option<&mut Entry<S>> {
        self.position(badge).ok().map(|i| &mut self.entries[i])
    }

    /// Adds `more` to what session `badge` was donated; the new total.
    pub fn upgrade(&mut self, badge: u64, more: Quota) -> Result<Quota, SessionError> {
        let index = self.position(badge)?;
        let entry = &mut self.entries[index];
        entry.quota = entry
            .quota
            .checked_add(more)
            .ok_or(SessionError::BadRequest)?;
        Ok(entry.quota)
    }

    /// Forgets session `badge`; its entry (whose quota goes back).
    pub fn remove(&mut self, badge: u64) -> Result<Entry<S>, SessionError> {
        let index = self.position(badge)?;
        Ok(self.entries.remove(index))
    }

    /// Every open session.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry<S>> {
        self.entries.iter_mut()
    }

    /// Every open session.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<S>> {
        self.entries.iter()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sum of what every open session was donated.
    pub fn donated(&self) -> Quota {
        self.entries.iter().fold(Quota::default(), |sum, entry| {
            sum.checked_add(entry.quota).unwrap_or(sum)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: Quota = Quota { ram: 4096, caps: 2 };

    #[test]
    fn badges_start_at_one_grow_and_are_never_reused() {
        let mut table = SessionTable::new();
        let a = table.admit("a", PAGE, 'a').unwrap();
        let b = table.admit("b", PAGE, 'b').unwrap();
        assert_eq!((a, b), (1, 2));
        table.remove(a).unwrap();
        let c = table.admit("c", PAGE, 'c').unwrap();
        assert_eq!(c, 3);
        assert!(table.get(a).is_none());
        assert_eq!(table.get(c).map(|e| e.state), Some('c'));
        assert_eq!(table.get(0).map(|e| e.state), None);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn unknown_badges_are_no_such_session() {
        let mut table: SessionTable<()> = SessionTable::new();
        assert_eq!(
            table.upgrade(5, PAGE).unwrap_err(),
            SessionError::NoSuchSession
        );
        assert_eq!(table.remove(5).unwrap_err(), SessionError::NoSuchSession);
        assert!(table.get_mut(u64::MAX).is_none());
    }

    #[test]
    fn quota_adds_up_and_comes_back_whole() {
        let mut table = SessionTable::new();
        let a = table.admit("a", PAGE, ()).unwrap();
        let b = table.admit("b", PAGE, ()).unwrap();
        assert_eq!(table.upgrade(a, PAGE), Ok(Quota { ram: 8192, caps: 4 }));
        assert_eq!(
            table.donated(),
            Quota {
                ram: 12288,
                caps: 6
            }
        );
        assert_eq!(
            table.upgrade(
                b,
                Quota {
                    ram: u64::MAX,
                    caps: 0
                }
            ),
            Err(SessionError::BadRequest)
        );
        assert_eq!(table.remove(a).unwrap().quota.ram, 8192);
        assert_eq!(table.donated(), PAGE);
    }

    #[test]
    fn require_names_what_is_missing() {
        let offered = Quota { ram: 4096, caps: 1 };
        assert_eq!(
            offered.require(Quota { ram: 8192, caps: 1 }),
            Err(SessionError::InsufficientQuota { needed: 4096 })
        );
        assert_eq!(
            offered.require(Quota { ram: 4096, caps: 3 }),
            Err(SessionError::InsufficientCaps { needed: 2 })
        );
        assert_eq!(offered.require(offered), Ok(()));
    }

    #[test]
    fn badges_stop_below_the_limit() {
        let mut table = SessionTable::new();
        table.next_badge = SESSION_BADGE_LIMIT - 1;
        assert_eq!(table.admit("last", PAGE, ()), Ok(SESSION_BADGE_LIMIT - 1));
        assert_eq!(
            table.admit("over", PAGE, ()),
            Err(SessionError::Unavailable)
        );
    }
}
