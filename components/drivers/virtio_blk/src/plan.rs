//! Cutting one Block request into virtio requests: each moves at most
//! [`CHUNK_SECTORS`] sectors (so its bounce buffer fits the DMA pool
//! beside the others in flight), and at most [`IN_FLIGHT`] are on the
//! queue at once (each takes three of the queue's 16 descriptors).

/// Bytes per virtio sector.
pub const SECTOR: usize = 512;
/// Sectors one virtio request moves at most (16 KiB: four pool pages; a
/// 64 KiB Block request is on the queue whole, and waits once).
pub const CHUNK_SECTORS: usize = 32;
/// virtio requests on the queue at once.
pub const IN_FLIGHT: usize = 4;

/// One virtio request of a Block request: sectors from `sector`, the bytes
/// `start..end` of the request's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First sector on the device.
    pub sector: u64,
    /// Offset in the request's buffer.
    pub start: usize,
    /// End offset in the request's buffer.
    pub end: usize,
}

/// The chunks of a request of `length` bytes (whole sectors, checked by
/// the Block service) from sector `first`.
pub fn chunks(first: u64, length: usize) -> impl Iterator<Item = Chunk> {
    let chunk = CHUNK_SECTORS * SECTOR;
    (0..length.div_ceil(chunk)).map(move |index| {
        let start = index * chunk;
        Chunk {
            sector: first + (start / SECTOR) as u64,
            start,
            end: (start + chunk).min(length),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_request_in_order() {
        let all: alloc::vec::Vec<Chunk> = chunks(10, 80 * SECTOR).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(
            all[0],
            Chunk {
                sector: 10,
                start: 0,
                end: 16384
            }
        );
        assert_eq!(all[1].sector, 42);
        assert_eq!(
            all[2],
            Chunk {
                sector: 74,
                start: 32768,
                end: 40960
            }
        );
        assert_eq!(chunks(0, SECTOR).count(), 1);
        assert_eq!(chunks(0, 0).count(), 0);
    }
}
