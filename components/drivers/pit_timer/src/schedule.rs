//! When each Timer session wants its next signal. Generic over `N`, the
//! handle of a session's notification (a capability slot on the target,
//! anything in tests), so that every decision here runs on the host.
//!
//! Nothing a client says is trusted: sessions are named by the badge the
//! server framework chose (the kernel stamps it on every call, so it cannot
//! be forged), durations outside `1..=MAX_TIMEOUT_MS` are refused, and a
//! session exists only if its donated RAM covered [`SESSION_RAM`] (checked
//! with [`SESSION_COST`] when the session is created).

use arbor_sessions::SessionError;
use arbor_sessions::table::Quota;

/// RAM a session must bring: its entry in the table with room to spare.
pub const SESSION_RAM: u64 = arbor_sessions::client::TIMER_SESSION_RAM;

/// What a session must be donated.
pub const SESSION_COST: Quota = Quota {
    ram: SESSION_RAM,
    caps: 1,
};

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

/// One client's session: where its signals go and when.
#[derive(Debug)]
pub struct Alarm<N> {
    /// Where its signals go, once the client has said.
    notification: Option<N>,
    timeout: Timeout,
}

impl<N> Default for Alarm<N> {
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

impl<N> Alarm<N> {
    /// Nothing pending, nowhere to signal.
    pub const fn new() -> Self {
        Alarm {
            notification: None,
            timeout: Timeout::Idle,
        }
    }

    /// Makes `notification` the one the signals go to; returns the one it replaces.
    pub fn set_notification(&mut self, notification: N) -> Option<N> {
        self.notification.replace(notification)
    }

    /// The notification, taken out (the session closes).
    pub fn take_notification(&mut self) -> Option<N> {
        self.notification.take()
    }

    /// Signal once, `ms` after `now_ms` (replacing any pending timeout).
    pub fn one_shot(&mut self, now_ms: u64, ms: u64) -> Result<(), SessionError> {
        let ms = checked_duration(ms)?;
        self.timeout = Timeout::Once {
            due: now_ms.saturating_add(ms),
        };
        Ok(())
    }

    /// Signal every `ms` from `now_ms` on (replacing any pending timeout).
    pub fn periodic(&mut self, now_ms: u64, ms: u64) -> Result<(), SessionError> {
        let period = checked_duration(ms)?;
        self.timeout = Timeout::Every {
            due: now_ms.saturating_add(period),
            period,
        };
        Ok(())
    }

