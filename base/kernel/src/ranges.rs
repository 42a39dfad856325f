//! Checks on address ranges that a Pd claims: user virtual ranges for
//! `Map`/`Unmap`, and physical ranges for device dataspaces. Every address
//! and size is checked at its full 64-bit width before anything is derived
//! from it, so nothing is truncated on the way to a page table.

#![forbid(unsafe_code)]

use crate::memory::PhysRange;
use arbor_abi::{Error, USER_END, USER_MIN};

const PAGE: u64 = 4096;

fn page_aligned(value: u64) -> bool {
    value.is_multiple_of(PAGE)
}

/// Checks that `[vaddr, vaddr + size)` is a non-empty, page-aligned range of
/// the user half; returns its length in pages.
pub fn user_range(vaddr: u64, size: u64) -> Result<u64, Error> {
    if !page_aligned(vaddr) || !page_aligned(size) || size == 0 {
        return Err(Error::BadAddress);
    }
    let end = vaddr.checked_add(size).ok_or(Error::BadAddress)?;
    if vaddr < USER_MIN || end > USER_END {
        return Err(Error::BadAddress);
    }
    Ok(size / PAGE)
}

/// Largest device dataspace: 64 GiB (a PCI BAR rarely has more).
pub const MAX_DEVICE_BYTES: u64 = 1 << 36;

/// Checks a device dataspace's physical range `[phys, phys + size)`: page
/// aligned, non-empty, at most [`MAX_DEVICE_BYTES`], below `1 << phys_bits`
/// (the CPU's physical address width: bits above it are reserved in page
/// table entries), and clear of every RAM range and every `kernel_pages`
/// page. Returns the number of pages.
pub fn device_range(
    phys: u64,
    size: u64,
    phys_bits: u32,
    ram: &[PhysRange],
    kernel_pages: &[u64],
) -> Result<u64, Error> {
    if !page_aligned(phys) || !page_aligned(size) || size == 0 || size > MAX_DEVICE_BYTES {
        return Err(Error::InvalidArgument);
    }
    let limit = 1u64.checked_shl(phys_bits.min(52)).unwrap_or(0);
    let end = phys
        .checked_add(size)
        .filter(|&end| end <= limit)
        .ok_or(Error::InvalidArgument)?;
    if ram.iter().any(|r| phys < r.end && r.start < end) {
        return Err(Error::InvalidArgument);
    }
    if kernel_pages
        .iter()
        .any(|&page| phys < page.saturating_add(PAGE) && page < end)
    {
        return Err(Error::AlreadyClaimed);
    }
    Ok(size / PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: [PhysRange; 2] = [
        PhysRange {
            start: 0,
            end: 0xA_0000,
        },
        PhysRange {
            start: 0x10_0000,
            end: 0x800_0000,
        },
    ];

    #[test]
    fn user_ranges() {
        assert_eq!(user_range(0x1000, 0x2000), Ok(2));
        assert_eq!(user_range(0, 0x1000), Err(Error::BadAddress));
        assert_eq!(user_range(0x1000, 0), Err(Error::BadAddress));
        assert_eq!(user_range(0x1001, 0x1000), Err(Error::BadAddress));
        assert_eq!(
            user_range(USER_END - 0x1000, 0x2000),
            Err(Error::BadAddress)
        );
        assert_eq!(user_range(u64::MAX - 0xFFF, 0x1000), Err(Error::BadAddress));
        assert_eq!(
            user_range(USER_MIN, USER_END - USER_MIN),
            Ok((USER_END - USER_MIN) / PAGE)
        );
    }

    #[test]
    fn device_ranges_are_checked_at_full_width() {
        // The attack: RAM's address plus 2^44 once passed the overlap check
        // and was then truncated onto RAM. Now it is simply out of range
        // for a 40-bit CPU, and checked against RAM at full width otherwise.
        let alias = (1 << 44) + 0x10_0000;
        assert_eq!(
            device_range(alias, 0x1000, 40, &RAM, &[]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(device_range(alias, 0x1000, 52, &RAM, &[]), Ok(1));
        assert_eq!(
            device_range(0x10_0000, 0x1000, 52, &RAM, &[]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(device_range(0xFEB0_0000, 0x2000, 40, &RAM, &[]), Ok(2));
        assert_eq!(
            device_range(0xFEE0_0000, 0x1000, 40, &RAM, &[0xFEE0_0000]),
            Err(Error::AlreadyClaimed)
        );
        assert_eq!(
            device_range(u64::MAX - 0xFFF, 0x1000, 52, &RAM, &[]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            device_range((1 << 52) - 0x1000, 0x2000, 52, &RAM, &[]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            device_range(0xF000_0000, MAX_DEVICE_BYTES + 0x1000, 52, &RAM, &[]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            device_range(0xF000_0000, 0x1000, 99, &RAM, &[]),
            Ok(1),
            "a reported width above 52 is treated as 52"
        );
    }
}
