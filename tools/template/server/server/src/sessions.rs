//! One {{Name}} session's state: a counter. The server framework keeps the
//! sessions (by badge, each with its donated quota); this is what is
//! specific to {{Name}}, tested on the host.
//!
//! Nothing a client says is trusted: a sum that would overflow is refused.

use arbor_sessions::SessionError;
use arbor_sessions::table::Quota;
use {{name}}_api::SESSION_RAM;

/// What a session must be donated: [`SESSION_RAM`] pays for its entry.
pub const SESSION_COST: Quota = Quota {
    ram: SESSION_RAM,
    caps: 1,
};

/// One client's running total.
#[derive(Debug, Default)]
pub struct Counter {
    total: u64,
}

impl Counter {
    /// Adds `amount`; the new total.
    pub fn add(&mut self, amount: u64) -> Result<u64, SessionError> {
        self.total = self
            .total
            .checked_add(amount)
            .ok_or(SessionError::BadRequest)?;
        Ok(self.total)
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_adds_up() {
        let mut counter = Counter::default();
        assert_eq!(counter.add(2), Ok(2));
        assert_eq!(counter.add(3), Ok(5));
        assert_eq!(counter.total(), 5);
    }

    #[test]
    fn too_little_quota_is_refused_with_what_is_missing() {
        let offered = Quota {
            ram: SESSION_RAM - 100,
            caps: 1,
        };
        assert_eq!(
            offered.require(SESSION_COST),
            Err(SessionError::InsufficientQuota { needed: 100 })
        );
    }

    #[test]
    fn an_overflowing_sum_is_refused() {
        let mut counter = Counter::default();
        counter.add(u64::MAX).unwrap();
        assert_eq!(counter.add(1), Err(SessionError::BadRequest));
        assert_eq!(counter.total(), u64::MAX);
    }
}
