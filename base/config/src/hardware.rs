//! Hardware declarations: which I/O ports, interrupt lines and device-memory
//! ranges a child may claim, and which ranges no child may claim at all.
//!
//! A route only lets a child *ask* for an IoPort, Irq or IoMem session; its
//! `hardware` declaration says what it may actually get. Three places judge
//! with this one module, so they cannot disagree:
//! - init checks every hardware session request of a child against that
//!   child's declaration ([`Hardware::permits`]) before routing it, and the
//!   outer init checks what a nested init forwards against the nested
//!   init's declaration;
//! - `arbor check` checks declarations against their siblings', against the
//!   enclosing nested init's, against the routes and against [`reservation`];
//! - core refuses every claim that touches a [`RESERVED`] range, whatever a
//!   declaration says, except the PCI ranges for the one platform driver
//!   ([`refusal`], the single place of that exception).
//!
//! Containment is per declared range: a claim is permitted when it lies
//! wholly inside one declared port range, one declared line or one declared
//! memory range (two adjacent declarations do not make one larger range).

use crate::ByteSize;
use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;

/// Inputs of q35's IOAPIC: lines `0..IOAPIC_LINES` exist (the kernel
/// refuses others).
pub const IOAPIC_LINES: u8 = 24;

/// Where q35's PCI Express configuration window (ECAM) starts: the MCH's
/// PCIEXBAR register (00:00.0, offset 0x60) reads `0xb0000001` under QEMU's
/// q35 with SeaBIOS, which the ACPI MCFG table repeats (see DEVICES.md).
pub const Q35_ECAM_BASE: u64 = 0xB000_0000;
/// The ECAM window's size: 256 buses of 1 MiB each.
pub const Q35_ECAM_SIZE: u64 = 256 << 20;

/// The legacy PCI configuration mechanism: address port 0xCF8, data ports 0xCFC–0xCFF.
pub const PCI_CONFIG_PORTS: Claim = Claim::IoPorts {
    first: 0xCF8,
    count: 8,
};

/// The local APIC's registers (one page), which the kernel drives.
pub const LAPIC_PAGE: u64 = 0xFEE0_0000;
/// The IOAPIC's registers (one page), which the kernel drives.
pub const IOAPIC_PAGE: u64 = 0xFEC0_0000;

const PAGE: u64 = 4096;

/// What a child may claim; the default is nothing.
///
/// ```ron
/// hardware: (io_ports: [(first: 0x40, count: 4)], irqs: [2], io_mem: [(base: 0xFED0_0000, size: "4K")])
/// ```
///
/// `hardware: (platform: true)` makes the child the platform driver: it may
/// claim every range reserved for [`Holder::PlatformDriver`] (PCI
/// configuration ports, the ECAM window, PCI device memory and the PCI
/// interrupt lines) without listing them. `arbor check` allows it for one
/// child of the root init only, and core grants those ranges to that child
/// alone, which it recognises from the scenario itself (see [`refusal`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// I/O port ranges.
    #[serde(default)]
    pub io_ports: Vec<PortRange>,
    /// IOAPIC inputs.
    #[serde(default)]
    pub irqs: Vec<u8>,
    /// Device-memory ranges (page aligned, page multiples).
    #[serde(default)]
    pub io_mem: Vec<MemoryRange>,
    /// Whether this child is the platform driver (see above).
    #[serde(default)]
    pub platform: bool,
}

/// Ports `first .. first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// How many ports.
    pub count: u16,
}

/// Physical memory `base .. base + size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryRange {
    /// Physical address of the first byte.
    pub base: u64,
    /// Its size, e.g. `"4K"`.
    pub size: ByteSize,
}

/// One hardware resource, as declared or as a session request asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ports `first .. first + count`.
    IoPorts {
        /// The first port.
        first: u16,
        /// How many ports.
        count: u16,
    },
    /// One IOAPIC input.
    Irq {
        /// The line.
        line: u8,
    },
    /// Physical memory `base .. base + size`.
    IoMem {
        /// Physical address of the first byte.
        base: u64,
        /// Its size in bytes.
        size: u64,
    },
}

