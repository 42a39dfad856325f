//! System-call dispatch: decode the registers, check every capability and
//! argument, act, and put the results in the caller's registers.

use super::ipc::Outcome;
use super::object::{
    Dataspace, Endpoint, IoPorts, Irq, Kernel, MAX_MAPPINGS, MAX_MAPPINGS_PER_PD, MAX_PORT_USERS,
    Mapping, Notification, OBJECT_COST, ObjRef, Object, Pd, Thread, ThreadState, io_bitmap,
};
use super::space::{self, PageFlags};
use crate::arch::entry::Frame;
use crate::caps::Cap;
use crate::frames::{FrameUse, Pfn};
use crate::ports::{self, PortRange};
use crate::queue::Queue;
use crate::quota::Quota;
use crate::ranges::{device_range, user_range};
use arbor_abi::{
    CapSlot, Error, MsgInfo, ObjectKind, PAYLOAD_MAX, Rights, Syscall, USER_END, USER_MIN, info,
    map,
};

const PAGE: u64 = 4096;

/// I/O ports the kernel drives: the legacy PICs (masked for good at boot)
/// and COM1, the kernel console.
const KERNEL_PORTS: [core::ops::Range<u64>; 3] = [0x20..0x22, 0xA0..0xA2, 0x3F8..0x400];

/// Handles the system call whose registers are in the current thread's context.
pub fn dispatch(kernel: &mut Kernel) {
    let Some((_, thread)) = kernel.current_thread() else {
        return;
    };
    let c = thread.context;
    let (a0, a1, a2, a3, a4, a5) = (c.rdi, c.rsi, c.rdx, c.r10, c.r8, c.r9);
    let words = [a2, a3, a4, a5];
    let outcome = match Syscall::from_raw(c.rax) {
        None => Outcome::Done(Err(Error::InvalidSyscall)),
        Some(call) => match call {
            Syscall::Call => kernel.send(a0, MsgInfo(a1), words, true),
            Syscall::Send => kernel.send(a0, MsgInfo(a1), words, false),
            Syscall::Recv => kernel.receive(a0),
            Syscall::ReplyRecv => kernel.reply_receive(a0, MsgInfo(a1), words),
            Syscall::Signal => Outcome::Done(kernel.signal(a0)),
            Syscall::Wait => kernel.wait(a0, a1),
            Syscall::Yield => {
                kernel.reschedule = true;
                Outcome::Done(Ok(()))
            }
            Syscall::Create => Outcome::Done(kernel.create(a0, a1, a2, a3)),
            Syscall::Destroy => Outcome::Done(kernel.destroy_cap(a0)),
            Syscall::Derive => Outcome::Done(kernel.derive(a0, a1, a2, a3)),
            Syscall::Delete => Outcome::Done(kernel.delete(a0)),
            Syscall::Grant => Outcome::Done(kernel.grant(a0, a1, a2, a3)),
            Syscall::Map => Outcome::Done(kernel.map(a0, a1, a2, a3, a4, a5)),
            Syscall::Unmap => Outcome::Done(kernel.unmap(a0, a1, a2)),
            Syscall::TransferQuota => Outcome::Done(kernel.transfer_quota(a0, a1, a2, a3)),
            Syscall::StartThread => Outcome::Done(kernel.start_thread(a0, a1, a2, a3, a4)),
            Syscall::BindNotification => Outcome::Done(kernel.bind_notification(a0, a1)),
            Syscall::SetFaultEndpoint => Outcome::Done(kernel.set_fault_endpoint(a0, a1)),
            Syscall::CreateIrq => Outcome::Done(kernel.create_irq(a0, a1, a2, a3, a4)),
            Syscall::AckIrq => Outcome::Done(kernel.ack_irq(a0)),
            Syscall::CreateIoPorts => Outcome::Done(kernel.create_io_ports(a0, a1, a2, a3, a4)),
            Syscall::EnableIoPorts => Outcome::Done(kernel.enable_io_ports(a0, a1)),
            Syscall::CreateDeviceDataspace => {
                Outcome::Done(kernel.create_device_dataspace(a0, a1, a2, a3, a4))
            }
            Syscall::Info => Outcome::Done(kernel.info(a0, a1)),
            Syscall::ConsoleWrite => Outcome::Done(kernel.console_write(a0, a1)),
        },
    };
    if let Outcome::Done(result) = outcome
        && let Some((_, thread)) = kernel.current_thread()
    {
        thread.context.rax = result.err().map_or(0, |e| e as u64);
    }
}

