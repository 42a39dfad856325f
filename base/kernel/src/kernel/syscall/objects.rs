//! System calls that create, derive, grant, delete and destroy objects and
//! capabilities, start threads, bind notifications, set fault endpoints and
//! move quota between Pds.

use super::{PAGE, new_pd, new_thread, page_aligned};
use crate::caps::Cap;
use crate::context::Frame;
use crate::frames::{FrameUse, Pfn};
use crate::kernel::object::{
    Dataspace, Endpoint, Kernel, Notification, OBJECT_COST, ObjRef, Object, ThreadState,
};
use crate::kernel::space;
use crate::queue::Queue;
use arbor_abi::{CapSlot, Error, ObjectKind, Rights, USER_END, USER_MIN};

impl Kernel {
    /// Creates an object paid by `payer` and puts a capability to it in the
    /// caller's `dest`; `extra_bytes` more are charged with it.
    pub(crate) fn install_new(
        &mut self,
        payer: ObjRef,
        dest: CapSlot,
        object: Object,
        extra_bytes: u64,
    ) -> Result<ObjRef, Error> {
        let kind = object.kind();
        self.charge(payer, extra_bytes)?;
        let r = match self.new_object(object, Some(payer)) {
            Ok(r) => r,
            Err(error) => {
                self.refund(payer.pfn, extra_bytes);
                return Err(error);
            }
        };
        let me = self.caller_pd()?;
        if let Err(error) = self.install_cap(me, dest, Cap::new(r.pfn.0, r.generation, kind)) {
            self.destroy(r);
            self.refund(payer.pfn, extra_bytes);
            return Err(error);
        }
        Ok(r)
    }

