//! Host tests of the kernel's deciding logic: system calls, IPC and
//! destruction run through the real `syscall::dispatch` against a kernel
//! whose physical memory is a buffer (see [`Host`]). The hardware effects
//! land in `hw`'s recorder.

use super::hw::RECORDER;
use super::object::{Kernel, ObjRef, Object, ThreadState};
use super::space;
use super::store::{Objects, PhysWindow};
use super::syscall::{self, new_pd, new_thread};
use crate::caps::{Cap, MAX_SLOTS};
use crate::frames::{FrameInfo, FrameTable, FrameUse, Pfn};
use arbor_abi::{
    CapSlot, Error, FAULT_LABEL, IpcBuffer, MsgInfo, NOTIFICATION_LABEL, ObjectKind, PAYLOAD_MAX,
    Rights, Syscall, info, map, slot,
};
use core::mem::offset_of;

/// One page of pretend RAM.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The first frame of pretend RAM (1 MiB, as on the machine).
const FIRST_PFN: u64 = 0x100;
const PAGE: u64 = 4096;
/// Where test threads' IPC buffers are mapped.
const BUFFER_BASE: u64 = 0x10_0000;

/// A kernel over `frames` frames of pretend RAM, with one Pd ("core")
/// holding all of it and one running thread at the highest priority.
struct Host {
    kernel: Kernel,
    /// Core's Pd.
    pd: ObjRef,
    /// Core's first thread.
    main: ObjRef,
    /// The next free slot in core's table.
    next_slot: u32,
}

impl Host {
    fn new(frames: usize) -> Host {
        // Leaked: the kernel's frame table and window live as long as it.
        let memory = Box::leak(vec![Page([0xA5; 4096]); frames].into_boxed_slice());
        let infos = Box::leak(
            vec![
                FrameInfo {
                    generation: 0,
                    owner: 0,
                    usage: FrameUse::Free,
                };
                frames
            ]
            .into_boxed_slice(),
        );
        // SAFETY: the leaked buffer lives for the rest of the test run and
        // only this window reaches it.
        let window = unsafe {
            PhysWindow::new(
                memory.as_mut_ptr().cast(),
                FIRST_PFN * PAGE,
                frames as u64 * PAGE,
            )
        };
        let objects = Objects::new(FrameTable::new(Pfn(FIRST_PFN), infos), window);
        let mut kernel = Kernel::new(objects, false, heapless::Vec::new(), 1000);
        let root = space::new_root(&mut kernel, None).unwrap();
        let pd = kernel
            .new_object(Object::Pd(new_pd(None, root, 0)), None)
            .unwrap();
        let free = kernel.objects.frames.free_frames() as u64 * PAGE;
        let core = kernel.objects.pd_mut(pd).unwrap();
        core.ram.limit = free;
        core.caps.limit = MAX_SLOTS as u64;
        let main = kernel
            .new_object(
                Object::Thread(new_thread(pd, arbor_abi::MAX_PRIORITY)),
                Some(pd),
            )
            .unwrap();
        for (slot, r, kind) in [
            (slot::OWN_PD, pd, ObjectKind::Pd),
            (slot::OWN_THREAD, main, ObjectKind::Thread),
        ] {
            let cap = Cap::new(r.pfn.0, r.generation, kind);
            kernel.install_cap(pd, slot, cap).unwrap();
        }
        kernel.objects.thread_mut(main).unwrap().state = ThreadState::Runnable;
        kernel.current = Some(main);
        Host {
            kernel,
            pd,
            main,
            next_slot: slot::FIRST_FREE.0,
        }
    }

    fn slot(&mut self) -> u64 {
        self.next_slot += 1;
        u64::from(self.next_slot)
    }

    /// Makes `thread` the running thread and has it make system call `call`.
    /// Returns its result, or None when the thread blocked.
    fn sys_as(
        &mut self,
        thread: ObjRef,
        call: Syscall,
        args: [u64; 6],
    ) -> Option<Result<(), Error>> {
        self.kernel.current = Some(thread);
        let context = &mut self.kernel.objects.thread_mut(thread).unwrap().context;
        context.rax = call as u64;
        [
            context.rdi,
            context.rsi,
            context.rdx,
            context.r10,
            context.r8,
            context.r9,
        ] = args;
        syscall::dispatch(&mut self.kernel);
        let thread = self.kernel.objects.thread(thread).unwrap();
        (thread.state == ThreadState::Runnable).then(|| Error::check(thread.context.rax))
    }

    /// A system call by core's main thread, which must not block.
    fn sys(&mut self, call: Syscall, args: [u64; 6]) -> Result<(), Error> {
        self.sys_as(self.main, call, args)
            .expect("the main thread does not block")
    }

    /// Creates an object of `kind` paid by `payer` into a fresh slot.
    fn create(&mut self, kind: ObjectKind, payer: u64, argument: u64) -> Result<u64, Error> {
        let slot = self.slot();
        self.sys(Syscall::Create, [kind as u64, payer, slot, argument, 0, 0])?;
        Ok(slot)
    }

    /// The object core's `slot` names.
    fn object(&self, slot: u64) -> ObjRef {
        Kernel::cap_ref(&self.kernel.cap(self.pd, CapSlot(slot as u32)))
    }

    /// A started thread in core's Pd (priority 1), with an IPC buffer when
    /// `buffer` (a fresh page mapped for it).
    fn thread(&mut self, buffer: bool) -> (u64, ObjRef) {
        let slot = self
            .create(ObjectKind::Thread, u64::from(slot::OWN_PD.0), 1)
            .unwrap();
        let ipc_buffer = if buffer {
            let vaddr = BUFFER_BASE + u64::from(self.next_slot) * PAGE;
            let ds = self
                .create(ObjectKind::Dataspace, u64::from(slot::OWN_PD.0), PAGE)
                .unwrap();
            let flags = map::READ | map::WRITE;
            self.sys(
                Syscall::Map,
                [u64::from(slot::OWN_PD.0), ds, 0, vaddr, PAGE, flags],
            )
            .unwrap();
            vaddr
        } else {
            0
        };
        self.sys(
            Syscall::StartThread,
            [slot, 0x40_0000, 0x80_0000, ipc_buffer, 0, 0],
        )
        .unwrap();
        (slot, self.object(slot))
    }

    /// The bytes of `thread`'s IPC buffer.
    fn buffer(&mut self, thread: ObjRef) -> &mut IpcBuffer {
        let phys = self.kernel.ipc_buffer(thread, true).unwrap();
        let bytes = self
            .kernel
            .objects
            .data_mut(Pfn::containing(phys), 1)
            .unwrap();
        // SAFETY: a whole page, aligned, and every byte pattern is a valid IpcBuffer.
        unsafe { &mut *(bytes.as_mut_ptr() as *mut IpcBuffer) }
    }

    fn state(&self, thread: ObjRef) -> ThreadState {
        self.kernel.objects.thread(thread).unwrap().state
    }

    fn regs(&self, thread: ObjRef) -> crate::context::Frame {
        self.kernel.objects.thread(thread).unwrap().context
    }

    /// Core's RAM quota: (limit, used).
    fn ram(&mut self) -> (u64, u64) {
        self.sys(
            Syscall::Info,
            [info::PD_RAM, u64::from(slot::OWN_PD.0), 0, 0, 0, 0],
        )
        .unwrap();
        let regs = self.regs(self.main);
        (regs.rdi, regs.rsi)
    }
}

const OWN_PD: u64 = slot::OWN_PD.0 as u64;