fn set_results(kernel: &Kernel, rdi: u64, rsi: u64) {
    if let Some((_, thread)) = kernel.current_thread() {
        thread.context.rdi = rdi;
        thread.context.rsi = rsi;
    }
}

fn page_aligned(value: u64) -> bool {
    value.is_multiple_of(PAGE)
}

impl Kernel {
    fn own_object(
        &self,
        slot: u64,
        kind: ObjectKind,
        rights: Rights,
    ) -> Result<(ObjRef, &'static mut Object), Error> {
        let cap = self.own_cap(slot);
        self.check(&cap, kind, rights)
    }

    fn own_pd(&self, slot: u64) -> Result<(ObjRef, &'static mut Pd), Error> {
        let (r, object) = self.own_object(slot, ObjectKind::Pd, Rights::CONTROL)?;
        match object {
            Object::Pd(pd) => Ok((r, pd)),
            _ => Err(Error::WrongObjectKind),
        }
    }

    fn current_pd_ref(&self) -> Result<ObjRef, Error> {
        self.current_pd().map(|(r, _)| r).ok_or(Error::InvalidState)
    }

    /// Creates an object paid by `payer_slot` and puts a capability to it in `dest`.
    fn install_new(
        &mut self,
        payer: ObjRef,
        dest: CapSlot,
        object: Object,
        extra_bytes: u64,
    ) -> Result<ObjRef, Error> {
        let kind = object.kind();
        self.charge(payer, extra_bytes)?;
        let created = self.new_object(object, Some(payer));
        let r = match created {
            Ok(r) => r,
            Err(error) => {
                self.refund(payer.pfn, extra_bytes);
                return Err(error);
            }
        };
        let me = self.current_pd_ref()?;
        if let Err(error) = self.install_cap(me, dest, Cap::new(r.pfn.0, r.generation, kind)) {
            self.destroy(r);
            self.refund(payer.pfn, extra_bytes);
            return Err(error);
        }
        Ok(r)
    }

    fn create(
        &mut self,
        kind: u64,
        payer_slot: u64,
        dest: u64,
        argument: u64,
    ) -> Result<(), Error> {
        let (payer, _) = self.own_pd(payer_slot)?;
        let me = self.current_pd_ref()?;
        let dest = self.check_free_slot(me, dest)?;
        match ObjectKind::from_raw(kind) {
            Some(ObjectKind::Endpoint) => {
                let endpoint = Endpoint {
                    senders: Queue::EMPTY,
                    receivers: Queue::EMPTY,
                };
                self.install_new(payer, dest, Object::Endpoint(endpoint), 0)?;
            }
            Some(ObjectKind::Notification) => {
                let notification = Notification {
                    word: 0,
                    waiters: Queue::EMPTY,
                    bound: None,
                };
                self.install_new(payer, dest, Object::Notification(notification), 0)?;
            }
            Some(ObjectKind::Thread) => {
                let my_priority = self.current_thread().map_or(0, |(_, t)| t.priority);
                let priority = u8::try_from(argument).map_err(|_| Error::InvalidArgument)?;
                if priority > my_priority {
                    return Err(Error::InvalidArgument);
                }
                self.install_new(payer, dest, Object::Thread(new_thread(payer, priority)), 0)?;
            }
            Some(ObjectKind::Dataspace) => {
                if argument == 0 {
                    return Err(Error::InvalidArgument);
                }
                // No Pd can hold more than the machine has: an absurd size is
                // simply more than the quota allows.
                let pages = argument.div_ceil(PAGE);
                if pages > u64::from(u32::MAX) {
                    return Err(Error::RamQuotaExceeded);
                }
                self.create_dataspace(payer, dest, pages)?;
            }
            Some(ObjectKind::Pd) => {
                // The top-level table and the Pd object: both must fit.
                let available = self
                    .pd(payer)
                    .ok_or(Error::InvalidCapability)?
                    .ram
                    .available();
                if available < PAGE + OBJECT_COST {
                    return Err(Error::RamQuotaExceeded);
                }
                let root = space::new_root(self, Some(payer))?;
                let pcid = self.allocate_pcid();
                let pd = new_pd(Some(payer), root, pcid);
                if let Err(error) = self.install_new(payer, dest, Object::Pd(pd), 0) {
                    self.free_frame(Pfn::containing(root));
                    self.release_pcid(pcid);
                    return Err(error);
                }
            }
            _ => return Err(Error::InvalidArgument),
        }
        Ok(())
    }

