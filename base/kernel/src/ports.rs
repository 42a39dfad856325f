//! I/O permission bitmaps (Intel SDM Vol. 1, 19.5.2): one bit per port, a set
//! bit denies it. A Pd's bitmap is always *recomputed* from the IoPorts
//! objects that are live and enabled in it, never patched by clearing one
//! object's bits: two objects may grant the same port, and destroying one
//! must not close a port the other still grants.

#![forbid(unsafe_code)]

/// Bytes in a bitmap covering all 65,536 ports.
pub const BITMAP_BYTES: usize = 8192;

/// A range of I/O ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Number of ports (`first + count <= 65,536`).
    pub count: u32,
}

impl PortRange {
    /// Whether `other` lies within this range.
    pub fn contains(&self, other: &PortRange) -> bool {
        let end = u32::from(self.first) + self.count;
        other.first >= self.first && u32::from(other.first) + other.count <= end
    }
}

/// Denies every port.
pub fn deny_all(bitmap: &mut [u8; BITMAP_BYTES]) {
    bitmap.fill(0xFF);
}

/// Allows the ports of `range`.
pub fn allow(bitmap: &mut [u8; BITMAP_BYTES], range: PortRange) {
    let end = (u32::from(range.first) + range.count).min(65_536);
    for port in u32::from(range.first)..end {
        bitmap[port as usize / 8] &= !(1 << (port % 8));
    }
}

/// Whether `port` is allowed.
pub fn allowed(bitmap: &[u8; BITMAP_BYTES], port: u16) -> bool {
    bitmap[usize::from(port) / 8] & (1 << (port % 8)) == 0
}

/// Rebuilds a bitmap from every range still granted.
pub fn recompute(bitmap: &mut [u8; BITMAP_BYTES], granted: impl IntoIterator<Item = PortRange>) {
    deny_all(bitmap);
    for range in granted {
        allow(bitmap, range);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_grants_stay_open_until_the_last_goes() {
        let mut bitmap = [0u8; BITMAP_BYTES];
        let a = PortRange {
            first: 0x80,
            count: 1,
        };
        let b = PortRange {
            first: 0x70,
            count: 0x20,
        };
        recompute(&mut bitmap, [a, b]);
        assert!(allowed(&bitmap, 0x80) && allowed(&bitmap, 0x70));
        // `a` is destroyed: `b` still grants 0x80.
        recompute(&mut bitmap, [b]);
        assert!(allowed(&bitmap, 0x80));
        recompute(&mut bitmap, []);
        assert!(!allowed(&bitmap, 0x80) && !allowed(&bitmap, 0x70));
    }

    #[test]
    fn edges_of_the_port_space() {
        let mut bitmap = [0u8; BITMAP_BYTES];
        recompute(
            &mut bitmap,
            [PortRange {
                first: 0xFFFF,
                count: 1,
            }],
        );
        assert!(allowed(&bitmap, 0xFFFF) && !allowed(&bitmap, 0xFFFE));
        recompute(
            &mut bitmap,
            [PortRange {
                first: 0xFFF0,
                count: 100,
            }],
        );
        assert!(allowed(&bitmap, 0xFFF0), "clamped, no overrun");
        let all = PortRange {
            first: 0,
            count: 65_536,
        };
        assert!(all.contains(&PortRange {
            first: 0xFFFF,
            count: 1
        }));
        assert!(
            !PortRange {
                first: 0x80,
                count: 1
            }
            .contains(&all)
        );
    }
}