/// The kinds of hardware sessions, as routes name their services.
pub const HARDWARE_SERVICES: [&str; 3] = ["IoPort", "Irq", "IoMem"];

impl Claim {
    /// The service whose session requests this kind of resource.
    pub fn service(&self) -> &'static str {
        match self {
            Claim::IoPorts { .. } => HARDWARE_SERVICES[0],
            Claim::Irq { .. } => HARDWARE_SERVICES[1],
            Claim::IoMem { .. } => HARDWARE_SERVICES[2],
        }
    }

    /// The half-open range `[start, end)` the claim covers within its kind.
    fn bounds(&self) -> (u64, u64) {
        match *self {
            Claim::IoPorts { first, count } => {
                (u64::from(first), u64::from(first) + u64::from(count))
            }
            Claim::Irq { line } => (u64::from(line), u64::from(line) + 1),
            Claim::IoMem { base, size } => (base, base.saturating_add(size)),
        }
    }

    fn same_kind(&self, other: &Claim) -> bool {
        core::mem::discriminant(self) == core::mem::discriminant(other)
    }

    /// Whether the claim covers nothing (zero ports or bytes).
    pub fn is_empty(&self) -> bool {
        let (start, end) = self.bounds();
        start >= end
    }

    /// Whether the two share a port, a line or a byte.
    pub fn overlaps(&self, other: &Claim) -> bool {
        let ((a, b), (c, d)) = (self.bounds(), other.bounds());
        self.same_kind(other) && a < d && c < b
    }

    /// Whether `self` lies wholly inside `outer` (and is not empty).
    pub fn within(&self, outer: &Claim) -> bool {
        let ((a, b), (c, d)) = (self.bounds(), outer.bounds());
        self.same_kind(outer) && a < b && c <= a && b <= d
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = self.bounds();
        match self {
            Claim::Irq { line } => write!(f, "Irq {line}"),
            _ => write!(f, "{} {start:#x}..{end:#x}", self.service()),
        }
    }
}

impl Hardware {
    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.io_ports.is_empty() && self.irqs.is_empty() && self.io_mem.is_empty() && !self.platform
    }

    /// Every declared range as a claim, ports first, then lines, then memory.
    pub fn claims(&self) -> impl Iterator<Item = Claim> + '_ {
        let ports = self.io_ports.iter().map(|p| Claim::IoPorts {
            first: p.first,
            count: p.count,
        });
        let lines = self.irqs.iter().map(|&line| Claim::Irq { line });
        let memory = self.io_mem.iter().map(|m| Claim::IoMem {
            base: m.base,
            size: m.size.0,
        });
        ports.chain(lines).chain(memory)
    }

    /// Whether `claim` lies wholly inside one declared range, or, for the
    /// platform driver, wholly inside one range reserved for it.
    pub fn permits(&self, claim: &Claim) -> bool {
        self.claims().any(|declared| claim.within(&declared))
            || (self.platform
                && RESERVED
                    .iter()
                    .any(|r| r.holder == Holder::PlatformDriver && claim.within(&r.range)))
    }

    /// Whether a range of the service's kind (`"IoPort"`, `"Irq"`, `"IoMem"`)
    /// is listed (the platform driver's reserved ranges are not listed: it
    /// routes only what it uses).
    pub fn declares(&self, service: &str) -> bool {
        self.claims().any(|c| c.service() == service)
    }
}

impl fmt::Display for Hardware {
    /// `(none)`, or e.g. `IoPort 0x40..0x44, Irq 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        if self.platform {
            f.write_str("the platform driver's PCI ranges")?;
        }
        for (i, claim) in self.claims().enumerate() {
            if i > 0 || self.platform {
                f.write_str(", ")?;
            }
            write!(f, "{claim}")?;
        }
        Ok(())
    }
}