    fn create_dataspace(&mut self, payer: ObjRef, dest: CapSlot, pages: u64) -> Result<(), Error> {
        let r = self.new_dataspace(payer, pages)?;
        let me = self.current_pd_ref()?;
        let cap = Cap::new(r.pfn.0, r.generation, ObjectKind::Dataspace);
        if let Err(error) = self.install_cap(me, dest, cap) {
            self.destroy(r);
            return Err(error);
        }
        Ok(())
    }

    /// A zero-filled dataspace of `pages` contiguous frames, paid by `payer`.
    pub fn new_dataspace(&mut self, payer: ObjRef, pages: u64) -> Result<ObjRef, Error> {
        let bytes = pages.checked_mul(PAGE).ok_or(Error::InvalidArgument)?;
        let available = self
            .pd(payer)
            .ok_or(Error::InvalidCapability)?
            .ram
            .available();
        if available < bytes.saturating_add(OBJECT_COST) {
            return Err(Error::RamQuotaExceeded);
        }
        self.charge(payer, bytes)?;
        let Some(base) = self
            .frames
            .allocate_contiguous(pages as usize, FrameUse::Data, payer.pfn)
        else {
            self.refund(payer.pfn, bytes);
            return Err(Error::OutOfMemory);
        };
        // SAFETY: frames just allocated, reached through the physical window.
        unsafe {
            core::ptr::write_bytes(
                crate::arch::paging::phys_to_virt(base.address()),
                0,
                bytes as usize,
            )
        };
        let dataspace = Dataspace {
            base,
            pages,
            device: false,
            kernel_ram: false,
            mappings: [None; MAX_MAPPINGS],
        };
        self.new_object(Object::Dataspace(dataspace), Some(payer))
            .inspect_err(|_| {
                for page in 0..pages {
                    self.free_frame(base.offset(page));
                }
            })
    }

    fn destroy_cap(&mut self, slot: u64) -> Result<(), Error> {
        let cap = self.own_cap(slot);
        let kind = cap.kind().ok_or(Error::InvalidCapability)?;
        let (r, _) = self.check(&cap, kind, Rights::CONTROL)?;
        if matches!(kind, ObjectKind::Console | ObjectKind::Platform) {
            return Err(Error::InvalidArgument);
        }
        if kind == ObjectKind::Pd && self.current_pd_ref() == Ok(r) {
            return Err(Error::InvalidArgument);
        }
        self.destroy(r);
        Ok(())
    }

    fn derive(&mut self, source: u64, dest: u64, mask: u64, badge: u64) -> Result<(), Error> {
        let cap = self.own_cap(source);
        let kind = cap.kind().ok_or(Error::InvalidCapability)?;
        self.check(&cap, kind, Rights::NONE)?;
        let mask = Rights(u8::try_from(mask & 0xFF).unwrap_or(0));
        let derived = cap.derive(mask, badge)?;
        let me = self.current_pd_ref()?;
        let dest = self.check_free_slot(me, dest)?;
        self.install_cap(me, dest, derived)
    }

    fn delete(&mut self, slot: u64) -> Result<(), Error> {
        let slot = CapSlot(u32::try_from(slot).map_err(|_| Error::InvalidArgument)?);
        let (_, pd) = self.current_pd().ok_or(Error::InvalidState)?;
        self.delete_cap(pd, slot)
    }

    fn grant(&mut self, target: u64, source: u64, dest: u64, mask: u64) -> Result<(), Error> {
        let (target, _) = self.own_pd(target)?;
        let cap = self.own_cap(source);
        let kind = cap.kind().ok_or(Error::InvalidCapability)?;
        self.check(&cap, kind, Rights::GRANT)?;
        let derived = cap.derive(Rights(u8::try_from(mask & 0xFF).unwrap_or(0)), 0)?;
        let dest = self.check_free_slot(target, dest)?;
        self.install_cap(target, dest, derived)
    }