fn info(label: u32, payload: u16, caps: u8) -> u64 {
    MsgInfo::new(label, payload, caps).0
}

// ---- IPC ----

#[test]
fn call_waits_for_a_receiver_and_the_reply_carries_words_back() {
    let mut host = Host::new(256);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let badged = host.slot();
    host.sys(
        Syscall::Derive,
        [endpoint, badged, Rights::ALL.0.into(), 0x55, 0, 0],
    )
    .unwrap();
    let (_, server) = host.thread(false);
    let (_, client) = host.thread(false);

    assert_eq!(
        host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]),
        None
    );
    assert_eq!(host.state(server), ThreadState::Receiving);

    let call = host.sys_as(client, Syscall::Call, [badged, info(7, 0, 0), 1, 2, 3, 4]);
    assert_eq!(call, None, "a call blocks until the reply");
    assert_eq!(host.state(client), ThreadState::AwaitingReply);
    assert_eq!(
        host.kernel.current,
        Some(server),
        "the server runs directly"
    );
    let regs = host.regs(server);
    assert_eq!((regs.rax, regs.rdi), (0, 0x55), "result and badge");
    assert_eq!(MsgInfo(regs.rsi).label(), 7);
    assert_eq!([regs.rdx, regs.r10, regs.r8, regs.r9], [1, 2, 3, 4]);

    let reply = host.sys_as(
        server,
        Syscall::ReplyRecv,
        [endpoint, info(8, 0, 0), 9, 8, 7, 6],
    );
    assert_eq!(reply, None, "the server waits for the next message");
    assert_eq!(host.state(client), ThreadState::Runnable);
    let regs = host.regs(client);
    assert_eq!(regs.rax, 0);
    assert_eq!(MsgInfo(regs.rsi).label(), 8);
    assert_eq!([regs.rdx, regs.r10, regs.r8, regs.r9], [9, 8, 7, 6]);
}

#[test]
fn senders_queue_in_order_and_a_receive_takes_the_first() {
    let mut host = Host::new(256);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let (_, server) = host.thread(false);
    let (_, first) = host.thread(false);
    let (_, second) = host.thread(false);
    assert_eq!(
        host.sys_as(first, Syscall::Call, [endpoint, info(1, 0, 0), 11, 0, 0, 0]),
        None
    );
    assert_eq!(
        host.sys_as(
            second,
            Syscall::Send,
            [endpoint, info(2, 0, 0), 22, 0, 0, 0]
        ),
        None
    );
    assert_eq!(host.state(first), ThreadState::Sending);
    assert_eq!(host.state(second), ThreadState::Sending);

    let received = host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]);
    assert_eq!(received, Some(Ok(())), "a waiting sender is taken at once");
    assert_eq!(host.regs(server).rdx, 11);
    assert_eq!(host.state(first), ThreadState::AwaitingReply);

    let next = host.sys_as(
        server,
        Syscall::ReplyRecv,
        [endpoint, info(3, 0, 0), 33, 0, 0, 0],
    );
    assert_eq!(next, Some(Ok(())));
    assert_eq!(host.regs(first).rdx, 33, "the reply went to the caller");
    assert_eq!(host.state(first), ThreadState::Runnable);
    assert_eq!(
        host.regs(server).rdx,
        22,
        "then the second sender's message"
    );
    assert_eq!(
        host.state(second),
        ThreadState::Runnable,
        "a plain send is done"
    );
}

#[test]
fn forged_labels_oversized_messages_and_missing_rights_are_refused() {
    let mut host = Host::new(256);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let read_only = host.slot();
    host.sys(
        Syscall::Derive,
        [endpoint, read_only, Rights::READ.0.into(), 0, 0, 0],
    )
    .unwrap();
    let (_, client) = host.thread(false);
    let call =
        |host: &mut Host, slot, info| host.sys_as(client, Syscall::Call, [slot, info, 0, 0, 0, 0]);
    for label in [FAULT_LABEL, NOTIFICATION_LABEL] {
        assert_eq!(
            call(&mut host, endpoint, info(label, 0, 0)),
            Some(Err(Error::InvalidArgument))
        );
    }
    let too_long = MsgInfo::new(1, PAYLOAD_MAX as u16 + 1, 0).0;
    assert_eq!(
        call(&mut host, endpoint, too_long),
        Some(Err(Error::MessageTooLarge))
    );
    assert_eq!(
        call(&mut host, endpoint, info(1, 16, 0)),
        Some(Err(Error::BadAddress)),
        "a payload needs an IPC buffer"
    );
    assert_eq!(
        call(&mut host, read_only, info(1, 0, 0)),
        Some(Err(Error::MissingRight))
    );
    assert_eq!(
        call(&mut host, 9999, info(1, 0, 0)),
        Some(Err(Error::InvalidCapability))
    );
    let (_, server) = host.thread(false);
    assert_eq!(
        host.sys_as(
            server,
            Syscall::ReplyRecv,
            [endpoint, info(FAULT_LABEL, 0, 0), 0, 0, 0, 0]
        ),
        Some(Err(Error::InvalidArgument)),
        "a reply cannot forge a fault report either"
    );
}

#[test]
fn an_unknown_system_call_is_an_error_value() {
    let mut host = Host::new(64);
    host.kernel
        .objects
        .thread_mut(host.main)
        .unwrap()
        .context
        .rax = 999;
    syscall::dispatch(&mut host.kernel);
    assert_eq!(
        Error::check(host.regs(host.main).rax),
        Err(Error::InvalidSyscall)
    );
}

#[test]
fn payload_and_granted_capabilities_travel_between_ipc_buffers() {
    let mut host = Host::new(256);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let (_, server) = host.thread(true);
    let (_, client) = host.thread(true);
    let gift = host.create(ObjectKind::Notification, OWN_PD, 0).unwrap();
    let no_grant = host.slot();
    host.sys(
        Syscall::Derive,
        [gift, no_grant, Rights::READ.0.into(), 0, 0, 0],
    )
    .unwrap();
    let landing = host.slot();
    let landing2 = host.slot();

    host.buffer(server).receive_slots = [
        CapSlot(landing as u32),
        CapSlot(landing2 as u32),
        CapSlot::NULL,
        CapSlot::NULL,
    ];
    assert_eq!(
        host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]),
        None
    );
    let buffer = host.buffer(client);
    buffer.payload[..5].copy_from_slice(b"hello");
    buffer.send_caps = [
        CapSlot(gift as u32),
        CapSlot(no_grant as u32),
        CapSlot::NULL,
        CapSlot::NULL,
    ];
    assert_eq!(
        host.sys_as(client, Syscall::Call, [endpoint, info(1, 5, 2), 0, 0, 0, 0]),
        None
    );

    let received = MsgInfo(host.regs(server).rsi);
    assert_eq!(received.payload_len(), 5);
    assert_eq!(
        received.caps(),
        1,
        "the capability without GRANT stays behind"
    );
    assert_eq!(&host.buffer(server).payload[..5], b"hello");
    let landed = host.kernel.cap(host.pd, CapSlot(landing as u32));
    assert_eq!(Kernel::cap_ref(&landed), host.object(gift));
    assert!(
        host.kernel
            .cap(host.pd, CapSlot(landing2 as u32))
            .is_empty()
    );
}

