//! storage_bench: how fast a file comes through fat_fs and the VFS
//! compared with the same number of bytes straight from the Block session
//! under it, in one boot.
//!
//! It writes [`FILE`] ([`BYTES`] of a known pattern) through its
//! FileSystem session (fat_fs on virtio_blk), syncs, reads it back once
//! and checks every byte. Then, [`RUNS`] times each, in turns, it times
//! (with `rdtsc` and the kernel's idle count, `info::IDLE_TICKS`):
//! - `blk_read`: reading [`BYTES`] sequentially from its own Block
//!   session to virtio_blk, [`CHUNK`] bytes per request, into its buffer;
//! - `fs_read`: reading the whole file through the VFS, [`CHUNK`] bytes
//!   per request, into the same buffer.
//!
//! For each it prints, as `BENCH {...}` lines, the medians of the runs:
//! `*_busy_instructions_per_mib` (elapsed minus idle TSC ticks per MiB:
//! instructions under icount), `*_busy_mib_s` (MiB per second of busy
//! time) and `*_mib_s` (MiB per second of elapsed time, idle included,
//! which under icount follows the host's load). It ends the run through
//! QEMU's debug-exit port (success only if every request succeeded and
//! the file read back intact).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use arbor::abi::{info, qemu};
use arbor::packet_stream::Status;
use arbor_sessions::block::{INFO_SIZE, Info, op};
use arbor_sessions::bulk::{ClientStream, StreamArgs};
use arbor_sessions::services::{IoPortArgs, name};
use arbor_sessions::{client, log};
use arbor_vfs::{FileSystem, Read, Write};
use storage_bench::{busy_ticks, median, pattern_byte, per_mib, tenths_mib_per_second};

arbor::entry!(run);

/// The benchmark file.
const FILE: &str = "/storage bench.bin";
/// Bytes read per run, from the device and from the file.
const BYTES: usize = 8 << 20;
/// Bytes per request, on both paths.
const CHUNK: usize = 64 * 1024;
/// Timed runs of each.
const RUNS: usize = 5;

fn run(_argument: u64) {
    let ok = match bench() {
        Ok(()) => true,
        Err(error) => {
            log!("failed: {error}");
            false
        }
    };
    finish(ok);
}

/// Ends the QEMU run with the verdict through the debug-exit port (the
/// scenario grants it); exits the component if the port is not ours.
fn finish(ok: bool) {
    let opened = client::open_session(
        name::IO_PORT,
        "debug-exit",
        &IoPortArgs {
            first: qemu::DEBUG_EXIT_PORT,
            count: 4,
        },
        4096,
        None,
    );
    match opened {
        Ok(ports) => match arbor::sys::enable_io_ports(ports.cap, arbor::abi::slot::OWN_PD) {
            Ok(()) => arbor::platform::port_write_u32(
                qemu::DEBUG_EXIT_PORT,
                if ok { qemu::SUCCESS } else { qemu::FAILURE },
            ),
            Err(error) => log!("debug-exit port: {error:?}"),
        },
        Err(error) => log!("debug-exit port: {error}"),
    }
    client::exit(if ok { 0 } else { 1 });
}

/// A point in time: the TSC and the kernel's idle ticks
/// ([`info::IDLE_TICKS`]) read together.
struct Clock {
    tsc: u64,
    idle: u64,
}

impl Clock {
    fn now() -> Result<Clock, String> {
        let (idle, _) =
            arbor::sys::info(info::IDLE_TICKS, 0).map_err(|e| format!("IDLE_TICKS: {e:?}"))?;
        Ok(Clock { tsc: rdtsc(), idle })
    }

    /// (elapsed ticks, busy ticks: elapsed minus the kernel's idle ticks)
    /// since `self`.
    fn elapsed(&self) -> Result<(u64, u64), String> {
        let tsc = rdtsc();
        let (idle, _) =
            arbor::sys::info(info::IDLE_TICKS, 0).map_err(|e| format!("IDLE_TICKS: {e:?}"))?;
        let elapsed = tsc.wrapping_sub(self.tsc);
        Ok((elapsed, busy_ticks(elapsed, idle.wrapping_sub(self.idle))))
    }
}

