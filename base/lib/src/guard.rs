//! Guards that undo on every error path: a [`SlotGuard`] empties and frees
//! a capability slot when it is dropped, a [`QuotaLoan`] moves quota back
//! to whoever lent it. Both are disarmed by `keep`, once the thing they
//! guard has been handed on; until then an early `?` or `return` cannot
//! leak a slot or keep a donation.
//!
//! A quota return can fail (the borrower spent it meanwhile, or its Pd is
//! gone). That is never silent: [`QuotaLoan::give_back`] returns the
//! failure as a value, and a loan dropped without `keep` or `give_back`
//! hands it to the report function the loan was made with.
//!
//! The system calls sit behind [`Kernel`], so the guards' logic is tested
//! on the host against a recording fake.

use crate::abi::{CapSlot, Error};
use core::fmt;

/// The system calls the guards make.
pub trait Kernel {
    /// Empties `cap` (whatever it holds) and returns the slot to the pool.
    fn release(&mut self, cap: CapSlot);
    /// Destroys the object `cap` names (every capability to it dies).
    fn destroy(&mut self, cap: CapSlot) -> Result<(), Error>;
    /// Moves quota between two Pds.
    fn transfer_quota(
        &mut self,
        from: CapSlot,
        to: CapSlot,
        ram: u64,
        caps: u64,
    ) -> Result<(), Error>;
}

/// The real system calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sys;

impl Kernel for Sys {
    fn release(&mut self, cap: CapSlot) {
        crate::slots::release(cap);
    }

    fn destroy(&mut self, cap: CapSlot) -> Result<(), Error> {
        crate::sys::destroy(cap)
    }

    fn transfer_quota(
        &mut self,
        from: CapSlot,
        to: CapSlot,
        ram: u64,
        caps: u64,
    ) -> Result<(), Error> {
        crate::sys::transfer_quota(from, to, ram, caps)
    }
}

/// A capability slot that is emptied and freed on drop unless kept.
#[must_use = "a guard dropped at once releases its slot at once"]
pub struct SlotGuard<K: Kernel = Sys> {
    slot: Option<CapSlot>,
    destroy: bool,
    kernel: K,
}

impl SlotGuard<Sys> {
    /// A fresh slot from the component's pool.
    pub fn allocate() -> Result<Self, Error> {
        crate::slots::allocate().map(|slot| Self::adopt_with(Sys, slot))
    }

    /// Guards a slot the caller owns already.
    pub fn adopt(slot: CapSlot) -> Self {
        Self::adopt_with(Sys, slot)
    }
}

impl<K: Kernel> SlotGuard<K> {
    /// Guards `slot`, undoing through `kernel`.
    pub fn adopt_with(kernel: K, slot: CapSlot) -> Self {
        SlotGuard {
            slot: Some(slot),
            destroy: false,
            kernel,
        }
    }

    /// Also destroys the object in the slot on drop (for an object this
    /// component created, whose other capabilities must die with it).
    pub fn destroying(mut self) -> Self {
        self.destroy = true;
        self
    }

    /// The guarded slot.
    pub fn slot(&self) -> CapSlot {
        // Only `keep` takes it, and `keep` consumes the guard.
        self.slot.unwrap_or(CapSlot(0))
    }

    /// Disarms the guard: the caller owns the slot again.
    pub fn keep(mut self) -> CapSlot {
        self.slot.take().unwrap_or(CapSlot(0))
    }
}

impl<K: Kernel> Drop for SlotGuard<K> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            if self.destroy {
                // A slot whose object is gone already is emptied all the same.
                let _destroyed = self.kernel.destroy(slot);
            }
            self.kernel.release(slot);
        }
    }
}

/// A quota return the kernel refused: who, how much, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReturnFailed {
    /// The Pd that held the quota.
    pub from: CapSlot,
    /// The Pd it should have gone back to.
    pub to: CapSlot,
    /// Bytes of RAM quota.
    pub ram: u64,
    /// Capability quota.
    pub caps: u64,
    /// What the kernel said.
    pub error: Error,
}

impl fmt::Display for ReturnFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not return {} bytes and {} caps from Pd slot {} to Pd slot {}: {}",
            self.ram, self.caps, self.from.0, self.to.0, self.error
        )
    }
}

/// Quota moved from a lender to a borrower, moved back on drop unless kept.
#[must_use = "a loan dropped at once is returned at once"]
pub struct QuotaLoan<R: FnMut(&ReturnFailed), K: Kernel = Sys> {
    lender: CapSlot,
    borrower: CapSlot,
    ram: u64,
    caps: u64,
    settled: bool,
    report: R,
    kernel: K,
}

impl<R: FnMut(&ReturnFailed)> QuotaLoan<R, Sys> {
    /// Moves `ram` and `caps` from `lender` to `borrower`; `report` hears
    /// of a return that fails when the loan is dropped.
    pub fn take(
        lender: CapSlot,
        borrower: CapSlot,
        ram: u64,
        caps: u64,
        report: R,
    ) -> Result<Self, Error> {
        Self::take_with(Sys, lender, borrower, ram, caps, report)
    }
}

