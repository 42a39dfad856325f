//! Mapping records: where each dataspace is mapped, so that destroying it
//! can revoke every mapping.
//!
//! A record belongs to the Pd the mapping is in, lives in a record page
//! that Pd pays for (at most [`MAX_RECORD_PAGES`] of them), and is linked
//! into a list that starts at its dataspace (doubly linked, through
//! [`RecordId`]s). A dataspace therefore keeps no table of its own that
//! other Pds could fill: however many Pds of one tree map a shared
//! dataspace, another Pd's mapping is paid from, and limited by, its own
//! quota only.
//!
//! The records of one Pd never overlap: a new mapping, and every `Unmap`,
//! first cuts its range out of the Pd's records (a mapping can only be made
//! where nothing is mapped, so what is cut is stale). Revoking a dataspace
//! thus walks each Pd's page tables at most once per range it actually
//! maps, and the work stays bounded by the page tables the Pds pay for.

#![forbid(unsafe_code)]

use super::object::{Kernel, ObjRef};
use super::space;
use crate::frames::{FrameUse, Pfn};
use arbor_abi::Error;

const PAGE: u64 = 4096;

/// Record pages one Pd may have.
pub const MAX_RECORD_PAGES: usize = 16;
/// Records in one record page.
pub const RECORDS_PER_PAGE: usize = 4096 / core::mem::size_of::<MappingRecord>();
/// Records one Pd may have: distinct mapped ranges at once.
pub const MAX_RECORDS: usize = MAX_RECORD_PAGES * RECORDS_PER_PAGE;

/// Names a record: its page's frame number (high bits) and its index.
/// 0 names none (frame 0 is never a record page).
pub type RecordId = u64;

/// The record at `index` of record page `page`.
pub fn record_id(page: Pfn, index: usize) -> RecordId {
    (page.0 << 12) | index as u64
}

/// The page and index `id` names, if it can name a record.
pub fn record_position(id: RecordId) -> Option<(Pfn, usize)> {
    let index = (id & 0xFFF) as usize;
    (id >> 12 != 0 && index < RECORDS_PER_PAGE).then_some((Pfn(id >> 12), index))
}

/// One mapping of (part of) a dataspace in the Pd whose page holds it.
/// Plain words, so that any bytes are a valid record; all zero is free.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MappingRecord {
    /// The dataspace's frame (0 = free record).
    pub dataspace_pfn: u64,
    /// The dataspace's generation.
    pub dataspace_generation: u64,
    /// First virtual address.
    pub vaddr: u64,
    /// Pages from there.
    pub pages: u64,
    /// The dataspace's next record (0 = last).
    pub next: RecordId,
    /// The dataspace's previous record (0 = this is the first).
    pub prev: RecordId,
}

impl MappingRecord {
    /// Whether the record is unused.
    pub fn is_free(&self) -> bool {
        self.dataspace_pfn == 0
    }

    /// The dataspace it records a mapping of.
    pub fn dataspace(&self) -> ObjRef {
        ObjRef {
            pfn: Pfn(self.dataspace_pfn),
            generation: self.dataspace_generation,
        }
    }

    /// One past its last virtual address.
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.pages.saturating_mul(PAGE))
    }
}

/// What cutting `[cut_start, cut_end)` out of `[start, end)` leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The ranges do not overlap.
    Untouched,
    /// Nothing is left.
    Gone,
    /// One piece is left, `[start, end)`.
    Shrunk(u64, u64),
    /// Two pieces are left, below and above the cut.
    Split((u64, u64), (u64, u64)),
}

/// Cuts `[cut_start, cut_end)` out of `[start, end)`.
pub fn cut(start: u64, end: u64, cut_start: u64, cut_end: u64) -> Cut {
    if cut_end <= start || end <= cut_start || cut_start >= cut_end {
        return Cut::Untouched;
    }
    match (start < cut_start, cut_end < end) {
        (false, false) => Cut::Gone,
        (true, false) => Cut::Shrunk(start, cut_start),
        (false, true) => Cut::Shrunk(cut_end, end),
        (true, true) => Cut::Split((start, cut_start), (cut_end, end)),
    }
}

impl Kernel {
    /// The records of Pd `pd`, in use or not.
    fn record_ids(&self, pd: ObjRef) -> impl Iterator<Item = RecordId> + use<> {
        let pages = self
            .objects
            .pd(pd)
            .map_or([0; MAX_RECORD_PAGES], |p| p.record_pages);
        pages
            .into_iter()
            .filter(|&page| page != 0)
            .flat_map(|page| (0..RECORDS_PER_PAGE).map(move |index| record_id(Pfn(page), index)))
    }

    /// A free record of `pd`, if it has one.
    fn free_record(&self, pd: ObjRef) -> Option<RecordId> {
        self.record_ids(pd)
            .find(|&id| self.objects.record(id).is_some_and(MappingRecord::is_free))
    }

