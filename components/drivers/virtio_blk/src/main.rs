//! virtio_blk: a virtio block device (virtio-drivers' `VirtIOBlk` over
//! `arbor-virtio`) served as a Block session.
//!
//! Every client request is checked against the device by the Block
//! service (`arbor_sessions::block_service`) before it reaches the driver;
//! the service hands over a batch of requests at once (several a client
//! submitted together, none sharing a block one of them writes). Each is
//! cut into virtio requests of at most 16 KiB ([`virtio_blk::plan`]), up
//! to four of them, from any of the batch's requests, on the queue at once
//! and completed in whatever order the device finishes them; while they
//! run the driver blocks on its interrupt's notification (no polling while
//! idle or waiting). The disk is read-only unless the scenario's
//! config says `writable: true` (and the device itself allows writes).
//!
//! It never trusts the device either: a completion for a token it did not
//! submit, or a failed request, is an I/O error for that request.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use arbor_sessions::block::BlockError;
use arbor_sessions::block_service::{BlockBackend, BlockService, Job, WAKE_BIT};
use arbor_sessions::platform::{BUS_MASTER, Platform, SESSION_RAM};
use arbor_sessions::server::Server;
use arbor_sessions::{client, env, log};
use arbor_virtio::virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use arbor_virtio::virtio_drivers::transport::pci::PciTransport;
use arbor_virtio::virtio_drivers::transport::{DeviceStatus, Transport};
use arbor_virtio::{ArborHal, POOL_PAGES, VirtioDevice};
use virtio_blk::config::Config;
use virtio_blk::plan::{Chunk, IN_FLIGHT, SECTOR, Schedule, Slot};

arbor::entry!(run);

/// The session's quota: bookkeeping, BARs, the interrupt and the DMA pool.
const PLATFORM_RAM: u64 = SESSION_RAM + (POOL_PAGES as u64 + 1) * 4096;

/// The device as a [`BlockBackend`].
struct VirtioDisk {
    blk: VirtIOBlk<ArborHal, PciTransport>,
    device: VirtioDevice,
    /// Request headers and status bytes of the requests in flight; they
    /// stay in place until completed (the queue holds their addresses).
    headers: [BlkReq; IN_FLIGHT],
    statuses: [BlkResp; IN_FLIGHT],
    /// Set when the device completed a token that was not in flight: its
    /// queue can no longer be trusted, so every later request fails.
    broken: bool,
    /// Block requests served, and after how many to fault (config).
    served: u64,
    crash_after: Option<u64>,
    /// A second handle on the device's registers, to mark it FAILED before
    /// the injected fault (so the restarted driver knows not to fault again).
    marker: Option<PciTransport>,
}

