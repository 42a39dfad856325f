//! The DMA pool's page allocator: first fit over a bitmap of at most 64
//! pages, runs of contiguous pages. Pure, so the host tests it.
#![forbid(unsafe_code)]

/// Which of up to 64 pages are in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pages {
    used: u64,
    count: u32,
}

impl Pages {
    /// A pool of `count` free pages (at most 64).
    pub fn new(count: u32) -> Self {
        Self {
            used: 0,
            count: count.min(64),
        }
    }

    /// The first run of `pages` free pages, now in use: its first page.
    pub fn allocate(&mut self, pages: u32) -> Option<u32> {
        if pages == 0 || pages > self.count {
            return None;
        }
        let run = if pages == 64 {
            u64::MAX
        } else {
            (1u64 << pages) - 1
        };
        (0..=self.count - pages)
            .find(|&first| self.used & (run << first) == 0)
            .inspect(|&first| self.used |= run << first)
    }

    /// Frees `pages` pages from `first` (what was never allocated stays free).
    pub fn free(&mut self, first: u32, pages: u32) {
        for page in first..first.saturating_add(pages).min(self.count) {
            self.used &= !(1 << page);
        }
    }

    /// Pages in use.
    pub fn in_use(&self) -> u32 {
        self.used.count_ones()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_contiguous_and_reused_after_free() {
        let mut pages = Pages::new(8);
        assert_eq!(pages.allocate(3), Some(0));
        assert_eq!(pages.allocate(2), Some(3));
        assert_eq!(pages.allocate(4), None);
        pages.free(0, 3);
        assert_eq!(pages.allocate(4), None);
        assert_eq!(pages.allocate(3), Some(0));
        assert_eq!(pages.allocate(3), Some(5));
        assert_eq!(pages.in_use(), 8);
        assert_eq!(pages.allocate(1), None);
        assert_eq!(Pages::new(64).allocate(64), Some(0));
        assert_eq!(Pages::new(4).allocate(0), None);
    }
}
