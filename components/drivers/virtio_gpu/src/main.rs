//! virtio_gpu: the display driver for QEMU's `virtio-gpu-pci`, a
//! Framebuffer session (to the compositor) over the Platform session's one
//! device.
//!
//! It brings the device up with virtio-drivers' PCI transport and queue
//! through `arbor-virtio`, sets the scanout to the configured mode (a 2D
//! resource backed by one physically contiguous DMA buffer from the
//! Platform session) and serves one Framebuffer session at a time. The
//! client draws into a RAM dataspace of its own (paid from its session
//! donation), never into DMA memory; a refresh copies the clipped dirty
//! rectangle into the scanout buffer, then has the device transfer and
//! flush that rectangle only (`device`: the 2D commands sent directly,
//! because the crate's `VirtIOGpu` can only flush the whole screen).
//!
//! Like `ram_fb`, its config may name rectangles to watch: after every
//! refresh it logs each watched rectangle of the scanout buffer whose
//! checksum changed (`watch NAME (x, y, w x h): sum 0x...`), so a scenario
//! can compare the guest's picture with the host's rendering and with the
//! screenshot QEMU takes.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod device;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use arbor::{sys, vspace};
use arbor_sessions::client;
use arbor_sessions::framebuffer::{
    self, FramebufferReply, FramebufferRequest, Mode, PixelFormat, Screen, ServerConfig, Watches,
};
use arbor_sessions::platform::{BUS_MASTER, Platform, SESSION_RAM};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{SessionError, env, log};
use arbor_virtio::virtio_drivers::transport::pci::PciTransport;
use arbor_virtio::{ArborHal, POOL_PAGES, VirtioDevice};
use device::Gpu;
use virtio_gpu::protocol::DeviceRect;

arbor::entry!(run);

const PAGE: u64 = 4096;
/// PCI command bits: memory decoding and bus mastering.
const MEMORY: u16 = 0x2;

fn run(_argument: u64) {
    match start() {
        Ok(error) => log!("stopped: {error}"),
        Err(error) => log!("failed: {error}"),
    }
    client::exit(1);
}

fn start() -> Result<SessionError, String> {
    let config = env::config::<ServerConfig>().map_err(|e| alloc::format!("bad config: {e}"))?;
    let mode = Mode::new(config.width, config.height, PixelFormat::Xrgb8888)
        .map_err(|e| alloc::format!("bad mode {}x{}: {e}", config.width, config.height))?;
    let scanout_bytes = mode.buffer_bytes().next_multiple_of(PAGE);
    let platform: &'static Platform = Box::leak(Box::new(
        Platform::open(
            "",
            SESSION_RAM + (u64::from(POOL_PAGES) + 1) * PAGE + scanout_bytes + PAGE,
        )
        .map_err(|e| alloc::format!("Platform session: {e}"))?,
    ));
    let (device, mut root) =
        VirtioDevice::open(platform, 0).map_err(|e| alloc::format!("opening the device: {e}"))?;
    platform
        .set_command(0, MEMORY | BUS_MASTER)
        .map_err(|e| alloc::format!("command register: {e}"))?;
    // The scanout's backing: one contiguous DMA buffer.
    let (dma, phys, size) = platform
        .dma(scanout_bytes)
        .map_err(|e| alloc::format!("scanout DMA buffer: {e}"))?;
    let scanout = vspace::map_pixels(dma, size / 4).map_err(|e| alloc::format!("mapping: {e}"))?;
    let transport = PciTransport::new::<ArborHal, _>(&mut root, device.function)
        .map_err(|e| alloc::format!("virtio transport: {e}"))?;
    let mut gpu = Gpu::new(transport).map_err(|e| alloc::format!("virtio-gpu: {e}"))?;
    let (native_width, native_height) = gpu
        .display_size()
        .map_err(|e| alloc::format!("display info: {e}"))?;
    let whole = DeviceRect::whole(&mode);
    let backing_bytes = u32::try_from(mode.buffer_bytes())
        .map_err(|_| alloc::format!("a {}x{} scanout is too large", mode.width, mode.height))?;
    gpu.set_up_scanout(whole, phys, backing_bytes)
        .map_err(|e| alloc::format!("scanout {}x{}: {e}", mode.width, mode.height))?;
    let pixels = (mode.pixels() as usize).min(scanout.len());
    let scanout: &'static mut [u32] = &mut scanout[..pixels];
    scanout.fill(0);
    gpu.flush(&whole)
        .map_err(|e| alloc::format!("first flush: {e}"))?;
    acknowledge(&mut gpu, &device);
    log!(
        "virtio-gpu on line {}: device mode {native_width}x{native_height}, scanout {}x{} B8G8R8A8, {} watched rectangles",
        device.line,
        mode.width,
        mode.height,
        config.watch.len()
    );
    let server = Server::new().map_err(|e| alloc::format!("no server endpoint: {e}"))?;
    let watches = Watches::new(config.watch);
    Ok(server.serve(
        &[framebuffer::SERVICE],
        GpuDisplay {
            mode,
            gpu,
            device,
            scanout,
            open: false,
            watches,
            flushes: 0,
            timings_whole: Vec::new(),
            timings_partial: Vec::new(),
        },
    ))
}