    fn map(
        &mut self,
        pd_slot: u64,
        ds_slot: u64,
        offset: u64,
        vaddr: u64,
        size: u64,
        flags: u64,
    ) -> Result<(), Error> {
        let (pd_ref, _) = self.own_pd(pd_slot)?;
        if flags & !(map::READ | map::WRITE | map::EXECUTE) != 0 {
            return Err(Error::InvalidArgument);
        }
        // W^X: no page is ever both writable and executable, so no Pd can
        // write code and run it (or be made to).
        if flags & map::WRITE != 0 && flags & map::EXECUTE != 0 {
            return Err(Error::InvalidArgument);
        }
        let mut needed = Rights::READ;
        if flags & map::WRITE != 0 {
            needed = needed.union(Rights::WRITE);
        }
        if flags & map::EXECUTE != 0 {
            needed = needed.union(Rights::EXECUTE);
        }
        let (_, object) = self.own_object(ds_slot, ObjectKind::Dataspace, needed)?;
        let Object::Dataspace(dataspace) = object else {
            return Err(Error::WrongObjectKind);
        };
        let pages = user_range(vaddr, size)?;
        if !page_aligned(offset)
            || pages > dataspace.pages
            || offset / PAGE > dataspace.pages - pages
        {
            return Err(Error::InvalidArgument);
        }
        let records_of = |dataspace: &Dataspace| {
            dataspace
                .mappings
                .iter()
                .flatten()
                .filter(|m| m.pd == pd_ref)
                .count()
        };
        let full = |dataspace: &Dataspace| {
            records_of(dataspace) >= MAX_MAPPINGS_PER_PD
                || dataspace.mappings.iter().all(Option::is_some)
        };
        if full(dataspace) {
            compact_mappings(self, dataspace);
        }
        if full(dataspace) {
            return Err(Error::InvalidState);
        }
        let record = dataspace
            .mappings
            .iter()
            .position(Option::is_none)
            .ok_or(Error::InvalidState)?;
        let page_flags = PageFlags {
            write: flags & map::WRITE != 0,
            execute: flags & map::EXECUTE != 0,
            uncached: dataspace.device,
        };
        self.map_pages(
            pd_ref,
            dataspace.base.address() + offset,
            vaddr,
            pages,
            page_flags,
        )?;
        dataspace.mappings[record] = Some(Mapping {
            pd: pd_ref,
            vaddr,
            pages,
        });
        Ok(())
    }

    /// Maps `pages` pages from `phys` at `vaddr` in `pd_ref`, all or nothing.
    pub fn map_pages(
        &mut self,
        pd_ref: ObjRef,
        phys: u64,
        vaddr: u64,
        pages: u64,
        flags: PageFlags,
    ) -> Result<(), Error> {
        let pd = self.pd(pd_ref).ok_or(Error::InvalidCapability)?;
        if flags.write && flags.execute {
            return Err(Error::InvalidArgument);
        }
        for page in 0..pages {
            if let Err(error) = space::map_page(
                self,
                pd_ref,
                pd.root_table,
                vaddr + page * PAGE,
                phys + page * PAGE,
                flags,
            ) {
                for undo in 0..page {
                    space::unmap_page(pd.root_table, vaddr + undo * PAGE);
                }
                pd.tlb_stale = true;
                return Err(error);
            }
        }
        Ok(())
    }

    fn unmap(&mut self, pd_slot: u64, vaddr: u64, size: u64) -> Result<(), Error> {
        let (pd_ref, pd) = self.own_pd(pd_slot)?;
        let pages = user_range(vaddr, size)?;
        // Skips absent tables: bounded by the tables the Pd has, even for
        // the whole user half (2^35 pages).
        space::unmap_range(pd.root_table, vaddr, pages);
        pd.tlb_stale = true;
        if self.loaded_pd == Some(pd_ref) {
            self.switch_to(pd_ref);
        }
        Ok(())
    }