    /// Makes sure `pd` has `count` free records, adding record pages paid
    /// by `pd`. Refused when its quota or its [`MAX_RECORD_PAGES`] run out.
    pub fn reserve_records(&mut self, pd: ObjRef, count: usize) -> Result<(), Error> {
        loop {
            let free = self
                .record_ids(pd)
                .filter(|&id| self.objects.record(id).is_some_and(MappingRecord::is_free))
                .take(count)
                .count();
            if free >= count {
                return Ok(());
            }
            let pages = self
                .objects
                .pd(pd)
                .ok_or(Error::InvalidCapability)?
                .record_pages;
            let slot = pages
                .iter()
                .position(|&p| p == 0)
                .ok_or(Error::InvalidState)?;
            let page = self.allocate_frame(FrameUse::MapRecords, Some(pd))?;
            if let Some(pd) = self.objects.pd_mut(pd) {
                pd.record_pages[slot] = page.0;
            }
        }
    }

    /// Records a new mapping of `[start, start + pages * 4096)` in `pd`
    /// needs: its own, and one more if an existing record must be cut in two.
    pub fn records_needed(&self, pd: ObjRef, start: u64, pages: u64) -> usize {
        let end = start.saturating_add(pages.saturating_mul(PAGE));
        let splits = self.record_ids(pd).any(|id| {
            self.objects.record(id).is_some_and(|r| {
                !r.is_free() && matches!(cut(r.vaddr, r.end(), start, end), Cut::Split(..))
            })
        });
        1 + usize::from(splits)
    }

    /// Records that `pd` maps `pages` pages of dataspace `dataspace` at
    /// `vaddr` (a free record must have been reserved).
    pub fn add_mapping_record(&mut self, pd: ObjRef, dataspace: ObjRef, vaddr: u64, pages: u64) {
        let Some(id) = self.free_record(pd) else {
            return;
        };
        let Some(first) = self.objects.dataspace(dataspace).map(|d| d.first_mapping) else {
            return;
        };
        if let Some(record) = self.objects.record_mut(id) {
            *record = MappingRecord {
                dataspace_pfn: dataspace.pfn.0,
                dataspace_generation: dataspace.generation,
                vaddr,
                pages,
                next: first,
                prev: 0,
            };
        }
        if let Some(next) = self.objects.record_mut(first) {
            next.prev = id;
        }
        if let Some(dataspace) = self.objects.dataspace_mut(dataspace) {
            dataspace.first_mapping = id;
        }
    }

    /// Takes record `id` out of its dataspace's list and frees it.
    fn unlink_record(&mut self, id: RecordId) {
        let Some(record) = self.objects.record(id).copied() else {
            return;
        };
        if record.is_free() {
            return;
        }
        match self.objects.record_mut(record.prev) {
            Some(prev) => prev.next = record.next,
            None => {
                if let Some(dataspace) = self.objects.dataspace_mut(record.dataspace())
                    && dataspace.first_mapping == id
                {
                    dataspace.first_mapping = record.next;
                }
            }
        }
        if let Some(next) = self.objects.record_mut(record.next) {
            next.prev = record.prev;
        }
        if let Some(record) = self.objects.record_mut(id) {
            *record = MappingRecord::default();
        }
    }

    /// Cuts `[start, start + pages * 4096)` out of `pd`'s records: that
    /// range was just unmapped, or is about to be mapped anew. A record
    /// cut in two needs a second record; when `pd` has none free, the
    /// record stays whole (it then claims more than is mapped, which costs
    /// a longer walk on revocation but never a missed page).
    pub fn forget_mappings(&mut self, pd: ObjRef, start: u64, pages: u64) {
        let end = start.saturating_add(pages.saturating_mul(PAGE));
        let pages: heapless::Vec<u64, MAX_RECORD_PAGES> = self
            .objects
            .pd(pd)
            .map(|p| p.record_pages.iter().copied().filter(|&p| p != 0).collect())
            .unwrap_or_default();
        for page in pages {
            for index in 0..RECORDS_PER_PAGE {
                let id = record_id(Pfn(page), index);
                let Some(record) = self.objects.record(id).copied() else {
                    continue;
                };
                if record.is_free() {
                    continue;
                }
                match cut(record.vaddr, record.end(), start, end) {
                    Cut::Untouched => {}
                    Cut::Gone => self.unlink_record(id),
                    Cut::Shrunk(from, to) => {
                        if let Some(record) = self.objects.record_mut(id) {
                            record.vaddr = from;
                            record.pages = (to - from) / PAGE;
                        }
                    }
                    Cut::Split(below, above) => {
                        let Some(new) = self.free_record(pd) else {
                            continue;
                        };
                        if let Some(record) = self.objects.record_mut(id) {
                            record.vaddr = below.0;
                            record.pages = (below.1 - below.0) / PAGE;
                            record.next = new;
                        }
                        if let Some(after) = self.objects.record_mut(record.next) {
                            after.prev = new;
                        }
                        if let Some(new_record) = self.objects.record_mut(new) {
                            *new_record = MappingRecord {
                                vaddr: above.0,
                                pages: (above.1 - above.0) / PAGE,
                                next: record.next,
                                prev: id,
                                ..record
                            };
                        }
                    }
                }
            }
        }
    }

