//! Which sessions a server holds and what each was paid: the admission
//! policy of echo_server, apart from IPC so that it is tested on the host.
//!
//! Every session costs the server `session_ram` bytes; a Create whose
//! donation falls short is refused with `InsufficientQuota` naming the
//! missing bytes, so the client can ask again with exactly enough.

use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::CapSlot;
use arbor_sessions::SessionError;
use arbor_sessions::parent::ROOT_BADGE;

/// One admitted session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The badge its capability carries.
    pub badge: u64,
    /// The label the parent composed ("client -> label").
    pub label: String,
    /// RAM donated for it so far, upgrades included.
    pub ram: u64,
    /// The server's copy of the session capability, once made.
    pub cap: Option<CapSlot>,
}

/// The server's sessions.
#[derive(Debug)]
pub struct SessionTable {
    session_ram: u64,
    next_badge: u64,
    sessions: Vec<SessionRecord>,
}

/// What the table needs when its own heap cannot grow: a page of quota.
const TABLE_GROWTH: u64 = 4096;

impl SessionTable {
    /// An empty table charging `session_ram` bytes per session.
    pub fn new(session_ram: u64) -> Self {
        SessionTable {
            session_ram,
            next_badge: 1,
            sessions: Vec::new(),
        }
    }

    /// Admits a session labelled `label` paid with `ram`; its badge.
    pub fn admit(&mut self, label: &str, ram: u64) -> Result<u64, SessionError> {
        if ram < self.session_ram {
            return Err(SessionError::InsufficientQuota {
                needed: self.session_ram - ram,
            });
        }
        // Badge 0 would look unbadged and ROOT_BADGE is the parent's.
        if self.next_badge == ROOT_BADGE {
            return Err(SessionError::Unavailable);
        }
        let mut owned = String::new();
        let grown = self
            .sessions
            .try_reserve(1)
            .and_then(|()| owned.try_reserve(label.len()));
        if grown.is_err() {
            return Err(SessionError::InsufficientQuota {
                needed: TABLE_GROWTH,
            });
        }
        owned.push_str(label);
        let badge = self.next_badge;
        self.next_badge += 1;
        self.sessions.push(SessionRecord {
            badge,
            label: owned,
            ram,
            cap: None,
        });
        Ok(badge)
    }

    /// Adds `ram` to session `badge`; the session's new total.
    pub fn upgrade(&mut self, badge: u64, ram: u64) -> Result<u64, SessionError> {
        let record = self
            .sessions
            .iter_mut()
            .find(|s| s.badge == badge)
            .ok_or(SessionError::NoSuchSession)?;
        record.ram = record
            .ram
            .checked_add(ram)
            .ok_or(SessionError::BadRequest)?;
        Ok(record.ram)
    }

    /// Records the capability made for session `badge`.
    pub fn set_cap(&mut self, badge: u64, cap: CapSlot) -> Result<(), SessionError> {
        let record = self
            .sessions
            .iter_mut()
            .find(|s| s.badge == badge)
            .ok_or(SessionError::NoSuchSession)?;
        record.cap = Some(cap);
        Ok(())
    }

    /// Forgets session `badge`; its record, whose RAM goes back.
    pub fn close(&mut self, badge: u64) -> Result<SessionRecord, SessionError> {
        let position = self
            .sessions
            .iter()
            .position(|s| s.badge == badge)
            .ok_or(SessionError::NoSuchSession)?;
        Ok(self.sessions.swap_remove(position))
    }

    /// Session `badge`, if it is open.
    pub fn get(&self, badge: u64) -> Option<&SessionRecord> {
        self.sessions.iter().find(|s| s.badge == badge)
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_quota_names_the_missing_bytes() {
        let mut table = SessionTable::new(16384);
        assert_eq!(
            table.admit("a -> b", 4096),
            Err(SessionError::InsufficientQuota { needed: 12288 })
        );
        assert!(table.is_empty());
        let badge = table.admit("a -> b", 4096 + 12288);
        assert_eq!(badge, Ok(1));
    }

    #[test]
    fn badges_are_distinct_and_looked_up() {
        let mut table = SessionTable::new(0);
        let first = table.admit("x", 0).unwrap();
        let second = table.admit("y", 0).unwrap();
        assert_ne!(first, second);
        assert_eq!(table.get(second).map(|s| s.label.as_str()), Some("y"));
        assert_eq!(table.get(99), None);
        assert_eq!(table.set_cap(first, CapSlot(7)), Ok(()));
        assert_eq!(table.get(first).and_then(|s| s.cap), Some(CapSlot(7)));
        assert_eq!(
            table.set_cap(99, CapSlot(7)),
            Err(SessionError::NoSuchSession)
        );
        assert_eq!(table.upgrade(99, 1), Err(SessionError::NoSuchSession));
        assert_eq!(table.close(99), Err(SessionError::NoSuchSession));
    }

    #[test]
    fn upgrade_adds_and_close_returns_all() {
        let mut table = SessionTable::new(4096);
        let badge = table.admit("x", 4096).unwrap();
        assert_eq!(table.upgrade(badge, 8192), Ok(12288));
        assert_eq!(
            table.upgrade(badge, u64::MAX),
            Err(SessionError::BadRequest)
        );
        let record = table.close(badge).unwrap();
        assert_eq!(record.ram, 12288);
        assert_eq!(table.len(), 0);
        assert_eq!(table.close(badge), Err(SessionError::NoSuchSession));
    }
}
