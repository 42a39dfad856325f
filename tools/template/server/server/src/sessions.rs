//! Every open {{Name}} session and its counter, by badge.
//!
//! Nothing a client says is trusted: a session is named by the badge the
//! server chose (the kernel stamps it on every call, so it cannot be
//! forged), a session exists only if its donated RAM covered
//! [`SESSION_RAM`], and a sum that would overflow is refused.

use alloc::collections::BTreeMap;
use arbor::sys::Badge;
use arbor_sessions::SessionError;
use arbor_sessions::parent::ROOT_BADGE;
use {{name}}_api::SESSION_RAM;

/// One client's session: its state, and the RAM that pays for it.
#[derive(Debug)]
struct Counter {
    /// The RAM donated for it, given back on close.
    ram: u64,
    /// The client's running total.
    total: u64,
}

/// Every open session.
#[derive(Debug)]
pub struct Sessions {
    counters: BTreeMap<u64, Counter>,
    next_badge: u64,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessions {
    /// No sessions.
    pub const fn new() -> Self {
        Sessions {
            counters: BTreeMap::new(),
            next_badge: 1,
        }
    }

    /// Opens a session paid with `ram`: its badge, or how much RAM is missing.
    pub fn create(&mut self, ram: u64) -> Result<Badge, SessionError> {
        if ram < SESSION_RAM {
            return Err(SessionError::InsufficientQuota {
                needed: SESSION_RAM - ram,
            });
        }
        // Badges are never reused, so a closed session's capability that a
        // client kept finds no session rather than somebody else's.
        let badge = self.next_badge;
        if badge == ROOT_BADGE {
            return Err(SessionError::Unavailable);
        }
        self.next_badge += 1;
        self.counters.insert(badge, Counter { ram, total: 0 });
        Ok(Badge(badge))
    }

    /// Adds `amount` to a session's counter; the new total.
    pub fn add(&mut self, badge: Badge, amount: u64) -> Result<u64, SessionError> {
        let counter = self.counter(badge)?;
        counter.total = counter
            .total
            .checked_add(amount)
            .ok_or(SessionError::BadRequest)?;
        Ok(counter.total)
    }

    /// A session's counter.
    pub fn total(&mut self, badge: Badge) -> Result<u64, SessionError> {
        self.counter(badge).map(|counter| counter.total)
    }

    /// Records more RAM donated for a session.
    pub fn upgrade(&mut self, badge: Badge, ram: u64) -> Result<(), SessionError> {
        let counter = self.counter(badge)?;
        counter.ram = counter.ram.saturating_add(ram);
        Ok(())
    }

    /// Closes a session: the RAM to give back.
    pub fn close(&mut self, badge: Badge) -> Result<u64, SessionError> {
        self.counters
            .remove(&badge.0)
            .map(|counter| counter.ram)
            .ok_or(SessionError::NoSuchSession)
    }

    fn counter(&mut self, badge: Badge) -> Result<&mut Counter, SessionError> {
        self.counters
            .get_mut(&badge.0)
            .ok_or(SessionError::NoSuchSession)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_session_counts_for_itself() {
        let mut sessions = Sessions::new();
        let a = sessions.create(SESSION_RAM).unwrap();
        let b = sessions.create(SESSION_RAM).unwrap();
        assert_eq!(sessions.add(a, 2), Ok(2));
        assert_eq!(sessions.add(a, 3), Ok(5));
        assert_eq!(sessions.total(b), Ok(0));
    }

    #[test]
    fn too_little_quota_is_refused_with_what_is_missing() {
        let mut sessions = Sessions::new();
        assert_eq!(
            sessions.create(SESSION_RAM - 100),
            Err(SessionError::InsufficientQuota { needed: 100 })
        );
    }

    #[test]
    fn closing_gives_back_all_donated_ram_and_forgets_the_badge() {
        let mut sessions = Sessions::new();
        let a = sessions.create(SESSION_RAM).unwrap();
        sessions.upgrade(a, 4096).unwrap();
        assert_eq!(sessions.close(a), Ok(SESSION_RAM + 4096));
        assert_eq!(sessions.add(a, 1), Err(SessionError::NoSuchSession));
        // A new session never gets the closed one's badge.
        assert_ne!(sessions.create(SESSION_RAM).unwrap(), a);
    }

    #[test]
    fn an_overflowing_sum_is_refused() {
        let mut sessions = Sessions::new();
        let a = sessions.create(SESSION_RAM).unwrap();
        sessions.add(a, u64::MAX).unwrap();
        assert_eq!(sessions.add(a, 1), Err(SessionError::BadRequest));
        assert_eq!(sessions.total(a), Ok(u64::MAX));
    }
}
