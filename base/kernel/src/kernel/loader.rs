//! Starting the first component, core: the only program the kernel loads.
//! Everything else is loaded by user space through Pd and Dataspace calls.

#![forbid(unsafe_code)]

use super::object::{Dataspace, Kernel, ObjRef, Object};
use super::space::{self, PageFlags};
use super::syscall::{new_pd, new_thread};
use crate::caps::{Cap, MAX_SLOTS};
use crate::frames::Pfn;
use arbor_abi::{MAX_PRIORITY, ObjectKind, Rights, slot};
use arbor_elf::Image;
use core::fmt;

/// Where core's stack ends (it grows down from here).
pub const STACK_TOP: u64 = 0x0000_7FFF_FFF0_0000;
/// Size of core's stack.
pub const STACK_SIZE: u64 = 64 * 1024;
/// Where core's IPC buffer lies; its address also arrives in `rdi`.
pub const IPC_BUFFER: u64 = 0x0000_7FFF_FFF1_0000;

/// Why core could not be started.
#[derive(Debug)]
pub enum LoadError {
    /// The `core` module is not a valid executable.
    Elf(arbor_elf::ElfError),
    /// The kernel refused an operation while building core's Pd.
    Kernel(&'static str, arbor_abi::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Elf(error) => write!(f, "core module: {error}"),
            LoadError::Kernel(what, error) => write!(f, "{what}: {error}"),
        }
    }
}

fn step<T>(what: &'static str, result: Result<T, arbor_abi::Error>) -> Result<T, LoadError> {
    result.map_err(|e| LoadError::Kernel(what, e))
}

impl Kernel {
    /// Builds core's Pd from its ELF image, gives it every free frame as quota
    /// and its initial capabilities, and makes its thread ready.
    pub fn load_core(&mut self, image: &[u8], archive: (u64, u64)) -> Result<ObjRef, LoadError> {
        let image = Image::parse(image).map_err(LoadError::Elf)?;
        let root = step("core page tables", space::new_root(self, None))?;
        let pcid = self.allocate_pcid();
        let pd_ref = step(
            "core Pd",
            self.new_object(Object::Pd(new_pd(None, root, pcid)), None),
        )?;
        // Every kernel-owned page for core is taken before core's quota is
        // counted, so the quotas add up to exactly the RAM there is.
        let console = step("console", self.new_object(Object::Console, None))?;
        let platform = step("platform", self.new_object(Object::Platform, None))?;
        let (archive_phys, archive_size) = archive;
        let boot_archive = Dataspace {
            base: Pfn::containing(archive_phys),
            pages: archive_size.div_ceil(4096),
            device: false,
            kernel_ram: true,
            first_mapping: 0,
        };
        let archive = step(
            "boot archive",
            self.new_object(Object::Dataspace(boot_archive), None),
        )?;
        let free = self.objects.frames.free_frames() as u64 * 4096;
        let Some(pd) = self.objects.pd_mut(pd_ref) else {
            return Err(LoadError::Kernel("core Pd", arbor_abi::Error::InvalidState));
        };
        pd.ram.limit = free;
        pd.caps.limit = MAX_SLOTS as u64;

        for segment in image.segments() {
            let pages = segment.page_span() / 4096;
            let r = step("core segment", self.new_dataspace(pd_ref, pages))?;
            let Some(dataspace) = self.objects.dataspace(r) else {
                continue;
            };
            let (first, base) = (dataspace.base, dataspace.base.address());
            // The segment's bytes fit inside by construction of `page_span`.
            let start = segment.offset_in_first_page() as usize;
            let contents = self.objects.data_mut(first, pages);
            let Some(destination) =
                contents.and_then(|c| c.get_mut(start..start + segment.data.len()))
            else {
                return Err(LoadError::Kernel(
                    "core segment",
                    arbor_abi::Error::InvalidState,
                ));
            };
            destination.copy_from_slice(segment.data);
            let flags = PageFlags {
                write: segment.permissions.write,
                execute: segment.permissions.execute,
                uncached: false,
            };
            step(
                "mapping core",
                self.map_pages(pd_ref, base, segment.page_start(), pages, flags),
            )?;
        }
        let writable = PageFlags {
            write: true,
            execute: false,
            uncached: false,
        };
        for (address, pages) in [(STACK_TOP - STACK_SIZE, STACK_SIZE / 4096), (IPC_BUFFER, 1)] {
            let r = step("core stack", self.new_dataspace(pd_ref, pages))?;
            let Some(base) = self.objects.dataspace(r).map(|d| d.base.address()) else {
                continue;
            };
            step(
                "mapping core stack",
                self.map_pages(pd_ref, base, address, pages, writable),
            )?;
        }

        let thread = step(
            "core thread",
            self.new_object(
                Object::Thread(new_thread(pd_ref, MAX_PRIORITY)),
                Some(pd_ref),
            ),
        )?;
        let read_only = Rights::READ.union(Rights::GRANT);
        for (slot, r, kind, rights) in [
            (slot::OWN_PD, pd_ref, ObjectKind::Pd, Rights::ALL),
            (slot::OWN_THREAD, thread, ObjectKind::Thread, Rights::ALL),
            (slot::CONSOLE, console, ObjectKind::Console, Rights::ALL),
            (
                slot::BOOT_ARCHIVE,
                archive,
                ObjectKind::Dataspace,
                read_only,
            ),
            (slot::PLATFORM, platform, ObjectKind::Platform, Rights::ALL),
        ] {
            let cap = Cap {
                rights: rights.0,
                ..Cap::new(r.pfn.0, r.generation, kind)
            };
            step("core capabilities", self.install_cap(pd_ref, slot, cap))?;
        }

        if let Some(core_thread) = self.objects.thread_mut(thread) {
            core_thread.context = crate::context::Frame::user(image.entry(), STACK_TOP, IPC_BUFFER);
            core_thread.ipc_buffer = IPC_BUFFER;
        }
        self.make_ready(thread);
        Ok(pd_ref)
    }
}