#[test]
fn a_bound_notification_ends_a_receive_and_comes_before_messages() {
    let mut host = Host::new(256);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let notification = host.create(ObjectKind::Notification, OWN_PD, 0).unwrap();
    let badged = host.slot();
    host.sys(
        Syscall::Derive,
        [notification, badged, Rights::ALL.0.into(), 0b100, 0, 0],
    )
    .unwrap();
    let (server_slot, server) = host.thread(false);
    host.sys(
        Syscall::BindNotification,
        [server_slot, notification, 0, 0, 0, 0],
    )
    .unwrap();
    assert_eq!(
        host.sys(
            Syscall::BindNotification,
            [server_slot, notification, 0, 0, 0, 0]
        ),
        Err(Error::InvalidState),
        "bound once only"
    );

    assert_eq!(
        host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]),
        None
    );
    host.sys(Syscall::Signal, [badged, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(host.state(server), ThreadState::Runnable);
    let regs = host.regs(server);
    assert_eq!(MsgInfo(regs.rsi).label(), NOTIFICATION_LABEL);
    assert_eq!(regs.rdx, 0b100);

    // A sender waits, and a signal is pending: the signal comes first.
    let (_, client) = host.thread(false);
    assert_eq!(
        host.sys_as(client, Syscall::Send, [endpoint, info(5, 0, 0), 0, 0, 0, 0]),
        None
    );
    host.sys(Syscall::Signal, [notification, 0, 0, 0, 0, 0])
        .unwrap();
    assert_eq!(
        host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]),
        Some(Ok(()))
    );
    assert_eq!(MsgInfo(host.regs(server).rsi).label(), NOTIFICATION_LABEL);
    assert_eq!(
        host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]),
        Some(Ok(()))
    );
    assert_eq!(
        MsgInfo(host.regs(server).rsi).label(),
        5,
        "then the message"
    );
}

#[test]
fn a_timed_wait_ends_with_no_bits_when_the_deadline_passes() {
    let mut host = Host::new(128);
    let notification = host.create(ObjectKind::Notification, OWN_PD, 0).unwrap();
    let (_, waiter) = host.thread(false);
    assert_eq!(
        host.sys_as(waiter, Syscall::Wait, [notification, 10, 0, 0, 0, 0]),
        None
    );
    RECORDER.with(|r| r.borrow_mut().tsc = 5_000);
    host.kernel.expire_timeouts();
    assert_eq!(host.state(waiter), ThreadState::Waiting, "not yet");
    RECORDER.with(|r| r.borrow_mut().tsc = 20_000);
    host.kernel.expire_timeouts();
    assert_eq!(host.state(waiter), ThreadState::Runnable);
    assert_eq!(host.regs(waiter).rdi, 0);
    assert!(host.kernel.timed_waiters.is_none());
}

// ---- destruction ----

#[test]
fn destroying_an_endpoint_wakes_its_callers_with_object_destroyed() {
    let mut host = Host::new(128);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let (_, client) = host.thread(false);
    assert_eq!(
        host.sys_as(client, Syscall::Call, [endpoint, info(1, 0, 0), 0, 0, 0, 0]),
        None
    );
    host.sys(Syscall::Destroy, [endpoint, 0, 0, 0, 0, 0])
        .unwrap();
    assert_eq!(host.state(client), ThreadState::Runnable);
    assert_eq!(
        Error::check(host.regs(client).rax),
        Err(Error::ObjectDestroyed)
    );
    assert_eq!(
        host.sys(Syscall::Info, [info::CAP_KIND, endpoint, 0, 0, 0, 0]),
        Err(Error::InvalidCapability),
        "the capability is stale"
    );
}

#[test]
fn destroying_a_server_thread_wakes_its_caller() {
    let mut host = Host::new(128);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let (server_slot, server) = host.thread(false);
    let (_, client) = host.thread(false);
    assert_eq!(
        host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]),
        None
    );
    assert_eq!(
        host.sys_as(client, Syscall::Call, [endpoint, info(1, 0, 0), 0, 0, 0, 0]),
        None
    );
    host.sys(Syscall::Destroy, [server_slot, 0, 0, 0, 0, 0])
        .unwrap();
    assert_eq!(
        Error::check(host.regs(client).rax),
        Err(Error::ObjectDestroyed)
    );
    assert_eq!(host.kernel.current, Some(host.main));
}

#[test]
fn destroying_a_pd_tree_frees_every_frame_and_refunds_the_payer() {
    let mut host = Host::new(512);
    let free_before = host.kernel.objects.frames.free_frames();
    let (_, used_before) = host.ram();
    let child = host.create(ObjectKind::Pd, OWN_PD, 0).unwrap();
    host.sys(Syscall::TransferQuota, [OWN_PD, child, 64 * PAGE, 64, 0, 0])
        .unwrap();
    // A grandchild paid by the child, with objects and a mapping of its own.
    let grandchild = host.create(ObjectKind::Pd, child, 0).unwrap();
    host.sys(
        Syscall::TransferQuota,
        [child, grandchild, 32 * PAGE, 16, 0, 0],
    )
    .unwrap();
    let endpoint = host.create(ObjectKind::Endpoint, grandchild, 0).unwrap();
    let ds = host
        .create(ObjectKind::Dataspace, grandchild, 4 * PAGE)
        .unwrap();
    host.sys(
        Syscall::Map,
        [grandchild, ds, 0, 0x1000_0000, 4 * PAGE, map::READ],
    )
    .unwrap();
    let thread = host.create(ObjectKind::Thread, child, 0).unwrap();
    let (_, used_during) = host.ram();
    assert!(used_during > used_before);

    host.sys(Syscall::Destroy, [child, 0, 0, 0, 0, 0]).unwrap();
    // Core still holds capability slots for what it created; the frames are back.
    assert_eq!(host.kernel.objects.frames.free_frames(), free_before);
    let (_, used_after) = host.ram();
    assert_eq!(used_after, used_before, "every byte refunded");
    for stale in [child, grandchild, endpoint, ds, thread] {
        assert_eq!(
            host.sys(Syscall::Info, [info::CAP_KIND, stale, 0, 0, 0, 0]),
            Err(Error::InvalidCapability)
        );
    }
}

#[test]
fn a_deep_pd_chain_is_destroyed_without_recursion() {
    let mut host = Host::new(4096);
    let cap_pages = |host: &Host| {
        let pd = host.kernel.objects.pd(host.pd).unwrap();
        pd.cap_pages.iter().filter(|&&p| p != 0).count()
    };
    let free_before = host.kernel.objects.frames.free_frames() + cap_pages(&host);
    let top = host.create(ObjectKind::Pd, OWN_PD, 0).unwrap();
    host.sys(Syscall::TransferQuota, [OWN_PD, top, 3000 * PAGE, 0, 0, 0])
        .unwrap();
    let mut parent = top;
    for _ in 0..1000 {
        let child = host.create(ObjectKind::Pd, parent, 0).unwrap();
        let quota = host
            .kernel
            .objects
            .pd(host.object(parent))
            .unwrap()
            .ram
            .available();
        host.sys(Syscall::TransferQuota, [parent, child, quota, 0, 0, 0])
            .unwrap();
        parent = child;
    }
    host.sys(Syscall::Destroy, [top, 0, 0, 0, 0, 0]).unwrap();
    // Core's capability table grew by the slots it used; all else is back.
    let free_after = host.kernel.objects.frames.free_frames() + cap_pages(&host);
    assert_eq!(free_after, free_before);
}

// ---- system calls ----