fn rdtsc() -> u64 {
    let low: u32;
    let high: u32;
    // SAFETY: `rdtsc` reads the time-stamp counter into edx:eax and
    // touches no memory.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack));
    }
    (u64::from(high) << 32) | u64::from(low)
}

fn bench() -> Result<(), String> {
    let (tsc_per_ms, _) =
        arbor::sys::info(info::TSC_PER_MS, 0).map_err(|e| format!("TSC_PER_MS: {e:?}"))?;
    let fs = FileSystem::open_with_chunk("files", CHUNK)
        .map_err(|e| format!("FileSystem session: {e}"))?;
    let mut block = RawBlock::open()?;
    if (block.info.block_count as usize) * (block.info.block_size as usize) < BYTES {
        return Err(String::from("the disk is smaller than one run"));
    }
    let mut buffer = vec![0u8; CHUNK];
    write_file(&fs, &mut buffer)?;
    check_file(&fs, &mut buffer)?;
    log!(
        "{FILE}: {BYTES} bytes written, synced, read back and checked; timing {RUNS} runs of each, {CHUNK} bytes per request, TSC_PER_MS {tsc_per_ms}"
    );
    let (mut raw, mut file) = (Vec::new(), Vec::new());
    let (mut raw_busy, mut file_busy) = (Vec::new(), Vec::new());
    for round in 0..RUNS {
        let start = Clock::now()?;
        block.read_all(&mut buffer)?;
        let (raw_ticks, raw_busy_ticks) = start.elapsed()?;
        let start = Clock::now()?;
        read_file(&fs, &mut buffer)?;
        let (file_ticks, file_busy_ticks) = start.elapsed()?;
        log!(
            "run {round}: block {raw_ticks} ticks ({raw_busy_ticks} busy), file {file_ticks} ticks ({file_busy_ticks} busy)"
        );
        raw.push(raw_ticks);
        file.push(file_ticks);
        raw_busy.push(raw_busy_ticks);
        file_busy.push(file_busy_ticks);
    }
    for (bench, ticks, busy) in [
        ("blk_read", &mut raw, &mut raw_busy),
        ("fs_read", &mut file, &mut file_busy),
    ] {
        let ticks = median(ticks).ok_or("no runs")?;
        let busy = median(busy).ok_or("no runs")?;
        let rate =
            tenths_mib_per_second(BYTES as u64, ticks, tsc_per_ms).ok_or("a run took no time")?;
        let busy_rate =
            tenths_mib_per_second(BYTES as u64, busy, tsc_per_ms).ok_or("a run took no time")?;
        let per_mib = per_mib(busy, BYTES as u64).ok_or("the run read nothing")?;
        log!(
            "BENCH {{\"bench\":\"{bench}_mib_s\",\"value\":{}.{},\"unit\":\"MiB/s\",\"runs\":{RUNS},\"bytes\":{BYTES},\"request_bytes\":{CHUNK},\"median_ticks\":{ticks},\"tsc_per_ms\":{tsc_per_ms}}}",
            rate / 10,
            rate % 10
        );
        log!(
            "BENCH {{\"bench\":\"{bench}_busy_instructions_per_mib\",\"value\":{per_mib},\"unit\":\"instructions/MiB\",\"runs\":{RUNS},\"bytes\":{BYTES},\"request_bytes\":{CHUNK},\"median_busy_ticks\":{busy}}}"
        );
        log!(
            "BENCH {{\"bench\":\"{bench}_busy_mib_s\",\"value\":{}.{},\"unit\":\"MiB/s\",\"runs\":{RUNS},\"bytes\":{BYTES},\"request_bytes\":{CHUNK},\"median_busy_ticks\":{busy},\"tsc_per_ms\":{tsc_per_ms}}}",
            busy_rate / 10,
            busy_rate % 10
        );
    }
    Ok(())
}