    /// The notification to signal if the alarm is due at `now_ms`, re-arming
    /// a periodic one. A periodic alarm that missed several periods gets one
    /// signal, not a burst, and its next deadline stays on its original grid.
    pub fn expire(&mut self, now_ms: u64) -> Option<&N> {
        let next = match self.timeout {
            Timeout::Once { due } if due <= now_ms => Timeout::Idle,
            Timeout::Every { due, period } if due <= now_ms => {
                let mut next = due.saturating_add(period);
                if next <= now_ms {
                    let missed = (now_ms - due) / period;
                    next = due.saturating_add(period.saturating_mul(missed + 1));
                }
                Timeout::Every { due: next, period }
            }
            _ => return None,
        };
        self.timeout = next;
        // A timeout set before the notification fires into nothing; that is
        // the client's affair.
        self.notification.as_ref()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use arbor_sessions::table::SessionTable;
    use std::vec::Vec;

    fn fired(sessions: &mut SessionTable<Alarm<u32>>, now: u64) -> Vec<u32> {
        sessions
            .iter_mut()
            .filter_map(|entry| entry.state.expire(now).copied())
            .collect()
    }

    fn open(sessions: &mut SessionTable<Alarm<u32>>) -> u64 {
        sessions.admit("t", SESSION_COST, Alarm::new()).unwrap()
    }

    fn alarm(sessions: &mut SessionTable<Alarm<u32>>, badge: u64) -> &mut Alarm<u32> {
        &mut sessions.get_mut(badge).unwrap().state
    }

    #[test]
    fn sessions_need_their_ram() {
        assert_eq!(
            Quota {
                ram: SESSION_RAM - 1,
                caps: 1
            }
            .require(SESSION_COST),
            Err(SessionError::InsufficientQuota { needed: 1 })
        );
        assert_eq!(SESSION_COST.require(SESSION_COST), Ok(()));
    }

    #[test]
    fn absurd_durations_are_refused() {
        let mut sessions = SessionTable::new();
        let s = open(&mut sessions);
        for ms in [0, MAX_TIMEOUT_MS + 1, u64::MAX] {
            assert_eq!(
                alarm(&mut sessions, s).one_shot(10, ms),
                Err(SessionError::BadRequest)
            );
            assert_eq!(
                alarm(&mut sessions, s).periodic(10, ms),
                Err(SessionError::BadRequest)
            );
        }
        // The longest accepted one at the end of time saturates, never wraps.
        alarm(&mut sessions, s).set_notification(7);
        alarm(&mut sessions, s)
            .one_shot(u64::MAX - 1, MAX_TIMEOUT_MS)
            .unwrap();
        assert!(fired(&mut sessions, u64::MAX - 2).is_empty());
        assert_eq!(fired(&mut sessions, u64::MAX), [7]);
    }

    #[test]
    fn one_shot_fires_once_at_its_deadline() {
        let mut sessions = SessionTable::new();
        let s = open(&mut sessions);
        assert_eq!(alarm(&mut sessions, s).set_notification(1), None);
        assert_eq!(alarm(&mut sessions, s).set_notification(2), Some(1));
        alarm(&mut sessions, s).one_shot(100, 200).unwrap();
        assert!(fired(&mut sessions, 299).is_empty());
        assert_eq!(fired(&mut sessions, 300), [2]);
        assert!(fired(&mut sessions, 301).is_empty());
        assert!(fired(&mut sessions, 10_000).is_empty());
    }

    #[test]
    fn a_new_timeout_replaces_the_pending_one() {
        let mut sessions = SessionTable::new();
        let s = open(&mut sessions);
        alarm(&mut sessions, s).set_notification(1);
        alarm(&mut sessions, s).one_shot(0, 50).unwrap();
        alarm(&mut sessions, s).one_shot(10, 100).unwrap();
        assert!(fired(&mut sessions, 50).is_empty());
        assert_eq!(fired(&mut sessions, 110), [1]);
    }

    #[test]
    fn periodic_keeps_its_grid_and_does_not_burst_after_a_stall() {
        let mut sessions = SessionTable::new();
        let s = open(&mut sessions);
        alarm(&mut sessions, s).set_notification(9);
        alarm(&mut sessions, s).periodic(0, 10).unwrap();
        assert!(fired(&mut sessions, 9).is_empty());
        assert_eq!(fired(&mut sessions, 10), [9]);
        assert_eq!(fired(&mut sessions, 21), [9]);
        // A stall past several periods: one signal, next deadline on the grid.
        assert_eq!(fired(&mut sessions, 75), [9]);
        assert!(fired(&mut sessions, 79).is_empty());
        assert_eq!(fired(&mut sessions, 80), [9]);
    }

    #[test]
    fn sessions_are_signalled_independently_and_without_notification_silently() {
        let mut sessions = SessionTable::new();
        let a = open(&mut sessions);
        let b = open(&mut sessions);
        let silent = open(&mut sessions);
        alarm(&mut sessions, a).set_notification(1);
        alarm(&mut sessions, b).set_notification(2);
        alarm(&mut sessions, a).one_shot(0, 5).unwrap();
        alarm(&mut sessions, b).one_shot(0, 7).unwrap();
        alarm(&mut sessions, silent).one_shot(0, 5).unwrap();
        assert_eq!(fired(&mut sessions, 6), [1]);
        assert_eq!(fired(&mut sessions, 7), [2]);
        let mut closed = sessions.remove(a).unwrap();
        assert_eq!(closed.state.take_notification(), Some(1));
    }
}