#[test]
fn quota_bounds_creation_and_refusals_refund_nothing_twice() {
    let mut host = Host::new(256);
    let child = host.create(ObjectKind::Pd, OWN_PD, 0).unwrap();
    host.sys(Syscall::TransferQuota, [OWN_PD, child, 3 * PAGE, 0, 0, 0])
        .unwrap();
    assert_eq!(
        host.create(ObjectKind::Dataspace, child, 3 * PAGE),
        Err(Error::RamQuotaExceeded),
        "the dataspace and its object do not both fit"
    );
    host.create(ObjectKind::Endpoint, child, 0).unwrap();
    host.create(ObjectKind::Endpoint, child, 0).unwrap();
    host.create(ObjectKind::Endpoint, child, 0).unwrap();
    assert_eq!(
        host.create(ObjectKind::Endpoint, child, 0),
        Err(Error::RamQuotaExceeded)
    );
    let pd = host.kernel.objects.pd(host.object(child)).unwrap();
    assert_eq!((pd.ram.limit, pd.ram.used), (3 * PAGE, 3 * PAGE));
    assert_eq!(
        host.sys(Syscall::TransferQuota, [child, OWN_PD, PAGE, 0, 0, 0]),
        Err(Error::RamQuotaExceeded)
    );
    assert_eq!(
        host.sys(Syscall::TransferQuota, [OWN_PD, OWN_PD, PAGE, 0, 0, 0]),
        Ok(()),
        "to itself: nothing moves"
    );
}

#[test]
fn mappings_are_checked_for_rights_and_write_xor_execute() {
    let mut host = Host::new(256);
    let ds = host
        .create(ObjectKind::Dataspace, OWN_PD, 2 * PAGE)
        .unwrap();
    let read_only = host.slot();
    host.sys(
        Syscall::Derive,
        [ds, read_only, Rights::READ.0.into(), 0, 0, 0],
    )
    .unwrap();
    let map_at = |host: &mut Host, ds, vaddr, size, flags| {
        host.sys(Syscall::Map, [OWN_PD, ds, 0, vaddr, size, flags])
    };
    assert_eq!(
        map_at(
            &mut host,
            ds,
            0x2000_0000,
            PAGE,
            map::WRITE | map::EXECUTE | map::READ
        ),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        map_at(
            &mut host,
            read_only,
            0x2000_0000,
            PAGE,
            map::READ | map::WRITE
        ),
        Err(Error::MissingRight)
    );
    assert_eq!(
        map_at(&mut host, ds, 0x2000_0000, 3 * PAGE, map::READ),
        Err(Error::InvalidArgument),
        "larger than the dataspace"
    );
    assert_eq!(
        map_at(&mut host, ds, arbor_abi::USER_END, PAGE, map::READ),
        Err(Error::BadAddress)
    );
    map_at(&mut host, ds, 0x2000_0000, 2 * PAGE, map::READ).unwrap();
    assert_eq!(
        map_at(&mut host, ds, 0x2000_1000, PAGE, map::READ),
        Err(Error::AlreadyMapped),
        "the earlier mapping stays, the new one is undone"
    );
    let root = host.kernel.objects.pd(host.pd).unwrap().root_table;
    assert!(host.kernel.user_page(root, 0x2000_0000, false).is_some());
    assert!(
        host.kernel.user_page(root, 0x2000_0000, true).is_none(),
        "read-only"
    );
    host.sys(Syscall::Unmap, [OWN_PD, 0x2000_0000, 2 * PAGE, 0, 0, 0])
        .unwrap();
    assert!(host.kernel.user_page(root, 0x2000_0000, false).is_none());
}

#[test]
fn console_writes_come_from_the_ipc_buffer() {
    let mut host = Host::new(128);
    let console = host.kernel.new_object(Object::Console, None).unwrap();
    let cap = Cap::new(console.pfn.0, console.generation, ObjectKind::Console);
    host.kernel
        .install_cap(host.pd, slot::CONSOLE, cap)
        .unwrap();
    let (_, writer) = host.thread(true);
    host.buffer(writer).payload[..3].copy_from_slice(b"hi\n");
    let console_slot = u64::from(slot::CONSOLE.0);
    assert_eq!(
        host.sys_as(writer, Syscall::ConsoleWrite, [console_slot, 3, 0, 0, 0, 0]),
        Some(Ok(()))
    );
    assert!(RECORDER.with(|r| r.borrow().console.ends_with("hi\n")));
    assert_eq!(
        host.sys_as(
            writer,
            Syscall::ConsoleWrite,
            [console_slot, PAYLOAD_MAX as u64 + 1, 0, 0, 0, 0]
        ),
        Some(Err(Error::MessageTooLarge))
    );
    let (_, bufferless) = host.thread(false);
    assert_eq!(
        host.sys_as(
            bufferless,
            Syscall::ConsoleWrite,
            [console_slot, 3, 0, 0, 0, 0]
        ),
        Some(Err(Error::BadAddress))
    );
}

// ---- the store ----

#[test]
fn the_same_object_twice_is_refused_not_aliased() {
    let mut host = Host::new(64);
    let (main, pd) = (host.main, host.pd);
    assert!(host.kernel.objects.get2_mut(main, main).is_none());
    assert!(host.kernel.objects.threads2_mut(main, main).is_none());
    assert!(host.kernel.objects.get2_mut(main, pd).is_some());
    assert!(
        host.kernel.objects.threads2_mut(main, pd).is_none(),
        "a Pd is no thread"
    );
}

#[test]
fn frames_are_only_cast_to_what_the_frame_table_says_they_hold() {
    let host = Host::new(64);
    let main = host.main;
    let root = host.kernel.objects.pd(host.pd).unwrap().root_table;
    assert!(host.kernel.objects.table(root).is_some());
    assert!(
        host.kernel.objects.table(main.pfn.address()).is_none(),
        "an object is no page table"
    );
    assert!(host.kernel.objects.cap_page(main.pfn).is_none());
    assert!(
        host.kernel
            .objects
            .user_bytes(main.pfn.address(), 8)
            .is_none()
    );
    assert!(host.kernel.objects.user_bytes(root, 8).is_none());
    let stale = ObjRef {
        pfn: main.pfn,
        generation: main.generation + 1,
    };
    assert!(host.kernel.objects.get(stale).is_none());
    assert!(
        host.kernel
            .objects
            .get(ObjRef {
                pfn: Pfn(1),
                generation: 0
            })
            .is_none(),
        "outside RAM"
    );
}

#[test]
fn ipc_buffer_offsets_match_the_abi() {
    // The slot lists the kernel reads lie inside the page, after the payload.
    assert!(offset_of!(IpcBuffer, receive_slots) + 16 <= 4096);
    assert!(offset_of!(IpcBuffer, send_caps) >= PAYLOAD_MAX);
}

// ---- mapping records (hole 13) ----

impl Host {
    /// A child Pd of core with `pages` pages of RAM quota.
    fn child_pd(&mut self, pages: u64) -> u64 {
        let pd = self.create(ObjectKind::Pd, OWN_PD, 0).unwrap();
        self.sys(Syscall::TransferQuota, [OWN_PD, pd, pages * PAGE, 0, 0, 0])
            .unwrap();
        pd
    }

    /// Records in use by the Pd in core's `slot`.
    fn records_of(&self, slot: u64) -> usize {
        let pd = self.object(slot);
        self.kernel
            .objects
            .pd(pd)
            .unwrap()
            .record_pages
            .iter()
            .filter(|&&page| page != 0)
            .flat_map(|&page| {
                (0..super::mappings::RECORDS_PER_PAGE)
                    .map(move |i| super::mappings::record_id(Pfn(page), i))
            })
            .filter(|&id| self.kernel.objects.record(id).is_some_and(|r| !r.is_free()))
            .count()
    }