/// Who a reserved range belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// The kernel drives it itself (it refuses these too).
    Kernel,
    /// PCI configuration space, device memory and interrupt lines: through
    /// configuration space a driver can move any device's BARs and turn on
    /// bus mastering, hence DMA over all of RAM; the BARs and lines are
    /// every device's. Only the platform driver (`hardware: (platform:
    /// true)`) may have them; it hands each driver its own devices.
    PlatformDriver,
}

/// A range no child may claim, whatever its declaration says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved range.
    pub range: Claim,
    /// What it is, for messages.
    pub what: &'static str,
    /// Whose it is.
    pub holder: Holder,
}

impl fmt::Display for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = match self.holder {
            Holder::Kernel => "the kernel drives it",
            Holder::PlatformDriver => "only the platform driver may have it",
        };
        write!(f, "{} ({}) is reserved: {whose}", self.range, self.what)
    }
}

/// The ranges no child may claim. The kernel's entries mirror what the
/// kernel itself refuses (`KERNEL_PORTS` and the interrupt controllers in
/// `base/kernel/src/kernel/syscall/devices.rs`); RAM is not listed because
/// core does not know the memory map, and the kernel refuses a device
/// dataspace over RAM itself.
pub const RESERVED: [Reservation; 16] = [
    Reservation {
        range: Claim::IoMem {
            base: PCI_MEMORY_BASE,
            size: PCI_MEMORY_END - PCI_MEMORY_BASE,
        },
        what: "PCI device memory (BARs)",
        holder: Holder::PlatformDriver,
    },
    pci_line(16),
    pci_line(17),
    pci_line(18),
    pci_line(19),
    pci_line(20),
    pci_line(21),
    pci_line(22),
    pci_line(23),
    Reservation {
        range: PCI_CONFIG_PORTS,
        what: "PCI configuration ports",
        holder: Holder::PlatformDriver,
    },
    Reservation {
        range: Claim::IoMem {
            base: Q35_ECAM_BASE,
            size: Q35_ECAM_SIZE,
        },
        what: "the PCI ECAM window",
        holder: Holder::PlatformDriver,
    },
    Reservation {
        range: Claim::IoPorts {
            first: 0x20,
            count: 2,
        },
        what: "the master PIC",
        holder: Holder::Kernel,
    },
    Reservation {
        range: Claim::IoPorts {
            first: 0xA0,
            count: 2,
        },
        what: "the slave PIC",
        holder: Holder::Kernel,
    },
    Reservation {
        range: Claim::IoPorts {
            first: 0x3F8,
            count: 8,
        },
        what: "COM1, the kernel's console",
        holder: Holder::Kernel,
    },
    Reservation {
        range: Claim::IoMem {
            base: LAPIC_PAGE,
            size: PAGE,
        },
        what: "the local APIC",
        holder: Holder::Kernel,
    },
    Reservation {
        range: Claim::IoMem {
            base: IOAPIC_PAGE,
            size: PAGE,
        },
        what: "the IOAPIC",
        holder: Holder::Kernel,
    },
];

/// Where firmware places 32-bit PCI BARs on q35: from the end of the ECAM
/// window up to the IOAPIC (QEMU's q35 PCI hole; SeaBIOS allocates BARs
/// from its top down).
pub const PCI_MEMORY_BASE: u64 = Q35_ECAM_BASE + Q35_ECAM_SIZE;
/// The end of the 32-bit PCI memory window (exclusive).
pub const PCI_MEMORY_END: u64 = IOAPIC_PAGE;
/// The IOAPIC inputs q35 routes PCI INTx to (PIRQ A–H, GSI 16–23):
/// level-triggered, active-low and shared between slots.
pub const PCI_INTERRUPT_LINES: core::ops::Range<u8> = 16..24;

const fn pci_line(line: u8) -> Reservation {
    Reservation {
        range: Claim::Irq { line },
        what: "a PCI interrupt line",
        holder: Holder::PlatformDriver,
    }
}

