//! Which hardware resources core has handed out: every I/O port range, IRQ
//! line and device-memory range goes to one session at a time. A second
//! claim that overlaps is refused until the first session closes.
//!
//! Ranges nobody may claim at all (PCI configuration space, the kernel's
//! devices) are refused before a claim gets here, by
//! `arbor_config::hardware::reservation` (see `refuse_reserved` in main.rs).

use alloc::string::String;
use alloc::vec::Vec;

/// The platform driver's name, read from the scenario in the boot archive
/// (the module `config`, which init reads too): the root init's child that
/// declares `hardware: (platform: true)`. Core trusts init to put a child's
/// own name first in its labels; no child can make its label start with
/// another's name ([`arbor_config::label`]). A scenario that does not parse
/// has no platform driver (init refuses it anyway).
pub fn platform_driver() -> Option<String> {
    let text = arbor::rom::module("config").ok()?;
    let text = core::str::from_utf8(text).ok()?;
    let scenario = arbor_config::parse_scenario(text).ok()?;
    let init = scenario.init.as_ref()?;
    arbor_config::hardware::platform_driver(init).map(String::from)
}

/// A claimable resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// Ports `first .. first + count`.
    IoPorts { first: u32, count: u32 },
    /// One interrupt line.
    Irq { line: u8 },
    /// Physical memory `phys .. phys + size`.
    IoMem { phys: u64, size: u64 },
}

impl Resource {
    fn overlaps(&self, other: &Resource) -> bool {
        match (*self, *other) {
            (
                Resource::IoPorts { first: a, count: n },
                Resource::IoPorts { first: b, count: m },
            ) => a < b + m && b < a + n,
            (Resource::Irq { line: a }, Resource::Irq { line: b }) => a == b,
            (Resource::IoMem { phys: a, size: n }, Resource::IoMem { phys: b, size: m }) => {
                a < b.saturating_add(m) && b < a.saturating_add(n)
            }
            _ => false,
        }
    }
}

/// The resources claimed, each with the session that holds it.
#[derive(Default)]
pub struct Claims {
    held: Vec<(Resource, u32)>,
}

impl Claims {
    /// Records `resource` for `session`, unless something overlapping is held.
    pub fn claim(&mut self, resource: Resource, session: u32) -> bool {
        if self.held.iter().any(|(held, _)| held.overlaps(&resource)) {
            return false;
        }
        self.held.push((resource, session));
        true
    }

    /// Releases whatever `session` holds.
    pub fn release(&mut self, session: u32) {
        self.held.retain(|(_, holder)| *holder != session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_claims_are_refused_until_released() {
        let mut claims = Claims::default();
        assert!(claims.claim(
            Resource::IoPorts {
                first: 0x40,
                count: 4
            },
            1
        ));
        assert!(!claims.claim(
            Resource::IoPorts {
                first: 0x43,
                count: 1
            },
            2
        ));
        assert!(claims.claim(
            Resource::IoPorts {
                first: 0x44,
                count: 1
            },
            2
        ));
        assert!(claims.claim(Resource::Irq { line: 2 }, 1));
        assert!(!claims.claim(Resource::Irq { line: 2 }, 3));
        assert!(claims.claim(
            Resource::IoMem {
                phys: 0xB000_0000,
                size: 0x1000
            },
            4
        ));
        assert!(!claims.claim(
            Resource::IoMem {
                phys: 0xB000_0FFF,
                size: 0x1000
            },
            5
        ));
        claims.release(1);
        assert!(claims.claim(
            Resource::IoPorts {
                first: 0x40,
                count: 4
            },
            6
        ));
        assert!(claims.claim(Resource::Irq { line: 2 }, 6));
    }

    #[test]
    fn absurd_ranges_do_not_overflow() {
        let mut claims = Claims::default();
        assert!(claims.claim(
            Resource::IoMem {
                phys: u64::MAX - 10,
                size: u64::MAX
            },
            1
        ));
        assert!(!claims.claim(
            Resource::IoMem {
                phys: u64::MAX - 5,
                size: 1
            },
            2
        ));
    }
}
