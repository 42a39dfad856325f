//! Mode `syscalls`: every system call's success and error paths that can be
//! provoked from core, then the IPC checks against `pingpong`.

use crate::checks::Checks;
use crate::{fresh, spawn_pingpong};
use arbor::abi::{
    CapSlot, Error, MAX_PRIORITY, MAX_TRANSFER_CAPS, MsgInfo, ObjectKind, PAYLOAD_MAX, Rights,
    Syscall, info, map, slot,
};
use arbor::sys::{self, Message};
use arbor::{ipc, vspace};
use pingpong as proto;

const KERNEL_HALF: u64 = 0xFFFF_8000_0000_0000;
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
const PAGE: u64 = 4096;

fn kind(cap: CapSlot) -> Result<u64, Error> {
    sys::info(info::CAP_KIND, u64::from(cap.0)).map(|(kind, _)| kind)
}

/// Runs every check; returns the tally.
pub fn run() -> Checks {
    let mut c = Checks::default();
    basics(&mut c);
    objects(&mut c);
    derive_and_destroy(&mut c);
    notifications(&mut c);
    memory(&mut c);
    quotas(&mut c);
    threads_and_platform(&mut c);
    ipc_with_child(&mut c);
    c
}

fn basics(c: &mut Checks) {
    c.err(
        "invalid syscall number",
        Error::check(sys::raw_syscall(999, [0; 6]).rax),
        Error::InvalidSyscall,
    );
    c.ok("info kernel free RAM", sys::info(info::KERNEL_FREE_RAM, 0));
    let ram = c.ok("info own RAM quota", sys::info(info::PD_RAM, 1));
    c.that(
        "own RAM quota: used <= limit, limit > 0",
        ram.is_some_and(|(limit, used)| used <= limit && limit > 0),
        ram,
    );
    c.ok("info own cap quota", sys::info(info::PD_CAPS, 1));
    let tsc = sys::info(info::TSC_PER_MS, 0);
    c.that(
        "info TSC per ms > 0",
        matches!(tsc, Ok((t, _)) if t > 0),
        tsc,
    );
    c.err(
        "info bad selector",
        sys::info(999, 0),
        Error::InvalidArgument,
    );
    c.that(
        "cap kind of own Pd",
        kind(slot::OWN_PD) == Ok(ObjectKind::Pd as u64),
        kind(slot::OWN_PD),
    );
    c.that(
        "cap kind of console",
        kind(slot::CONSOLE) == Ok(ObjectKind::Console as u64),
        kind(slot::CONSOLE),
    );
    c.err(
        "cap kind of empty slot",
        kind(fresh()),
        Error::InvalidCapability,
    );
    c.err(
        "cap kind of out-of-range slot",
        kind(CapSlot(u32::MAX)),
        Error::InvalidCapability,
    );
    sys::yield_now();
    c.that("yield returns", true, ());
    ipc::write_payload(b"console write check\n");
    c.ok("console write", sys::console_write(slot::CONSOLE, 20));
    c.err(
        "console write oversized",
        sys::console_write(slot::CONSOLE, PAYLOAD_MAX + 1),
        Error::MessageTooLarge,
    );
    c.err(
        "console write on a Pd",
        sys::console_write(slot::OWN_PD, 1),
        Error::WrongObjectKind,
    );
}

