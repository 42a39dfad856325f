//! platform: the platform driver. It alone owns the PCI bus (core grants
//! configuration space, BARs and PCI interrupt lines to the one child the
//! scenario declares `hardware: (platform: true)`), enumerates bus 0
//! through the ECAM window, and serves `Platform` sessions: each client
//! sees only the devices its policy names (see `platform::policy`), and
//! through them maps BARs, receives interrupts (a kernel Irq *sharer* on
//! the device's line, which the client acknowledges itself) and allocates
//! DMA memory paid from its session quota.
//!
//! When a session closes — the client closed it, or died and init closed it
//! — the platform driver clears the command register of every device the
//! client had (decoding and bus mastering off), reads it back and logs it,
//! and only then lets another session claim the device.
//!
//! Limit: without an IOMMU a client that may start DMA can reach any
//! physical memory (see `components/drivers/README.md`).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::{CapSlot, ObjectKind, Rights, info, map, slot};
use arbor::{slots, sys, vspace};
use arbor_sessions::client::{self, Session, open_session};
use arbor_sessions::platform::{
    BUS_MASTER, COMMAND_OFFSET, DeviceInfo, PLATFORM, PciAddress, PlatformReply, PlatformRequest,
    SESSION_RAM,
};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{IoMemArgs, IrqArgs, name};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{SessionError, env, log};
use platform::pci::{Function, bar_size, check_command, check_read, q35_gsi};
use platform::policy::{Config, client_name};

arbor::entry!(run);

/// q35's ECAM window (DEVICES.md); bus 0 is its first MiB.
const ECAM_BASE: u64 = 0xB000_0000;
const BUS0_SIZE: u64 = 1 << 20;
/// What core charges for one IoMem or Irq session.
const RESOURCE_SESSION_RAM: u64 = 4096;
/// What one kernel object (an Irq sharer, a dataspace's record) costs.
const OBJECT_COST: u64 = 4096;
const PAGE: u64 = 4096;
/// The part of a session's quota its bookkeeping here takes; the rest of
/// [`SESSION_RAM`] pays for BARs and interrupts, anything above for DMA.
const BOOKKEEPING: u64 = SESSION_RAM / 2;

fn run(_argument: u64) {
    if let Err(error) = start() {
        log!("stopped: {error}");
        client::exit(1);
    }
}

fn start() -> Result<(), String> {
    let config: Config = env::config().map_err(|e| format!("{e}"))?;
    let ecam_session = open_session(
        name::IO_MEM,
        "",
        &IoMemArgs {
            phys: ECAM_BASE,
            size: BUS0_SIZE,
        },
        RESOURCE_SESSION_RAM,
        None,
    )
    .map_err(|e| format!("ECAM window: {e}"))?;
    let window = vspace::allocate(BUS0_SIZE).map_err(|e| format!("ECAM window: {e}"))?;
    sys::map(
        slot::OWN_PD,
        ecam_session.cap,
        0,
        window.start,
        BUS0_SIZE,
        map::READ | map::WRITE,
    )
    .map_err(|e| format!("mapping the ECAM window: {e}"))?;
    let ecam = Ecam { base: window.start };
    let functions = enumerate(&ecam);
    log!("{} PCI functions on bus 0", functions.len());
    for function in &functions {
        log!("{}", describe(function));
    }
    let driver = PlatformDriver {
        ecam,
        owned: alloc::vec![false; functions.len()],
        functions,
        config,
        lines: [None; 24],
    };
    let server = Server::new().map_err(|e| format!("server: {e}"))?;
    Err(format!(
        "serving Platform: {}",
        server.serve(&[PLATFORM], driver)
    ))
}

/// Bus 0's configuration space, mapped.
struct Ecam {
    base: u64,
}

impl Ecam {
    fn address(&self, at: PciAddress, offset: u16) -> u64 {
        self.base
            + (u64::from(at.device & 31) << 15)
            + (u64::from(at.function & 7) << 12)
            + u64::from(offset & 0xFFC)
    }

    fn read(&self, at: PciAddress, offset: u16) -> u32 {
        // SAFETY: `address` stays inside bus 0's 1 MiB, which `start`
        // mapped for the component's life; ECAM registers are aligned dwords.
        unsafe { core::ptr::read_volatile(self.address(at, offset) as *const u32) }
    }