/// The reservation `claim` touches, if any: such a claim is refused to
/// every child but, for [`Holder::PlatformDriver`] ranges, the platform
/// driver (see [`refusal`]).
pub fn reservation(claim: &Claim) -> Option<&'static Reservation> {
    RESERVED.iter().find(|r| r.range.overlaps(claim))
}

/// The reservation that refuses `claim` to a claimant, if any.
///
/// This is the single place for the platform driver's exception: ranges
/// held for [`Holder::PlatformDriver`] are let through when
/// `platform_driver` is true, and kernel ranges never are. The caller (core)
/// decides `platform_driver` from what no child can influence: the one
/// child the scenario declares `hardware: (platform: true)` (read from the
/// boot archive, which `arbor check` allows for one child of the root init
/// only), matched against the first element init adds to a label, which
/// is that child's name and cannot be forged (see [`crate::label`]).
pub fn refusal(claim: &Claim, platform_driver: bool) -> Option<&'static Reservation> {
    RESERVED.iter().find(|r| {
        r.range.overlaps(claim) && !(platform_driver && r.holder == Holder::PlatformDriver)
    })
}

/// The name of the root init's child that the scenario makes the platform
/// driver, if any (the first one; `arbor check` refuses a second).
pub fn platform_driver(init: &crate::init::InitConfig) -> Option<&str> {
    init.children
        .iter()
        .find(|child| child.hardware.platform)
        .map(|child| child.name.as_str())
}

/// Whether a label core composed (`"init -> NAME -> ..."`) comes from the
/// root init's child `name`: its second element is exactly that name.
pub fn label_is_from(label: &str, name: &str) -> bool {
    label.split(crate::label::SEPARATOR).nth(1) == Some(name)
}

/// Guest RAM on q35 for a machine of `memory` bytes, as device-memory
/// ranges: conventional memory below the legacy VGA/BIOS hole, then from
/// 1 MiB up to the split below 4 GiB, then the rest above 4 GiB. QEMU's q35
/// (`hw/i386/pc_q35.c`) keeps at most 2 GiB below 4 GiB once the machine
/// has 0xB000_0000 bytes or more, else all of it. The kernel refuses a
/// device dataspace over RAM (it has the real memory map); this lets
/// `arbor check` say so before boot.
pub fn guest_ram(memory: u64) -> [Claim; 3] {
    let split = if memory >= Q35_ECAM_BASE {
        0x8000_0000
    } else {
        Q35_ECAM_BASE
    };
    let below_4g = memory.min(split);
    let above_4g = memory - below_4g;
    [
        Claim::IoMem {
            base: 0,
            size: below_4g.min(0xA_0000),
        },
        Claim::IoMem {
            base: 0x10_0000,
            size: below_4g.saturating_sub(0x10_0000),
        },
        Claim::IoMem {
            base: 1 << 32,
            size: above_4g,
        },
    ]
}

