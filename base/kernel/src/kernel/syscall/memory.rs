//! System calls that map dataspaces into Pds and unmap them.

use super::{PAGE, page_aligned};
use crate::kernel::object::{Kernel, MAX_MAPPINGS_PER_PD, Mapping, ObjRef};
use crate::kernel::space::{self, PageFlags};
use crate::ranges::user_range;
use arbor_abi::{Error, ObjectKind, Rights, map};

impl Kernel {
    /// `Map`: `size` bytes of a dataspace from `offset` at `vaddr` in a Pd.
    pub(crate) fn map(
        &mut self,
        pd_slot: u64,
        ds_slot: u64,
        offset: u64,
        vaddr: u64,
        size: u64,
        flags: u64,
    ) -> Result<(), Error> {
        let pd_ref = self.own_pd(pd_slot)?;
        if flags & !(map::READ | map::WRITE | map::EXECUTE) != 0 {
            return Err(Error::InvalidArgument);
        }
        // W^X: no page is ever both writable and executable, so no Pd can
        // write code and run it (or be made to).
        if flags & map::WRITE != 0 && flags & map::EXECUTE != 0 {
            return Err(Error::InvalidArgument);
        }
        let mut needed = Rights::READ;
        if flags & map::WRITE != 0 {
            needed = needed.union(Rights::WRITE);
        }
        if flags & map::EXECUTE != 0 {
            needed = needed.union(Rights::EXECUTE);
        }
        let ds_ref = self.own_object(ds_slot, ObjectKind::Dataspace, needed)?;
        let dataspace = self
            .objects
            .dataspace(ds_ref)
            .ok_or(Error::WrongObjectKind)?;
        let pages = user_range(vaddr, size)?;
        if !page_aligned(offset)
            || pages > dataspace.pages
            || offset / PAGE > dataspace.pages - pages
        {
            return Err(Error::InvalidArgument);
        }
        let full = |kernel: &Kernel| {
            kernel.objects.dataspace(ds_ref).is_none_or(|dataspace| {
                let records_of = dataspace
                    .mappings
                    .iter()
                    .flatten()
                    .filter(|m| m.pd == pd_ref)
                    .count();
                records_of >= MAX_MAPPINGS_PER_PD || dataspace.mappings.iter().all(Option::is_some)
            })
        };
        if full(self) {
            self.compact_mappings(ds_ref);
        }
        if full(self) {
            return Err(Error::InvalidState);
        }
        let dataspace = self
            .objects
            .dataspace(ds_ref)
            .ok_or(Error::WrongObjectKind)?;
        let record = dataspace
            .mappings
            .iter()
            .position(Option::is_none)
            .ok_or(Error::InvalidState)?;
        let page_flags = PageFlags {
            write: flags & map::WRITE != 0,
            execute: flags & map::EXECUTE != 0,
            uncached: dataspace.device,
        };
        let phys = dataspace.base.address() + offset;
        self.map_pages(pd_ref, phys, vaddr, pages, page_flags)?;
        if let Some(dataspace) = self.objects.dataspace_mut(ds_ref) {
            dataspace.mappings[record] = Some(Mapping {
                pd: pd_ref,
                vaddr,
                pages,
            });
        }
        Ok(())
    }

    /// Maps `pages` pages from `phys` at `vaddr` in `pd_ref`, all or nothing.
    pub fn map_pages(
        &mut self,
        pd_ref: ObjRef,
        phys: u64,
        vaddr: u64,
        pages: u64,
        flags: PageFlags,
    ) -> Result<(), Error> {
        let root = self
            .objects
            .pd(pd_ref)
            .ok_or(Error::InvalidCapability)?
            .root_table;
        if flags.write && flags.execute {
            return Err(Error::InvalidArgument);
        }
        for page in 0..pages {
            let mapped = space::map_page(
                self,
                pd_ref,
                root,
                vaddr + page * PAGE,
                phys + page * PAGE,
                flags,
            );
            if let Err(error) = mapped {
                for undo in 0..page {
                    space::unmap_page(&mut self.objects, root, vaddr + undo * PAGE);
                }
                if let Some(pd) = self.objects.pd_mut(pd_ref) {
                    pd.tlb_stale = true;
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// `Unmap`: removes whatever is mapped in `[vaddr, vaddr + size)` of a Pd.
    pub(crate) fn unmap(&mut self, pd_slot: u64, vaddr: u64, size: u64) -> Result<(), Error> {
        let pd_ref = self.own_pd(pd_slot)?;
        let pages = user_range(vaddr, size)?;
        let pd = self
            .objects
            .pd_mut(pd_ref)
            .ok_or(Error::InvalidCapability)?;
        pd.tlb_stale = true;
        let root = pd.root_table;
        // Skips absent tables: bounded by the tables the Pd has, even for
        // the whole user half (2^35 pages).
        space::unmap_range(&mut self.objects, root, vaddr, pages);
        if self.loaded_pd == Some(pd_ref) {
            self.switch_to(pd_ref);
        }
        Ok(())
    }

    /// Drops mapping records whose Pd no longer exists or no longer maps the
    /// dataspace there. Bounded by the page tables that exist in each
    /// record's range (see `space::for_each_leaf`).
    fn compact_mappings(&mut self, ds_ref: ObjRef) {
        let Some(dataspace) = self.objects.dataspace(ds_ref) else {
            return;
        };
        let base = dataspace.base.address();
        let end = base + dataspace.pages * PAGE;
        let records = dataspace.mappings;
        for (index, record) in records.iter().enumerate() {
            let Some(mapping) = record else { continue };
            let root = self.objects.pd(mapping.pd).map(|pd| pd.root_table);
            let still_mapped = root.is_some_and(|root| {
                space::maps_any_of(
                    &mut self.objects,
                    root,
                    mapping.vaddr,
                    mapping.pages,
                    base..end,
                )
            });
            if !still_mapped && let Some(dataspace) = self.objects.dataspace_mut(ds_ref) {
                dataspace.mappings[index] = None;
            }
        }
    }
}