fn write_file(fs: &FileSystem, buffer: &mut [u8]) -> Result<(), String> {
    let mut file = fs
        .create(FILE)
        .map_err(|e| format!("creating {FILE}: {e}"))?;
    let mut at = 0u64;
    while at < BYTES as u64 {
        for (i, byte) in buffer.iter_mut().enumerate() {
            *byte = pattern_byte(at + i as u64);
        }
        file.write_all(buffer)
            .map_err(|e| format!("writing {FILE} at {at}: {e}"))?;
        at += buffer.len() as u64;
    }
    drop(file);
    fs.sync().map_err(|e| format!("sync: {e}"))
}

/// Reads the whole file into `buffer`, chunk by chunk; checks its length.
fn read_file(fs: &FileSystem, buffer: &mut [u8]) -> Result<(), String> {
    read_file_with(fs, buffer, |_, _| Ok(()))
}

fn check_file(fs: &FileSystem, buffer: &mut [u8]) -> Result<(), String> {
    read_file_with(fs, buffer, |at, bytes| {
        match bytes
            .iter()
            .enumerate()
            .find(|(i, byte)| **byte != pattern_byte(at + *i as u64))
        {
            Some((i, byte)) => Err(format!(
                "{FILE} byte {} is {byte}, not {}",
                at + i as u64,
                pattern_byte(at + i as u64)
            )),
            None => Ok(()),
        }
    })
}

fn read_file_with(
    fs: &FileSystem,
    buffer: &mut [u8],
    mut check: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut file = fs
        .open_file(FILE)
        .map_err(|e| format!("opening {FILE}: {e}"))?;
    let mut at = 0u64;
    loop {
        let read = file
            .read(buffer)
            .map_err(|e| format!("reading {FILE} at {at}: {e}"))?;
        if read == 0 {
            break;
        }
        check(at, &buffer[..read])?;
        at += read as u64;
    }
    if at != BYTES as u64 {
        return Err(format!("{FILE} gave {at} bytes, not {BYTES}"));
    }
    Ok(())
}

/// A Block session read straight, one request of [`CHUNK`] bytes at a time.
struct RawBlock {
    stream: ClientStream,
    info: Info,
}

impl RawBlock {
    fn open() -> Result<RawBlock, String> {
        let stream = ClientStream::open(
            "Block",
            "raw",
            StreamArgs {
                payload_len: CHUNK as u32,
                entries: 4,
            },
        )
        .map_err(|e| format!("Block session: {e}"))?;
        let mut raw = RawBlock {
            stream,
            info: Info {
                block_size: 512,
                block_count: 0,
                writable: false,
            },
        };
        let mut bytes = [0u8; INFO_SIZE];
        raw.request(op::INFO, 0, &mut bytes)?;
        raw.info = Info::from_bytes(&bytes).ok_or("the block server's Info made no sense")?;
        Ok(raw)
    }

    fn request(
        &mut self,
        opcode: arbor::packet_stream::Opcode,
        argument: u64,
        out: &mut [u8],
    ) -> Result<(), String> {
        let stream = &mut self.stream;
        let packet = stream
            .stream
            .alloc_packet(out.len())
            .map_err(|e| format!("packet: {e:?}"))?;
        let ack = stream
            .exchange(packet, opcode, argument)
            .map_err(|e| format!("Block request: {e}"))?;
        let copied = stream.stream.read(&ack.packet, 0, out);
        let _ = stream.stream.free_packet(ack.packet);
        match (ack.status, copied) {
            (Status::OK, Ok(())) => Ok(()),
            (status, _) => Err(format!(
                "Block request {} at {argument} answered {}",
                opcode.0, status.0
            )),
        }
    }

    /// Reads [`BYTES`] from block 0 on, into `buffer` chunk by chunk.
    fn read_all(&mut self, buffer: &mut [u8]) -> Result<(), String> {
        let block_size = self.info.block_size as usize;
        let mut at = 0usize;
        while at < BYTES {
            self.request(op::READ, (at / block_size) as u64, buffer)?;
            at += buffer.len();
        }
        Ok(())
    }
}