    fn transfer_quota(&mut self, from: u64, to: u64, ram: u64, caps: u64) -> Result<(), Error> {
        let (from_ref, from) = self.own_pd(from)?;
        let (to_ref, to) = self.own_pd(to)?;
        if !page_aligned(ram) {
            return Err(Error::InvalidArgument);
        }
        if from_ref == to_ref {
            return Ok(());
        }
        if from.ram.available() < ram {
            return Err(Error::RamQuotaExceeded);
        }
        if from.caps.available() < caps {
            return Err(Error::CapQuotaExceeded);
        }
        let _ = from.ram.transfer(&mut to.ram, ram);
        let _ = from.caps.transfer(&mut to.caps, caps);
        Ok(())
    }

    fn start_thread(
        &mut self,
        thread_slot: u64,
        ip: u64,
        sp: u64,
        ipc_buffer: u64,
        argument: u64,
    ) -> Result<(), Error> {
        let (r, object) = self.own_object(thread_slot, ObjectKind::Thread, Rights::CONTROL)?;
        let Object::Thread(thread) = object else {
            return Err(Error::WrongObjectKind);
        };
        if !matches!(thread.state, ThreadState::Inactive | ThreadState::Faulted) {
            return Err(Error::InvalidState);
        }
        if !(USER_MIN..USER_END).contains(&ip) || sp > USER_END {
            return Err(Error::BadAddress);
        }
        if ipc_buffer != 0 {
            let root = self
                .pd(thread.pd)
                .ok_or(Error::InvalidCapability)?
                .root_table;
            if !page_aligned(ipc_buffer)
                || ipc_buffer >= USER_END
                || self.user_page(root, ipc_buffer, true).is_none()
            {
                return Err(Error::BadAddress);
            }
        }
        thread.context = Frame::user(ip, sp, argument);
        thread.ipc_buffer = ipc_buffer;
        self.make_ready(r);
        Ok(())
    }

    fn bind_notification(&mut self, thread_slot: u64, notification_slot: u64) -> Result<(), Error> {
        let (thread_ref, object) =
            self.own_object(thread_slot, ObjectKind::Thread, Rights::CONTROL)?;
        let Object::Thread(thread) = object else {
            return Err(Error::WrongObjectKind);
        };
        let (notification_ref, object) =
            self.own_object(notification_slot, ObjectKind::Notification, Rights::READ)?;
        let Object::Notification(notification) = object else {
            return Err(Error::WrongObjectKind);
        };
        if thread.bound.is_some_and(|b| self.get(b).is_some())
            || notification.bound.is_some_and(|b| self.get(b).is_some())
        {
            return Err(Error::InvalidState);
        }
        thread.bound = Some(notification_ref);
        notification.bound = Some(thread_ref);
        Ok(())
    }

    fn set_fault_endpoint(&mut self, pd_slot: u64, endpoint_slot: u64) -> Result<(), Error> {
        let (_, pd) = self.own_pd(pd_slot)?;
        let cap = self.own_cap(endpoint_slot);
        self.check(&cap, ObjectKind::Endpoint, Rights::WRITE)?;
        pd.fault_endpoint = cap;
        Ok(())
    }

    fn create_irq(
        &mut self,
        platform: u64,
        payer: u64,
        dest: u64,
        line: u64,
        notification_slot: u64,
    ) -> Result<(), Error> {
        self.own_object(platform, ObjectKind::Platform, Rights::CONTROL)?;
        let (payer, _) = self.own_pd(payer)?;
        let me = self.current_pd_ref()?;
        let dest = self.check_free_slot(me, dest)?;
        let line = u8::try_from(line)
            .ok()
            .filter(|&l| usize::from(l) < self.irqs.len())
            .ok_or(Error::InvalidArgument)?;
        let cap = self.own_cap(notification_slot);
        let (notification, _) = self.check(&cap, ObjectKind::Notification, Rights::WRITE)?;
        if self.irqs[usize::from(line)].is_some_and(|r| self.get(r).is_some()) {
            return Err(Error::AlreadyClaimed);
        }
        let badge = if cap.badge == 0 { 1 } else { cap.badge };
        let r = self.install_new(
            payer,
            dest,
            Object::Irq(Irq {
                line,
                notification,
                badge,
            }),
            0,
        )?;
        self.irqs[usize::from(line)] = Some(r);
        crate::arch::interrupts::unmask_line(line);
        Ok(())
    }

