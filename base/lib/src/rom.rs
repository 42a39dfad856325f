//! The boot archive (core only): the read-only dataspace in
//! [`crate::abi::slot::BOOT_ARCHIVE`], mapped once into the own address
//! space and parsed with `arbor-archive`.

use crate::abi::{Error, info, map, slot};
use crate::{sys, vspace};
use arbor_archive::Archive;
use core::sync::atomic::{AtomicU64, Ordering};

static MAPPED_AT: AtomicU64 = AtomicU64::new(0);
static MAPPED_LEN: AtomicU64 = AtomicU64::new(0);

/// The boot archive's bytes, mapped read-only on first use and kept mapped.
pub fn boot_archive_bytes() -> Result<&'static [u8], Error> {
    let mut address = MAPPED_AT.load(Ordering::Relaxed);
    let mut len = MAPPED_LEN.load(Ordering::Relaxed);
    if address == 0 {
        let (size, _) = sys::info(info::DATASPACE_SIZE, u64::from(slot::BOOT_ARCHIVE.0))?;
        let range = vspace::allocate(size)?;
        if let Err(error) = sys::map(
            slot::OWN_PD,
            slot::BOOT_ARCHIVE,
            0,
            range.start,
            range.end - range.start,
            map::READ,
        ) {
            vspace::free(range);
            return Err(error);
        }
        address = range.start;
        len = size;
        MAPPED_AT.store(address, Ordering::Relaxed);
        MAPPED_LEN.store(len, Ordering::Relaxed);
    }
    // SAFETY: `[address, address + len)` is mapped readable to the boot
    // archive dataspace (at least `len` bytes, as the kernel reported) and is
    // never unmapped or written, so a shared `'static` slice over it is sound.
    Ok(unsafe { core::slice::from_raw_parts(address as *const u8, len as usize) })
}

/// The parsed boot archive.
pub fn boot_archive() -> Result<Archive<'static>, Error> {
    Archive::parse(boot_archive_bytes()?).map_err(|_| Error::InvalidArgument)
}

/// The module called `name` in the boot archive.
pub fn module(name: &str) -> Result<&'static [u8], Error> {
    boot_archive()?
        .find(name)
        .map(|module| module.data)
        .ok_or(Error::InvalidArgument)
}
