//! virtio-drivers (0.13) on Arbor: what a virtio driver needs from its
//! Platform session, in one place.
//!
//! - [`ArborHal`], the crate's `Hal`: DMA memory comes from one pool the
//!   session allocated (physically contiguous, paid from the session's
//!   quota), and `share` copies through bounce buffers from that pool,
//!   because a caller's buffer may cross pages that are not contiguous.
//!   BARs are mapped once, by [`VirtioDevice::open`].
//! - [`SessionCam`], a `ConfigurationAccess` over the session: the driver
//!   sees its one device at its real address; BAR sizing is answered from
//!   the sizes the platform driver reported (nothing a client writes ever
//!   reaches a BAR), and a command write becomes `SetCommand`.
//! - [`VirtioDevice::wait_for_interrupt`]: blocks on the notification the
//!   device's interrupt signals (no busy polling while idle).
//!
//! The Hal is a set of functions without `self`, so the pool and the
//! mapped BARs live in one static; a driver opens one device.
#![no_std]

extern crate alloc;

pub mod pool;

use alloc::vec::Vec;
use arbor::abi::{CapSlot, ObjectKind, Rights, map, slot};
use arbor::sync::TryLock;
use arbor::{slots, sys, vspace};
use arbor_sessions::SessionError;
use arbor_sessions::platform::{COMMAND_WRITABLE, DeviceInfo, Platform};
use core::ptr::NonNull;
use pool::Pages;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

pub use virtio_drivers;

/// Pages in the DMA pool (at most 64): queues and bounce buffers.
pub const POOL_PAGES: u32 = 32;
const PAGE: u64 = 4096;

/// The pool and the mapped BARs.
struct State {
    pool_phys: u64,
    pool_virt: u64,
    pages: Pages,
    /// (physical address, size, virtual address) of each mapped BAR.
    bars: Vec<(u64, u64, u64)>,
}

static STATE: TryLock<Option<State>> = TryLock::new(None);

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.try_lock().and_then(|mut guard| guard.as_mut().map(f))
}

/// The `Hal` for virtio-drivers over the Platform session's memory.
pub struct ArborHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned, physically contiguous
// pages of the pool (one dataspace, whose physical address the kernel
// reported) that stay mapped until `dma_dealloc`; `share` returns the
// physical address of a bounce buffer that holds the caller's bytes and is
// copied back in `unshare`.
unsafe impl Hal for ArborHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let pages = u32::try_from(pages).unwrap_or(u32::MAX);
        let found = with_state(|state| {
            state.pages.allocate(pages).map(|first| {
                let offset = u64::from(first) * PAGE;
                (state.pool_phys + offset, state.pool_virt + offset)
            })
        })
        .flatten();
        let Some((phys, virt)) = found else {
            panic!("virtio: the DMA pool has no {pages} free contiguous pages");
        };
        // SAFETY: the pages lie inside the pool's writable mapping and were free.
        unsafe { core::ptr::write_bytes(virt as *mut u8, 0, pages as usize * PAGE as usize) };
        // `virt` is inside a mapping, hence not null.
        (
            phys as PhysAddr,
            NonNull::new(virt as *mut u8).unwrap_or(NonNull::dangling()),
        )
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        with_state(|state| {
            let first = paddr.saturating_sub(state.pool_phys) / PAGE;
            state.pages.free(first as u32, pages as u32);
        });
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let found = with_state(|state| {
            state.bars.iter().find_map(|&(phys, bar_size, virt)| {
                (paddr >= phys && paddr.saturating_add(size as u64) <= phys + bar_size)
                    .then_some(virt + (paddr - phys))
            })
        })
        .flatten();
        match found.and_then(|virt| NonNull::new(virt as *mut u8)) {
            Some(pointer) => pointer,
            None => panic!("virtio: {paddr:#x}+{size:#x} is in no BAR of this device"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let length = buffer.len();
        let pages = (length as u64).div_ceil(PAGE).max(1) as usize;
        let (phys, virt) = Self::dma_alloc(pages, direction);
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `length` bytes (the
            // Hal contract); the bounce buffer holds at least that many.
            unsafe {
                core::ptr::copy_nonoverlapping(buffer.as_ptr() as *const u8, virt.as_ptr(), length)
            };
        }
        phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let length = buffer.len();
        let pages = (length as u64).div_ceil(PAGE).max(1) as usize;
        let virt = with_state(|state| state.pool_virt + (paddr - state.pool_phys));
        if let Some(virt) = virt
            && direction != BufferDirection::DriverToDevice
        {
            // SAFETY: the bounce buffer `share` made for this buffer is still
            // allocated and mapped; the caller's buffer is valid for writes.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    virt as *const u8,
                    buffer.as_ptr() as *mut u8,
                    length,
                )
            };
        }
        // SAFETY: these pages came from `share`'s `dma_alloc`.
        unsafe { Self::dma_dealloc(paddr, NonNull::dangling(), pages) };
    }
}

/// Configuration access to one device through the Platform session.
pub struct SessionCam {
    platform: &'static Platform,
    device: u8,
    function: DeviceFunction,
    bar_sizes: [u64; 6],
    /// BARs (by bit) whose sizing the driver is in the middle of.
    sizing: u8,
}