    /// `Create`: a new endpoint, notification, thread, dataspace or Pd.
    pub(crate) fn create(
        &mut self,
        kind: u64,
        payer_slot: u64,
        dest: u64,
        argument: u64,
    ) -> Result<(), Error> {
        let payer = self.own_pd(payer_slot)?;
        let me = self.caller_pd()?;
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
                let r = self.new_dataspace(payer, pages)?;
                let cap = Cap::new(r.pfn.0, r.generation, ObjectKind::Dataspace);
                if let Err(error) = self.install_cap(me, dest, cap) {
                    self.destroy(r);
                    return Err(error);
                }
            }
            Some(ObjectKind::Pd) => {
                // The top-level table and the Pd object: both must fit.
                let available = self
                    .objects
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

    /// A zero-filled dataspace of `pages` contiguous frames, paid by `payer`.
    pub fn new_dataspace(&mut self, payer: ObjRef, pages: u64) -> Result<ObjRef, Error> {
        let bytes = pages.checked_mul(PAGE).ok_or(Error::InvalidArgument)?;
        let available = self
            .objects
            .pd(payer)
            .ok_or(Error::InvalidCapability)?
            .ram
            .available();
        if available < bytes.saturating_add(OBJECT_COST) {
            return Err(Error::RamQuotaExceeded);
        }
        self.charge(payer, bytes)?;
        let Some(base) =
            self.objects
                .frames
                .allocate_contiguous(pages as usize, FrameUse::Data, payer.pfn)
        else {
            self.refund(payer.pfn, bytes);
            return Err(Error::OutOfMemory);
        };
        if let Some(contents) = self.objects.data_mut(base, pages) {
            contents.fill(0);
        }
        let dataspace = Dataspace {
            base,
            pages,
            device: false,
            kernel_ram: false,
            first_mapping: 0,
        };
        self.new_object(Object::Dataspace(dataspace), Some(payer))
            .inspect_err(|_| {
                for page in 0..pages {
                    self.free_frame(base.offset(page));
                }
            })
    }

    /// `Destroy`: the object (never the console, the platform or the caller's own Pd).
    pub(crate) fn destroy_cap(&mut self, slot: u64) -> Result<(), Error> {
        let cap = self.own_cap(slot);
        let kind = cap.kind().ok_or(Error::InvalidCapability)?;
        let r = self.check(&cap, kind, Rights::CONTROL)?;
        if matches!(kind, ObjectKind::Console | ObjectKind::Platform) {
            return Err(Error::InvalidArgument);
        }
        if kind == ObjectKind::Pd && self.current_pd_ref() == Some(r) {
            return Err(Error::InvalidArgument);
        }
        self.destroy(r);
        Ok(())
    }

    /// `Derive`: a copy with fewer rights and perhaps a badge, in the caller's table.
    pub(crate) fn derive(
        &mut self,
        source: u64,
        dest: u64,
        mask: u64,
        badge: u64,
    ) -> Result<(), Error> {
        let cap = self.own_cap(source);
        let kind = cap.kind().ok_or(Error::InvalidCapability)?;
        self.check(&cap, kind, Rights::NONE)?;
        let mask = Rights(u8::try_from(mask & 0xFF).unwrap_or(0));
        let derived = cap.derive(mask, badge)?;
        let me = self.caller_pd()?;
        let dest = self.check_free_slot(me, dest)?;
        self.install_cap(me, dest, derived)
    }

    /// `Delete`: empties one of the caller's slots.
    pub(crate) fn delete(&mut self, slot: u64) -> Result<(), Error> {
        let slot = CapSlot(u32::try_from(slot).map_err(|_| Error::InvalidArgument)?);
        let me = self.caller_pd()?;
        self.delete_cap(me, slot)
    }

    /// `Grant`: a copy (GRANT needed) into another Pd's table.
    pub(crate) fn grant(
        &mut self,
        target: u64,
        source: u64,
        dest: u64,
        mask: u64,
    ) -> Result<(), Error> {
        let target = self.own_pd(target)?;
        let cap = self.own_cap(source);
        let kind = cap.kind().ok_or(Error::InvalidCapability)?;
        self.check(&cap, kind, Rights::GRANT)?;
        let derived = cap.derive(Rights(u8::try_from(mask & 0xFF).unwrap_or(0)), 0)?;
        let dest = self.check_free_slot(target, dest)?;
        self.install_cap(target, dest, derived)
    }

    /// `TransferQuota`: moves RAM and capability quota between two Pds.
    pub(crate) fn transfer_quota(
        &mut self,
        from: u64,
        to: u64,
        ram: u64,
        caps: u64,
    ) -> Result<(), Error> {
        let from_ref = self.own_pd(from)?;
        let to_ref = self.own_pd(to)?;
        if !page_aligned(ram) {
            return Err(Error::InvalidArgument);
        }
        // One Pd on both sides moves nothing (and two `&mut` to it would alias).
        if from_ref == to_ref {
            return Ok(());
        }
        let (from, to) = self
            .objects
            .pds2_mut(from_ref, to_ref)
            .ok_or(Error::InvalidCapability)?;
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

    /// `StartThread`: sets an inactive or faulted thread's registers and IPC
    /// buffer and makes it ready.
    pub(crate) fn start_thread(
        &mut self,
        thread_slot: u64,
        ip: u64,
        sp: u64,
        ipc_buffer: u64,
        argument: u64,
    ) -> Result<(), Error> {
        let r = self.own_object(thread_slot, ObjectKind::Thread, Rights::CONTROL)?;
        let thread = self.objects.thread(r).ok_or(Error::WrongObjectKind)?;
        if !matches!(thread.state, ThreadState::Inactive | ThreadState::Faulted) {
            return Err(Error::InvalidState);
        }
        if !(USER_MIN..USER_END).contains(&ip) || sp > USER_END {
            return Err(Error::BadAddress);
        }
        if ipc_buffer != 0 {
            let root = self
                .objects
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
        let thread = self.objects.thread_mut(r).ok_or(Error::WrongObjectKind)?;
        thread.context = Frame::user(ip, sp, argument);
        thread.ipc_buffer = ipc_buffer;
        thread.buffer_cache = Default::default();
        self.make_ready(r);
        Ok(())
    }

    /// `BindNotification`: the thread's receives also end on the notification.
    pub(crate) fn bind_notification(
        &mut self,
        thread_slot: u64,
        notification_slot: u64,
    ) -> Result<(), Error> {
        let thread_ref = self.own_object(thread_slot, ObjectKind::Thread, Rights::CONTROL)?;
        let notification_ref =
            self.own_object(notification_slot, ObjectKind::Notification, Rights::READ)?;
        let (Some(Object::Thread(thread)), Some(Object::Notification(notification))) = (
            self.objects.get(thread_ref),
            self.objects.get(notification_ref),
        ) else {
            return Err(Error::WrongObjectKind);
        };
        if thread.bound.is_some_and(|b| self.objects.get(b).is_some())
            || notification
                .bound
                .is_some_and(|b| self.objects.get(b).is_some())
        {
            return Err(Error::InvalidState);
        }
        let Some((Object::Thread(thread), Object::Notification(notification))) =
            self.objects.get2_mut(thread_ref, notification_ref)
        else {
            return Err(Error::WrongObjectKind);
        };
        thread.bound = Some(notification_ref);
        notification.bound = Some(thread_ref);
        Ok(())
    }

    /// `SetFaultEndpoint`: where a Pd's faults are reported.
    pub(crate) fn set_fault_endpoint(
        &mut self,
        pd_slot: u64,
        endpoint_slot: u64,
    ) -> Result<(), Error> {
        let pd = self.own_pd(pd_slot)?;
        let cap = self.own_cap(endpoint_slot);
        self.check(&cap, ObjectKind::Endpoint, Rights::WRITE)?;
        self.objects
            .pd_mut(pd)
            .ok_or(Error::InvalidCapability)?
            .fault_endpoint = cap;
        Ok(())
    }
}