impl VirtioDisk {
    /// Runs `jobs` (checked Block requests that share no block one of them
    /// writes): their chunks go on the queue, up to [`IN_FLIGHT`] at once
    /// from any of the jobs, and are completed in whatever order the
    /// device finishes them ([`Schedule`] matches each token to its slot,
    /// job and chunk). On a submit error nothing more is submitted, but
    /// what is on the queue is still completed (it borrows the jobs'
    /// buffers) before returning.
    fn run(&mut self, jobs: &mut [Job]) {
        for job in jobs.iter_mut() {
            job.result = if self.broken {
                Err(BlockError::Io)
            } else {
                Ok(())
            };
        }
        if self.broken {
            return;
        }
        let mut schedule = Schedule::new(jobs.iter().map(|job| (job.first, job.buffer.len())));
        let crash = self
            .crash_after
            .is_some_and(|after| self.served + jobs.len() as u64 > after);
        self.served += jobs.len() as u64;
        loop {
            while let Some((slot, job, chunk)) = schedule.next() {
                match self.submit(slot, chunk, &mut jobs[job]) {
                    Ok(token) => schedule.submitted(slot, token),
                    Err(error) => {
                        jobs[job].result = Err(error);
                        for skipped in schedule.skip_rest() {
                            jobs[skipped].result = Err(error);
                        }
                    }
                }
            }
            if crash {
                if let Some(marker) = &mut self.marker {
                    let status = marker.get_status();
                    marker.set_status(status | DeviceStatus::FAILED);
                }
                log!(
                    "fault injected: faulting with {} request(s) in flight",
                    schedule.in_flight()
                );
                // SAFETY: none; this is the deliberate fault the restart
                // test is about (address 8, the dangling pointer, is never
                // mapped).
                unsafe { core::ptr::write_volatile(core::ptr::dangling_mut::<u64>(), 0) };
            }
            if schedule.in_flight() == 0 {
                return;
            }
            let mut completed = false;
            while let Some(token) = self.blk.peek_used() {
                let Some(done) = schedule.complete(token) else {
                    log!("device completed token {token}, which is not in flight; giving up on it");
                    // Nothing can be completed past it: the queue is lost
                    // (the bounce buffers keep what the device writes away
                    // from the jobs' memory).
                    self.broken = true;
                    for job in jobs.iter_mut() {
                        job.result = Err(BlockError::Io);
                    }
                    return;
                };
                if let Err(error) = self.complete(&done, &mut jobs[done.job]) {
                    jobs[done.job].result = Err(error);
                }
                completed = true;
            }
            if !completed && let Err(error) = self.wait() {
                for job in jobs.iter_mut() {
                    job.result = Err(error);
                }
                return;
            }
        }
    }

    fn submit(&mut self, slot: usize, chunk: Chunk, job: &mut Job) -> Result<u16, BlockError> {
        let sector = usize::try_from(chunk.sector).map_err(|_| BlockError::OutOfRange)?;
        let header = &mut self.headers[slot];
        let status = &mut self.statuses[slot];
        let range = job
            .buffer
            .get_mut(chunk.start..chunk.end)
            .ok_or(BlockError::Io)?;
        // SAFETY: the header, status and buffer range stay in place and
        // untouched until `complete` passes them again for this token:
        // the slot stays taken until then, `run` completes every request
        // it submitted before its borrow of the jobs ends, and a job's
        // buffer is not resized while it runs.
        let token = unsafe {
            if job.write {
                self.blk.write_blocks_nb(sector, header, range, status)
            } else {
                self.blk.read_blocks_nb(sector, header, range, status)
            }
        };
        token.map_err(|error| {
            log!("submitting sector {}: {error}", chunk.sector);
            BlockError::Io
        })
    }

    fn complete(&mut self, done: &Slot, job: &mut Job) -> Result<(), BlockError> {
        let header = &self.headers[done.slot];
        let status = &mut self.statuses[done.slot];
        let range = job
            .buffer
            .get_mut(done.chunk.start..done.chunk.end)
            .ok_or(BlockError::Io)?;
        // SAFETY: the same header, buffer range and status `submit` passed
        // for this token.
        let result = unsafe {
            if job.write {
                self.blk
                    .complete_write_blocks(done.token, header, range, status)
            } else {
                self.blk
                    .complete_read_blocks(done.token, header, range, status)
            }
        };
        result.map_err(|error| {
            log!("sector {}: {error}", done.chunk.sector);
            BlockError::Io
        })
    }

    /// Blocks until the device's line fires, then reads its interrupt
    /// status (deasserting INTx) and lets the line fire again.
    fn wait(&mut self) -> Result<(), BlockError> {
        self.device.wait_for_interrupt().map_err(|error| {
            log!("waiting for the interrupt: {error}");
            BlockError::Io
        })?;
        self.blk.ack_interrupt();
        self.device.acknowledge().map_err(|error| {
            log!("acknowledging the interrupt: {error}");
            BlockError::Io
        })
    }
}

impl BlockBackend for VirtioDisk {
    fn block_size(&self) -> u32 {
        SECTOR as u32
    }

    fn block_count(&self) -> u64 {
        self.blk.capacity()
    }