impl ConfigurationAccess for SessionCam {
    fn read_word(&self, function: DeviceFunction, offset: u8) -> u32 {
        if function != self.function {
            return u32::MAX; // no such device on this driver's bus
        }
        let offset = u16::from(offset & 0xFC);
        let real = self
            .platform
            .config_read(self.device, offset)
            .unwrap_or(u32::MAX);
        match bar_index(offset) {
            Some(bar) if self.sizing & (1 << bar) != 0 => self.size_mask(bar, real),
            _ => real,
        }
    }

    fn write_word(&mut self, function: DeviceFunction, offset: u8, data: u32) {
        if function != self.function {
            return;
        }
        let offset = u16::from(offset & 0xFC);
        if offset == 4 {
            let command = data as u16 & COMMAND_WRITABLE;
            let _ = self.platform.set_command(self.device, command);
        } else if let Some(bar) = bar_index(offset) {
            // Sizing writes all ones, then the old value back: emulated.
            if data == u32::MAX {
                self.sizing |= 1 << bar;
            } else {
                self.sizing &= !(1 << bar);
            }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        Self {
            platform: self.platform,
            device: self.device,
            function: self.function,
            bar_sizes: self.bar_sizes,
            sizing: self.sizing,
        }
    }
}

fn bar_index(offset: u16) -> Option<usize> {
    (0x10..0x28)
        .contains(&offset)
        .then(|| usize::from((offset - 0x10) / 4))
}

impl SessionCam {
    /// What BAR register `bar` reads after all ones were written: the size
    /// mask for a BAR the platform driver reported, or for the upper half
    /// of a 64-bit one; 0 (nothing decoded) otherwise.
    fn size_mask(&self, bar: usize, real: u32) -> u32 {
        let size = self.bar_sizes[bar];
        if size != 0 {
            return (!(size - 1)) as u32 & !0xF | (real & 0xF);
        }
        match bar.checked_sub(1).map(|lower| self.bar_sizes[lower]) {
            Some(lower) if lower != 0 => ((!(lower - 1)) >> 32) as u32,
            _ => 0,
        }
    }
}

/// One virtio device of the session, with its BARs mapped and its
/// interrupt bound.
pub struct VirtioDevice {
    /// What the platform driver said about it.
    pub info: DeviceInfo,
    /// Its place on the (virtual) bus, for `PciTransport::new`.
    pub function: DeviceFunction,
    /// The notification its interrupt signals.
    pub notification: CapSlot,
    /// The Irq capability to acknowledge with.
    pub irq: CapSlot,
    /// Its IOAPIC input.
    pub line: u8,
}

impl VirtioDevice {
    /// Sets up device `device` of `platform`: a DMA pool of [`POOL_PAGES`],
    /// every memory BAR mapped, its interrupt bound to a new notification;
    /// returns it and the PCI root virtio-drivers enumerates through.
    pub fn open(
        platform: &'static Platform,
        device: u8,
    ) -> Result<(Self, PciRoot<SessionCam>), SessionError> {
        let info = platform.device(device)?;
        let (pool, pool_phys, pool_size) = platform.dma(u64::from(POOL_PAGES) * PAGE)?;
        let pool_virt = map_rw(pool, pool_size)?;
        let mut bars = Vec::new();
        for (bar, &size) in info.bar_sizes.iter().enumerate() {
            if size == 0 {
                continue;
            }
            let (cap, phys, size) = platform.bar(device, bar as u8)?;
            let virt = map_rw(cap, size.next_multiple_of(PAGE))?;
            bars.push((phys, size, virt));
        }
        let pages = Pages::new((pool_size / PAGE) as u32);
        match STATE.try_lock() {
            Some(mut state) => {
                *state = Some(State {
                    pool_phys,
                    pool_virt,
                    pages,
                    bars,
                })
            }
            None => return Err(SessionError::BadRequest),
        }
        let notification = slots::allocate().map_err(SessionError::from)?;
        sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0)
            .map_err(SessionError::from)?;
        let signal = slots::allocate().map_err(SessionError::from)?;
        sys::derive(notification, signal, Rights::WRITE.union(Rights::GRANT), 1)
            .map_err(SessionError::from)?;
        let irq = platform.irq(device, signal);
        slots::release(signal);
        let (irq, line) = irq?;
        let function = DeviceFunction {
            bus: info.address.bus,
            device: info.address.device,
            function: info.address.function,
        };
        let cam = SessionCam {
            platform,
            device,
            function,
            bar_sizes: info.bar_sizes,
            sizing: 0,
        };
        Ok((
            Self {
                info,
                function,
                notification,
                irq,
                line,
            },
            PciRoot::new(cam),
        ))
    }

    /// Blocks until the device's line fires (the caller then reads its
    /// interrupt status and calls [`VirtioDevice::acknowledge`]).
    pub fn wait_for_interrupt(&self) -> Result<(), SessionError> {
        sys::wait(self.notification)
            .map(drop)
            .map_err(SessionError::from)
    }

    /// Lets the line fire again, after the device's interrupt status was
    /// read (which deasserts a level-triggered INTx).
    pub fn acknowledge(&self) -> Result<(), SessionError> {
        sys::ack_irq(self.irq).map_err(SessionError::from)
    }
}

/// Maps `size` bytes of `dataspace` read-write in a fresh range.
fn map_rw(dataspace: CapSlot, size: u64) -> Result<u64, SessionError> {
    let range = vspace::allocate(size).map_err(SessionError::from)?;
    sys::map(
        slot::OWN_PD,
        dataspace,
        0,
        range.start,
        size,
        map::READ | map::WRITE,
    )
    .map_err(|e| {
        vspace::free(range);
        SessionError::from(e)
    })?;
    Ok(range.start)
}