    fn mapped(&self, slot: u64, vaddr: u64) -> bool {
        let root = self
            .kernel
            .objects
            .pd(self.object(slot))
            .unwrap()
            .root_table;
        space::translate(&self.kernel.objects, root, vaddr).is_some()
    }
}

#[test]
fn many_pds_mapping_a_shared_dataspace_never_block_a_sibling() {
    let mut host = Host::new(1024);
    let shared = host.create(ObjectKind::Dataspace, OWN_PD, PAGE).unwrap();
    // The old kernel kept 96 records in the dataspace, 16 per Pd: seven
    // Pds of one tree filled them and nobody else could map it.
    let attackers: Vec<u64> = (0..8).map(|_| host.child_pd(16)).collect();
    for &attacker in &attackers {
        for index in 0..40 {
            let vaddr = 0x4000_0000 + index * PAGE;
            host.sys(Syscall::Map, [attacker, shared, 0, vaddr, PAGE, map::READ])
                .unwrap();
        }
        assert_eq!(host.records_of(attacker), 40);
    }
    let victim = host.child_pd(16);
    assert_eq!(
        host.sys(
            Syscall::Map,
            [victim, shared, 0, 0x4000_0000, PAGE, map::READ]
        ),
        Ok(()),
        "320 mappings by others leave the victim's map alone"
    );
    host.sys(Syscall::Destroy, [shared, 0, 0, 0, 0, 0]).unwrap();
    for &pd in attackers.iter().chain([&victim]) {
        assert!(!host.mapped(pd, 0x4000_0000), "revoked everywhere");
        assert_eq!(host.records_of(pd), 0, "and the records are free again");
    }
}

#[test]
fn mapping_records_are_paid_by_the_mapping_pd_and_bounded_per_pd() {
    let mut host = Host::new(1024);
    let ds = host.create(ObjectKind::Dataspace, OWN_PD, PAGE).unwrap();
    // Three page tables and no room for a record page.
    let poor = host.child_pd(3);
    assert_eq!(
        host.sys(Syscall::Map, [poor, ds, 0, 0x4000_0000, PAGE, map::READ]),
        Err(Error::RamQuotaExceeded)
    );
    let rich = host.child_pd(64);
    let (_, core_used) = host.ram();
    for index in 0..super::mappings::MAX_RECORDS as u64 {
        let vaddr = 0x4000_0000 + index * PAGE;
        host.sys(Syscall::Map, [rich, ds, 0, vaddr, PAGE, map::READ])
            .unwrap();
    }
    let limit = super::mappings::MAX_RECORDS as u64;
    assert_eq!(
        host.sys(
            Syscall::Map,
            [rich, ds, 0, 0x4000_0000 + limit * PAGE, PAGE, map::READ]
        ),
        Err(Error::InvalidState),
        "a Pd's own limit"
    );
    let (_, core_used_after) = host.ram();
    assert_eq!(
        core_used_after, core_used,
        "the dataspace's payer paid nothing"
    );
    let pd = host.kernel.objects.pd(host.object(rich)).unwrap();
    assert!(
        pd.ram.used >= 16 * PAGE,
        "the child paid its 16 record pages"
    );
}

#[test]
fn unmapping_cuts_records_so_remapping_never_piles_them_up() {
    let mut host = Host::new(512);
    let ds = host
        .create(ObjectKind::Dataspace, OWN_PD, 8 * PAGE)
        .unwrap();
    let pd = host.child_pd(32);
    let base = 0x4000_0000;
    for _ in 0..3000 {
        host.sys(Syscall::Map, [pd, ds, 0, base, 8 * PAGE, map::READ])
            .unwrap();
        host.sys(Syscall::Unmap, [pd, base, 8 * PAGE, 0, 0, 0])
            .unwrap();
    }
    assert_eq!(host.records_of(pd), 0);
    host.sys(Syscall::Map, [pd, ds, 0, base, 8 * PAGE, map::READ])
        .unwrap();
    // A hole in the middle: the record is cut in two.
    host.sys(Syscall::Unmap, [pd, base + 2 * PAGE, 3 * PAGE, 0, 0, 0])
        .unwrap();
    assert_eq!(host.records_of(pd), 2);
    // Mapping into the hole: a third record, the others untouched.
    host.sys(
        Syscall::Map,
        [pd, ds, 0, base + 2 * PAGE, 3 * PAGE, map::READ],
    )
    .unwrap();
    assert_eq!(host.records_of(pd), 3);
    host.sys(Syscall::Destroy, [ds, 0, 0, 0, 0, 0]).unwrap();
    for page in 0..8 {
        assert!(!host.mapped(pd, base + page * PAGE));
    }
    assert_eq!(host.records_of(pd), 0);
}

#[test]
fn a_destroyed_mapping_pd_leaves_no_record_behind() {
    let mut host = Host::new(512);
    let ds = host.create(ObjectKind::Dataspace, OWN_PD, PAGE).unwrap();
    let first = host.child_pd(16);
    let second = host.child_pd(16);
    for pd in [first, second] {
        host.sys(Syscall::Map, [pd, ds, 0, 0x4000_0000, PAGE, map::READ])
            .unwrap();
    }
    host.sys(Syscall::Destroy, [first, 0, 0, 0, 0, 0]).unwrap();
    // The freed record page may be reused for anything; the list must not
    // reach into it.
    let reuse = host.child_pd(16);
    host.create(ObjectKind::Endpoint, reuse, 0).unwrap();
    let ds_ref = host.object(ds);
    let first_record = host.kernel.objects.dataspace(ds_ref).unwrap().first_mapping;
    let record = host.kernel.objects.record(first_record).copied().unwrap();
    assert_eq!(
        (record.next, record.prev),
        (0, 0),
        "only the second Pd's record is left"
    );
    host.sys(Syscall::Destroy, [ds, 0, 0, 0, 0, 0]).unwrap();
    assert!(!host.mapped(second, 0x4000_0000));
}

// ---- the IPC fast path against the slow path ----

use crate::context::{Frame, SYSCALL_MARK};

impl Host {
    /// A system call entered as the target's entry does: the fast path
    /// first (when `fast`), else the slow path; returns the registers the
    /// CPU resumes with and whether the fast path took it.
    fn enter(
        &mut self,
        thread: ObjRef,
        call: Syscall,
        args: [u64; 6],
        fast: bool,
    ) -> (Frame, bool) {
        // As the scheduler would have: the running thread is in no run queue.
        self.kernel.unqueue_ready(thread);
        self.kernel.current = Some(thread);
        let mut frame = self.regs(thread);
        frame.vector = SYSCALL_MARK;
        frame.rax = call as u64;
        [
            frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
        ] = args;
        if fast && self.kernel.ipc_fastpath(&mut frame) {
            return (frame, true);
        }
        self.kernel.objects.thread_mut(thread).unwrap().context = frame;
        syscall::dispatch(&mut self.kernel);
        assert!(self.kernel.next_context(&mut frame), "someone runs");
        (frame, false)
    }
}

/// What a user can tell from a resumed thread: the registers a system
/// call keeps or returns.
fn visible(frame: &Frame) -> [u64; 16] {
    [
        frame.rax,
        frame.rdi,
        frame.rsi,
        frame.rdx,
        frame.r10,
        frame.r8,
        frame.r9,
        frame.rbx,
        frame.rbp,
        frame.r12,
        frame.r13,
        frame.r14,
        frame.r15,
        frame.rip,
        frame.rsp,
        frame.rflags,
    ]
}

/// Two kernels built the same way, one taking the fast path, one not.
struct Twins {
    fast: Host,
    slow: Host,
    threads: Vec<ObjRef>,
    fast_taken: usize,
    /// The registers the last step resumed a thread with.
    resumed: Frame,
}