    /// Unmaps a dataspace from every Pd that maps it and frees its records.
    /// Each record's walk is bounded by the page tables in its range (see
    /// `space::for_each_leaf`), and one Pd's records never overlap.
    pub fn revoke_mappings(&mut self, dataspace: ObjRef) {
        let Some(ds) = self.objects.dataspace(dataspace) else {
            return;
        };
        let frames = ds.base.address()..ds.base.address() + ds.pages * PAGE;
        let mut cursor = ds.first_mapping;
        while let Some(record) = self.objects.record(cursor).copied() {
            if record.is_free() || record.dataspace() != dataspace {
                break;
            }
            let owner = record_position(cursor)
                .and_then(|(page, _)| self.objects.frames.info(page))
                .and_then(|info| self.objects.live(Pfn(info.owner)));
            if let Some(pd) = owner.and_then(|pd| self.objects.pd_mut(pd)) {
                pd.tlb_stale = true;
                let root = pd.root_table;
                self.objects.epoch += 1;
                space::unmap_frames_in(
                    &mut self.objects,
                    root,
                    record.vaddr,
                    record.pages,
                    frames.clone(),
                );
            }
            if let Some(freed) = self.objects.record_mut(cursor) {
                *freed = MappingRecord::default();
            }
            cursor = record.next;
        }
        if let Some(ds) = self.objects.dataspace_mut(dataspace) {
            ds.first_mapping = 0;
        }
    }

    /// Unlinks every record of a Pd that is being destroyed from its
    /// dataspace's list (its record pages are freed with its other frames).
    pub fn drop_mapping_records(&mut self, pd: ObjRef) {
        for id in self.record_ids(pd) {
            self.unlink_record(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_fills_whole_words_of_a_page() {
        assert_eq!(core::mem::size_of::<MappingRecord>(), 48);
        assert_eq!(RECORDS_PER_PAGE, 85);
        assert_eq!(MAX_RECORDS, 1360);
    }

    #[test]
    fn record_ids_round_trip_and_zero_names_none() {
        let id = record_id(Pfn(0x1234), 84);
        assert_eq!(record_position(id), Some((Pfn(0x1234), 84)));
        assert_eq!(record_position(0), None);
        assert_eq!(record_position(record_id(Pfn(7), 85)), None);
        assert_eq!(record_position(5), None, "frame 0 holds no records");
    }

    #[test]
    fn cuts_leave_what_lies_outside_the_cut() {
        assert_eq!(cut(10, 20, 20, 30), Cut::Untouched);
        assert_eq!(cut(10, 20, 0, 10), Cut::Untouched);
        assert_eq!(cut(10, 20, 15, 15), Cut::Untouched, "an empty cut");
        assert_eq!(cut(10, 20, 10, 20), Cut::Gone);
        assert_eq!(cut(10, 20, 0, 30), Cut::Gone);
        assert_eq!(cut(10, 20, 15, 30), Cut::Shrunk(10, 15));
        assert_eq!(cut(10, 20, 0, 15), Cut::Shrunk(15, 20));
        assert_eq!(cut(10, 20, 12, 15), Cut::Split((10, 12), (15, 20)));
    }

    #[test]
    fn random_cuts_keep_exactly_the_uncut_points() {
        let mut seed = 0x5EED_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % 40
        };
        for _ in 0..10_000 {
            let (a, b, c, d) = (next(), next(), next(), next());
            let (start, end) = (a.min(b), a.max(b));
            let (cut_start, cut_end) = (c.min(d), c.max(d));
            let kept = |x: u64| match cut(start, end, cut_start, cut_end) {
                Cut::Untouched => (start..end).contains(&x),
                Cut::Gone => false,
                Cut::Shrunk(s, e) => (s..e).contains(&x),
                Cut::Split((s1, e1), (s2, e2)) => (s1..e1).contains(&x) || (s2..e2).contains(&x),
            };
            for x in 0..40 {
                let expected = (start..end).contains(&x) && !(cut_start..cut_end).contains(&x);
                assert_eq!(
                    kept(x),
                    expected,
                    "{start}..{end} minus {cut_start}..{cut_end} at {x}"
                );
            }
        }
    }
}