    fn write(&self, at: PciAddress, offset: u16, value: u32) {
        // SAFETY: as in `read`; nothing in this component references the
        // window as Rust memory.
        unsafe { core::ptr::write_volatile(self.address(at, offset) as *mut u32, value) }
    }

    fn command(&self, at: PciAddress) -> u16 {
        self.read(at, COMMAND_OFFSET) as u16
    }

    /// Writes the command register (the status half gets 0: its bits are
    /// write-one-to-clear).
    fn set_command(&self, at: PciAddress, command: u16) {
        self.write(at, COMMAND_OFFSET, u32::from(command));
    }
}

/// Every function on bus 0, with BARs sized (decoding off while sizing)
/// and bus mastering off until a driver turns it on.
fn enumerate(ecam: &Ecam) -> Vec<Function> {
    let mut found = Vec::new();
    for device in 0..32u8 {
        for function in 0..8u8 {
            let at = PciAddress {
                bus: 0,
                device,
                function,
            };
            let id = ecam.read(at, 0);
            if id & 0xFFFF == 0xFFFF {
                if function == 0 {
                    break;
                }
                continue;
            }
            let header = (ecam.read(at, 0xC) >> 16) as u8;
            let class = ecam.read(at, 8);
            let pin = (ecam.read(at, 0x3C) >> 8) as u8;
            let mut bars = [(0, 0); 6];
            if header & 0x7F == 0 {
                let command = ecam.command(at);
                ecam.set_command(at, command & !(0x3 | BUS_MASTER));
                size_bars(ecam, at, &mut bars);
                ecam.set_command(at, command & !BUS_MASTER);
            }
            found.push(Function {
                address: at,
                vendor: id as u16,
                device_id: (id >> 16) as u16,
                class: (class >> 24) as u8,
                subclass: (class >> 16) as u8,
                irq_line: q35_gsi(device, pin),
                bars,
            });
            if function == 0 && header & 0x80 == 0 {
                break;
            }
        }
    }
    found
}

/// Sizes the memory BARs of `at` (decoding must be off).
fn size_bars(ecam: &Ecam, at: PciAddress, bars: &mut [(u64, u64); 6]) {
    let mut index = 0;
    while index < 6 {
        let offset = 0x10 + 4 * index as u16;
        let low = ecam.read(at, offset);
        if low & 1 == 1 {
            index += 1;
            continue;
        }
        let is_64 = (low >> 1) & 3 == 2 && index < 5;
        ecam.write(at, offset, u32::MAX);
        let mut mask = u64::from(ecam.read(at, offset));
        ecam.write(at, offset, low);
        let mut phys = u64::from(low & !0xF);
        if is_64 {
            let high = ecam.read(at, offset + 4);
            ecam.write(at, offset + 4, u32::MAX);
            mask |= u64::from(ecam.read(at, offset + 4)) << 32;
            ecam.write(at, offset + 4, high);
            phys |= u64::from(high) << 32;
        }
        bars[index] = (phys, bar_size(mask, is_64));
        index += if is_64 { 2 } else { 1 };
    }
}

fn describe(function: &Function) -> String {
    let mut text = format!(
        "{} {:04x}:{:04x} class {:02x}:{:02x}",
        function.address, function.vendor, function.device_id, function.class, function.subclass
    );
    if function.irq_line != 0 {
        text.push_str(&format!(" irq {}", function.irq_line));
    }
    for (n, (phys, size)) in function.bars.iter().enumerate() {
        if *size != 0 {
            text.push_str(&format!(" BAR{n} {phys:#x}+{}K", size / 1024));
        }
    }
    text
}

/// The platform driver's state.
struct PlatformDriver {
    ecam: Ecam,
    functions: Vec<Function>,
    /// Whether a session holds the function (by index).
    owned: Vec<bool>,
    config: Config,
    /// The Irq session (from core) of each PCI line in use.
    lines: [Option<Session>; 24],
}