    fn ack_irq(&mut self, slot: u64) -> Result<(), Error> {
        let (_, object) = self.own_object(slot, ObjectKind::Irq, Rights::WRITE)?;
        let Object::Irq(irq) = object else {
            return Err(Error::WrongObjectKind);
        };
        crate::arch::interrupts::unmask_line(irq.line);
        Ok(())
    }

    fn create_io_ports(
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
                let (origin, object) = self.check(&cap, ObjectKind::IoPorts, Rights::CONTROL)?;
                let Object::IoPorts(ports) = object else {
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
        let (payer, _) = self.own_pd(payer)?;
        let me = self.current_pd_ref()?;
        let dest = self.check_free_slot(me, dest)?;
        self.install_new(
            payer,
            dest,
            Object::IoPorts(IoPorts {
                range: PortRange {
                    first: first as u16,
                    count: count as u32,
                },
                enabled_in: [None; MAX_PORT_USERS],
                origin,
            }),
            0,
        )?;
        Ok(())
    }

    fn enable_io_ports(&mut self, ports_slot: u64, pd_slot: u64) -> Result<(), Error> {
        let (_, object) = self.own_object(ports_slot, ObjectKind::IoPorts, Rights::WRITE)?;
        let Object::IoPorts(ports) = object else {
            return Err(Error::WrongObjectKind);
        };
        let (pd_ref, pd) = self.own_pd(pd_slot)?;
        let user = match ports.enabled_in.iter().position(|u| *u == Some(pd_ref)) {
            Some(known) => known,
            None => ports
                .enabled_in
                .iter()
                .position(|u| u.is_none_or(|r| self.pd(r).is_none()))
                .ok_or(Error::InvalidState)?,
        };
        if pd.io_bitmap == 0 {
            self.charge(pd_ref, 2 * PAGE)?;
            let Some(base) = self
                .frames
                .allocate_contiguous(2, FrameUse::Data, pd_ref.pfn)
            else {
                self.refund(pd_ref.pfn, 2 * PAGE);
                return Err(Error::OutOfMemory);
            };
            ports::deny_all(io_bitmap(base.0));
            pd.io_bitmap = base.0;
        }
        ports.enabled_in[user] = Some(pd_ref);
        ports::allow(io_bitmap(pd.io_bitmap), ports.range);
        if self.loaded_pd == Some(pd_ref) {
            self.loaded_io_bitmap = 0;
            self.switch_to(pd_ref);
        }
        Ok(())
    }

    fn create_device_dataspace(
        &mut self,
        platform: u64,
        payer: u64,
        dest: u64,
        phys: u64,
        size: u64,
    ) -> Result<(), Error> {
        self.own_object(platform, ObjectKind::Platform, Rights::CONTROL)?;
        let (payer, _) = self.own_pd(payer)?;
        let me = self.current_pd_ref()?;
        let dest = self.check_free_slot(me, dest)?;
        // Checked at full width against RAM, the interrupt controllers (the
        // kernel's) and the CPU's physical address width; the frame number
        // keeps every bit, so the mapping lands exactly where was checked.
        let kernel_mmio = [
            crate::arch::interrupts::LAPIC_BASE,
            crate::arch::interrupts::IOAPIC_BASE,
        ];
        let pages = device_range(
            phys,
            size,
            crate::arch::cpu::physical_address_bits(),
            &self.ram_regions,
            &kernel_mmio,
        )?;
        let dataspace = Dataspace {
            base: Pfn::containing(phys),
            pages,
            device: true,
            kernel_ram: false,
            mappings: [None; MAX_MAPPINGS],
        };
        self.install_new(payer, dest, Object::Dataspace(dataspace), 0)?;
        Ok(())
    }

    fn info(&mut self, selector: u64, argument: u64) -> Result<(), Error> {
        let (first, second) = match selector {
            info::KERNEL_FREE_RAM => (self.frames.free_frames() as u64 * PAGE, 0),
            info::PD_RAM => {
                let (_, object) = self.own_object(argument, ObjectKind::Pd, Rights::NONE)?;
                let Object::Pd(pd) = object else {
                    return Err(Error::WrongObjectKind);
                };
                (pd.ram.limit, pd.ram.used)
            }
            info::PD_CAPS => {
                let (_, object) = self.own_object(argument, ObjectKind::Pd, Rights::NONE)?;
                let Object::Pd(pd) = object else {
                    return Err(Error::WrongObjectKind);
                };
                (pd.caps.limit, pd.caps.used)
            }
            info::DATASPACE_PHYS => {
                let (_, object) = self.own_object(argument, ObjectKind::Dataspace, Rights::DMA)?;
                let Object::Dataspace(dataspace) = object else {
                    return Err(Error::WrongObjectKind);
                };
                (dataspace.base.address(), 0)
            }
            info::DATASPACE_SIZE => {
                let (_, object) = self.own_object(argument, ObjectKind::Dataspace, Rights::NONE)?;
                let Object::Dataspace(dataspace) = object else {
                    return Err(Error::WrongObjectKind);
                };
                (dataspace.pages * PAGE, 0)
            }
            info::TSC_PER_MS => (self.tsc_per_ms, 0),
            info::THREAD_BLOCKED_CALLING => {
                let (_, object) = self.own_object(argument, ObjectKind::Thread, Rights::NONE)?;
                let Object::Thread(thread) = object else {
                    return Err(Error::WrongObjectKind);
                };
                let calling = matches!(
                    thread.state,
                    ThreadState::Sending | ThreadState::AwaitingReply
                );
                (u64::from(calling), 0)
            }
            info::CAP_KIND => {
                let cap = self.own_cap(argument);
                let kind = cap.kind().ok_or(Error::InvalidCapability)?;
                self.check(&cap, kind, Rights::NONE)?;
                (kind as u64, u64::from(cap.rights))
            }
            _ => return Err(Error::InvalidArgument),
        };
        set_results(self, first, second);
        Ok(())
    }

    fn console_write(&mut self, console: u64, len: u64) -> Result<(), Error> {
        self.own_object(console, ObjectKind::Console, Rights::WRITE)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= PAYLOAD_MAX)
            .ok_or(Error::MessageTooLarge)?;
        let (_, thread) = self.current_thread().ok_or(Error::InvalidState)?;
        let root = self.pd(thread.pd).ok_or(Error::InvalidState)?.root_table;
        let buffer = (thread.ipc_buffer != 0)
            .then(|| self.user_page(root, thread.ipc_buffer, false))
            .flatten();
        let phys = buffer.ok_or(Error::BadAddress)?;
        // SAFETY: the IPC buffer page is RAM of a user dataspace (checked
        // just now against the frame table), so the physical window maps
        // it; `len` is within the page.
        let bytes =
            unsafe { core::slice::from_raw_parts(crate::arch::paging::phys_to_virt(phys), len) };
        crate::arch::console::write_bytes(bytes);
        Ok(())
    }
}

