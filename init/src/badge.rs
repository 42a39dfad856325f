//! The badges on the capabilities init hands out, and the one [`decode`]
//! that tells from a received badge who is calling. The kernel writes the
//! badge, so a child cannot forge one; but a child holds its parent and
//! config-ROM capabilities and may send anything on them, so every badge
//! is checked whole: stray bits, an index past the children, or a fault
//! badge without the kernel's fault label are [`Caller::Unknown`].

use arbor::abi::{FAULT_LABEL, NOTIFICATION_LABEL};

/// Badge bit of fault reports; the rest is the child's index.
const FAULT_FLAG: u64 = 1 << 40;
/// Badge bit of config-ROM sessions init serves itself; the rest is the session id.
const LOCAL_FLAG: u64 = 1 << 41;

/// Who sent a message init received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// init's own bound notification (a nested init's parent signalled work).
    Notification,
    /// Child `index` on its parent capability.
    Child(usize),
    /// The kernel reporting a fault of child `index`.
    Fault(usize),
    /// A call on the config-ROM session `id` init serves itself.
    Local(u32),
    /// A badge init never gave out with this label: refused.
    Unknown(u64),
}

/// The badge of child `index`'s parent capability.
pub fn child(index: usize) -> u64 {
    index as u64 + 1
}

/// The badge of child `index`'s fault endpoint.
pub fn fault(index: usize) -> u64 {
    FAULT_FLAG | index as u64
}

/// The badge of config-ROM session `id`.
pub fn local(id: u32) -> u64 {
    LOCAL_FLAG | u64::from(id)
}

/// Who sent a message with `badge` and `label`, given `children` children.
pub fn decode(badge: u64, label: u32, children: usize) -> Caller {
    let index = badge & (FAULT_FLAG - 1);
    let in_range = |index: u64| usize::try_from(index).is_ok_and(|i| i < children);
    match badge & !(FAULT_FLAG - 1) {
        0 if badge == 0 && label == NOTIFICATION_LABEL => Caller::Notification,
        0 if badge != 0 && in_range(badge - 1) => Caller::Child(badge as usize - 1),
        FAULT_FLAG if label == FAULT_LABEL && in_range(index) => Caller::Fault(index as usize),
        LOCAL_FLAG => u32::try_from(index).map_or(Caller::Unknown(badge), Caller::Local),
        _ => Caller::Unknown(badge),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: u32 = 1;

    #[test]
    fn every_badge_init_makes_decodes_to_its_maker() {
        for index in 0..5 {
            assert_eq!(decode(child(index), CALL, 5), Caller::Child(index));
            assert_eq!(decode(fault(index), FAULT_LABEL, 5), Caller::Fault(index));
        }
        for id in [0, 1, 77, u32::MAX] {
            assert_eq!(decode(local(id), CALL, 5), Caller::Local(id));
        }
        assert_eq!(decode(0, NOTIFICATION_LABEL, 5), Caller::Notification);
    }

    #[test]
    fn garbage_badges_are_unknown() {
        let garbage = [
            child(5),                    // one past the last child
            u64::MAX,                    // every bit
            FAULT_FLAG | LOCAL_FLAG | 1, // both flags
            LOCAL_FLAG | (1 << 32),      // a session id wider than u32
            1 << 42,                     // a bit init never sets
            (1 << 63) | 1,               // a stray high bit on a child badge
            FAULT_FLAG | 5,              // a fault of a child that does not exist
        ];
        for badge in garbage {
            assert_eq!(decode(badge, CALL, 5), Caller::Unknown(badge), "{badge:#x}");
            assert_eq!(
                decode(badge, FAULT_LABEL, 5),
                Caller::Unknown(badge),
                "{badge:#x}"
            );
        }
        // Badge 0 is init's own notification only with the kernel's label.
        assert_eq!(decode(0, CALL, 5), Caller::Unknown(0));
    }

    #[test]
    fn a_fault_badge_counts_only_with_the_kernels_fault_label() {
        // A child cannot hold its fault endpoint, but if a message with the
        // badge and another label came, it would not be a fault report.
        assert_eq!(decode(fault(2), CALL, 5), Caller::Unknown(fault(2)));
        // A child calling with the fault label is a child call, decoded as such
        // (parent_request then refuses the label).
        assert_eq!(decode(child(2), FAULT_LABEL, 5), Caller::Child(2));
    }

    #[test]
    fn no_children_means_no_child_badges() {
        assert_eq!(decode(child(0), CALL, 0), Caller::Unknown(1));
        assert_eq!(
            decode(fault(0), FAULT_LABEL, 0),
            Caller::Unknown(FAULT_FLAG)
        );
    }
}