/// One client's holdings. Every capability here is the platform driver's;
/// the client got derived copies, which die with the originals.
struct Client {
    name: String,
    /// Indices into `functions`: the client's virtual bus.
    devices: Vec<usize>,
    /// BARs opened: (device index on the bus, BAR number, core's session, copy given).
    bars: Vec<(u8, u8, Session, CapSlot)>,
    /// Irq sharers made: (sharer, copy given).
    irqs: Vec<(CapSlot, CapSlot)>,
    /// DMA dataspaces: (dataspace, copy given).
    dma: Vec<(CapSlot, CapSlot)>,
    /// Bytes of the session's quota spent.
    used: u64,
    /// Capability slots of the session's quota spent.
    caps_used: u64,
}

impl Client {
    /// Spends `cost` of the session's quota, or says what is missing.
    fn spend(&mut self, cost: Quota, quota: Quota) -> Result<(), SessionError> {
        let total = Quota {
            ram: self.used.saturating_add(cost.ram),
            caps: self.caps_used.saturating_add(cost.caps),
        };
        quota.require(total)?;
        self.used = total.ram;
        self.caps_used = total.caps;
        Ok(())
    }

    /// Gives back what a failed step spent.
    fn refund(&mut self, cost: Quota) {
        self.used = self.used.saturating_sub(cost.ram);
        self.caps_used = self.caps_used.saturating_sub(cost.caps);
    }
}

/// What a BAR costs a session: core's session (RAM, its slot and the
/// capabilities donated on the way) and the copy given.
const BAR_COST: Quota = Quota {
    ram: RESOURCE_SESSION_RAM,
    caps: client::SESSION_CAPS + 2,
};
/// What an interrupt or a DMA buffer's object costs beyond its memory: the
/// object and the copy given.
const OBJECT_SLOTS: u64 = 2;

fn derive(source: CapSlot, rights: Rights) -> Result<CapSlot, SessionError> {
    let dest = slots::allocate().map_err(SessionError::from)?;
    sys::derive(source, dest, rights, 0).map_err(|e| {
        slots::free(dest);
        SessionError::from(e)
    })?;
    Ok(dest)
}

impl PlatformDriver {
    /// The function behind index `device` of the client's bus.
    fn function(&self, client: &Client, device: u8) -> Result<&Function, SessionError> {
        match client.devices.get(usize::from(device)) {
            Some(&index) => Ok(&self.functions[index]),
            None => {
                log!(
                    "refused \"{}\": device {device} is not on its bus (it has {})",
                    client.name,
                    client.devices.len()
                );
                Err(SessionError::BadRequest)
            }
        }
    }

    fn bar(
        &mut self,
        entry: &mut Entry<Client>,
        device: u8,
        bar: u8,
    ) -> Result<(PlatformReply, CapSlot), SessionError> {
        let function = *self.function(&entry.state, device)?;
        let Some(&(phys, size)) = function.bars.get(usize::from(bar)).filter(|b| b.1 != 0) else {
            log!(
                "refused \"{}\": {} has no memory BAR{bar}",
                entry.state.name,
                function.address
            );
            return Err(SessionError::BadRequest);
        };
        if let Some((.., copy)) = entry
            .state
            .bars
            .iter()
            .find(|(d, b, ..)| *d == device && *b == bar)
        {
            return Ok((PlatformReply::Bar { phys, size }, *copy));
        }
        entry.state.spend(BAR_COST, entry.quota)?;
        let pages = size.next_multiple_of(PAGE);
        let opened = open_session(
            name::IO_MEM,
            "",
            &IoMemArgs { phys, size: pages },
            RESOURCE_SESSION_RAM,
            None,
        )
        .and_then(|session| {
            derive(
                session.cap,
                Rights::READ.union(Rights::WRITE).union(Rights::GRANT),
            )
            .map(|copy| (session, copy))
            .inspect_err(|_| {
                let _ = client::close_session(session);
            })
        });
        let (session, copy) = opened.inspect_err(|_| entry.state.refund(BAR_COST))?;
        entry.state.bars.push((device, bar, session, copy));
        Ok((PlatformReply::Bar { phys, size }, copy))
    }

