//! System calls that map dataspaces into Pds and unmap them.

use super::{PAGE, page_aligned};
use crate::kernel::object::{Kernel, ObjRef};
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
        let page_flags = PageFlags {
            write: flags & map::WRITE != 0,
            execute: flags & map::EXECUTE != 0,
            uncached: dataspace.device,
        };
        let phys = dataspace.base.address() + offset;
        // This mapping's record, and one for cutting a stale record in two
        // if need be. The mapping Pd pays for them; nobody else's records
        // are touched, so no other Pd can keep this one from mapping.
        let needed = self.records_needed(pd_ref, vaddr, pages);
        self.reserve_records(pd_ref, needed)?;
        self.map_pages(pd_ref, phys, vaddr, pages, page_flags)?;
        // Nothing was mapped in the range (or `map_pages` would have
        // refused): whatever this Pd's records claim there is stale.
        self.forget_mappings(pd_ref, vaddr, pages);
        self.add_mapping_record(pd_ref, ds_ref, vaddr, pages);
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
                self.objects.epoch += 1;
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
        self.objects.epoch += 1;
        // Skips absent tables: bounded by the tables the Pd has, even for
        // the whole user half (2^35 pages).
        space::unmap_range(&mut self.objects, root, vaddr, pages);
        self.forget_mappings(pd_ref, vaddr, pages);
        if self.loaded_pd == Some(pd_ref) {
            self.switch_to(pd_ref);
        }
        Ok(())
    }
}
