//! The calling thread's IPC buffer: payloads and capability slots travel
//! through it. The kernel writes it only during a system call, so Rust code
//! touches it only inside [`with_buffer`], never across a call.

use crate::abi::{CapSlot, IpcBuffer, MAX_TRANSFER_CAPS, PAYLOAD_MAX};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static BUFFER: AtomicU64 = AtomicU64::new(0);
static BUSY: AtomicBool = AtomicBool::new(false);

/// Records where this thread's IPC buffer is; the runtime does this at start.
#[cfg(target_os = "none")]
pub(crate) fn set_buffer_address(address: u64) {
    BUFFER.store(address, Ordering::Relaxed);
}

/// The IPC buffer's address (0 before the runtime started).
pub fn buffer_address() -> u64 {
    BUFFER.load(Ordering::Relaxed)
}

/// Runs `f` on the IPC buffer. `None` if there is no buffer or `f` is
/// already running further up the stack (a panic while printing).
pub fn with_buffer<R>(f: impl FnOnce(&mut IpcBuffer) -> R) -> Option<R> {
    let address = buffer_address();
    if address == 0 || !address.is_multiple_of(crate::abi::PAGE_SIZE as u64) {
        return None;
    }
    if BUSY.swap(true, Ordering::Acquire) {
        return None;
    }
    // SAFETY: the address is the thread's IPC buffer, page aligned and
    // mapped writable for the thread's whole life by its creator (the kernel
    // or `loader`). Components run one thread, and `BUSY` keeps a second
    // `&mut` from being made further up the stack; no system call happens
    // while `f` runs because the wrappers in `crate::sys` take no buffer
    // reference.
    let buffer = unsafe { &mut *(address as *mut IpcBuffer) };
    let result = f(buffer);
    BUSY.store(false, Ordering::Release);
    Some(result)
}

/// Copies `bytes` (at most [`PAYLOAD_MAX`]) into the payload; returns how
/// many were copied.
pub fn write_payload(bytes: &[u8]) -> usize {
    with_buffer(|buffer| {
        let len = bytes.len().min(PAYLOAD_MAX);
        buffer.payload[..len].copy_from_slice(&bytes[..len]);
        len
    })
    .unwrap_or(0)
}

/// Copies up to `out.len()` received payload bytes (the message said `len`)
/// into `out`; returns how many were copied.
pub fn read_payload(len: usize, out: &mut [u8]) -> usize {
    with_buffer(|buffer| {
        let len = len.min(PAYLOAD_MAX).min(out.len());
        out[..len].copy_from_slice(&buffer.payload[..len]);
        len
    })
    .unwrap_or(0)
}

/// Names the capabilities the next send transfers (at most
/// [`MAX_TRANSFER_CAPS`] are used).
pub fn set_send_caps(caps: &[CapSlot]) {
    with_buffer(|buffer| {
        for (index, slot) in buffer.send_caps.iter_mut().enumerate() {
            *slot = caps.get(index).copied().unwrap_or(CapSlot::NULL);
        }
    });
}

/// Offers empty slots where received capabilities may land.
pub fn set_receive_slots(slots: &[CapSlot]) {
    with_buffer(|buffer| {
        for (index, slot) in buffer.receive_slots.iter_mut().enumerate() {
            *slot = slots.get(index).copied().unwrap_or(CapSlot::NULL);
        }
    });
}

/// The start argument a creator left in the first payload word.
#[cfg(target_os = "none")]
pub(crate) fn start_argument() -> u64 {
    with_buffer(|buffer| {
        let mut word = [0; 8];
        word.copy_from_slice(&buffer.payload[..8]);
        u64::from_le_bytes(word)
    })
    .unwrap_or(0)
}

const _: () = assert!(MAX_TRANSFER_CAPS >= 1 && PAYLOAD_MAX >= 8);