    fn irq(
        &mut self,
        entry: &mut Entry<Client>,
        device: u8,
        notification: Option<CapSlot>,
    ) -> Result<(PlatformReply, CapSlot), SessionError> {
        let Some(notification) = notification else {
            return Err(SessionError::BadRequest);
        };
        let line = self.function(&entry.state, device)?.irq_line;
        if line == 0 {
            return Err(SessionError::BadRequest);
        }
        let cost = Quota {
            ram: OBJECT_COST,
            caps: OBJECT_SLOTS,
        };
        entry.state.spend(cost, entry.quota)?;
        let root = self.line(line).inspect_err(|_| entry.state.refund(cost))?;
        let sharer = slots::allocate().map_err(SessionError::from)?;
        let made = sys::create_irq(root, slot::OWN_PD, sharer, u64::from(line), notification);
        if let Err(error) = made {
            slots::free(sharer);
            entry.state.refund(cost);
            return Err(SessionError::from(error));
        }
        let copy = derive(sharer, Rights::WRITE.union(Rights::GRANT)).inspect_err(|_| {
            let _ = sys::destroy(sharer);
            slots::release(sharer);
            entry.state.refund(cost);
        })?;
        entry.state.irqs.push((sharer, copy));
        Ok((PlatformReply::Irq { line }, copy))
    }

    /// The Irq object of PCI `line`, claimed from core at first use.
    fn line(&mut self, line: u8) -> Result<CapSlot, SessionError> {
        if let Some(session) = self.lines[usize::from(line)] {
            return Ok(session.cap);
        }
        // The line's own object is never signalled once it has sharers;
        // it needs a notification all the same.
        let notification = slots::allocate().map_err(SessionError::from)?;
        sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0)
            .map_err(SessionError::from)?;
        let session = open_session(
            name::IRQ,
            "",
            &IrqArgs { line },
            RESOURCE_SESSION_RAM,
            Some(notification),
        )?;
        self.lines[usize::from(line)] = Some(session);
        Ok(session.cap)
    }

    fn dma(
        &mut self,
        entry: &mut Entry<Client>,
        size: u64,
    ) -> Result<(PlatformReply, CapSlot), SessionError> {
        if size == 0 {
            return Err(SessionError::BadRequest);
        }
        let bytes = size
            .checked_next_multiple_of(PAGE)
            .ok_or(SessionError::BadRequest)?;
        let cost = Quota {
            ram: bytes.saturating_add(OBJECT_COST),
            caps: OBJECT_SLOTS,
        };
        if let Err(error) = entry.state.spend(cost, entry.quota) {
            log!(
                "refused \"{}\" {bytes} bytes of DMA memory: beyond its session quota ({} of {} bytes spent)",
                entry.state.name,
                entry.state.used,
                entry.quota.ram
            );
            return Err(error);
        }
        let dataspace = slots::allocate().map_err(SessionError::from)?;
        if let Err(error) = sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, bytes) {
            slots::free(dataspace);
            entry.state.refund(cost);
            return Err(SessionError::from(error));
        }
        let given = sys::info(info::DATASPACE_PHYS, u64::from(dataspace.0))
            .map_err(SessionError::from)
            .and_then(|(phys, _)| {
                let rights = Rights::READ
                    .union(Rights::WRITE)
                    .union(Rights::DMA)
                    .union(Rights::GRANT);
                derive(dataspace, rights).map(|copy| (phys, copy))
            });
        let (phys, copy) = given.inspect_err(|_| {
            let _ = sys::destroy(dataspace);
            slots::release(dataspace);
            entry.state.refund(cost);
        })?;
        entry.state.dma.push((dataspace, copy));
        Ok((PlatformReply::Dma { phys, size: bytes }, copy))
    }
}

impl Service for PlatformDriver {
    type Session = Client;
    type Reply = PlatformReply;

