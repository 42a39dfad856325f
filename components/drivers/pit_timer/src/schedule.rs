//! The Timer sessions and their deadlines. Generic over `N`, the handle of a
//! session's notification (a capability slot on the target, anything in
//! tests), so that every decision here runs on the host.
//!
//! Nothing a client says is trusted: sessions are named by the badge the
//! driver chose (the kernel stamps it on every call, so it cannot be forged),
//! durations outside `1..=MAX_TIMEOUT_MS` are refused, and a session exists
//! only if its donated RAM covered [`SESSION_RAM`].

use alloc::collections::BTreeMap;
use arbor::sys::Badge;
use arbor_sessions::SessionError;
use arbor_sessions::parent::ROOT_BADGE;

/// RAM a session must bring: its entry in the table with room to spare.
pub const SESSION_RAM: u64 = arbor_sessions::client::TIMER_SESSION_RAM;

/// The longest timeout or period accepted: about 34 years. Longer ones are
/// refused rather than silently shortened, so a client learns of its bug.
pub const MAX_TIMEOUT_MS: u64 = 1 << 40;

/// When a session wants its next signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timeout {
    /// Nothing pending.
    Idle,
    /// Once, at `due` (milliseconds on the driver's clock).
    Once { due: u64 },
    /// At `due`, then every `period` milliseconds.
    Every { due: u64, period: u64 },
}

/// One client's session.
#[derive(Debug)]
struct TimerSession<N> {
    /// The RAM donated for it, returned on close.
    ram: u64,
    /// Where its signals go, once the client has said.
    notification: Option<N>,
    timeout: Timeout,
}

/// Every open session, by badge.
#[derive(Debug)]
pub struct Schedule<N> {
    sessions: BTreeMap<u64, TimerSession<N>>,
    next_badge: u64,
}

impl<N> Default for Schedule<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks a client's duration: 0 and anything above [`MAX_TIMEOUT_MS`] are refused.
fn checked_duration(ms: u64) -> Result<u64, SessionError> {
    if (1..=MAX_TIMEOUT_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(SessionError::BadRequest)
    }
}

impl<N> Schedule<N> {
    /// No sessions.
    pub const fn new() -> Self {
        Schedule {
            sessions: BTreeMap::new(),
            next_badge: 1,
        }
    }

