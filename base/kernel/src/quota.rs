//! Quotas: how much RAM and how many capability slots a Pd may use.
//!
//! A quota has a `limit` (what was given to the Pd) and `used` (what it has
//! spent). Limits move between Pds only by [`Quota::transfer`], which moves
//! unused quota; so the machine-wide ledger — free kernel reserve plus every
//! Pd's limit equals the RAM handed to user space — holds at all times.

#![forbid(unsafe_code)]

/// Why a quota operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    /// Less unused quota than asked for.
    Exceeded,
}

/// A limit and what is used of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// What the Pd was given.
    pub limit: u64,
    /// What the Pd has spent.
    pub used: u64,
}

impl Quota {
    /// Unused quota.
    pub fn available(&self) -> u64 {
        self.limit - self.used
    }

    /// Spends `amount`, if that much is unused.
    pub fn charge(&mut self, amount: u64) -> Result<(), QuotaError> {
        if amount > self.available() {
            return Err(QuotaError::Exceeded);
        }
        self.used += amount;
        Ok(())
    }

    /// Gives back `amount` previously charged. Refunding more than was used
    /// is a kernel bug; it saturates rather than corrupting the ledger further.
    pub fn refund(&mut self, amount: u64) {
        debug_assert!(amount <= self.used);
        self.used = self.used.saturating_sub(amount);
    }

    /// Moves `amount` of unused quota from `self` to `to`.
    pub fn transfer(&mut self, to: &mut Quota, amount: u64) -> Result<(), QuotaError> {
        if amount > self.available() {
            return Err(QuotaError::Exceeded);
        }
        self.limit -= amount;
        to.limit += amount;
        Ok(())
    }

    /// Adds a destroyed Pd's whole limit back (its `used` must be zero by then).
    pub fn absorb(&mut self, other: Quota) {
        self.limit += other.limit;
        self.used += other.used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_refund_and_limits() {
        let mut quota = Quota {
            limit: 100,
            used: 0,
        };
        assert_eq!(quota.charge(60), Ok(()));
        assert_eq!(quota.charge(41), Err(QuotaError::Exceeded));
        assert_eq!(quota.available(), 40);
        quota.refund(60);
        assert_eq!(
            quota,
            Quota {
                limit: 100,
                used: 0
            }
        );
        assert_eq!(quota.charge(u64::MAX), Err(QuotaError::Exceeded));
    }

    #[test]
    fn transfer_moves_only_unused_quota() {
        let mut parent = Quota {
            limit: 100,
            used: 30,
        };
        let mut child = Quota::default();
        assert_eq!(parent.transfer(&mut child, 71), Err(QuotaError::Exceeded));
        assert_eq!(parent.transfer(&mut child, 70), Ok(()));
        assert_eq!((parent.limit, child.limit), (30, 70));
    }

    /// Random charges, refunds and transfers among a few Pds never create or
    /// lose quota, and never let `used` exceed `limit`.
    #[test]
    fn ledger_balances_under_random_operations() {
        const TOTAL: u64 = 1 << 20;
        let mut pds = [
            Quota {
                limit: TOTAL,
                used: 0,
            },
            Quota::default(),
            Quota::default(),
            Quota::default(),
        ];
        let mut charged = [0u64; 4];
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..100_000 {
            let (a, b, amount) = (
                (next() % 4) as usize,
                (next() % 4) as usize,
                next() % (TOTAL / 4),
            );
            match next() % 3 {
                0 if pds[a].charge(amount).is_ok() => charged[a] += amount,
                0 => {}
                1 => {
                    let back = amount.min(charged[a]);
                    pds[a].refund(back);
                    charged[a] -= back;
                }
                _ if a != b => {
                    let (from, to) = if a < b {
                        let (left, right) = pds.split_at_mut(b);
                        (&mut left[a], &mut right[0])
                    } else {
                        let (left, right) = pds.split_at_mut(a);
                        (&mut right[0], &mut left[b])
                    };
                    let _ = from.transfer(to, amount);
                }
                _ => {}
            }
            assert_eq!(pds.iter().map(|q| q.limit).sum::<u64>(), TOTAL);
            for (pd, charged) in pds.iter().zip(charged) {
                assert!(pd.used <= pd.limit);
                assert_eq!(pd.used, charged);
            }
        }
    }
}