fn objects(c: &mut Checks) {
    let endpoint = fresh();
    c.ok(
        "create endpoint",
        sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0),
    );
    c.that(
        "new endpoint's kind",
        kind(endpoint) == Ok(ObjectKind::Endpoint as u64),
        kind(endpoint),
    );
    c.err(
        "create into occupied slot",
        sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0),
        Error::SlotOccupied,
    );
    c.err(
        "create with unknown kind",
        Error::check(
            sys::raw_syscall(
                Syscall::Create as u64,
                [99, u64::from(slot::OWN_PD.0), u64::from(fresh().0), 0, 0, 0],
            )
            .rax,
        ),
        Error::InvalidArgument,
    );
    c.err(
        "create an Irq through Create",
        sys::create(ObjectKind::Irq, slot::OWN_PD, fresh(), 0),
        Error::InvalidArgument,
    );
    c.err(
        "create paid by empty slot",
        sys::create(ObjectKind::Endpoint, fresh(), fresh(), 0),
        Error::InvalidCapability,
    );
    c.err(
        "create paid by an endpoint",
        sys::create(ObjectKind::Endpoint, endpoint, fresh(), 0),
        Error::WrongObjectKind,
    );
    c.err_any(
        "create into slot 0",
        sys::create(ObjectKind::Endpoint, slot::OWN_PD, CapSlot::NULL, 0),
        &[Error::InvalidCapability, Error::InvalidArgument],
    );
    c.err_any(
        "create into out-of-range slot",
        sys::create(ObjectKind::Endpoint, slot::OWN_PD, CapSlot(u32::MAX), 0),
        &[
            Error::InvalidCapability,
            Error::InvalidArgument,
            Error::CapQuotaExceeded,
        ],
    );
    c.err(
        "create dataspace of size 0",
        sys::create(ObjectKind::Dataspace, slot::OWN_PD, fresh(), 0),
        Error::InvalidArgument,
    );
    // Just beyond what the own quota has left (absurd sizes are an
    // InvalidArgument instead).
    let left = sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0))
        .map_or(0, |(limit, used)| limit.saturating_sub(used));
    c.err(
        "create dataspace beyond RAM quota",
        sys::create(
            ObjectKind::Dataspace,
            slot::OWN_PD,
            fresh(),
            left + 16 * PAGE,
        ),
        Error::RamQuotaExceeded,
    );
    c.err(
        "create thread above max priority",
        sys::create(
            ObjectKind::Thread,
            slot::OWN_PD,
            fresh(),
            u64::from(MAX_PRIORITY) + 1,
        ),
        Error::InvalidArgument,
    );
    c.ok("destroy endpoint", sys::destroy(endpoint));
    c.err(
        "destroyed endpoint is stale",
        kind(endpoint),
        Error::InvalidCapability,
    );
    c.ok("delete stale slot", sys::delete(endpoint));
}

fn derive_and_destroy(c: &mut Checks) {
    let notification = fresh();
    c.ok(
        "create notification",
        sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0),
    );
    let read_only = fresh();
    c.ok(
        "derive read-only copy",
        sys::derive(notification, read_only, Rights::READ, 0),
    );
    c.err(
        "signal without WRITE",
        sys::signal(read_only),
        Error::MissingRight,
    );
    c.err(
        "destroy without CONTROL",
        sys::destroy(read_only),
        Error::MissingRight,
    );
    let widened = fresh();
    let result = sys::derive(read_only, widened, Rights::ALL, 0);
    // Either refused, or the rights are intersected: both keep WRITE out.
    let widened_signal = if result.is_ok() {
        sys::signal(widened)
    } else {
        Err(Error::MissingRight)
    };
    c.err(
        "derive cannot add rights",
        widened_signal,
        Error::MissingRight,
    );
    c.err(
        "derive into occupied slot",
        sys::derive(notification, read_only, Rights::READ, 0),
        Error::SlotOccupied,
    );
    c.err(
        "derive from empty slot",
        sys::derive(fresh(), fresh(), Rights::ALL, 0),
        Error::InvalidCapability,
    );
    c.err(
        "grant without GRANT right",
        sys::grant(slot::OWN_PD, read_only, fresh(), Rights::READ),
        Error::MissingRight,
    );
    c.ok("destroy notification", sys::destroy(notification));
    c.err(
        "copy is stale after destroy",
        sys::wait(read_only),
        Error::InvalidCapability,
    );
    c.ok("delete stale copy", sys::delete(read_only));
    c.err(
        "deleted slot is empty",
        kind(read_only),
        Error::InvalidCapability,
    );
}