impl Twins {
    fn new(setup: impl Fn(&mut Host) -> Vec<ObjRef>) -> Twins {
        let mut fast = Host::new(512);
        let mut slow = Host::new(512);
        let threads = setup(&mut fast);
        assert_eq!(threads, setup(&mut slow), "built alike");
        Twins {
            fast,
            slow,
            threads,
            fast_taken: 0,
            resumed: Frame::default(),
        }
    }

    /// Runs one system call on both and checks that nothing a thread or
    /// the scheduler can see differs.
    fn step(&mut self, thread: ObjRef, call: Syscall, args: [u64; 6]) -> bool {
        let (fast_frame, took) = self.fast.enter(thread, call, args, true);
        let (slow_frame, _) = self.slow.enter(thread, call, args, false);
        self.fast_taken += usize::from(took);
        self.resumed = fast_frame;
        assert_eq!(
            visible(&fast_frame),
            visible(&slow_frame),
            "{call:?}: resumed registers"
        );
        assert_eq!(
            self.fast.kernel.current, self.slow.kernel.current,
            "{call:?}: who runs"
        );
        assert_eq!(
            self.fast.kernel.ready, self.slow.kernel.ready,
            "{call:?}: run queues"
        );
        for &t in &self.threads {
            let (f, s) = (
                self.fast.kernel.objects.thread(t).unwrap(),
                self.slow.kernel.objects.thread(t).unwrap(),
            );
            assert_eq!(
                (f.state, f.blocked_on, f.reply_to, f.next),
                (s.state, s.blocked_on, s.reply_to, s.next),
                "{call:?}: thread {t:?}"
            );
        }
        took
    }
}

/// A server thread in a child Pd that holds the endpoint in its slot 20,
/// and two client threads in core: [server, client, other client].
fn client_and_server(host: &mut Host) -> Vec<ObjRef> {
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let badged = host.slot();
    host.sys(
        Syscall::Derive,
        [endpoint, badged, Rights::ALL.0.into(), 0xB0B, 0, 0],
    )
    .unwrap();
    let read_only = host.slot();
    host.sys(
        Syscall::Derive,
        [badged, read_only, Rights::READ.0.into(), 0, 0, 0],
    )
    .unwrap();
    let child = host.child_pd(64);
    host.sys(Syscall::TransferQuota, [OWN_PD, child, 0, 32, 0, 0])
        .unwrap();
    host.sys(
        Syscall::Grant,
        [child, endpoint, 20, Rights::ALL.0.into(), 0, 0],
    )
    .unwrap();
    let server_slot = host.create(ObjectKind::Thread, child, 1).unwrap();
    assert_eq!(
        (badged, read_only, server_slot),
        (CLIENT_EP, CLIENT_EP_READ_ONLY, SERVER_SLOT)
    );
    host.sys(
        Syscall::StartThread,
        [server_slot, 0x40_0000, 0x80_0000, 0, 0, 0],
    )
    .unwrap();
    let server = host.object(server_slot);
    let (_, client) = host.thread(false);
    let (_, other) = host.thread(false);
    vec![server, client, other]
}

/// The server's endpoint slot (in its own Pd's table).
const SERVER_EP: u64 = 20;
/// Core's slots made by `client_and_server`.
const CLIENT_EP: u64 = 18; // the badged capability
const CLIENT_EP_READ_ONLY: u64 = 19;
const SERVER_SLOT: u64 = 21;
const NOTIFICATION_SLOT: u64 = 24;

#[test]
fn the_fast_path_does_what_the_slow_path_does_for_call_and_reply() {
    let mut twins = Twins::new(|host| {
        let threads = client_and_server(host);
        let notification = host.create(ObjectKind::Notification, OWN_PD, 0).unwrap();
        assert_eq!(notification, NOTIFICATION_SLOT);
        threads
    });
    let [server, client, other] = twins.threads[..] else {
        unreachable!()
    };
    // The other client waits elsewhere: a ready thread of the caller's
    // priority would run before a replied-to caller (see the next test).
    assert!(!twins.step(other, Syscall::Wait, [NOTIFICATION_SLOT, 0, 0, 0, 0, 0]));
    twins.step(server, Syscall::Recv, [SERVER_EP, 0, 0, 0, 0, 0]);
    for round in 0..20u64 {
        let words = [round, round * 3, u64::MAX - round, 7];
        let call = twins.step(
            client,
            Syscall::Call,
            [
                CLIENT_EP,
                info(5, 0, 0),
                words[0],
                words[1],
                words[2],
                words[3],
            ],
        );
        assert!(call, "round {round}: the call takes the fast path");
        assert_eq!(twins.fast.kernel.current, Some(server));
        let resumed = twins.resumed;
        assert_eq!(
            (resumed.rdi, MsgInfo(resumed.rsi).label()),
            (0xB0B, 5),
            "badge and label"
        );
        assert_eq!([resumed.rdx, resumed.r10, resumed.r8, resumed.r9], words);
        let reply = twins.step(
            server,
            Syscall::ReplyRecv,
            [SERVER_EP, info(6, 0, 0), round + 1, 0, 0, 0],
        );
        assert!(reply, "round {round}: the reply takes the fast path");
        assert_eq!(twins.fast.kernel.current, Some(client));
    }
    assert_eq!(twins.fast_taken, 40);
    let resumed = twins.resumed;
    assert_eq!(
        (
            resumed.rax,
            resumed.rdi,
            MsgInfo(resumed.rsi).label(),
            resumed.rdx
        ),
        (0, 0, 6, 20)
    );
}

#[test]
fn the_fast_path_declines_what_it_must_not_carry() {
    let mut twins = Twins::new(client_and_server);
    let [server, client, other] = twins.threads[..] else {
        unreachable!()
    };
    twins.step(server, Syscall::Recv, [SERVER_EP, 0, 0, 0, 0, 0]);
    let declined = [
        [CLIENT_EP, info(5, 8, 0), 0, 0, 0, 0],           // a payload
        [CLIENT_EP, info(5, 0, 1), 0, 0, 0, 0],           // a capability
        [CLIENT_EP, info(FAULT_LABEL, 0, 0), 0, 0, 0, 0], // a kernel label
        [CLIENT_EP, info(NOTIFICATION_LABEL, 0, 0), 0, 0, 0, 0],
        [CLIENT_EP_READ_ONLY, info(5, 0, 0), 0, 0, 0, 0], // no WRITE
        [9999, info(5, 0, 0), 0, 0, 0, 0],                // no capability
        [u64::MAX, info(5, 0, 0), 0, 0, 0, 0],
    ];
    for args in declined {
        assert!(!twins.step(client, Syscall::Call, args), "{args:?}");
        assert_eq!(
            twins.fast.kernel.current,
            Some(client),
            "refused, the caller runs on"
        );
    }
    // A thread of higher priority than the server is ready: the slow path
    // runs it first, so the fast path must not switch to the server.
    let high = {
        let mut started = None;
        for host in [&mut twins.fast, &mut twins.slow] {
            let slot = host.create(ObjectKind::Thread, OWN_PD, 2).unwrap();
            host.sys(Syscall::StartThread, [slot, 0x40_0000, 0x80_0000, 0, 0, 0])
                .unwrap();
            started = Some(host.object(slot));
        }
        started.unwrap()
    };
    twins.threads.push(high);
    assert!(!twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0), 1, 2, 3, 4]
    ));
    assert_eq!(twins.fast.kernel.current, Some(high));
    // The server got the message anyway (queued behind the higher thread).
    assert_eq!(twins.fast.regs(server).rdx, 1);
    // Its reply with another caller queued as sender: slow path.
    twins.step(other, Syscall::Call, [CLIENT_EP, info(9, 0, 0), 9, 0, 0, 0]);
    assert!(!twins.step(
        server,
        Syscall::ReplyRecv,
        [SERVER_EP, info(6, 0, 0), 0, 0, 0, 0]
    ));
}

