//! Capabilities: what a slot in a Pd's capability table holds, and the rules
//! for using and deriving them.
//!
//! A capability names an object by its frame number and the generation that
//! frame had when the object was created; the kernel passes in the frame's
//! current generation, so a capability to a destroyed object fails cleanly
//! even after the frame has been reused.

#![forbid(unsafe_code)]

use arbor_abi::{CapSlot, Error, ObjectKind, Rights};

/// One capability-table entry. An all-zero entry is an empty slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Cap {
    /// Frame number of the object; 0 = empty slot.
    pub object: u64,
    /// The object's frame generation when the capability was made.
    pub generation: u64,
    /// Badge shown to receivers (endpoints) or signalled (notifications).
    pub badge: u64,
    /// [`ObjectKind`] as a number.
    pub kind: u8,
    /// [`Rights`] bits.
    pub rights: u8,
}

/// Capability entries per table page.
pub const CAPS_PER_PAGE: usize = 4096 / core::mem::size_of::<Cap>();
/// Table pages a Pd may have; bounds slot numbers.
pub const MAX_CAP_PAGES: usize = 32;
/// Slots a Pd's table can address.
pub const MAX_SLOTS: usize = CAPS_PER_PAGE * MAX_CAP_PAGES;

/// Where a slot lives: (table page, entry in page), if the slot is addressable.
/// Slot 0 is never addressable: it is the null capability.
pub fn slot_position(slot: CapSlot) -> Option<(usize, usize)> {
    let slot = slot.0 as usize;
    (slot != 0 && slot < MAX_SLOTS).then_some((slot / CAPS_PER_PAGE, slot % CAPS_PER_PAGE))
}

impl Cap {
    /// A fresh capability with all rights to a new object.
    pub fn new(object: u64, generation: u64, kind: ObjectKind) -> Cap {
        Cap {
            object,
            generation,
            badge: 0,
            kind: kind as u8,
            rights: Rights::ALL.0,
        }
    }

    /// Whether the slot is empty.
    pub fn is_empty(&self) -> bool {
        self.object == 0
    }

    /// The capability's rights.
    pub fn rights(&self) -> Rights {
        Rights(self.rights)
    }

    /// The object kind, if the entry is well-formed.
    pub fn kind(&self) -> Option<ObjectKind> {
        ObjectKind::from_raw(u64::from(self.kind))
    }

    /// Checks the capability for an operation on a `kind` object needing
    /// `needed`; `live_generation` is the object's frame generation now, or
    /// `None` if that frame holds no object.
    pub fn check(
        &self,
        kind: ObjectKind,
        needed: Rights,
        live_generation: Option<u64>,
    ) -> Result<(), Error> {
        if self.is_empty() || live_generation != Some(self.generation) {
            return Err(Error::InvalidCapability);
        }
        if self.kind != kind as u8 {
            return Err(Error::WrongObjectKind);
        }
        if !self.rights().contains(needed) {
            return Err(Error::MissingRight);
        }
        Ok(())
    }

    /// A copy with only the rights in `mask`, and `badge` if non-zero. A badge
    /// can only be given to an unbadged endpoint or notification capability.
    pub fn derive(&self, mask: Rights, badge: u64) -> Result<Cap, Error> {
        let mut derived = *self;
        derived.rights = self.rights().intersect(mask).0;
        if badge != 0 {
            let badgeable = matches!(
                self.kind(),
                Some(ObjectKind::Endpoint | ObjectKind::Notification)
            );
            if !badgeable || self.badge != 0 {
                return Err(Error::InvalidArgument);
            }
            derived.badge = badge;
        }
        Ok(derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_do_not_wrap_at_32_bits() {
        // A frame freed 2^32 times once gave a stale capability its object
        // back; 64-bit generations tell them apart.
        let stale = Cap::new(7, 1, ObjectKind::Endpoint);
        let live = (1u64 << 32) + 1;
        assert_eq!(
            stale.check(ObjectKind::Endpoint, Rights::NONE, Some(live)),
            Err(Error::InvalidCapability)
        );
        let fresh = Cap::new(7, live, ObjectKind::Endpoint);
        assert_eq!(
            fresh.check(ObjectKind::Endpoint, Rights::NONE, Some(live)),
            Ok(())
        );
    }

    fn endpoint() -> Cap {
        Cap::new(42, 7, ObjectKind::Endpoint)
    }

    #[test]
    fn valid_capability_passes() {
        assert_eq!(
            endpoint().check(ObjectKind::Endpoint, Rights::WRITE, Some(7)),
            Ok(())
        );
    }

    #[test]
    fn stale_or_empty_capability_is_invalid() {
        assert_eq!(
            endpoint().check(ObjectKind::Endpoint, Rights::WRITE, Some(8)),
            Err(Error::InvalidCapability)
        );
        assert_eq!(
            endpoint().check(ObjectKind::Endpoint, Rights::WRITE, None),
            Err(Error::InvalidCapability)
        );
        assert_eq!(
            Cap::default().check(ObjectKind::Endpoint, Rights::NONE, Some(0)),
            Err(Error::InvalidCapability)
        );
    }

    #[test]
    fn wrong_kind_and_missing_right_are_told_apart() {
        assert_eq!(
            endpoint().check(ObjectKind::Pd, Rights::NONE, Some(7)),
            Err(Error::WrongObjectKind)
        );
        let read_only = endpoint().derive(Rights::READ, 0).unwrap();
        assert_eq!(
            read_only.check(ObjectKind::Endpoint, Rights::WRITE, Some(7)),
            Err(Error::MissingRight)
        );
    }

    #[test]
    fn derive_never_adds_rights() {
        let mut seed = 0xC0FFEE_u64;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let original = Cap {
                rights: seed as u8 & Rights::ALL.0,
                ..endpoint()
            };
            let derived = original.derive(Rights((seed >> 8) as u8), 0).unwrap();
            assert!(original.rights().contains(derived.rights()));
            let twice = derived.derive(Rights::ALL, 0).unwrap();
            assert_eq!(
                twice.rights, derived.rights,
                "re-deriving with all rights adds nothing"
            );
        }
    }

    #[test]
    fn badges_only_once_and_only_on_ipc_objects() {
        let badged = endpoint().derive(Rights::ALL, 5).unwrap();
        assert_eq!(badged.badge, 5);
        assert_eq!(badged.derive(Rights::ALL, 6), Err(Error::InvalidArgument));
        assert_eq!(badged.derive(Rights::ALL, 0).unwrap().badge, 5);
        let pd = Cap::new(1, 0, ObjectKind::Pd);
        assert_eq!(pd.derive(Rights::ALL, 1), Err(Error::InvalidArgument));
    }

    #[test]
    fn slot_positions_are_bounded() {
        assert_eq!(slot_position(CapSlot(0)), None);
        assert_eq!(slot_position(CapSlot(1)), Some((0, 1)));
        assert_eq!(slot_position(CapSlot(CAPS_PER_PAGE as u32)), Some((1, 0)));
        assert_eq!(slot_position(CapSlot(MAX_SLOTS as u32)), None);
        assert_eq!(slot_position(CapSlot(u32::MAX)), None);
    }
}
