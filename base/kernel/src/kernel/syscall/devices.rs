//! System calls for hardware: interrupt lines, I/O port ranges and device
//! memory. Each needs the Platform capability (core's) or an object made
//! from one.

use super::PAGE;
use crate::frames::{FrameUse, Pfn};
use crate::kernel::hw;
use crate::kernel::object::{Dataspace, IoPorts, Irq, Kernel, MAX_PORT_USERS, ObjRef, Object};
use crate::ports::{self, PortRange};
use crate::ranges::device_range;
use arbor_abi::{Error, ObjectKind, Rights};

/// I/O ports the kernel drives: the legacy PICs (masked for good at boot)
/// and COM1, the kernel console.
const KERNEL_PORTS: [core::ops::Range<u64>; 3] = [0x20..0x22, 0xA0..0xA2, 0x3F8..0x400];

/// Most Irq objects on one line: a bound on the walks over a line's sharers.
const MAX_SHARERS: usize = 64;

impl Kernel {
    /// `CreateIrq`: binds an interrupt line to a notification.
    ///
    /// From the Platform capability it claims the line (one claim per
    /// line). From an Irq object (with CONTROL; `line` must be its line) it
    /// adds a *sharer*: another Irq object on the same line, for a PCI line
    /// (GSI 16–23) that several devices assert. The platform driver claims
    /// a line and makes one sharer per client device; the object it made
    /// them from is then *delegated* and no longer signalled itself.
    ///
    /// A shared line is level-triggered: when it fires the kernel masks it
    /// and signals every sharer; each driver reads its device's interrupt
    /// status (which deasserts the line if its device asserted it) and then
    /// acknowledges. The line is unmasked once no sharer is pending, so a
    /// line still asserted fires again and nothing is lost. A sharer that
    /// never acknowledges keeps the line masked for every device on it:
    /// sharing a level-triggered line means relying on each sharer to
    /// acknowledge (its destruction releases the line); MSI would end that.
    pub(crate) fn create_irq(
        &mut self,
        source: u64,
        payer: u64,
        dest: u64,
        line: u64,
        notification_slot: u64,
    ) -> Result<(), Error> {
        let source_cap = self.own_cap(source);
        let shared_from = match source_cap.kind() {
            Some(ObjectKind::Irq) => {
                let r = self.check(&source_cap, ObjectKind::Irq, Rights::CONTROL)?;
                let Some(Object::Irq(irq)) = self.objects.get(r) else {
                    return Err(Error::WrongObjectKind);
                };
                if u64::from(irq.line) != line {
                    return Err(Error::InvalidArgument);
                }
                Some(r)
            }
            _ => {
                self.check(&source_cap, ObjectKind::Platform, Rights::CONTROL)?;
                None
            }
        };
        let payer = self.own_pd(payer)?;
        let me = self.caller_pd()?;
        let dest = self.check_free_slot(me, dest)?;
        let line = u8::try_from(line)
            .ok()
            .filter(|&l| usize::from(l) < self.irqs.len())
            .ok_or(Error::InvalidArgument)?;
        let cap = self.own_cap(notification_slot);
        let notification = self.check(&cap, ObjectKind::Notification, Rights::WRITE)?;
        let head = self.irqs[usize::from(line)].filter(|&r| self.objects.get(r).is_some());
        if shared_from.is_none() && head.is_some() {
            return Err(Error::AlreadyClaimed);
        }
        if self.sharers(line).len() >= MAX_SHARERS {
            return Err(Error::InvalidState);
        }
        let badge = if cap.badge == 0 { 1 } else { cap.badge };
        let irq = Irq {
            line,
            notification,
            badge,
            next_sharer: head,
            pending: false,
            delegated: false,
        };
        let r = self.install_new(payer, dest, Object::Irq(irq), 0)?;
        self.irqs[usize::from(line)] = Some(r);
        if let Some(Object::Irq(origin)) = shared_from.and_then(|o| self.objects.get_mut(o)) {
            origin.delegated = true;
            origin.pending = false;
        }
        self.unmask_if_settled(line);
        Ok(())
    }