#[test]
fn the_fast_path_leaves_a_pending_bound_notification_to_the_slow_path() {
    let mut twins = Twins::new(|host| {
        let threads = client_and_server(host);
        let notification = host.create(ObjectKind::Notification, OWN_PD, 0).unwrap();
        assert_eq!(notification, NOTIFICATION_SLOT);
        host.sys(
            Syscall::BindNotification,
            [SERVER_SLOT, notification, 0, 0, 0, 0],
        )
        .unwrap();
        threads
    });
    let [server, client, _] = twins.threads[..] else {
        unreachable!()
    };
    twins.step(server, Syscall::Recv, [SERVER_EP, 0, 0, 0, 0, 0]);
    assert!(twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0), 0, 0, 0, 0]
    ));
    // Signalled while the server works on the call.
    for host in [&mut twins.fast, &mut twins.slow] {
        let notification = host.object(NOTIFICATION_SLOT);
        host.kernel.signal_object(notification, 0b10);
    }
    assert!(!twins.step(
        server,
        Syscall::ReplyRecv,
        [SERVER_EP, info(6, 0, 0), 0, 0, 0, 0]
    ));
    let regs = twins.fast.regs(server);
    assert_eq!(
        (MsgInfo(regs.rsi).label(), regs.rdx),
        (NOTIFICATION_LABEL, 0b10)
    );
    assert_eq!(
        twins.fast.state(client),
        ThreadState::Runnable,
        "the reply went out"
    );
}

#[test]
fn range_walks_cross_page_table_boundaries_exactly() {
    let mut host = Host::new(512);
    let ds = host
        .create(ObjectKind::Dataspace, OWN_PD, 8 * PAGE)
        .unwrap();
    // Eight pages across a 2 MiB boundary (two last-level tables) and a
    // 1 GiB one (two middle-level tables), each mapped in two halves.
    for boundary in [0x4020_0000u64, 0x8000_0000] {
        let base = boundary - 4 * PAGE;
        host.sys(Syscall::Map, [OWN_PD, ds, 0, base, 8 * PAGE, map::READ])
            .unwrap();
        // Unmap the middle four pages, two on each side of the boundary.
        host.sys(Syscall::Unmap, [OWN_PD, base + 2 * PAGE, 4 * PAGE, 0, 0, 0])
            .unwrap();
        let mapped: Vec<bool> = (0..8)
            .map(|p| host.mapped(OWN_PD, base + p * PAGE))
            .collect();
        assert_eq!(mapped, [true, true, false, false, false, false, true, true]);
        assert_eq!(host.records_of(OWN_PD), 2, "the record was cut in two");
        host.sys(Syscall::Unmap, [OWN_PD, base, 8 * PAGE, 0, 0, 0])
            .unwrap();
        assert_eq!(host.records_of(OWN_PD), 0);
    }
    // A walk over the whole user half finds nothing left and ends.
    host.sys(
        Syscall::Unmap,
        [
            OWN_PD,
            arbor_abi::USER_MIN,
            arbor_abi::USER_END - arbor_abi::USER_MIN,
            0,
            0,
            0,
        ],
    )
    .unwrap();
}

/// Whether the recorder has IOAPIC input `line` unmasked.
fn unmasked(line: u8) -> bool {
    RECORDER.with(|r| r.borrow().unmasked & (1 << line) != 0)
}

/// The bits waiting in the notification in `slot`.
fn notification_word(host: &Host, slot: u64) -> u64 {
    match host.kernel.objects.get(host.object(slot)) {
        Some(Object::Notification(notification)) => notification.word,
        _ => panic!("not a notification"),
    }
}

#[test]
fn a_shared_line_is_unmasked_only_after_every_sharer_acknowledged() {
    let mut host = Host::new(256);
    let platform = host.slot();
    let r = host.kernel.new_object(Object::Platform, None).unwrap();
    let cap = Cap::new(r.pfn.0, r.generation, ObjectKind::Platform);
    host.kernel
        .install_cap(host.pd, CapSlot(platform as u32), cap)
        .unwrap();
    let own = u64::from(slot::OWN_PD.0);
    let [root_signal, a_signal, b_signal] =
        [0; 3].map(|_| host.create(ObjectKind::Notification, own, 0).unwrap());
    let (root, a, b) = (host.slot(), host.slot(), host.slot());
    host.sys(
        Syscall::CreateIrq,
        [platform, own, root, 20, root_signal, 0],
    )
    .unwrap();
    assert!(unmasked(20));
    // One claim per line from the Platform capability.
    let again = host.slot();
    assert_eq!(
        host.sys(Syscall::CreateIrq, [platform, own, again, 20, a_signal, 0]),
        Err(Error::AlreadyClaimed)
    );
    // Sharers come from the line's Irq object, for its own line only.
    assert_eq!(
        host.sys(Syscall::CreateIrq, [root, own, a, 21, a_signal, 0]),
        Err(Error::InvalidArgument)
    );
    host.sys(Syscall::CreateIrq, [root, own, a, 20, a_signal, 0])
        .unwrap();
    host.sys(Syscall::CreateIrq, [root, own, b, 20, b_signal, 0])
        .unwrap();
    // The line fires: both sharers are signalled, the delegated root is not.
    super::hw::mask_line(20);
    host.kernel.line_fired(20);
    assert_eq!(notification_word(&host, root_signal), 0);
    assert_ne!(notification_word(&host, a_signal), 0);
    assert_ne!(notification_word(&host, b_signal), 0);
    host.sys(Syscall::AckIrq, [a, 0, 0, 0, 0, 0]).unwrap();
    assert!(!unmasked(20), "b has not acknowledged yet");
    host.sys(Syscall::AckIrq, [b, 0, 0, 0, 0, 0]).unwrap();
    assert!(unmasked(20));
    // A sharer that dies pending does not keep the line masked for the rest.
    super::hw::mask_line(20);
    host.kernel.line_fired(20);
    host.sys(Syscall::AckIrq, [a, 0, 0, 0, 0, 0]).unwrap();
    assert!(!unmasked(20));
    host.sys(Syscall::Destroy, [b, 0, 0, 0, 0, 0]).unwrap();
    assert!(unmasked(20));
    // With every listener gone the line is masked.
    host.sys(Syscall::Destroy, [a, 0, 0, 0, 0, 0]).unwrap();
    assert!(!unmasked(20));
}

/// The endpoint's own slot in core, made by `client_and_server`.
const ENDPOINT_SLOT: u64 = 17;

/// A fast round trip between `client` and `server` (the server waits).
fn fast_round_trip(twins: &mut Twins, client: ObjRef, server: ObjRef, word: u64) {
    assert!(twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0), word, 0, 0, 0]
    ));
    assert!(twins.step(
        server,
        Syscall::ReplyRecv,
        [SERVER_EP, info(6, 0, 0), word, 0, 0, 0]
    ));
}