fn notifications(c: &mut Checks) {
    let notification = fresh();
    let badged = fresh();
    c.ok(
        "create notification",
        sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0),
    );
    c.ok(
        "derive badged notification",
        sys::derive(notification, badged, Rights::WRITE, 0b101),
    );
    c.ok("signal", sys::signal(badged));
    let bits = sys::wait(notification);
    c.that("wait returns the badge bits", bits == Ok(0b101), bits);
    c.err("wait without READ", sys::wait(badged), Error::MissingRight);
    let tsc_per_ms = sys::info(arbor::abi::info::TSC_PER_MS, 0).map_or(1, |(t, _)| t.max(1));
    // SAFETY: rdtsc has no side effects.
    let before = unsafe { core::arch::x86_64::_rdtsc() };
    let timed_out = sys::wait_timeout(notification, 30);
    // SAFETY: as above.
    let waited_ms = (unsafe { core::arch::x86_64::_rdtsc() } - before) / tsc_per_ms;
    c.that(
        "wait with a timeout returns 0 bits after at least the timeout",
        timed_out == Ok(0) && waited_ms >= 20,
        (timed_out, waited_ms),
    );
    c.ok("signal before a timed wait", sys::signal(badged));
    let bits = sys::wait_timeout(notification, 10_000);
    c.that(
        "timed wait returns pending bits at once",
        bits == Ok(0b101),
        bits,
    );
    c.err(
        "signal an endpoint-less slot",
        sys::signal(fresh()),
        Error::InvalidCapability,
    );
    c.err(
        "signal the own Pd",
        sys::signal(slot::OWN_PD),
        Error::WrongObjectKind,
    );
    let _ = sys::destroy(notification);
}

fn memory(c: &mut Checks) {
    let dataspace = fresh();
    c.ok(
        "create dataspace",
        sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, 2 * PAGE),
    );
    let size = sys::info(info::DATASPACE_SIZE, u64::from(dataspace.0));
    c.that("dataspace size", size.map(|s| s.0) == Ok(2 * PAGE), size);
    let Ok(window) = vspace::allocate(4 * PAGE) else {
        c.that("address space for map checks", false, ());
        return;
    };
    let at = window.start;
    let rw = map::READ | map::WRITE;
    if c.ok(
        "map dataspace",
        sys::map(slot::OWN_PD, dataspace, 0, at, 2 * PAGE, rw),
    )
    .is_some()
    {
        // SAFETY: `[at, at + 2 pages)` was just mapped readable and writable
        // and nothing else refers to it.
        let read_back = unsafe {
            let word = at as *mut u64;
            let zero = core::ptr::read_volatile(word.add(512));
            core::ptr::write_volatile(word.add(512), 0xA5A5);
            (zero, core::ptr::read_volatile(word.add(512)))
        };
        c.that(
            "mapped memory is zeroed and writable",
            read_back == (0, 0xA5A5),
            read_back,
        );
    }
    c.err(
        "map over a mapping",
        sys::map(slot::OWN_PD, dataspace, 0, at, PAGE, rw),
        Error::AlreadyMapped,
    );
    let free = at + 2 * PAGE;
    c.err(
        "map unaligned address",
        sys::map(slot::OWN_PD, dataspace, 0, free + 8, PAGE, rw),
        Error::BadAddress,
    );
    c.err(
        "map into kernel half",
        sys::map(slot::OWN_PD, dataspace, 0, KERNEL_HALF, PAGE, rw),
        Error::BadAddress,
    );
    c.err(
        "map non-canonical",
        sys::map(slot::OWN_PD, dataspace, 0, NON_CANONICAL, PAGE, rw),
        Error::BadAddress,
    );
    c.err(
        "map range wrapping the address space",
        sys::map(slot::OWN_PD, dataspace, 0, free, u64::MAX - PAGE + 1, rw),
        Error::BadAddress,
    );
    c.err_any(
        "map beyond dataspace end",
        sys::map(slot::OWN_PD, dataspace, PAGE, free, 2 * PAGE, rw),
        &[Error::InvalidArgument, Error::BadAddress],
    );
    let read_only = fresh();
    let _ = sys::derive(dataspace, read_only, Rights::READ, 0);
    c.err(
        "map writable without WRITE",
        sys::map(slot::OWN_PD, read_only, 0, free, PAGE, rw),
        Error::MissingRight,
    );
    c.err(
        "map executable without EXECUTE",
        sys::map(
            slot::OWN_PD,
            read_only,
            0,
            free,
            PAGE,
            map::READ | map::EXECUTE,
        ),
        Error::MissingRight,
    );
    c.err(
        "map into a non-Pd",
        sys::map(dataspace, dataspace, 0, free, PAGE, rw),
        Error::WrongObjectKind,
    );
    c.err(
        "unmap in kernel half",
        sys::unmap(slot::OWN_PD, KERNEL_HALF, PAGE),
        Error::BadAddress,
    );
    c.ok("unmap", sys::unmap(slot::OWN_PD, at, 2 * PAGE));
    c.ok(
        "map again after unmap",
        sys::map(slot::OWN_PD, dataspace, 0, at, PAGE, map::READ),
    );
    let _ = sys::unmap(slot::OWN_PD, at, PAGE);
    c.ok("destroy dataspace", sys::destroy(dataspace));
    c.err(
        "map stale dataspace",
        sys::map(slot::OWN_PD, dataspace, 0, at, PAGE, map::READ),
        Error::InvalidCapability,
    );
    vspace::free(window);
}