    fn create(
        &mut self,
        _service: &str,
        label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Client, SessionError> {
        quota.require(Quota {
            ram: SESSION_RAM,
            caps: 0,
        })?;
        let name = String::from(client_name(label));
        if self.config.policy_for(label).is_none() {
            log!("refused a session for \"{name}\": no policy names it");
            return Err(SessionError::Denied);
        }
        let devices = self.config.devices_for(label, &self.functions);
        if let Some(&taken) = devices.iter().find(|&&d| self.owned[d]) {
            log!(
                "refused \"{name}\" for now: {} is still another session's",
                self.functions[taken].address
            );
            return Err(SessionError::AlreadyClaimed);
        }
        for &d in &devices {
            self.owned[d] = true;
        }
        let list: Vec<String> = devices
            .iter()
            .map(|&d| format!("{}", self.functions[d].address))
            .collect();
        log!(
            "\"{name}\" gets {} device(s): {}",
            devices.len(),
            list.join(", ")
        );
        Ok(Client {
            name,
            devices,
            bars: Vec::new(),
            irqs: Vec::new(),
            dma: Vec::new(),
            used: BOOKKEEPING,
            caps_used: 0,
        })
    }

    fn handle(&mut self, entry: &mut Entry<Client>, call: &mut Call<'_>) -> PlatformReply {
        let request = match call.request::<PlatformRequest>() {
            Ok(request) => request,
            Err(error) => return PlatformReply::Error(error),
        };
        let result = match request {
            PlatformRequest::DeviceCount => {
                Ok(PlatformReply::Count(entry.state.devices.len() as u8))
            }
            PlatformRequest::Device { device } => self.function(&entry.state, device).map(|f| {
                PlatformReply::Device(DeviceInfo {
                    address: f.address,
                    vendor: f.vendor,
                    device_id: f.device_id,
                    class: f.class,
                    subclass: f.subclass,
                    irq_line: f.irq_line,
                    bar_sizes: f.bars.map(|(_, size)| size),
                })
            }),
            PlatformRequest::ConfigRead { device, offset } => {
                self.function(&entry.state, device).and_then(|f| {
                    check_read(offset)
                        .map(|()| PlatformReply::Value(self.ecam.read(f.address, offset)))
                        .map_err(|why| {
                            log!(
                                "refused \"{}\" config read at {offset:#x}: {why}",
                                entry.state.name
                            );
                            SessionError::BadRequest
                        })
                })
            }
            PlatformRequest::SetCommand { device, command } => {
                self.function(&entry.state, device).and_then(|f| {
                    check_command(command)
                        .map(|()| {
                            self.ecam.set_command(f.address, command);
                            if command & BUS_MASTER != 0 {
                                log!(
                                    "\"{}\" enabled bus mastering on {}",
                                    entry.state.name,
                                    f.address
                                );
                            }
                            PlatformReply::Done
                        })
                        .map_err(|why| {
                            log!(
                                "refused \"{}\" command {command:#06x}: {why}",
                                entry.state.name
                            );
                            SessionError::BadRequest
                        })
                })
            }
            PlatformRequest::Bar { device, bar } => {
                self.bar(entry, device, bar).map(|(reply, cap)| {
                    call.reply_cap(cap);
                    reply
                })
            }
            PlatformRequest::Irq { device } => {
                let notification = call.take_cap().ok().flatten();
                let result = self.irq(entry, device, notification);
                if let Some(notification) = notification {
                    slots::release(notification);
                }
                result.map(|(reply, cap)| {
                    call.reply_cap(cap);
                    reply
                })
            }
            PlatformRequest::Dma { size } => self.dma(entry, size).map(|(reply, cap)| {
                call.reply_cap(cap);
                reply
            }),
        };
        result.unwrap_or_else(PlatformReply::Error)
    }

    fn error(error: SessionError) -> PlatformReply {
        PlatformReply::Error(error)
    }

    /// Quiesces the client's devices before anyone else may have them.
    fn close(&mut self, entry: Entry<Client>) {
        let client = entry.state;
        for &d in &client.devices {
            let at = self.functions[d].address;
            self.ecam.set_command(at, 0);
            let command = self.ecam.command(at);
            let master = if command & BUS_MASTER == 0 {
                "off"
            } else {
                "STILL ON"
            };
            log!(
                "\"{}\" is gone: {at} command {command:#06x}, bus mastering {master}",
                client.name
            );
            self.owned[d] = false;
        }
        for (sharer, copy) in client.irqs {
            let _ = sys::destroy(sharer);
            slots::release(sharer);
            slots::release(copy);
        }
        for (dataspace, copy) in client.dma {
            let _ = sys::destroy(dataspace);
            slots::release(dataspace);
            slots::release(copy);
        }
        for (_, _, session, copy) in client.bars {
            slots::release(copy);
            let _ = client::close_session(session);
        }
    }
}
