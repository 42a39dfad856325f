//! platform_probe: a device driver as the platform driver's tests need it.
//!
//! - Default: opens a Platform session, lists its devices, reads the first
//!   one's virtio device id, maps its BARs, brings it up with
//!   virtio-drivers (a block device), reads sector 0 and takes the
//!   interrupt that read raises.
//! - `crash: true`: on a device without the FAILED status bit it sets
//!   ACKNOWLEDGE | FAILED, enables bus mastering and faults; restarted, it
//!   finds FAILED left behind, resets the device and works as by default.
//! - `listen: true`: takes one interrupt on its device's shared line and
//!   logs that its own device's ISR reads 0 (another device raised it).
//! - `hostile: true`: asks for what is not its own (another device's
//!   configuration space, an offset past its function, command bits it may
//!   not set, DMA beyond its quota, BAR memory, a PCI line and the ECAM
//!   window straight from core) and logs each refusal.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use arbor_sessions::client::{self, open_session};
use arbor_sessions::platform::{BUS_MASTER, Platform, SESSION_RAM};
use arbor_sessions::services::{IoMemArgs, IrqArgs, name};
use arbor_sessions::{SessionError, env, log};
use arbor_virtio::virtio_drivers::device::blk::VirtIOBlk;
use arbor_virtio::virtio_drivers::transport::pci::PciTransport;
use arbor_virtio::virtio_drivers::transport::{DeviceStatus, Transport};
use arbor_virtio::{ArborHal, POOL_PAGES, VirtioDevice};
use serde::Deserialize;

arbor::entry!(run);

/// What the scenario asks of it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Fault with bus mastering on, the first time.
    #[serde(default)]
    crash: bool,
    /// Ask for what is not its own.
    #[serde(default)]
    hostile: bool,
    /// Only listen on its device's (shared) line for one interrupt.
    #[serde(default)]
    listen: bool,
    /// Milliseconds to wait before reading (so a sharer can settle first).
    #[serde(default)]
    settle_ms: u64,
}

/// The session's quota: bookkeeping, BARs, the interrupt and the DMA pool.
const PLATFORM_RAM: u64 = SESSION_RAM + (POOL_PAGES as u64 + 1) * 4096;

fn run(_argument: u64) {
    let result = env::config::<Config>()
        .map_err(|e| format!("{e}"))
        .and_then(|config| {
            if config.hostile {
                hostile()
            } else if config.listen {
                listen()
            } else {
                probe(config.crash, config.settle_ms)
            }
        });
    match result {
        Ok(()) => client::exit(0),
        Err(error) => {
            log!("failed: {error}");
            client::exit(1);
        }
    }
}

/// Opens the session, retrying while an earlier incarnation's session is
/// still being closed (its devices are quiesced first).
fn open_platform() -> Result<&'static Platform, String> {
    let mut attempts = 0;
    loop {
        match Platform::open("", PLATFORM_RAM) {
            Ok(platform) => return Ok(Box::leak(Box::new(platform))),
            Err(SessionError::AlreadyClaimed) if attempts < 50 => {
                attempts += 1;
                client::pause(10);
            }
            Err(error) => return Err(format!("Platform session: {error}")),
        }
    }
}