fn quotas(c: &mut Checks) {
    let before = sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0));
    let pd = fresh();
    c.ok(
        "create Pd",
        sys::create(ObjectKind::Pd, slot::OWN_PD, pd, 0),
    );
    c.err(
        "empty Pd cannot pay for an endpoint",
        sys::create(ObjectKind::Endpoint, pd, fresh(), 0),
        Error::RamQuotaExceeded,
    );
    c.ok(
        "transfer quota",
        sys::transfer_quota(slot::OWN_PD, pd, 16 * PAGE, 2),
    );
    let ram = sys::info(info::PD_RAM, u64::from(pd.0));
    c.that("child RAM limit", ram.map(|r| r.0) == Ok(16 * PAGE), ram);
    c.err(
        "transfer unaligned RAM",
        sys::transfer_quota(slot::OWN_PD, pd, 100, 0),
        Error::InvalidArgument,
    );
    c.err(
        "transfer more RAM than owned",
        sys::transfer_quota(slot::OWN_PD, pd, 1 << 44, 0),
        Error::RamQuotaExceeded,
    );
    c.err(
        "transfer more caps than owned",
        sys::transfer_quota(slot::OWN_PD, pd, 0, 1 << 40),
        Error::CapQuotaExceeded,
    );
    c.err(
        "dataspace beyond the child's quota",
        sys::create(ObjectKind::Dataspace, pd, fresh(), 32 * PAGE),
        Error::RamQuotaExceeded,
    );
    c.ok(
        "grant 1st cap into child",
        sys::grant(pd, slot::CONSOLE, CapSlot(20), Rights::WRITE),
    );
    c.err(
        "grant into occupied child slot",
        sys::grant(pd, slot::CONSOLE, CapSlot(20), Rights::WRITE),
        Error::SlotOccupied,
    );
    c.ok(
        "grant 2nd cap into child",
        sys::grant(pd, slot::CONSOLE, CapSlot(21), Rights::WRITE),
    );
    c.err(
        "grant beyond the child's cap quota",
        sys::grant(pd, slot::CONSOLE, CapSlot(22), Rights::WRITE),
        Error::CapQuotaExceeded,
    );
    c.err(
        "grant into a non-Pd",
        sys::grant(slot::CONSOLE, slot::CONSOLE, CapSlot(22), Rights::WRITE),
        Error::WrongObjectKind,
    );
    let transferred_back = sys::transfer_quota(pd, slot::OWN_PD, 4 * PAGE, 0);
    c.ok("transfer quota back", transferred_back);
    c.ok("destroy Pd", sys::destroy(pd));
    let after = sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0));
    c.that(
        "own RAM use restored after destroy",
        before.is_ok() && before == after,
        (before, after),
    );
}

