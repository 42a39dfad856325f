//! When fat_fs reads further ahead than asked: a long read that continues
//! the previous one (a file read sequentially) asks the Block session for
//! up to [`ReadAhead::limit`] blocks at once and keeps the answer; the next
//! read of those blocks is served from it, without a request to the device.
//! Each device request costs the same round trip through the block server
//! and the driver whatever its length, so a sequential reader pays it once
//! per `limit` blocks instead of once per read.
//!
//! This module is the bookkeeping only (which blocks are held, what to ask
//! for); the Block client holds the bytes. Blocks held go stale only if
//! fat_fs writes them: [`ReadAhead::written`] forgets them then.

/// Which blocks are held, and where the last long read ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadAhead {
    held: Option<(u64, u64)>,
    next: Option<u64>,
}

/// What to do for a read of `count` blocks from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// They are held, from byte `offset` of what is held; `last` if the read
    /// uses up what is held (it may be let go).
    Held { offset_blocks: u64, last: bool },
    /// Ask the device for `blocks` (≥ `count`) from `first`, and hold them
    /// if more than `count`.
    Fetch { blocks: u64 },
}

impl ReadAhead {
    /// What a read of `count` blocks from `first` takes: held blocks, or a
    /// fetch of up to `limit` blocks when the read continues the previous
    /// one (never past `block_count`). Records where the read ends.
    pub fn plan(&mut self, first: u64, count: u64, limit: u64, block_count: u64) -> Plan {
        let end = first.saturating_add(count);
        let sequential = self.next == Some(first);
        self.next = Some(end);
        if let Some((held_first, held_blocks)) = self.held {
            let held_end = held_first.saturating_add(held_blocks);
            if first >= held_first && end <= held_end {
                return Plan::Held {
                    offset_blocks: first - held_first,
                    last: end == held_end,
                };
            }
        }
        let blocks = if sequential {
            limit.min(block_count.saturating_sub(first)).max(count)
        } else {
            count
        };
        Plan::Fetch { blocks }
    }

    /// `blocks` from `first` are held now (`None`: nothing is).
    pub fn hold(&mut self, held: Option<(u64, u64)>) {
        self.held = held;
    }

    /// What is held: (first block, blocks).
    pub fn held(&self) -> Option<(u64, u64)> {
        self.held
    }

    /// Block `index` was written: true if it was held (what is held must
    /// be let go and is forgotten).
    pub fn written(&mut self, index: u64) -> bool {
        match self.held {
            Some((first, blocks)) if index >= first && index - first < blocks => {
                self.held = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_reads_fetch_ahead_and_are_served_from_what_is_held() {
        let mut ahead = ReadAhead::default();
        // The first read is not known to be sequential: only what it asks.
        assert_eq!(
            ahead.plan(100, 128, 256, 10_000),
            Plan::Fetch { blocks: 128 }
        );
        // The next continues it: fetch 256, hold them.
        assert_eq!(
            ahead.plan(228, 128, 256, 10_000),
            Plan::Fetch { blocks: 256 }
        );
        ahead.hold(Some((228, 256)));
        assert_eq!(
            ahead.plan(356, 128, 256, 10_000),
            Plan::Held {
                offset_blocks: 128,
                last: true
            }
        );
        ahead.hold(None);
        assert_eq!(
            ahead.plan(484, 128, 256, 10_000),
            Plan::Fetch { blocks: 256 }
        );
        ahead.hold(Some((484, 256)));
        // A read elsewhere is not served from what is held, nor read ahead.
        assert_eq!(ahead.plan(10, 8, 256, 10_000), Plan::Fetch { blocks: 8 });
        // Part of the held range, not to its end.
        assert_eq!(
            ahead.plan(500, 8, 256, 10_000),
            Plan::Held {
                offset_blocks: 16,
                last: false
            }
        );
        // A read that runs past what is held fetches.
        assert_eq!(
            ahead.plan(700, 128, 256, 10_000),
            Plan::Fetch { blocks: 128 }
        );
    }

    #[test]
    fn reading_ahead_stops_at_the_device_end() {
        let mut ahead = ReadAhead::default();
        let _ = ahead.plan(0, 128, 256, 300);
        assert_eq!(ahead.plan(128, 128, 256, 300), Plan::Fetch { blocks: 172 });
        assert_eq!(ahead.plan(300, 1, 256, 300), Plan::Fetch { blocks: 1 });
    }

    #[test]
    fn a_write_to_a_held_block_forgets_what_is_held() {
        let mut ahead = ReadAhead::default();
        ahead.hold(Some((100, 50)));
        assert!(!ahead.written(99));
        assert!(!ahead.written(150));
        assert_eq!(ahead.held(), Some((100, 50)));
        assert!(ahead.written(149));
        assert_eq!(ahead.held(), None);
        assert_eq!(ahead.plan(100, 10, 256, 1000), Plan::Fetch { blocks: 10 });
    }
}