impl<R: FnMut(&ReturnFailed), K: Kernel> QuotaLoan<R, K> {
    /// [`QuotaLoan::take`] through `kernel`. Nothing moves for a loan of nothing.
    pub fn take_with(
        mut kernel: K,
        lender: CapSlot,
        borrower: CapSlot,
        ram: u64,
        caps: u64,
        report: R,
    ) -> Result<Self, Error> {
        if ram != 0 || caps != 0 {
            kernel.transfer_quota(lender, borrower, ram, caps)?;
        }
        Ok(QuotaLoan {
            lender,
            borrower,
            ram,
            caps,
            settled: false,
            report,
            kernel,
        })
    }

    /// Disarms the loan: the borrower keeps the quota.
    pub fn keep(mut self) {
        self.settled = true;
    }

    /// Returns the quota now; the failure, if the kernel refuses, as a value.
    pub fn give_back(mut self) -> Result<(), ReturnFailed> {
        self.settled = true;
        self.return_now()
    }

    fn return_now(&mut self) -> Result<(), ReturnFailed> {
        if self.ram == 0 && self.caps == 0 {
            return Ok(());
        }
        self.kernel
            .transfer_quota(self.borrower, self.lender, self.ram, self.caps)
            .map_err(|error| ReturnFailed {
                from: self.borrower,
                to: self.lender,
                ram: self.ram,
                caps: self.caps,
                error,
            })
    }
}

impl<R: FnMut(&ReturnFailed), K: Kernel> Drop for QuotaLoan<R, K> {
    fn drop(&mut self) {
        if !self.settled
            && let Err(failed) = self.return_now()
        {
            (self.report)(&failed);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::cell::RefCell;
    use std::vec::Vec;

    #[derive(Debug, PartialEq, Eq)]
    enum Op {
        Release(u32),
        Destroy(u32),
        Transfer(u32, u32, u64, u64),
    }

    /// Records every call; refuses transfers out of `poor`.
    #[derive(Default)]
    struct Fake {
        ops: RefCell<Vec<Op>>,
        poor: Option<u32>,
    }

    impl Kernel for &Fake {
        fn release(&mut self, cap: CapSlot) {
            self.ops.borrow_mut().push(Op::Release(cap.0));
        }
        fn destroy(&mut self, cap: CapSlot) -> Result<(), Error> {
            self.ops.borrow_mut().push(Op::Destroy(cap.0));
            Ok(())
        }
        fn transfer_quota(
            &mut self,
            from: CapSlot,
            to: CapSlot,
            ram: u64,
            caps: u64,
        ) -> Result<(), Error> {
            if self.poor == Some(from.0) {
                return Err(Error::RamQuotaExceeded);
            }
            self.ops
                .borrow_mut()
                .push(Op::Transfer(from.0, to.0, ram, caps));
            Ok(())
        }
    }

    #[test]
    fn a_dropped_slot_guard_releases_and_a_kept_one_does_not() {
        let fake = Fake::default();
        {
            let _early_return = SlotGuard::adopt_with(&fake, CapSlot(40));
            let kept = SlotGuard::adopt_with(&fake, CapSlot(41));
            assert_eq!(kept.slot(), CapSlot(41));
            assert_eq!(kept.keep(), CapSlot(41));
            let _object = SlotGuard::adopt_with(&fake, CapSlot(42)).destroying();
        }
        assert_eq!(
            *fake.ops.borrow(),
            [Op::Destroy(42), Op::Release(42), Op::Release(40)]
        );
    }

    #[test]
    fn a_dropped_loan_goes_back_and_a_kept_one_stays() {
        let fake = Fake::default();
        let mut failures = Vec::new();
        {
            let loan = QuotaLoan::take_with(&fake, CapSlot(1), CapSlot(2), 4096, 3, |f| {
                failures.push(*f)
            })
            .unwrap();
            drop(loan);
        }
        QuotaLoan::take_with(&fake, CapSlot(1), CapSlot(2), 8192, 1, |_| {})
            .unwrap()
            .keep();
        assert_eq!(
            *fake.ops.borrow(),
            [
                Op::Transfer(1, 2, 4096, 3),
                Op::Transfer(2, 1, 4096, 3),
                Op::Transfer(1, 2, 8192, 1),
            ]
        );
        assert!(failures.is_empty());
    }

    #[test]
    fn a_refused_return_is_reported_never_dropped() {
        // The borrower (slot 2) cannot pay the quota back.
        let fake = Fake {
            poor: Some(2),
            ..Fake::default()
        };
        let mut failures = Vec::new();
        drop(
            QuotaLoan::take_with(&fake, CapSlot(1), CapSlot(2), 4096, 3, |f| {
                failures.push(*f)
            })
            .unwrap(),
        );
        let expected = ReturnFailed {
            from: CapSlot(2),
            to: CapSlot(1),
            ram: 4096,
            caps: 3,
            error: Error::RamQuotaExceeded,
        };
        assert_eq!(failures, [expected]);
        let explicit = QuotaLoan::take_with(&fake, CapSlot(1), CapSlot(2), 4096, 3, |_| {
            panic!("give_back returns its failure instead")
        })
        .unwrap()
        .give_back();
        assert_eq!(explicit, Err(expected));
    }

    #[test]
    fn a_refused_loan_moves_nothing_and_a_loan_of_nothing_calls_nobody() {
        let fake = Fake {
            poor: Some(1),
            ..Fake::default()
        };
        assert!(QuotaLoan::take_with(&fake, CapSlot(1), CapSlot(2), 1, 0, |_| {}).is_err());
        drop(QuotaLoan::take_with(&fake, CapSlot(2), CapSlot(1), 0, 0, |_| {}).unwrap());
        assert!(fake.ops.borrow().is_empty());
    }
}