/// What is wrong with one declared range on its own, if anything: empty,
/// past the end of the port space, a line the IOAPIC lacks, or memory that
/// is not in whole pages.
pub fn malformed(claim: &Claim) -> Option<&'static str> {
    match *claim {
        Claim::IoPorts { first, count } => {
            if count == 0 {
                Some("it covers no ports (count is 0)")
            } else if u32::from(first) + u32::from(count) > 0x1_0000 {
                Some("it runs past port 0xffff")
            } else {
                None
            }
        }
        Claim::Irq { line } => {
            (line >= IOAPIC_LINES).then_some("the IOAPIC has lines 0 to 23 only")
        }
        Claim::IoMem { base, size } => {
            if size == 0 {
                Some("it covers no memory (size is 0)")
            } else if !base.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
                Some(
                    "device memory is claimed in whole 4K pages: base and size must be multiples of 4K",
                )
            } else if base.checked_add(size).is_none() {
                Some("it runs past the end of the address space")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    fn timer() -> Hardware {
        Hardware {
            io_ports: vec![PortRange {
                first: 0x40,
                count: 4,
            }],
            irqs: vec![2],
            io_mem: vec![MemoryRange {
                base: 0xFED0_0000,
                size: ByteSize(0x1000),
            }],
            platform: false,
        }
    }

    #[test]
    fn only_the_platform_driver_passes_its_reservations() {
        let bar = Claim::IoMem {
            base: 0xFE00_0000,
            size: 0x4000,
        };
        let line = Claim::Irq { line: 20 };
        for claim in [PCI_CONFIG_PORTS, bar, line, ecam()] {
            assert_eq!(
                refusal(&claim, false).map(|r| r.holder),
                Some(Holder::PlatformDriver),
                "{claim}"
            );
            assert!(refusal(&claim, true).is_none(), "{claim}");
            let platform = Hardware {
                platform: true,
                ..Hardware::default()
            };
            assert!(platform.permits(&claim), "{claim}");
            assert!(!timer().permits(&claim), "{claim}");
        }
        let ioapic = Claim::IoMem {
            base: IOAPIC_PAGE,
            size: PAGE,
        };
        assert!(refusal(&ioapic, true).is_some());
        assert!(refusal(&Claim::Irq { line: 2 }, false).is_none());
        // Memory straddling the window and the IOAPIC stays refused.
        let straddle = Claim::IoMem {
            base: IOAPIC_PAGE - PAGE,
            size: 2 * PAGE,
        };
        assert!(refusal(&straddle, true).is_some());
        assert!(
            !Hardware {
                platform: true,
                ..Hardware::default()
            }
            .permits(&straddle)
        );
    }

    #[test]
    fn labels_from_the_platform_driver_are_recognised_by_their_first_element() {
        assert!(label_is_from("init -> platform", "platform"));
        assert!(label_is_from("init -> platform -> ecam", "platform"));
        assert!(!label_is_from("init -> hostile -> platform", "platform"));
        assert!(!label_is_from("init -> platform2", "platform"));
        assert!(!label_is_from("platform", "platform"));
    }

    fn ecam() -> Claim {
        Claim::IoMem {
            base: Q35_ECAM_BASE,
            size: Q35_ECAM_SIZE,
        }
    }

    #[test]
    fn a_claim_inside_a_declared_range_is_permitted() {
        let hardware = timer();
        for inside in [
            Claim::IoPorts {
                first: 0x40,
                count: 4,
            },
            Claim::IoPorts {
                first: 0x43,
                count: 1,
            },
            Claim::Irq { line: 2 },
            Claim::IoMem {
                base: 0xFED0_0000,
                size: 0x1000,
            },
        ] {
            assert!(hardware.permits(&inside), "{inside}");
        }
    }

    #[test]
    fn a_claim_reaching_outside_is_refused() {
        let hardware = timer();
        for outside in [
            Claim::IoPorts {
                first: 0x43,
                count: 2,
            },
            Claim::IoPorts {
                first: 0x40,
                count: 0,
            },
            PCI_CONFIG_PORTS,
            Claim::Irq { line: 0 },
            Claim::IoMem {
                base: 0xFED0_0000,
                size: 0x2000,
            },
            Claim::IoMem {
                base: Q35_ECAM_BASE,
                size: Q35_ECAM_SIZE,
            },
            Claim::IoMem {
                base: u64::MAX - 10,
                size: u64::MAX,
            },
        ] {
            assert!(!hardware.permits(&outside), "{outside}");
        }
        assert!(!Hardware::default().permits(&Claim::Irq { line: 2 }));
    }

    #[test]
    fn kinds_never_mix() {
        // Port 2 and line 2 are different resources.
        let lines = Hardware {
            irqs: vec![2],
            ..Hardware::default()
        };
        assert!(!lines.permits(&Claim::IoPorts { first: 2, count: 1 }));
        assert!(!Claim::Irq { line: 2 }.overlaps(&Claim::IoPorts { first: 2, count: 1 }));
    }

    #[test]
    fn reserved_ranges_are_found_by_any_overlap() {
        let pci = reservation(&Claim::IoPorts {
            first: 0xCFC,
            count: 1,
        })
        .unwrap();
        assert_eq!(pci.holder, Holder::PlatformDriver);
        let ecam_page = Claim::IoMem {
            base: Q35_ECAM_BASE + Q35_ECAM_SIZE - PAGE,
            size: PAGE,
        };
        assert_eq!(reservation(&ecam_page).unwrap().what, "the PCI ECAM window");
        assert_eq!(
            reservation(&Claim::IoPorts {
                first: 0x3F0,
                count: 16
            })
            .unwrap()
            .holder,
            Holder::Kernel
        );
        assert!(
            reservation(&Claim::IoMem {
                base: 0xFEC0_0000,
                size: 0x100_0000
            })
            .is_some()
        );
        assert!(
            reservation(&Claim::IoPorts {
                first: 0x40,
                count: 4
            })
            .is_none()
        );
        assert!(reservation(&Claim::Irq { line: 2 }).is_none());
        // Past the ECAM window lie the BARs, reserved for the platform driver too.
        assert_eq!(
            reservation(&Claim::IoMem {
                base: Q35_ECAM_BASE + Q35_ECAM_SIZE,
                size: PAGE
            })
            .map(|r| r.what),
            Some("PCI device memory (BARs)")
        );
        assert!(
            reservation(&Claim::IoMem {
                base: 0xFED0_0000,
                size: PAGE
            })
            .is_none()
        );
    }

    #[test]
    fn messages_name_the_ranges() {
        assert_eq!(format!("{PCI_CONFIG_PORTS}"), "IoPort 0xcf8..0xd00");
        assert_eq!(
            format!("{}", timer()),
            "IoPort 0x40..0x44, Irq 2, IoMem 0xfed00000..0xfed01000"
        );
        assert_eq!(format!("{}", Hardware::default()), "none");
        assert_eq!(
            format!("{}", RESERVED[9]),
            "IoPort 0xcf8..0xd00 (PCI configuration ports) is reserved: only the platform driver may have it"
        );
    }

    #[test]
    fn guest_ram_follows_q35s_split() {
        let small = guest_ram(128 << 20);
        let vga = Claim::IoMem {
            base: 0xA_0000,
            size: 0x2_0000,
        };
        assert!(!small.iter().any(|ram| ram.overlaps(&vga)));
        assert!(small[1].overlaps(&Claim::IoMem {
            base: (128 << 20) - PAGE,
            size: PAGE
        }));
        assert!(!small.iter().any(|ram| ram.overlaps(&Claim::IoMem {
            base: 128 << 20,
            size: PAGE
        })));
        let big = guest_ram(4 << 30);
        assert_eq!(
            big[1],
            Claim::IoMem {
                base: 0x10_0000,
                size: 0x8000_0000 - 0x10_0000
            }
        );
        assert_eq!(
            big[2],
            Claim::IoMem {
                base: 1 << 32,
                size: 2 << 30
            }
        );
    }

    #[test]
    fn malformed_declarations_are_named() {
        assert!(
            malformed(&Claim::IoPorts {
                first: 0xFFFF,
                count: 2
            })
            .is_some()
        );
        assert!(
            malformed(&Claim::IoPorts {
                first: 0xFFFF,
                count: 1
            })
            .is_none()
        );
        assert!(malformed(&Claim::Irq { line: 24 }).is_some());
        assert!(malformed(&Claim::Irq { line: 23 }).is_none());
        assert!(
            malformed(&Claim::IoMem {
                base: 0x1234,
                size: PAGE
            })
            .is_some()
        );
        assert!(
            malformed(&Claim::IoMem {
                base: u64::MAX - PAGE + 1,
                size: 2 * PAGE
            })
            .is_some()
        );
    }
}