/// Drops mapping records whose Pd no longer exists or no longer maps the
/// dataspace there. Bounded by the page tables that exist in each record's
/// range (see `space::for_each_leaf`).
fn compact_mappings(kernel: &Kernel, dataspace: &mut Dataspace) {
    let base = dataspace.base.address();
    let end = base + dataspace.pages * PAGE;
    for record in dataspace.mappings.iter_mut() {
        let Some(mapping) = record else { continue };
        let still_mapped = kernel.pd(mapping.pd).is_some_and(|pd| {
            space::maps_any_of(pd.root_table, mapping.vaddr, mapping.pages, base..end)
        });
        if !still_mapped {
            *record = None;
        }
    }
}

/// A new, not yet started thread in `pd`.
pub fn new_thread(pd: ObjRef, priority: u8) -> Thread {
    Thread {
        pd,
        context: Frame::user(0, 0, 0),
        state: ThreadState::Inactive,
        priority,
        ipc_buffer: 0,
        next: None,
        blocked_on: None,
        message: Default::default(),
        reply_to: None,
        bound: None,
        deadline: 0,
        next_timed: None,
    }
}

/// A new Pd with no quota.
pub fn new_pd(payer: Option<ObjRef>, root_table: u64, pcid: u16) -> Pd {
    Pd {
        ram: Quota::default(),
        caps: Quota::default(),
        payer,
        root_table,
        pcid,
        tlb_stale: true,
        cap_pages: [0; crate::caps::MAX_CAP_PAGES],
        fault_endpoint: Cap::default(),
        io_bitmap: 0,
        objects: 0,
    }
}