#[test]
fn the_fast_path_sees_a_replaced_deleted_or_destroyed_capability_at_once() {
    let mut twins = Twins::new(|host| {
        let threads = client_and_server(host);
        let notification = host.create(ObjectKind::Notification, OWN_PD, 0).unwrap();
        assert_eq!(notification, NOTIFICATION_SLOT);
        threads
    });
    let [server, client, other] = twins.threads[..] else {
        unreachable!()
    };
    assert!(!twins.step(other, Syscall::Wait, [NOTIFICATION_SLOT, 0, 0, 0, 0, 0]));
    twins.step(server, Syscall::Recv, [SERVER_EP, 0, 0, 0, 0, 0]);
    // Both threads' capability caches now hold the endpoint.
    fast_round_trip(&mut twins, client, server, 1);
    fast_round_trip(&mut twins, client, server, 2);

    // The client's slot gets a capability with another badge: the next
    // call carries the new badge, not the one the cache saw.
    for host in [&mut twins.fast, &mut twins.slow] {
        host.sys(Syscall::Delete, [CLIENT_EP, 0, 0, 0, 0, 0])
            .unwrap();
        host.sys(
            Syscall::Derive,
            [
                ENDPOINT_SLOT,
                CLIENT_EP,
                Rights::WRITE.0.into(),
                0xCAFE,
                0,
                0,
            ],
        )
        .unwrap();
    }
    assert!(twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0), 3, 0, 0, 0]
    ));
    assert_eq!(twins.resumed.rdi, 0xCAFE, "the badge of the new capability");
    assert!(twins.step(
        server,
        Syscall::ReplyRecv,
        [SERVER_EP, info(6, 0, 0), 3, 0, 0, 0]
    ));

    // Deleted: refused, by the slow path, on both.
    for host in [&mut twins.fast, &mut twins.slow] {
        host.sys(Syscall::Delete, [CLIENT_EP, 0, 0, 0, 0, 0])
            .unwrap();
    }
    assert!(!twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0), 4, 0, 0, 0]
    ));
    assert_eq!(twins.resumed.rax, Error::InvalidCapability as u64);

    // A capability again, used once more, then the endpoint destroyed
    // while both caches hold it: refused too.
    for host in [&mut twins.fast, &mut twins.slow] {
        host.sys(
            Syscall::Derive,
            [ENDPOINT_SLOT, CLIENT_EP, Rights::ALL.0.into(), 0xB0B, 0, 0],
        )
        .unwrap();
    }
    fast_round_trip(&mut twins, client, server, 5);
    for host in [&mut twins.fast, &mut twins.slow] {
        host.sys(Syscall::Destroy, [ENDPOINT_SLOT, 0, 0, 0, 0, 0])
            .unwrap();
    }
    assert!(!twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0), 6, 0, 0, 0]
    ));
    assert_eq!(twins.resumed.rax, Error::InvalidCapability as u64);
}

#[test]
fn the_fast_path_leaves_a_message_word_with_bits_above_the_label_to_the_slow_path() {
    let mut twins = Twins::new(client_and_server);
    let [server, client, _] = twins.threads[..] else {
        unreachable!()
    };
    twins.step(server, Syscall::Recv, [SERVER_EP, 0, 0, 0, 0, 0]);
    assert!(!twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0) | 1 << 60, 7, 0, 0, 0]
    ));
    assert_eq!(twins.fast.kernel.current, Some(server));
    assert_eq!(
        MsgInfo(twins.resumed.rsi).0,
        info(5, 0, 0),
        "the label alone"
    );
}

#[test]
fn the_fast_path_flushes_a_pd_whose_mappings_changed_since_it_last_ran() {
    let mut twins = Twins::new(|host| {
        let threads = client_and_server(host);
        let notification = host.create(ObjectKind::Notification, OWN_PD, 0).unwrap();
        assert_eq!(notification, NOTIFICATION_SLOT);
        threads
    });
    let [server, client, other] = twins.threads[..] else {
        unreachable!()
    };
    assert!(!twins.step(other, Syscall::Wait, [NOTIFICATION_SLOT, 0, 0, 0, 0, 0]));
    twins.step(server, Syscall::Recv, [SERVER_EP, 0, 0, 0, 0, 0]);
    // The server's address-space cache is filled.
    fast_round_trip(&mut twins, client, server, 1);
    fast_round_trip(&mut twins, client, server, 2);
    let child_pd = twins.fast.kernel.objects.thread(server).unwrap().pd;
    // An Unmap in the server's Pd owes it a TLB flush.
    for host in [&mut twins.fast, &mut twins.slow] {
        host.sys(Syscall::Unmap, [20, 0x4000_0000, PAGE, 0, 0, 0])
            .unwrap();
        assert!(host.kernel.objects.pd(child_pd).unwrap().tlb_stale);
    }
    assert!(twins.step(
        client,
        Syscall::Call,
        [CLIENT_EP, info(5, 0, 0), 3, 0, 0, 0]
    ));
    for host in [&twins.fast, &twins.slow] {
        assert!(
            !host.kernel.objects.pd(child_pd).unwrap().tlb_stale,
            "flushed on the way in"
        );
        assert_eq!(host.kernel.loaded_pd, Some(child_pd));
    }
    assert_eq!(
        RECORDER.with(|r| r.borrow().loaded_root),
        twins.fast.kernel.objects.pd(child_pd).unwrap().root_table
    );
}

#[test]
fn a_payload_from_an_ipc_buffer_unmapped_after_use_is_refused() {
    let mut host = Host::new(256);
    let endpoint = host.create(ObjectKind::Endpoint, OWN_PD, 0).unwrap();
    let (_, server) = host.thread(true);
    let (_, client) = host.thread(true);
    for round in 0..2 {
        assert_eq!(
            host.sys_as(server, Syscall::Recv, [endpoint, 0, 0, 0, 0, 0]),
            None
        );
        host.buffer(client).payload[..2].copy_from_slice(b"ok");
        assert_eq!(
            host.sys_as(client, Syscall::Send, [endpoint, info(1, 2, 0), 0, 0, 0, 0]),
            Some(Ok(())),
            "round {round}"
        );
        assert_eq!(&host.buffer(server).payload[..2], b"ok");
    }
    // The client's buffer page goes away; the dataspace behind it lives on.
    let vaddr = host.kernel.objects.thread(client).unwrap().ipc_buffer;
    host.sys(Syscall::Unmap, [OWN_PD, vaddr, PAGE, 0, 0, 0])
        .unwrap();
    assert_eq!(
        host.sys_as(client, Syscall::Send, [endpoint, info(1, 2, 0), 0, 0, 0, 0]),
        Some(Err(Error::BadAddress)),
        "the kernel must not read a page the sender no longer maps"
    );
    assert_eq!(host.kernel.ipc_buffer(client, false), None);
}

#[test]
fn info_reports_the_ticks_spent_idle_without_a_capability() {
    let mut host = Host::new(128);
    assert_eq!(
        host.sys(Syscall::Info, [info::IDLE_TICKS, 0, 0, 0, 0, 0]),
        Ok(())
    );
    assert_eq!(host.regs(host.main).rdi, 0, "nothing idled yet");
    host.kernel.idled(1_000);
    host.kernel.idled(234);
    host.kernel.idled(0);
    assert_eq!(
        host.sys(Syscall::Info, [info::IDLE_TICKS, 0, 0, 0, 0, 0]),
        Ok(())
    );
    assert_eq!(host.regs(host.main).rdi, 1_234);
    host.kernel.idled(u64::MAX);
    assert_eq!(
        host.sys(Syscall::Info, [info::IDLE_TICKS, 0, 0, 0, 0, 0]),
        Ok(())
    );
    assert_eq!(host.regs(host.main).rdi, u64::MAX, "the count saturates");
}