/// Reads (and so deasserts) the device's interrupt, then lets its line
/// fire again; the driver's calls complete by polling, not by interrupt.
fn acknowledge(gpu: &mut Gpu, device: &VirtioDevice) {
    gpu.ack_interrupt();
    let _ = device.acknowledge();
}

/// The driver: the device, its scanout buffer, at most one session.
struct GpuDisplay {
    mode: Mode,
    gpu: Gpu,
    device: VirtioDevice,
    scanout: &'static mut [u32],
    open: bool,
    watches: Watches,
    flushes: u64,
    /// TSC cycles of the first [`TIMED_FLUSHES`] whole-screen refreshes.
    timings_whole: Vec<u64>,
    /// TSC cycles of the first [`TIMED_FLUSHES`] partial refreshes.
    timings_partial: Vec<u64>,
}

/// Refreshes of each kind timed before their median is logged once.
const TIMED_FLUSHES: usize = 8;

/// The time stamp counter.
fn tsc() -> u64 {
    // SAFETY: rdtsc reads a counter and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl Service for GpuDisplay {
    type Session = Screen;
    type Reply = FramebufferReply;

    fn create(
        &mut self,
        _service: &str,
        label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Screen, SessionError> {
        if self.open {
            log!("refused a second Framebuffer session (\"{label}\"): the display has one client");
            return Err(SessionError::AlreadyClaimed);
        }
        let screen = Screen::create(&self.mode, &quota)?;
        self.open = true;
        Ok(screen)
    }

    fn opened(&mut self, session: &Entry<Screen>) {
        log!("session for \"{}\"", session.label);
    }

    fn close(&mut self, session: Entry<Screen>) {
        let screen = session.state;
        let refreshes = screen.refreshes;
        screen.release();
        self.open = false;
        log!(
            "session closed after {} refreshes ({} flushes)",
            refreshes,
            self.flushes
        );
    }

    fn handle(&mut self, session: &mut Entry<Screen>, call: &mut Call<'_>) -> FramebufferReply {
        let request = match framebuffer::decode_request(call.incoming.bytes()) {
            Ok(request) => request,
            Err(error) => return FramebufferReply::Error(error),
        };
        let screen = &mut session.state;
        match request {
            FramebufferRequest::Mode => FramebufferReply::Mode(self.mode),
            FramebufferRequest::Dataspace => {
                call.reply_cap(screen.dataspace);
                FramebufferReply::Dataspace {
                    size: self.mode.buffer_bytes(),
                }
            }
            FramebufferRequest::Refresh { rect } => {
                screen.refreshes += 1;
                let Some(dirty) = DeviceRect::within(&rect, &self.mode) else {
                    return FramebufferReply::Done;
                };
                let started = tsc();
                copy_rect(screen.pixels, self.scanout, &self.mode, &dirty);
                if let Err(error) = self.gpu.flush(&dirty) {
                    log!("flush failed: {error}");
                    return FramebufferReply::Error(SessionError::BadRequest);
                }
                acknowledge(&mut self.gpu, &self.device);
                self.flushes += 1;
                let whole = dirty == DeviceRect::whole(&self.mode);
                self.time_flush(whole, tsc().wrapping_sub(started));
                self.watches.check(self.scanout, &self.mode);
                FramebufferReply::Done
            }
            FramebufferRequest::Checksum { rect } => {
                framebuffer::answer_checksum(self.scanout, &self.mode, &rect)
            }
        }
    }

    fn error(error: SessionError) -> FramebufferReply {
        FramebufferReply::Error(error)
    }
}

/// Copies `rect` (inside `mode`) from the client's buffer to the scanout
/// buffer; both are `mode`-sized.
fn copy_rect(from: &[u32], to: &mut [u32], mode: &Mode, rect: &DeviceRect) {
    let width = mode.width as usize;
    let (x, w) = (rect.x as usize, rect.width as usize);
    for y in rect.y as usize..rect.y as usize + rect.height as usize {
        let start = y * width + x;
        if let (Some(source), Some(target)) =
            (from.get(start..start + w), to.get_mut(start..start + w))
        {
            target.copy_from_slice(source);
        }
    }
}

impl GpuDisplay {
    /// Records one refresh's duration (copy of the dirty rectangle, then
    /// transfer and flush) as a whole-screen or a partial one; logs each
    /// kind's median once, as a benchmark figure.
    fn time_flush(&mut self, whole: bool, cycles: u64) {
        let (samples, name) = if whole {
            (&mut self.timings_whole, "gui_flush_whole_ms")
        } else {
            (&mut self.timings_partial, "gui_flush_partial_ms")
        };
        if samples.len() >= TIMED_FLUSHES {
            return;
        }
        samples.push(cycles);
        if samples.len() == TIMED_FLUSHES {
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let per_ms = sys::info(arbor::abi::info::TSC_PER_MS, 0).map_or(1, |r| r.0.max(1));
            let median_us = sorted[TIMED_FLUSHES / 2] * 1000 / per_ms;
            log!(
                "BENCH {{\"bench\":\"{name}\",\"value\":{}.{:03},\"unit\":\"ms\",\"screen\":\"{}x{}\",\"samples\":{TIMED_FLUSHES}}}",
                median_us / 1000,
                median_us % 1000,
                self.mode.width,
                self.mode.height,
            );
        }
    }
}
