//! Cutting Block requests into virtio requests: each moves at most
//! [`CHUNK_SECTORS`] sectors (so its bounce buffer fits the DMA pool
//! beside the others in flight), and at most [`IN_FLIGHT`] are on the
//! queue at once (each takes three of the queue's 16 descriptors).
//! [`Schedule`] keeps the books while several Block requests run: which
//! queue slot carries which chunk of which request under which token, so
//! that the device may complete them in any order and a token it did not
//! get back is refused, never guessed.

use alloc::vec::Vec;

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

/// One virtio request on the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Its queue slot (index into the headers and statuses).
    pub slot: usize,
    /// The device's token for it.
    pub token: u16,
    /// Which Block request (job) it belongs to.
    pub job: usize,
    /// Which part of that job's buffer it moves.
    pub chunk: Chunk,
}

/// The chunks of several jobs and the queue slots they occupy.
pub struct Schedule {
    chunks: Vec<(usize, Chunk)>,
    next: usize,
    slots: [Option<Slot>; IN_FLIGHT],
}

impl Schedule {
    /// The chunks of `jobs` (first sector, bytes), in order.
    pub fn new(jobs: impl Iterator<Item = (u64, usize)>) -> Schedule {
        let chunks = jobs
            .enumerate()
            .flat_map(|(job, (first, length))| chunks(first, length).map(move |c| (job, c)))
            .collect();
        Schedule {
            chunks,
            next: 0,
            slots: [None; IN_FLIGHT],
        }
    }

    /// The next chunk to submit and a free slot for it, if both exist.
    pub fn next(&self) -> Option<(usize, usize, Chunk)> {
        let (job, chunk) = *self.chunks.get(self.next)?;
        let slot = self.slots.iter().position(Option::is_none)?;
        Some((slot, job, chunk))
    }

    /// The chunk [`Schedule::next`] named is on the queue under `token`.
    pub fn submitted(&mut self, slot: usize, token: u16) {
        if let (Some(&(job, chunk)), Some(entry)) =
            (self.chunks.get(self.next), self.slots.get_mut(slot))
        {
            *entry = Some(Slot {
                slot,
                token,
                job,
                chunk,
            });
            self.next += 1;
        }
    }

    /// Submits nothing more; the jobs of the chunks left unsubmitted.
    pub fn skip_rest(&mut self) -> Vec<usize> {
        let mut skipped: Vec<usize> = self.chunks[self.next.min(self.chunks.len())..]
            .iter()
            .map(|(job, _)| *job)
            .collect();
        skipped.dedup();
        self.next = self.chunks.len();
        skipped
    }

    /// The device finished `token`: its slot, now free; `None` for a
    /// token that is not on the queue (the device cannot be trusted).
    pub fn complete(&mut self, token: u16) -> Option<Slot> {
        let entry = self
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|s| s.token == token))?;
        entry.take()
    }

    /// Virtio requests on the queue.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several jobs, a device that completes in any order: every chunk is
    /// submitted once and completed once, never more than IN_FLIGHT at a
    /// time, and a token that is not on the queue is refused.
    #[test]
    fn fuzz_out_of_order_completion_keeps_the_books() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let jobs: Vec<(u64, usize)> = (0..1 + next() % 6)
                .map(|_| (next() % 10_000, (1 + (next() % 80) as usize) * SECTOR))
                .collect();
            let mut schedule = Schedule::new(jobs.iter().copied());
            let mut moved = alloc::vec![0usize; jobs.len()];
            let mut device: Vec<u16> = Vec::new();
            let mut token = 0u16;
            loop {
                while let Some((slot, _, _)) = schedule.next() {
                    token = token.wrapping_add(1);
                    schedule.submitted(slot, token);
                    device.push(token);
                }
                assert!(schedule.in_flight() <= IN_FLIGHT);
                if device.is_empty() {
                    break;
                }
                // A forged token is refused and changes nothing.
                assert_eq!(schedule.complete(token.wrapping_add(500)), None);
                let done = device.swap_remove((next() % device.len() as u64) as usize);
                let slot = schedule.complete(done).expect("a token on the queue");
                assert_eq!(schedule.complete(done), None, "completed twice");
                moved[slot.job] += slot.chunk.end - slot.chunk.start;
            }
            for (job, (_, length)) in jobs.iter().enumerate() {
                assert_eq!(moved[job], *length);
            }
        }
    }

    #[test]
    fn skipping_names_each_unsubmitted_job_once() {
        let mut schedule = Schedule::new([(0, 80 * SECTOR), (500, SECTOR)].into_iter());
        let (slot, job, _) = schedule.next().unwrap();
        assert_eq!(job, 0);
        schedule.submitted(slot, 7);
        assert_eq!(schedule.skip_rest(), [0, 1]);
        assert_eq!(schedule.next(), None);
        assert_eq!(schedule.complete(7).map(|s| s.job), Some(0));
        assert_eq!(schedule.in_flight(), 0);
    }

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