fn probe(crash: bool, settle_ms: u64) -> Result<(), String> {
    let platform = open_platform()?;
    let count = platform.device_count().map_err(|e| format!("{e}"))?;
    log!("sees {count} device(s)");
    for device in 0..count {
        let info = platform.device(device).map_err(|e| format!("{e}"))?;
        log!(
            "device {device}: {} {:04x}:{:04x} irq {}",
            info.address,
            info.vendor,
            info.device_id,
            info.irq_line
        );
    }
    let id = platform.config_read(0, 0).map_err(|e| format!("{e}"))?;
    let pci_device = (id >> 16) as u16;
    let virtio_id = if pci_device >= 0x1040 {
        u32::from(pci_device - 0x1040)
    } else {
        platform.config_read(0, 0x2C).map_err(|e| format!("{e}"))? >> 16
    };
    log!("device 0 is virtio device {virtio_id}");
    let (device, mut root) = VirtioDevice::open(platform, 0).map_err(|e| format!("{e}"))?;
    // Memory decoding on: a quiesced device answers no BAR access.
    platform.set_command(0, 0x2).map_err(|e| format!("{e}"))?;
    let mut transport = PciTransport::new::<ArborHal, _>(&mut root, device.function)
        .map_err(|e| format!("virtio transport: {e}"))?;
    log!(
        "mapped its BARs; virtio device type {:?}",
        transport.device_type()
    );
    // The firmware may have driven the device already (SeaBIOS boots from
    // virtio-blk); a driver that gave up leaves FAILED, which survives it.
    let status = transport.get_status();
    if status.contains(DeviceStatus::FAILED) {
        log!(
            "found status {:#x} (FAILED) left by an earlier run: resetting the device",
            status.bits()
        );
    } else if crash {
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::FAILED);
        platform
            .set_command(0, 0x2 | BUS_MASTER)
            .map_err(|e| format!("{e}"))?;
        log!("bus mastering on; faulting now");
        // SAFETY: none; this is the deliberate fault the test is about
        // (address 8, the dangling pointer, is never mapped).
        unsafe { core::ptr::write_volatile(core::ptr::dangling_mut::<u64>(), 0) };
    }
    platform
        .set_command(0, 0x2 | BUS_MASTER)
        .map_err(|e| format!("{e}"))?;
    let mut blk =
        VirtIOBlk::<ArborHal, _>::new(transport).map_err(|e| format!("virtio-blk: {e}"))?;
    if settle_ms > 0 {
        client::pause(settle_ms);
    }
    let mut sector = [0u8; 512];
    blk.read_blocks(0, &mut sector)
        .map_err(|e| format!("reading sector 0: {e}"))?;
    let text: String = sector[..16]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    log!("read sector 0: \"{text}\"");
    device.wait_for_interrupt().map_err(|e| format!("{e}"))?;
    let status = blk.ack_interrupt();
    device.acknowledge().map_err(|e| format!("{e}"))?;
    log!(
        "took an interrupt on line {} (ISR {:#x})",
        device.line,
        status.bits()
    );
    log!("works");
    Ok(())
}

/// Takes one interrupt on its device's line, which another device shares:
/// its device did not raise it, and the ISR says so.
fn listen() -> Result<(), String> {
    let platform = open_platform()?;
    let (device, mut root) = VirtioDevice::open(platform, 0).map_err(|e| format!("{e}"))?;
    platform.set_command(0, 0x2).map_err(|e| format!("{e}"))?;
    let mut transport = PciTransport::new::<ArborHal, _>(&mut root, device.function)
        .map_err(|e| format!("virtio transport: {e}"))?;
    log!(
        "listening on line {} for its {:?} device",
        device.line,
        transport.device_type()
    );
    device.wait_for_interrupt().map_err(|e| format!("{e}"))?;
    let status = transport.ack_interrupt();
    device.acknowledge().map_err(|e| format!("{e}"))?;
    log!(
        "interrupt on shared line {}: ISR {:#x}, not raised by its device",
        device.line,
        status.bits()
    );
    Ok(())
}

fn hostile() -> Result<(), String> {
    let platform = open_platform()?;
    let count = platform.device_count().map_err(|e| format!("{e}"))?;
    log!("sees {count} device(s)");
    report(
        "config space of a device not on its bus",
        platform.config_read(count, 0).map(drop),
    );
    report(
        "config space past its function (offset 0x1000)",
        platform.config_read(0, 0x1000).map(drop),
    );
    report(
        "command bit 0x8 (special cycles)",
        platform.set_command(0, 0x8),
    );
    report("16 MiB of DMA memory", platform.dma(16 << 20).map(drop));
    report(
        "a BAR of a device not on its bus",
        platform.bar(count, 4).map(drop),
    );
    // Its own device's BAR4, at the address configuration space shows.
    let bar4 = u64::from(platform.config_read(0, 0x20).map_err(|e| format!("{e}"))? & !0xF);
    report(
        &format!("its BAR4 memory {bar4:#x} straight from core"),
        open_session(
            name::IO_MEM,
            "",
            &IoMemArgs {
                phys: bar4,
                size: 0x4000,
            },
            4096,
            None,
        )
        .map(drop),
    );
    report(
        "the ECAM window straight from core",
        open_session(
            name::IO_MEM,
            "",
            &IoMemArgs {
                phys: 0xB000_0000,
                size: 0x1000,
            },
            4096,
            None,
        )
        .map(drop),
    );
    report(
        "PCI line 20 straight from core",
        open_session(name::IRQ, "", &IrqArgs { line: 20 }, 4096, None).map(drop),
    );
    log!("done");
    Ok(())
}

fn report(what: &str, result: Result<(), SessionError>) {
    match result {
        Ok(()) => log!("GOT {what}: that is a hole"),
        Err(error) => log!("refused {what}: {error}"),
    }
}
