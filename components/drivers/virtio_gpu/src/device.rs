//! The device: virtio-gpu's 2D control queue driven directly.
//!
//! Why not virtio-drivers' `VirtIOGpu`: in 0.13 its only way to show
//! pixels is `flush`, which transfers and flushes the *whole* resource on
//! every call (its rectangle-taking `transfer_to_host_2d` and
//! `resource_flush` are private), and it insists on allocating the
//! resource's backing itself. A Framebuffer refresh names a dirty
//! rectangle, and the device's commands take one, so this module sends the
//! six 2D commands it needs ([`virtio_gpu::protocol`], host-tested) over the
//! crate's public transport and `VirtQueue`, with the scanout buffer the
//! driver already took from its Platform session as the backing. Everything
//! else (PCI transport, feature negotiation, queue memory, bounce buffers)
//! stays the crate's.

use arbor_virtio::ArborHal;
use arbor_virtio::virtio_drivers::device::common::Feature;
use arbor_virtio::virtio_drivers::queue::VirtQueue;
use arbor_virtio::virtio_drivers::transport::Transport;
use arbor_virtio::virtio_drivers::transport::pci::PciTransport;
use core::fmt;
use virtio_gpu::protocol::{self, Command, DeviceRect, ResponseError};

/// The control queue's index (`controlq`).
const CONTROL_QUEUE: u16 = 0;
/// Descriptors in the control queue: one request in flight, two buffers.
const QUEUE_SIZE: usize = 4;
/// The one resource: the scanout's backing.
const RESOURCE: u32 = 1;
/// The one scanout.
const SCANOUT: u32 = 0;

/// Why the device could not do something.
#[derive(Debug)]
pub enum GpuError {
    /// The transport or queue failed (virtio-drivers' error).
    Queue(arbor_virtio::virtio_drivers::Error),
    /// The device answered a command with something else than success.
    Answer(&'static str, ResponseError),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::Queue(error) => write!(f, "virtqueue: {error}"),
            GpuError::Answer(command, error) => write!(f, "{command}: {error}"),
        }
    }
}

/// A virtio-gpu device showing one 2D resource on its first scanout.
pub struct Gpu {
    transport: PciTransport,
    control: VirtQueue<ArborHal, QUEUE_SIZE>,
    /// Where answers land (the largest is the display info).
    answer: [u8; protocol::DISPLAY_INFO_BYTES],
    /// Bytes per row of the backing.
    stride: u32,
}

impl Gpu {
    /// Negotiates features (only VERSION_1: no event index, no indirect
    /// descriptors, no 3D) and sets up the control queue.
    pub fn new(mut transport: PciTransport) -> Result<Self, GpuError> {
        transport.begin_init(Feature::VERSION_1);
        let control =
            VirtQueue::new(&mut transport, CONTROL_QUEUE, false, false).map_err(GpuError::Queue)?;
        transport.finish_init();
        Ok(Gpu {
            transport,
            control,
            answer: [0; protocol::DISPLAY_INFO_BYTES],
            stride: 0,
        })
    }

    /// Sends `command`, waits for the device to answer, checks the answer
    /// is `expected`; returns the answer's bytes.
    fn request(
        &mut self,
        name: &'static str,
        command: Command,
        expected: u32,
    ) -> Result<&[u8], GpuError> {
        let answer_bytes = if expected == protocol::OK_DISPLAY_INFO {
            protocol::DISPLAY_INFO_BYTES
        } else {
            24
        };
        let used = self
            .control
            .add_notify_wait_pop(
                &[command.bytes()],
                &mut [&mut self.answer[..answer_bytes]],
                &mut self.transport,
            )
            .map_err(GpuError::Queue)?;
        let answer = &self.answer[..(used as usize).min(answer_bytes)];
        protocol::check(answer, expected).map_err(|error| GpuError::Answer(name, error))?;
        Ok(answer)
    }

    /// The first scanout's native size.
    pub fn display_size(&mut self) -> Result<(u32, u32), GpuError> {
        let answer = self.request(
            "GET_DISPLAY_INFO",
            protocol::get_display_info(),
            protocol::OK_DISPLAY_INFO,
        )?;
        protocol::first_scanout_size(answer)
            .map_err(|error| GpuError::Answer("display info", error))
    }

