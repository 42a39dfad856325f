//! The driver's `Hal`: `arbor-virtio`'s, except that small shared buffers
//! get 64-byte bounce slots. virtio-input shares each of its 32 eight-byte
//! event buffers separately, and `ArborHal` bounces every shared buffer
//! through at least a whole page of its 32-page pool; the slots come from
//! one DMA page the driver took from its Platform session.

use arbor::sync::TryLock;
use arbor_virtio::ArborHal;
use arbor_virtio::virtio_drivers::{BufferDirection, Hal, PhysAddr};
use core::ptr::NonNull;

/// Bytes per bounce slot; one page holds 64 of them.
const SLOT: usize = 64;
const SLOTS: usize = 64;

/// The slots' page: physical address, virtual address, used slots (bits).
static SLOTS_PAGE: TryLock<Option<(u64, u64, u64)>> = TryLock::new(None);

/// Hands the driver's bounce page (4096 bytes of DMA memory) to the Hal.
pub fn set_bounce_page(phys: u64, virt: u64) {
    if let Some(mut page) = SLOTS_PAGE.try_lock() {
        *page = Some((phys, virt, 0));
    }
}

/// `ArborHal` with small bounce slots.
pub struct InputHal;

// SAFETY: everything but small `share`s is `ArborHal`'s (see its
// contract); a small shared buffer is copied into a free 64-byte slot of a
// DMA page whose physical address the kernel reported, mapped for the
// driver's lifetime, and copied back and freed in `unshare`.
unsafe impl Hal for InputHal {
    fn dma_alloc(pages: usize, direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        ArborHal::dma_alloc(pages, direction)
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { ArborHal::dma_dealloc(paddr, vaddr, pages) }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { ArborHal::mmio_phys_to_virt(paddr, size) }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let length = buffer.len();
        if length <= SLOT {
            let slot = SLOTS_PAGE.try_lock().and_then(|mut page| {
                let (phys, virt, used) = (*page)?;
                let free = (0..SLOTS).find(|&slot| used & (1 << slot) == 0)?;
                *page = Some((phys, virt, used | (1 << free)));
                Some((phys + (free * SLOT) as u64, virt + (free * SLOT) as u64))
            });
            if let Some((phys, virt)) = slot {
                if direction != BufferDirection::DeviceToDriver {
                    // SAFETY: the caller's buffer is valid for `length`
                    // bytes; the slot holds SLOT >= length bytes.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            buffer.as_ptr() as *const u8,
                            virt as *mut u8,
                            length,
                        )
                    };
                }
                return phys as PhysAddr;
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { ArborHal::share(buffer, direction) }
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let length = buffer.len();
        let slot = SLOTS_PAGE.try_lock().and_then(|mut page| {
            let (phys, virt, used) = (*page)?;
            let offset = paddr.checked_sub(phys)? as usize;
            if offset >= SLOT * SLOTS || length > SLOT {
                return None;
            }
            let index = offset / SLOT;
            *page = Some((phys, virt, used & !(1 << index)));
            Some(virt + offset as u64)
        });
        let Some(virt) = slot else {
            // SAFETY: not one of the slots, so one of ArborHal's bounces.
            unsafe { ArborHal::unshare(paddr, buffer, direction) };
            return;
        };
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: the slot `share` used still holds the device's bytes
            // (it was freed just now, and this component is single-threaded);
            // the caller's buffer is valid for writes of `length` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    virt as *const u8,
                    buffer.as_ptr() as *mut u8,
                    length,
                )
            };
        }
    }
}