fn threads_and_platform(c: &mut Checks) {
    let thread = fresh();
    c.ok(
        "create thread",
        sys::create(ObjectKind::Thread, slot::OWN_PD, thread, 1),
    );
    c.err(
        "start thread with unaligned IPC buffer",
        sys::start_thread(thread, 0x20_0000, 0x7000_0000, 0x1234, 0),
        Error::BadAddress,
    );
    c.err(
        "start thread with kernel-half IPC buffer",
        sys::start_thread(thread, 0x20_0000, 0x7000_0000, KERNEL_HALF, 0),
        Error::BadAddress,
    );
    c.err(
        "start thread with unmapped IPC buffer",
        sys::start_thread(thread, 0x20_0000, 0x7000_0000, 0x6000_0000_0000, 0),
        Error::BadAddress,
    );
    c.err(
        "start a non-thread",
        sys::start_thread(slot::OWN_PD, 0x20_0000, 0x7000_0000, 0x1000, 0),
        Error::WrongObjectKind,
    );
    let notification = fresh();
    let _ = sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0);
    c.err(
        "bind notification to a non-thread",
        sys::bind_notification(slot::OWN_PD, notification),
        Error::WrongObjectKind,
    );
    c.err(
        "fault endpoint must be an endpoint",
        sys::set_fault_endpoint(slot::OWN_PD, notification),
        Error::WrongObjectKind,
    );
    c.ok("destroy unstarted thread", sys::destroy(thread));

    c.err(
        "irq line out of range",
        sys::create_irq(slot::PLATFORM, slot::OWN_PD, fresh(), 99, notification),
        Error::InvalidArgument,
    );
    c.err(
        "irq without platform",
        sys::create_irq(slot::OWN_PD, slot::OWN_PD, fresh(), 4, notification),
        Error::WrongObjectKind,
    );
    c.err(
        "ack a non-irq",
        sys::ack_irq(notification),
        Error::WrongObjectKind,
    );
    let ports = fresh();
    c.ok(
        "create io ports",
        sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, ports, 0x2F8, 8),
    );
    c.err_any(
        "io ports beyond the parent range",
        sys::create_io_ports(ports, slot::OWN_PD, fresh(), 0x2F8, 16),
        &[Error::InvalidArgument, Error::MissingRight],
    );
    c.err_any(
        "io port range past 0xFFFF",
        sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, fresh(), 0xFFFF, 2),
        &[Error::InvalidArgument],
    );
    c.err(
        "enable io ports on a non-Pd",
        sys::enable_io_ports(ports, notification),
        Error::WrongObjectKind,
    );
    c.err_any(
        "device dataspace over RAM",
        sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, fresh(), 0x10_0000, PAGE),
        &[Error::InvalidArgument, Error::AlreadyClaimed],
    );
    c.err(
        "device dataspace over the kernel's local APIC",
        sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, fresh(), 0xFEE0_0000, PAGE),
        Error::AlreadyClaimed,
    );
    c.err(
        "device dataspace overlapping the kernel's IOAPIC",
        sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, fresh(), 0xFEBF_F000, 2 * PAGE),
        Error::AlreadyClaimed,
    );
    c.err(
        "io ports of the kernel console (COM1)",
        sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, fresh(), 0x3F8, 8),
        Error::AlreadyClaimed,
    );
    c.err(
        "io ports overlapping the masked PIC",
        sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, fresh(), 0x1F, 2),
        Error::AlreadyClaimed,
    );
    c.err(
        "device dataspace without platform",
        sys::create_device_dataspace(slot::OWN_PD, slot::OWN_PD, fresh(), 0xB000_0000, PAGE),
        Error::WrongObjectKind,
    );
    let _ = sys::destroy(ports);
    let _ = sys::destroy(notification);
}