    /// `AckIrq`: this Irq object has dealt with the interrupt; the line
    /// interrupts again once every sharer has acknowledged.
    pub(crate) fn ack_irq(&mut self, slot: u64) -> Result<(), Error> {
        let r = self.own_object(slot, ObjectKind::Irq, Rights::WRITE)?;
        let Some(Object::Irq(irq)) = self.objects.get_mut(r) else {
            return Err(Error::WrongObjectKind);
        };
        irq.pending = false;
        let line = irq.line;
        self.unmask_if_settled(line);
        Ok(())
    }

    /// The Irq objects on `line`, first to last (bounded by the line's
    /// sharers, which the kernel alone links).
    fn sharers(&self, line: u8) -> heapless::Vec<ObjRef, MAX_SHARERS> {
        let mut found = heapless::Vec::new();
        let mut next = self.irqs.get(usize::from(line)).copied().flatten();
        while let Some(r) = next {
            let Some(Object::Irq(irq)) = self.objects.get(r) else {
                break;
            };
            if found.push(r).is_err() {
                break;
            }
            next = irq.next_sharer;
        }
        found
    }

    /// Line `line` fired (and is masked): every sharer not delegated
    /// becomes pending and is signalled.
    pub(crate) fn line_fired(&mut self, line: u8) {
        for r in self.sharers(line) {
            let Some(Object::Irq(irq)) = self.objects.get_mut(r) else {
                continue;
            };
            if irq.delegated {
                continue;
            }
            irq.pending = true;
            let (notification, badge) = (irq.notification, irq.badge);
            self.signal_object(notification, badge);
        }
    }

    /// Unmasks `line` when someone listens on it and nobody is pending.
    fn unmask_if_settled(&mut self, line: u8) {
        let sharers = self.sharers(line);
        let listening = sharers
            .iter()
            .any(|&r| matches!(self.objects.get(r), Some(Object::Irq(irq)) if !irq.delegated));
        let pending = sharers
            .iter()
            .any(|&r| matches!(self.objects.get(r), Some(Object::Irq(irq)) if irq.pending));
        if listening && !pending {
            hw::unmask_line(line);
        } else if !listening {
            hw::mask_line(line);
        }
    }

    /// Takes the Irq object `r` (being destroyed) off `line`; the line is
    /// masked when nobody listens any more, unmasked when the rest have
    /// acknowledged.
    pub(crate) fn unlink_sharer(&mut self, line: u8, r: ObjRef) {
        let after = match self.objects.get(r) {
            Some(Object::Irq(irq)) => irq.next_sharer,
            _ => None,
        };
        if let Some(Object::Irq(irq)) = self.objects.get_mut(r) {
            irq.pending = false;
            irq.delegated = true;
        }
        let sharers = self.sharers(line);
        if self.irqs.get(usize::from(line)).copied().flatten() == Some(r) {
            self.irqs[usize::from(line)] = after;
        } else if let Some(&before) = sharers
            .iter()
            .find(|&&s| matches!(self.objects.get(s), Some(Object::Irq(irq)) if irq.next_sharer == Some(r)))
            && let Some(Object::Irq(irq)) = self.objects.get_mut(before)
        {
            irq.next_sharer = after;
        }
        self.unmask_if_settled(line);
    }

    /// `CreateIoPorts`: a port range from the Platform capability or from
    /// within another IoPorts object (which it then dies with).
    pub(crate) fn create_io_ports(
        &mut self,
        source: u64,
        payer: u64,
        dest: u64,
        first: u64,
        count: u64,
    ) -> Result<(), Error> {
        let cap = self.own_cap(source);
        let (allowed, origin) = match cap.kind() {
            Some(ObjectKind::Platform) => {
                self.check(&cap, ObjectKind::Platform, Rights::CONTROL)?;
                (0..0x1_0000, None)
            }
            _ => {
                let origin = self.check(&cap, ObjectKind::IoPorts, Rights::CONTROL)?;
                let Some(Object::IoPorts(ports)) = self.objects.get(origin) else {
                    return Err(Error::WrongObjectKind);
                };
                let first = u64::from(ports.range.first);
                (first..first + u64::from(ports.range.count), Some(origin))
            }
        };
        let end = first.checked_add(count).ok_or(Error::InvalidArgument)?;
        if count == 0 || first < allowed.start || end > allowed.end {
            return Err(Error::InvalidArgument);
        }
        // Ports the kernel itself drives are nobody else's to touch.
        if KERNEL_PORTS
            .iter()
            .any(|kernel| first < kernel.end && kernel.start < end)
        {
            return Err(Error::AlreadyClaimed);
        }
        let payer = self.own_pd(payer)?;
        let me = self.caller_pd()?;
        let dest = self.check_free_slot(me, dest)?;
        let ports = IoPorts {
            range: PortRange {
                first: first as u16,
                count: count as u32,
            },
            enabled_in: [None; MAX_PORT_USERS],
            origin,
        };
        self.install_new(payer, dest, Object::IoPorts(ports), 0)?;
        Ok(())
    }