    /// Creates the resource (`screen`'s size), backs it with `length`
    /// bytes at physical `backing` and shows it on the scanout.
    pub fn set_up_scanout(
        &mut self,
        screen: DeviceRect,
        backing: u64,
        length: u32,
    ) -> Result<(), GpuError> {
        self.request(
            "RESOURCE_CREATE_2D",
            protocol::resource_create_2d(RESOURCE, screen.width, screen.height),
            protocol::OK_NODATA,
        )?;
        self.request(
            "RESOURCE_ATTACH_BACKING",
            protocol::resource_attach_backing(RESOURCE, backing, length),
            protocol::OK_NODATA,
        )?;
        self.request(
            "SET_SCANOUT",
            protocol::set_scanout(&screen, SCANOUT, RESOURCE),
            protocol::OK_NODATA,
        )?;
        self.stride = screen.width.saturating_mul(4);
        Ok(())
    }

    /// Copies `rect` of the backing to the host's resource and shows it:
    /// the device touches only the rectangle. Both commands go on the
    /// queue before one notification (one trip through QEMU's main loop
    /// instead of two); the device answers each.
    pub fn flush(&mut self, rect: &DeviceRect) -> Result<(), GpuError> {
        let transfer = protocol::transfer_to_host_2d(rect, self.stride, RESOURCE);
        let flush = protocol::resource_flush(rect, RESOURCE);
        let mut transfer_answer = [0u8; 24];
        let mut flush_answer = [0u8; 24];
        let transfer_in = [transfer.bytes()];
        let flush_in = [flush.bytes()];
        let mut transfer_out = [&mut transfer_answer[..]];
        let mut flush_out = [&mut flush_answer[..]];
        // SAFETY: the device never sees these buffers: `ArborHal::share`
        // gives it bounce buffers from the DMA pool, copied back by
        // `pop_used`. They stay untouched on this frame until both tokens
        // were popped; the one way out before that is a device that
        // answered out of order (`WrongToken`), which leaves the queue
        // stuck but reaches no freed memory — the device wrote only into
        // its bounce buffers.
        let transfer_token = unsafe { self.control.add(&transfer_in, &mut transfer_out) }
            .map_err(GpuError::Queue)?;
        // SAFETY: as above.
        let flush_token = unsafe { self.control.add(&flush_in, &mut flush_out) };
        if self.control.should_notify() {
            self.transport.notify(CONTROL_QUEUE);
        }
        let Ok(flush_token) = flush_token else {
            // Not queued (cannot happen with two free chains): finish the
            // transfer, then report.
            self.wait_used();
            // SAFETY: the buffers `add` took for this token.
            unsafe {
                self.control
                    .pop_used(transfer_token, &transfer_in, &mut transfer_out)
            }
            .map_err(GpuError::Queue)?;
            return flush_token.map(drop).map_err(GpuError::Queue);
        };
        // QEMU answers the control queue in order; a device that does not
        // is told so by `pop_used` (a wrong token is an error, not a hang).
        self.wait_used();
        // SAFETY: the buffers `add` took for this token.
        unsafe {
            self.control
                .pop_used(transfer_token, &transfer_in, &mut transfer_out)
        }
        .map_err(GpuError::Queue)?;
        self.wait_used();
        // SAFETY: the buffers `add` took for this token.
        unsafe {
            self.control
                .pop_used(flush_token, &flush_in, &mut flush_out)
        }
        .map_err(GpuError::Queue)?;
        protocol::check(&transfer_answer, protocol::OK_NODATA)
            .map_err(|error| GpuError::Answer("TRANSFER_TO_HOST_2D", error))?;
        protocol::check(&flush_answer, protocol::OK_NODATA)
            .map_err(|error| GpuError::Answer("RESOURCE_FLUSH", error))
    }

    /// Spins until the device has used a request.
    fn wait_used(&self) {
        while !self.control.can_pop() {
            core::hint::spin_loop();
        }
    }

    /// Reads (and so deasserts) the device's interrupt status.
    pub fn ack_interrupt(&mut self) {
        let _ = self.transport.ack_interrupt();
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // The queue's memory is freed with `control`: make the device
        // forget it first.
        self.transport.queue_unset(CONTROL_QUEUE);
    }
}