fn ipc_with_child(c: &mut Checks) {
    let endpoint = fresh();
    if c.ok(
        "create IPC endpoint",
        sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0),
    )
    .is_none()
    {
        return;
    }
    let Some(child) = c.ok("spawn pingpong", spawn_pingpong(endpoint)) else {
        return;
    };

    let reply = sys::call(endpoint, Message::new(proto::ECHO, [1, 2, 3, 4]));
    c.that(
        "call/reply_recv round trip",
        matches!(reply, Ok(m) if m.label() == proto::ECHO + 1 && m.words == [2, 3, 4, 5]),
        reply,
    );

    let text = b"payload through the IPC buffer";
    let len = ipc::write_payload(text);
    let reply = sys::call(
        endpoint,
        Message {
            info: MsgInfo::new(proto::UPPERCASE, len as u16, 0),
            words: [0; 4],
        },
    );
    let mut back = [0u8; 64];
    let got = reply.map(|m| ipc::read_payload(m.info.payload_len(), &mut back));
    c.that(
        "payload transfer",
        got == Ok(text.len()) && back[..text.len()] == text.to_ascii_uppercase()[..],
        got,
    );
    c.err(
        "payload over the limit",
        sys::call(
            endpoint,
            Message {
                info: MsgInfo::new(proto::ECHO, PAYLOAD_MAX as u16 + 1, 0),
                words: [0; 4],
            },
        ),
        Error::MessageTooLarge,
    );
    c.err(
        "too many caps",
        sys::call(
            endpoint,
            Message {
                info: MsgInfo::new(proto::ECHO, 0, MAX_TRANSFER_CAPS as u8 + 1),
                words: [0; 4],
            },
        ),
        Error::MessageTooLarge,
    );

    let notification = fresh();
    let badged = fresh();
    let _ = sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0);
    let _ = sys::derive(
        notification,
        badged,
        Rights::WRITE.union(Rights::GRANT),
        0x40,
    );
    ipc::set_send_caps(&[badged]);
    let reply = sys::call(
        endpoint,
        Message {
            info: MsgInfo::new(proto::TAKE_CAP, 0, 1),
            words: [0; 4],
        },
    );
    c.that(
        "capability transfer",
        matches!(reply, Ok(m) if m.words[0] == ObjectKind::Notification as u64),
        reply,
    );
    let bits = sys::wait(notification);
    c.that(
        "transferred capability works in the child",
        bits == Ok(0x40),
        bits,
    );

    c.ok(
        "send",
        sys::send(endpoint, Message::new(proto::SEND_BACK, [7, 8, 9, 10])),
    );
    let received = sys::recv(endpoint);
    c.that(
        "recv gets the child's send",
        matches!(received, Ok((_, m)) if m.label() == proto::SENT_BACK && m.words == [7, 8, 9, 10]),
        received,
    );

    let bound = fresh();
    let bound_badged = fresh();
    let _ = sys::create(ObjectKind::Notification, slot::OWN_PD, bound, 0);
    let _ = sys::derive(bound, bound_badged, Rights::WRITE, 0x8);
    c.ok(
        "bind notification to the child's thread",
        sys::bind_notification(child.thread, bound),
    );
    // A call first: when it returns, pingpong is blocked in its receive (it
    // replies and receives in one step), so the signal must wake it there.
    // Without this it could still be runnable from its send, and a message
    // waiting at its next receive would rightly come before the signal.
    let _ = sys::call(endpoint, Message::new(proto::ECHO, [0; 4]));
    c.ok("signal the bound notification", sys::signal(bound_badged));
    let reply = sys::call(endpoint, Message::new(proto::LAST_NOTIFICATION, [0; 4]));
    c.that(
        "bound notification wakes the receiver",
        matches!(reply, Ok(m) if m.words[0] == 0x8),
        reply,
    );

    let write_only = fresh();
    let _ = sys::derive(endpoint, write_only, Rights::WRITE, 0);
    c.err(
        "recv without READ",
        sys::recv(write_only),
        Error::MissingRight,
    );
    let read_only = fresh();
    let _ = sys::derive(endpoint, read_only, Rights::READ, 0);
    c.err(
        "call without WRITE",
        sys::call(read_only, Message::new(proto::ECHO, [0; 4])),
        Error::MissingRight,
    );
    c.err(
        "call a notification",
        sys::call(notification, Message::new(proto::ECHO, [0; 4])),
        Error::WrongObjectKind,
    );

    let pd = child.pd;
    c.ok("destroy pingpong", child.destroy());
    c.err(
        "destroyed child Pd is stale",
        sys::transfer_quota(pd, slot::OWN_PD, 0, 0),
        Error::InvalidCapability,
    );
    for cap in [notification, bound, endpoint] {
        let _ = sys::destroy(cap);
    }
}
