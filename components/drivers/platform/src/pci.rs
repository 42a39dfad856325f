//! PCI configuration space as the platform driver reads it: functions,
//! their BARs and interrupt lines (q35), and which accesses a client may
//! make to its own functions.

use arbor_sessions::platform::{COMMAND_WRITABLE, PciAddress};

/// Configuration space of one function: 4 KiB under ECAM.
pub const CONFIG_SIZE: u16 = 4096;

/// One function found on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Where.
    pub address: PciAddress,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device_id: u16,
    /// Base class.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// The IOAPIC input its INTx pin reaches (0: no pin).
    pub irq_line: u8,
    /// Memory BARs: (physical address, size); size 0 = none.
    pub bars: [(u64, u64); 6],
}

/// The IOAPIC input q35 routes `pin` (1 = INTA … 4 = INTD) of a device in
/// `slot` of bus 0 to: PIRQ E–H, GSI 20 + (slot + pin − 1) mod 4 (QEMU
/// `hw/isa/lpc_ich9.c`, checked for slot 1 in DEVICES.md). 0 for no pin.
pub fn q35_gsi(slot: u8, pin: u8) -> u8 {
    if pin == 0 || pin > 4 {
        return 0;
    }
    20 + (slot + pin - 1) % 4
}

/// A memory BAR's size from what it reads back after all ones were
/// written (`mask`, 64 bits wide for a 64-bit BAR); 0 if it decodes nothing.
pub fn bar_size(mask: u64, is_64: bool) -> u64 {
    let mask = mask & !0xF;
    if mask == 0 {
        return 0;
    }
    let mask = if is_64 {
        mask
    } else {
        mask | 0xFFFF_FFFF_0000_0000
    };
    (!mask).wrapping_add(1)
}

/// Why a client's configuration-space access is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessRefusal {
    /// Beyond the function's 4 KiB, or not dword-aligned.
    BadOffset,
    /// A command-register bit other than decoding, bus mastering and INTx disable.
    CommandBits,
}

impl core::fmt::Display for AccessRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AccessRefusal::BadOffset => f.write_str(
                "the offset is not a dword inside the function's 4 KiB of configuration space",
            ),
            AccessRefusal::CommandBits => f.write_str(
                "only I/O and memory decoding, bus mastering and INTx disable may be set",
            ),
        }
    }
}

/// Checks a configuration-space read offset.
pub fn check_read(offset: u16) -> Result<(), AccessRefusal> {
    if offset < CONFIG_SIZE && offset.is_multiple_of(4) {
        Ok(())
    } else {
        Err(AccessRefusal::BadOffset)
    }
}

/// Checks a command-register value a client sets.
pub fn check_command(command: u16) -> Result<(), AccessRefusal> {
    if command & !COMMAND_WRITABLE == 0 {
        Ok(())
    } else {
        Err(AccessRefusal::CommandBits)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn function(slot: u8, device_id: u16, class: u8) -> Function {
        Function {
            address: PciAddress {
                bus: 0,
                device: slot,
                function: 0,
            },
            vendor: 0x1af4,
            device_id,
            class,
            subclass: 0,
            irq_line: q35_gsi(slot, 1),
            bars: [(0, 0); 6],
        }
    }

    #[test]
    fn q35_routes_inta_of_slot_s_to_gsi_20_plus_s_mod_4() {
        assert_eq!(q35_gsi(1, 1), 21);
        assert_eq!(q35_gsi(3, 1), 23);
        assert_eq!(q35_gsi(4, 1), 20);
        assert_eq!(q35_gsi(1, 2), 22);
        assert_eq!(q35_gsi(1, 0), 0);
        assert_eq!(q35_gsi(1, 5), 0);
    }

    #[test]
    fn bar_sizes_come_from_the_mask() {
        assert_eq!(bar_size(0xFFFF_C00C, false), 0x4000);
        assert_eq!(bar_size(0xFFFF_FFFF_FFFF_C00C, true), 0x4000);
        assert_eq!(bar_size(0, false), 0);
    }

    #[test]
    fn clients_touch_only_what_they_may() {
        assert!(check_read(0).is_ok());
        assert!(check_read(0xFFC).is_ok());
        assert_eq!(check_read(0x1000), Err(AccessRefusal::BadOffset));
        assert_eq!(check_read(2), Err(AccessRefusal::BadOffset));
        assert!(check_command(0x7).is_ok());
        assert!(check_command(0x406).is_ok());
        assert_eq!(check_command(0x8), Err(AccessRefusal::CommandBits));
    }
}