    fn read(&mut self, first: u64, out: &mut [u8]) -> Result<(), BlockError> {
        let mut job = [Job {
            first,
            count: (out.len() / SECTOR) as u64,
            write: false,
            buffer: Vec::from(&*out),
            result: Ok(()),
        }];
        self.run(&mut job);
        let [job] = job;
        job.result?;
        out.copy_from_slice(&job.buffer);
        Ok(())
    }

    fn write(&mut self, first: u64, data: &[u8]) -> Result<(), BlockError> {
        let mut job = [Job {
            first,
            count: (data.len() / SECTOR) as u64,
            write: true,
            buffer: Vec::from(data),
            result: Ok(()),
        }];
        self.run(&mut job);
        let [job] = job;
        job.result
    }

    fn run_jobs(&mut self, jobs: &mut [Job]) {
        self.run(jobs);
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        // A flush carries no data and returns at once under QEMU; the
        // crate's blocking form is used.
        self.blk.flush().map_err(|error| {
            log!("flush: {error}");
            BlockError::Io
        })
    }
}

fn run(_argument: u64) {
    match serve() {
        Ok(never) => match never {},
        Err(error) => {
            log!("failed: {error}");
            client::exit(1);
        }
    }
}

fn serve() -> Result<core::convert::Infallible, String> {
    let config: Config = env::config().map_err(|e| format!("config: {e}"))?;
    let platform: &'static Platform = Box::leak(Box::new(
        Platform::open_after_restart("", PLATFORM_RAM)
            .map_err(|error| format!("Platform session: {error}"))?,
    ));
    if platform.device_count().map_err(|e| format!("{e}"))? == 0 {
        return Err(String::from("the platform driver gave it no device"));
    }
    let (device, mut root) = VirtioDevice::open(platform, 0).map_err(|e| format!("{e}"))?;
    // Memory decoding and bus mastering on (the firmware may leave it off).
    platform
        .set_command(0, 0x2 | BUS_MASTER)
        .map_err(|e| format!("{e}"))?;
    let transport = PciTransport::new::<ArborHal, _>(&mut root, device.function)
        .map_err(|e| format!("virtio transport: {e}"))?;
    // The fault injected by config happens once: an earlier incarnation
    // that faulted on purpose left FAILED in the device's status (a device
    // reset, below, clears it).
    let status = transport.get_status();
    let mut crash_after = config.crash_after_requests;
    if status.contains(DeviceStatus::FAILED) {
        log!(
            "found status {:#x} (FAILED) left by the incarnation that faulted; resetting the device",
            status.bits()
        );
        crash_after = None;
    }
    let marker = match crash_after {
        Some(_) => Some(
            PciTransport::new::<ArborHal, _>(&mut root, device.function)
                .map_err(|e| format!("virtio transport: {e}"))?,
        ),
        None => None,
    };
    let device_type = transport.device_type();
    if device_type != arbor_virtio::virtio_drivers::transport::DeviceType::Block {
        return Err(format!("device 0 is a {device_type:?} device, not Block"));
    }
    let blk = VirtIOBlk::<ArborHal, _>::new(transport).map_err(|e| format!("virtio-blk: {e}"))?;
    let writable = config.writable && !blk.readonly();
    log!(
        "{} on line {}: {} sectors of 512 bytes, {}",
        device.info.address,
        device.line,
        blk.capacity(),
        if writable { "writable" } else { "read-only" }
    );
    let disk = VirtioDisk {
        blk,
        device,
        headers: Default::default(),
        statuses: Default::default(),
        broken: false,
        served: 0,
        crash_after,
        marker,
    };
    let server = Server::new().map_err(|e| format!("server endpoint: {e}"))?;
    let wake = server
        .signal_cap(WAKE_BIT)
        .map_err(|e| format!("wake-up capability: {e}"))?;
    let error = server.serve(&["Block"], BlockService::new(disk, writable, wake));
    Err(format!("stopped: {error}"))
}