    /// Opens a session paid with `ram`; its badge, or how much RAM is missing.
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
        self.sessions.insert(
            badge,
            TimerSession {
                ram,
                notification: None,
                timeout: Timeout::Idle,
            },
        );
        Ok(Badge(badge))
    }

    fn session(&mut self, badge: Badge) -> Result<&mut TimerSession<N>, SessionError> {
        self.sessions
            .get_mut(&badge.0)
            .ok_or(SessionError::NoSuchSession)
    }

    /// Whether `badge` names an open session.
    pub fn contains(&self, badge: Badge) -> bool {
        self.sessions.contains_key(&badge.0)
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Records more donated RAM for a session.
    pub fn upgrade(&mut self, badge: Badge, ram: u64) -> Result<(), SessionError> {
        let session = self.session(badge)?;
        session.ram = session.ram.saturating_add(ram);
        Ok(())
    }

    /// Closes a session: the RAM to give back and the notification to drop.
    pub fn close(&mut self, badge: Badge) -> Result<(u64, Option<N>), SessionError> {
        let session = self
            .sessions
            .remove(&badge.0)
            .ok_or(SessionError::NoSuchSession)?;
        Ok((session.ram, session.notification))
    }

    /// Makes `notification` the one a session's signals go to; returns the
    /// one it replaces.
    pub fn set_notification(
        &mut self,
        badge: Badge,
        notification: N,
    ) -> Result<Option<N>, SessionError> {
        Ok(self.session(badge)?.notification.replace(notification))
    }

    /// Signal once, `ms` after `now_ms` (replacing any pending timeout).
    pub fn one_shot(&mut self, badge: Badge, now_ms: u64, ms: u64) -> Result<(), SessionError> {
        let ms = checked_duration(ms)?;
        self.session(badge)?.timeout = Timeout::Once {
            due: now_ms.saturating_add(ms),
        };
        Ok(())
    }

    /// Signal every `ms` from `now_ms` on (replacing any pending timeout).
    pub fn periodic(&mut self, badge: Badge, now_ms: u64, ms: u64) -> Result<(), SessionError> {
        let period = checked_duration(ms)?;
        self.session(badge)?.timeout = Timeout::Every {
            due: now_ms.saturating_add(period),
            period,
        };
        Ok(())
    }

    /// Calls `signal` once for each session whose deadline is at or before
    /// `now_ms` and re-arms periodic ones. A periodic session that missed
    /// several periods gets one signal, not a burst, and its next deadline
    /// stays on its original grid where possible.
    pub fn expire(&mut self, now_ms: u64, mut signal: impl FnMut(&N)) {
        for session in self.sessions.values_mut() {
            let next = match session.timeout {
                Timeout::Once { due } if due <= now_ms => Timeout::Idle,
                Timeout::Every { due, period } if due <= now_ms => {
                    let mut next = due.saturating_add(period);
                    if next <= now_ms {
                        let missed = (now_ms - due) / period;
                        next = due.saturating_add(period.saturating_mul(missed + 1));
                    }
                    Timeout::Every { due: next, period }
                }
                _ => continue,
            };
            session.timeout = next;
            // A timeout set before the notification fires into nothing;
            // that is the client's affair.
            if let Some(notification) = &session.notification {
                signal(notification);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    fn fired(schedule: &mut Schedule<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        schedule.expire(now, |n| out.push(*n));
        out
    }

    #[test]
    fn sessions_need_their_ram_and_get_fresh_badges() {
        let mut schedule = Schedule::<u32>::new();
        assert_eq!(
            schedule.create(SESSION_RAM - 1),
            Err(SessionError::InsufficientQuota { needed: 1 })
        );
        assert_eq!(
            schedule.create(0),
            Err(SessionError::InsufficientQuota {
                needed: SESSION_RAM
            })
        );
        let a = schedule.create(SESSION_RAM).unwrap();
        let b = schedule.create(SESSION_RAM * 2).unwrap();
        assert_ne!(a, b);
        assert!(a.0 != 0 && a.0 != ROOT_BADGE);
        schedule.upgrade(b, 4096).unwrap();
        assert_eq!(schedule.close(b).unwrap().0, SESSION_RAM * 2 + 4096);
        assert_eq!(schedule.close(b), Err(SessionError::NoSuchSession));
        let c = schedule.create(SESSION_RAM).unwrap();
        assert_ne!(c, b, "badges are not reused");
        assert_eq!(schedule.len(), 2);
    }

    #[test]
    fn unknown_badges_are_refused_everywhere() {
        let mut schedule = Schedule::<u32>::new();
        let stranger = Badge(42);
        assert_eq!(
            schedule.one_shot(stranger, 0, 5),
            Err(SessionError::NoSuchSession)
        );
        assert_eq!(
            schedule.periodic(stranger, 0, 5),
            Err(SessionError::NoSuchSession)
        );
        assert_eq!(
            schedule.set_notification(stranger, 1),
            Err(SessionError::NoSuchSession)
        );
        assert_eq!(
            schedule.upgrade(stranger, 1),
            Err(SessionError::NoSuchSession)
        );
        assert!(!schedule.contains(stranger));
        assert!(schedule.is_empty());
    }

    #[test]
    fn absurd_durations_are_refused() {
        let mut schedule = Schedule::<u32>::new();
        let s = schedule.create(SESSION_RAM).unwrap();
        for ms in [0, MAX_TIMEOUT_MS + 1, u64::MAX] {
            assert_eq!(schedule.one_shot(s, 10, ms), Err(SessionError::BadRequest));
            assert_eq!(schedule.periodic(s, 10, ms), Err(SessionError::BadRequest));
        }
        // The longest accepted one at the end of time saturates, never wraps.
        schedule.set_notification(s, 7).unwrap();
        schedule.one_shot(s, u64::MAX - 1, MAX_TIMEOUT_MS).unwrap();
        assert!(fired(&mut schedule, u64::MAX - 2).is_empty());
        assert_eq!(fired(&mut schedule, u64::MAX), [7]);
    }

    #[test]
    fn one_shot_fires_once_at_its_deadline() {
        let mut schedule = Schedule::new();
        let s = schedule.create(SESSION_RAM).unwrap();
        assert_eq!(schedule.set_notification(s, 1), Ok(None));
        assert_eq!(schedule.set_notification(s, 2), Ok(Some(1)));
        schedule.one_shot(s, 100, 200).unwrap();
        assert!(fired(&mut schedule, 299).is_empty());
        assert_eq!(fired(&mut schedule, 300), [2]);
        assert!(fired(&mut schedule, 301).is_empty());
        assert!(fired(&mut schedule, 10_000).is_empty());
    }

    #[test]
    fn a_new_timeout_replaces_the_pending_one() {
        let mut schedule = Schedule::new();
        let s = schedule.create(SESSION_RAM).unwrap();
        schedule.set_notification(s, 1).unwrap();
        schedule.one_shot(s, 0, 50).unwrap();
        schedule.one_shot(s, 10, 100).unwrap();
        assert!(fired(&mut schedule, 50).is_empty());
        assert_eq!(fired(&mut schedule, 110), [1]);
    }

    #[test]
    fn periodic_keeps_its_grid_and_does_not_burst_after_a_stall() {
        let mut schedule = Schedule::new();
        let s = schedule.create(SESSION_RAM).unwrap();
        schedule.set_notification(s, 9).unwrap();
        schedule.periodic(s, 0, 10).unwrap();
        assert!(fired(&mut schedule, 9).is_empty());
        assert_eq!(fired(&mut schedule, 10), [9]);
        assert_eq!(fired(&mut schedule, 21), [9]);
        // A stall past several periods: one signal, next deadline on the grid.
        assert_eq!(fired(&mut schedule, 75), [9]);
        assert!(fired(&mut schedule, 79).is_empty());
        assert_eq!(fired(&mut schedule, 80), [9]);
    }

    #[test]
    fn sessions_are_signalled_independently_and_without_notification_silently() {
        let mut schedule = Schedule::new();
        let a = schedule.create(SESSION_RAM).unwrap();
        let b = schedule.create(SESSION_RAM).unwrap();
        let silent = schedule.create(SESSION_RAM).unwrap();
        schedule.set_notification(a, 1).unwrap();
        schedule.set_notification(b, 2).unwrap();
        schedule.one_shot(a, 0, 5).unwrap();
        schedule.one_shot(b, 0, 7).unwrap();
        schedule.one_shot(silent, 0, 5).unwrap();
        assert_eq!(fired(&mut schedule, 6), [1]);
        assert_eq!(fired(&mut schedule, 7), [2]);
        let (_, notification) = schedule.close(a).unwrap();
        assert_eq!(notification, Some(1));
    }
}
