//! The driver's `Hal`: `arbor-virtio`'s for everything but the scanout
//! buffer. The pool behind `ArborHal` holds at most 64 pages, a screen
//! needs hundreds, so the one allocation larger than the pool (the
//! framebuffer resource's backing) is served from a DMA buffer the driver
//! took from its Platform session beforehand; any other large request
//! panics, as `ArborHal` does when its pool is out.

use arbor::sync::TryLock;
use arbor_virtio::virtio_drivers::{BufferDirection, Hal, PhysAddr};
use arbor_virtio::{ArborHal, POOL_PAGES};
use core::ptr::NonNull;

const PAGE: u64 = 4096;

/// The scanout buffer: physical address, virtual address, bytes, in use.
static SCANOUT: TryLock<Option<(u64, u64, u64, bool)>> = TryLock::new(None);

/// Hands the driver's scanout DMA buffer to the Hal.
pub fn set_scanout_buffer(phys: u64, virt: u64, bytes: u64) {
    if let Some(mut scanout) = SCANOUT.try_lock() {
        *scanout = Some((phys, virt, bytes, false));
    }
}

/// `ArborHal` plus the scanout buffer.
pub struct GpuHal;

// SAFETY: small allocations are `ArborHal`'s (see its contract); the large
// one is the scanout buffer, physically contiguous (one DMA dataspace whose
// physical address the kernel reported), mapped for the driver's lifetime,
// zeroed here and handed out at most once at a time.
unsafe impl Hal for GpuHal {
    fn dma_alloc(pages: usize, direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        if pages <= POOL_PAGES as usize {
            return ArborHal::dma_alloc(pages, direction);
        }
        let bytes = pages as u64 * PAGE;
        let found = SCANOUT.try_lock().and_then(|mut scanout| match *scanout {
            Some((phys, virt, size, false)) if bytes <= size => {
                *scanout = Some((phys, virt, size, true));
                Some((phys, virt))
            }
            _ => None,
        });
        let Some((phys, virt)) = found else {
            panic!("virtio_gpu: no DMA buffer of {pages} pages");
        };
        // SAFETY: the buffer is mapped writable for at least `bytes` bytes
        // and nobody else uses it.
        unsafe { core::ptr::write_bytes(virt as *mut u8, 0, bytes as usize) };
        (
            phys as PhysAddr,
            NonNull::new(virt as *mut u8).unwrap_or(NonNull::dangling()),
        )
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        if let Some(mut scanout) = SCANOUT.try_lock()
            && let Some((phys, virt, size, true)) = *scanout
            && phys == paddr
        {
            *scanout = Some((phys, virt, size, false));
            return 0;
        }
        // SAFETY: not the scanout buffer, so one of ArborHal's.
        unsafe { ArborHal::dma_dealloc(paddr, vaddr, pages) }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { ArborHal::mmio_phys_to_virt(paddr, size) }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { ArborHal::share(buffer, direction) }
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { ArborHal::unshare(paddr, buffer, direction) }
    }
}