    /// `EnableIoPorts`: opens a port range in a Pd's I/O permission bitmap.
    pub(crate) fn enable_io_ports(&mut self, ports_slot: u64, pd_slot: u64) -> Result<(), Error> {
        let ports_ref = self.own_object(ports_slot, ObjectKind::IoPorts, Rights::WRITE)?;
        let pd_ref = self.own_pd(pd_slot)?;
        let Some(Object::IoPorts(ports)) = self.objects.get(ports_ref) else {
            return Err(Error::WrongObjectKind);
        };
        let range = ports.range;
        let user = match ports.enabled_in.iter().position(|u| *u == Some(pd_ref)) {
            Some(known) => known,
            None => ports
                .enabled_in
                .iter()
                .position(|u| u.is_none_or(|r| self.objects.pd(r).is_none()))
                .ok_or(Error::InvalidState)?,
        };
        let mut bitmap = self
            .objects
            .pd(pd_ref)
            .ok_or(Error::InvalidCapability)?
            .io_bitmap;
        if bitmap == 0 {
            self.charge(pd_ref, 2 * PAGE)?;
            let Some(base) =
                self.objects
                    .frames
                    .allocate_contiguous(2, FrameUse::IoBitmap, pd_ref.pfn)
            else {
                self.refund(pd_ref.pfn, 2 * PAGE);
                return Err(Error::OutOfMemory);
            };
            if let Some(new_bitmap) = self.objects.io_bitmap_mut(base) {
                ports::deny_all(new_bitmap);
            }
            bitmap = base.0;
            if let Some(pd) = self.objects.pd_mut(pd_ref) {
                pd.io_bitmap = bitmap;
            }
        }
        if let Some(ports) = self.objects.io_ports_mut(ports_ref) {
            ports.enabled_in[user] = Some(pd_ref);
        }
        if let Some(bitmap) = self.objects.io_bitmap_mut(Pfn(bitmap)) {
            ports::allow(bitmap, range);
        }
        if self.loaded_pd == Some(pd_ref) {
            self.loaded_io_bitmap = 0;
            self.switch_to(pd_ref);
        }
        Ok(())
    }

    /// `CreateDeviceDataspace`: a dataspace over device memory (never RAM,
    /// never the interrupt controllers, within the CPU's address width).
    pub(crate) fn create_device_dataspace(
        &mut self,
        platform: u64,
        payer: u64,
        dest: u64,
        phys: u64,
        size: u64,
    ) -> Result<(), Error> {
        self.own_object(platform, ObjectKind::Platform, Rights::CONTROL)?;
        let payer = self.own_pd(payer)?;
        let me = self.caller_pd()?;
        let dest = self.check_free_slot(me, dest)?;
        // Checked at full width against RAM, the interrupt controllers (the
        // kernel's) and the CPU's physical address width; the frame number
        // keeps every bit, so the mapping lands exactly where was checked.
        let pages = device_range(
            phys,
            size,
            hw::physical_address_bits(),
            &self.ram_regions,
            &hw::KERNEL_MMIO,
        )?;
        let dataspace = Dataspace {
            base: Pfn::containing(phys),
            pages,
            device: true,
            kernel_ram: false,
            first_mapping: 0,
        };
        self.install_new(payer, dest, Object::Dataspace(dataspace), 0)?;
        Ok(())
    }
}
