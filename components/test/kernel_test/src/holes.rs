//! Mode `holes`: one attack per hole of issue 9 ("blast radius holds"), each
//! of which succeeded on the old kernel and must now end in a refusal (or a
//! contained fault). Every check prints what was refused.

use crate::bench::rdtsc;
use crate::checks::Checks;
use crate::{fresh, spawn, spawn_pingpong};
use arbor::abi::{
    CapSlot, Error, FAULT_LABEL, FaultKind, MsgInfo, NOTIFICATION_LABEL, ObjectKind, Syscall,
    USER_END, USER_MIN, info, map, slot,
};
use arbor::sys::{self, Message};
use arbor::{ipc, println, slots};

const PAGE: u64 = 4096;
/// Where the kernel image lies (PVH loads it at 1 MiB).
const KERNEL_IMAGE: u64 = 0x10_0000;
/// A physical address that is no RAM on any test machine and below every
/// CPU's 39-bit minimum physical width.
const NO_RAM: u64 = 1 << 38;

/// One attack: runs its checks.
type Attack<'a> = dyn Fn(&mut Checks) + 'a;

/// Runs every attack (or only the one `only` names: quota, device, ipc,
/// chain, unmap, shared, ports, wx, labels, segments, debug); `levels` is
/// the depth of the Pd chain for hole 3.
pub fn run(levels: u64, only: Option<&str>) -> Checks {
    let mut c = Checks::default();
    let attacks: [(&str, &Attack<'_>); 11] = [
        ("quota", &core_quota_is_all_ram),
        ("device", &device_alias),
        ("ipc", &ipc_buffer_off_ram),
        ("chain", &|c| deep_pd_chain(c, levels)),
        ("unmap", &bounded_unmap_and_destroy),
        ("shared", &shared_dataspace_records),
        ("ports", &io_ports),
        ("wx", &write_and_execute),
        ("labels", &forged_kernel_labels),
        ("segments", &segments_between_pds),
        ("debug", &single_step_in_user_mode),
    ];
    for (name, attack) in attacks {
        if only.is_none_or(|only| only == name) {
            attack(&mut c);
        }
    }
    c
}

fn ms(ticks: u64) -> u64 {
    let per_ms = sys::info(info::TSC_PER_MS, 0).map_or(1, |r| r.0.max(1));
    ticks / per_ms
}

fn us(ticks: u64) -> u64 {
    let per_ms = sys::info(info::TSC_PER_MS, 0).map_or(1, |r| r.0.max(1));
    ticks.saturating_mul(1000) / per_ms
}

fn free_ram() -> u64 {
    sys::info(info::KERNEL_FREE_RAM, 0).map_or(0, |r| r.0)
}

fn own_ram() -> (u64, u64) {
    sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0)).unwrap_or((0, 0))
}

/// 12: the sum of all quotas is the RAM there is. kernel_test is core and
/// nothing else exists yet, so core's limit must be free RAM plus its use.
fn core_quota_is_all_ram(c: &mut Checks) {
    let free = free_ram();
    let (limit, used) = own_ram();
    println!("hole 12: core quota {limit}, used {used}, kernel free {free}");
    c.that(
        "hole 12: core's quota = free RAM + core's use (no uncharged kernel pages)",
        limit == free + used,
        (limit, free, used),
    );
}

/// 1: a device dataspace at 2^44 + the kernel's address once passed the
/// RAM check and then mapped the kernel image (frame number truncated).
fn device_alias(c: &mut Checks) {
    let alias = fresh();
    let result = sys::create_device_dataspace(
        slot::PLATFORM,
        slot::OWN_PD,
        alias,
        (1 << 44) + KERNEL_IMAGE,
        PAGE,
    );
    println!("hole 1: device dataspace at 2^44 + kernel image: {result:?}");
    c.err(
        "hole 1: refused device dataspace at 2^44 + 1 MiB (aliased the kernel image)",
        result,
        Error::InvalidArgument,
    );
    for phys in [(1 << 52) - PAGE, !0xFFF, KERNEL_IMAGE] {
        c.err(
            "hole 1: refused device dataspace beyond the physical width or on RAM",
            sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, fresh(), phys, PAGE),
            Error::InvalidArgument,
        );
    }
    let high = fresh();
    let made = sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, high, NO_RAM, PAGE);
    let phys = sys::info(info::DATASPACE_PHYS, u64::from(high.0));
    c.that(
        "hole 1: a device frame keeps every address bit (2^38 reads back as 2^38)",
        made.is_ok() && phys.map(|p| p.0) == Ok(NO_RAM),
        (made, phys),
    );
    let _ = sys::destroy(high);
    slots::release(high);
    slots::release(alias);
}

/// 2: an IPC buffer remapped onto a device page (or unmapped) made the
/// kernel copy through an unmapped physical-window address: kernel #PF.
fn ipc_buffer_off_ram(c: &mut Checks) {
    let buffer = ipc::buffer_address();
    let device = fresh();
    let endpoint = fresh();
    let replacement = fresh();
    let prepared = sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, device, NO_RAM, PAGE)
        .and_then(|()| sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0))
        .and_then(|()| sys::create(ObjectKind::Dataspace, slot::OWN_PD, replacement, PAGE));
    if c.ok("hole 2: device page, endpoint, spare page", prepared)
        .is_none()
    {
        return;
    }
    let with_payload = MsgInfo::new(1, 64, 0).0;
    let rw = map::READ | map::WRITE;
    // No printing from here on: printing goes through the IPC buffer.
    let unmapped = sys::unmap(slot::OWN_PD, buffer, PAGE);
    let write_unmapped = sys::console_write(slot::CONSOLE, 16);
    let mapped_device = sys::map(slot::OWN_PD, device, 0, buffer, PAGE, rw);
    let write_device = sys::console_write(slot::CONSOLE, 16);
    let send_device = Error::check(
        sys::raw_syscall(
            Syscall::Send as u64,
            [u64::from(endpoint.0), with_payload, 0, 0, 0, 0],
        )
        .rax,
    );
    let restored = sys::unmap(slot::OWN_PD, buffer, PAGE)
        .and_then(|()| sys::map(slot::OWN_PD, replacement, 0, buffer, PAGE, rw));
    println!(
        "hole 2: IPC buffer unmapped {unmapped:?}, console write {write_unmapped:?}; on a device page {mapped_device:?}, console write {write_device:?}, send with payload {send_device:?}; restored {restored:?}"
    );
    c.that(
        "hole 2: IPC buffer moved off RAM and back",
        unmapped.is_ok() && mapped_device.is_ok() && restored.is_ok(),
        (unmapped, mapped_device, restored),
    );
    c.err(
        "hole 2: refused console write from an unmapped IPC buffer",
        write_unmapped,
        Error::BadAddress,
    );
    c.err(
        "hole 2: refused console write from an IPC buffer on a device page",
        write_device,
        Error::BadAddress,
    );
    c.err(
        "hole 2: refused send with payload from an IPC buffer on a device page",
        send_device,
        Error::BadAddress,
    );
    let _ = sys::destroy(endpoint);
    slots::release(endpoint);
    slots::release(device);
}

/// 3: destroying a chain of Pds each paying for the next recursed once per
/// level on a guardless kernel stack (about 1,190 levels triple-faulted).
fn deep_pd_chain(c: &mut Checks, levels: u64) {
    const PD_COST: u64 = 2 * PAGE;
    let free_before = free_ram();
    let (_, used_before) = own_ram();
    let top = fresh();
    let mut built = 0;
    let setup = sys::create(ObjectKind::Pd, slot::OWN_PD, top, 0)
        .and_then(|()| sys::transfer_quota(slot::OWN_PD, top, levels * PD_COST, 0));
    if c.ok("hole 3: top of the chain", setup).is_none() {
        return;
    }
    let mut parent = top;
    let mut failure = None;
    while built + 1 < levels {
        let child = fresh();
        let step = sys::create(ObjectKind::Pd, parent, child, 0).and_then(|()| {
            let (limit, used) = sys::info(info::PD_RAM, u64::from(parent.0))?;
            sys::transfer_quota(parent, child, limit - used, 0)
        });
        if parent != top {
            slots::release(parent);
        }
        parent = child;
        if let Err(error) = step {
            failure = Some(error);
            break;
        }
        built += 1;
    }
    if parent != top {
        slots::release(parent);
    }
    let start = rdtsc();
    let destroyed = sys::destroy(top);
    let took = ms(rdtsc() - start);
    slots::release(top);
    let free_after = free_ram();
    let (_, used_after) = own_ram();
    println!(
        "hole 3: chain of {} Pds (stopped by {failure:?}) destroyed: {destroyed:?} in {took} ms; kernel free RAM before {free_before} after {free_after}; own used before {used_before} after {used_after}",
        built + 1
    );
    c.that(
        "hole 3: deep Pd chain built to the requested depth",
        built + 1 == levels,
        (built + 1, failure),
    );
    c.that(
        "hole 3: deep Pd chain destroyed without recursion; free RAM back to its start value",
        destroyed.is_ok() && free_after == free_before && used_after == used_before,
        (destroyed, free_before, free_after),
    );
}

/// 4: an `Unmap` of the whole user half walked 2^35 pages with interrupts
/// off (about 110 s under TCG); dataspace destruction walked every page a
/// mapping record claimed.
fn bounded_unmap_and_destroy(c: &mut Checks) {
    let pd = fresh();
    let other = fresh();
    let dataspace = fresh();
    const PAGES: u64 = 256;
    let setup = sys::create(ObjectKind::Pd, slot::OWN_PD, pd, 0)
        .and_then(|()| sys::create(ObjectKind::Pd, slot::OWN_PD, other, 0))
        .and_then(|()| sys::transfer_quota(slot::OWN_PD, pd, 1 << 20, 0))
        .and_then(|()| sys::transfer_quota(slot::OWN_PD, other, 1 << 20, 0))
        .and_then(|()| sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, PAGES * PAGE));
    if c.ok("hole 4: Pds and a 1 MiB dataspace", setup).is_none() {
        return;
    }
    // Sixteen mappings spread over the whole user half.
    let spread = (USER_END - USER_MIN) / 16 / (1 << 30) * (1 << 30);
    let mut mapped = Ok(());
    for index in 0..16 {
        let at = (1 << 30) + index * spread;
        mapped = mapped.and(sys::map(pd, dataspace, 0, at, PAGES * PAGE, map::READ));
    }
    c.ok(
        "hole 4: dataspace mapped 16 times across the user half",
        mapped,
    );
    // Records are the mapping Pd's own (hole 13): a 17th mapping of one
    // dataspace costs that Pd a record, and nobody else anything.
    let seventeenth = sys::map(pd, dataspace, 0, 1 << 29, PAGE, map::READ);
    println!("hole 4 (13): 17th mapping of one dataspace into one Pd: {seventeenth:?}");
    c.ok(
        "hole 13: a 17th mapping of one dataspace into one Pd is paid by that Pd",
        seventeenth,
    );
    c.ok(
        "hole 12: another Pd can still map the shared dataspace",
        sys::map(other, dataspace, 0, 1 << 30, PAGE, map::READ),
    );
    let start = rdtsc();
    let unmapped = sys::unmap(pd, USER_MIN, USER_END - USER_MIN);
    let unmap_us = us(rdtsc() - start);
    let start = rdtsc();
    let remapped = sys::map(pd, dataspace, 0, 1 << 29, PAGE, map::READ);
    let remap_us = us(rdtsc() - start);
    for index in 1..15 {
        let _ = sys::map(
            pd,
            dataspace,
            0,
            (1 << 30) + index * spread,
            PAGES * PAGE,
            map::READ,
        );
    }
    let start = rdtsc();
    let destroyed = sys::destroy(dataspace);
    let destroy_us = us(rdtsc() - start);
    println!(
        "hole 4: unmap of the whole user half ({} pages): {unmapped:?} in {unmap_us} us; map after the unmap {remapped:?} in {remap_us} us; destroy of a dataspace mapped 16 times: {destroyed:?} in {destroy_us} us",
        (USER_END - USER_MIN) / PAGE
    );
    c.that(
        "hole 4: whole-user-half unmap, remap and destroy each bounded (< 100 ms)",
        unmapped.is_ok()
            && remapped.is_ok()
            && destroyed.is_ok()
            && unmap_us < 100_000
            && remap_us < 100_000
            && destroy_us < 100_000,
        (unmap_us, remap_us, destroy_us),
    );
    let _ = sys::destroy(pd);
    let _ = sys::destroy(other);
    for cap in [pd, other, dataspace] {
        slots::release(cap);
    }
    sparse_tables(c);
}

/// 13: mapping records were a table of 96 in the dataspace, at most 16 per
/// Pd: six Pds (or seven) of one tree filled it, and nobody else could map
/// the shared dataspace any more. Records now belong to the Pd that maps,
/// paid from its quota, so one tree's mappings never block another's.
fn shared_dataspace_records(c: &mut Checks) {
    const ATTACKERS: usize = 7;
    const EACH: u64 = 24;
    let shared = fresh();
    let victim = fresh();
    let attackers = [(); ATTACKERS].map(|()| fresh());
    let mut setup = sys::create(ObjectKind::Dataspace, slot::OWN_PD, shared, PAGE)
        .and_then(|()| sys::create(ObjectKind::Pd, slot::OWN_PD, victim, 0))
        .and_then(|()| sys::transfer_quota(slot::OWN_PD, victim, 64 * PAGE, 0));
    for attacker in attackers {
        setup = setup
            .and_then(|()| sys::create(ObjectKind::Pd, slot::OWN_PD, attacker, 0))
            .and_then(|()| sys::transfer_quota(slot::OWN_PD, attacker, 64 * PAGE, 0));
    }
    if c.ok(
        "hole 13: a shared dataspace, a victim and 7 attacker Pds",
        setup,
    )
    .is_none()
    {
        return;
    }
    let mut held = 0;
    let mut first_refusal = None;
    for attacker in attackers {
        for index in 0..EACH {
            match sys::map(
                attacker,
                shared,
                0,
                (1 << 30) + index * PAGE,
                PAGE,
                map::READ,
            ) {
                Ok(()) => held += 1,
                Err(error) => {
                    first_refusal.get_or_insert(error);
                }
            }
        }
    }
    let victim_map = sys::map(victim, shared, 0, 1 << 30, PAGE, map::READ);
    println!(
        "hole 13: {ATTACKERS} Pds hold {held} mappings of one shared dataspace (first refusal {first_refusal:?}); the victim's map: {victim_map:?}"
    );
    c.that(
        "hole 13: 7 Pds mapped a shared dataspace 24 times each, paid by themselves",
        held == ATTACKERS as u64 * EACH,
        (held, first_refusal),
    );
    c.ok(
        "hole 13: a sibling still maps the dataspace the others mapped 168 times",
        victim_map,
    );
    let (_, used_before) = own_ram();
    let destroyed = sys::destroy(shared);
    let (_, used_after) = own_ram();
    c.that(
        "hole 13: destroying the dataspace with 169 mappings outstanding returns its 2 pages",
        destroyed.is_ok() && used_after + PAGE + PAGE == used_before,
        (destroyed, used_before, used_after),
    );
    for pd in attackers.iter().chain([&victim]) {
        let _ = sys::destroy(*pd);
        slots::release(*pd);
    }
    slots::release(shared);
}

/// The worst case per byte of quota for `Unmap`: page tables each holding
/// one page (every table costs the Pd 4 KiB and the walk 512 entries).
fn sparse_tables(c: &mut Checks) {
    const TABLES: u64 = 1000;
    let free_before = free_ram();
    let pd = fresh();
    let setup = sys::create(ObjectKind::Pd, slot::OWN_PD, pd, 0)
        .and_then(|()| sys::transfer_quota(slot::OWN_PD, pd, 16 << 20, 0));
    if c.ok("hole 4: Pd for sparse page tables", setup).is_none() {
        return;
    }
    let mut mapped = 0;
    for index in 0..TABLES {
        // Paid by the Pd itself, so its destruction takes them along.
        let dataspace = fresh();
        let made = sys::create(ObjectKind::Dataspace, pd, dataspace, PAGE).and_then(|()| {
            sys::map(
                pd,
                dataspace,
                0,
                (1 << 32) + index * (2 << 20),
                PAGE,
                map::READ,
            )
        });
        slots::release(dataspace);
        if made.is_ok() {
            mapped += 1;
        }
    }
    let start = rdtsc();
    let unmapped = sys::unmap(pd, USER_MIN, USER_END - USER_MIN);
    let unmap_us = us(rdtsc() - start);
    let start = rdtsc();
    let destroyed = sys::destroy(pd);
    let destroy_us = us(rdtsc() - start);
    slots::release(pd);
    let free_after = free_ram();
    println!(
        "hole 4: unmap of the whole user half over {mapped} sparse page tables: {unmapped:?} in {unmap_us} us ({} ns per table); destroying that Pd with its {mapped} dataspaces: {destroyed:?} in {destroy_us} us; free RAM before {free_before} after {free_after}",
        unmap_us * 1000 / mapped.max(1)
    );
    c.that(
        "hole 4: unmap over 1,000 page tables and the Pd's destruction bounded (< 100 ms), RAM back",
        mapped == TABLES
            && unmapped.is_ok()
            && destroyed.is_ok()
            && unmap_us < 100_000
            && destroy_us < 100_000
            && free_after == free_before,
        (mapped, unmap_us, destroy_us, free_before, free_after),
    );
}

/// What happened to a `fault_child` reading port 0x80.
#[derive(Debug, PartialEq)]
enum PortRead {
    /// It faulted with #GP: the port was closed.
    Refused,
    /// It read the port and ended: the port was open.
    Allowed,
    /// Anything else.
    Unclear,
}

/// Starts `fault_child` 6 (reads port 0x80), lets `open` give it ports,
/// runs it, and says whether the read was allowed.
fn port_read(endpoint: CapSlot, open: impl FnOnce(CapSlot) -> Result<(), Error>) -> PortRead {
    let Ok(child) = spawn("fault_child", 256 * 1024, 32, 6, endpoint, Some(endpoint)) else {
        return PortRead::Unclear;
    };
    if let Err(error) = open(child.pd) {
        println!("hole 6: setting up ports failed: {error}");
    }
    // The child runs at a lower priority: give it the CPU for a while.
    let timer = fresh();
    let _ = sys::create(ObjectKind::Notification, slot::OWN_PD, timer, 0);
    let _ = sys::wait_timeout(timer, 200);
    let _ = sys::destroy(timer);
    slots::release(timer);
    let state = sys::info(info::THREAD_BLOCKED_CALLING, u64::from(child.thread.0));
    let outcome = match state {
        // Its thread ended itself after the read.
        Err(Error::InvalidCapability) => PortRead::Allowed,
        // Blocked sending its fault report.
        Ok((1, _)) => match sys::recv(endpoint) {
            Ok((_, message))
                if message.label() == FAULT_LABEL
                    && FaultKind::from_raw(message.words[0])
                        == Some(FaultKind::GeneralProtection) =>
            {
                PortRead::Refused
            }
            _ => PortRead::Unclear,
        },
        _ => PortRead::Unclear,
    };
    let _ = child.destroy();
    outcome
}

/// 6: an IoPorts object derived from another outlived its origin, and
/// destroying one object closed ports another still granted.
fn io_ports(c: &mut Checks) {
    let endpoint = fresh();
    if c.ok(
        "hole 6: fault endpoint",
        sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0),
    )
    .is_none()
    {
        return;
    }
    let (origin, derived, derived_again) = (fresh(), fresh(), fresh());
    let made = sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, origin, 0x500, 16)
        .and_then(|()| sys::create_io_ports(origin, slot::OWN_PD, derived, 0x500, 4))
        .and_then(|()| sys::create_io_ports(derived, slot::OWN_PD, derived_again, 0x501, 1))
        .and_then(|()| sys::destroy(origin));
    let kinds = [derived, derived_again].map(|cap| sys::info(info::CAP_KIND, u64::from(cap.0)));
    println!("hole 6: after destroying the origin, derived IoPorts: {kinds:?}");
    c.that(
        "hole 6: refused derived IoPorts after their origin died (InvalidCapability)",
        made.is_ok() && kinds.iter().all(|k| *k == Err(Error::InvalidCapability)),
        (made, kinds),
    );
    for cap in [origin, derived, derived_again] {
        slots::release(cap);
    }

    let (first, second) = (fresh(), fresh());
    let read = port_read(endpoint, |pd| {
        sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, first, 0x80, 1)
            .and_then(|()| sys::create_io_ports(first, slot::OWN_PD, second, 0x80, 1))
            .and_then(|()| sys::enable_io_ports(second, pd))
            .and_then(|()| sys::destroy(first))
    });
    println!("hole 6: port 0x80 through an IoPorts derived from a destroyed one: {read:?}");
    c.that(
        "hole 6: refused a port read granted only by a derived IoPorts whose origin died",
        read == PortRead::Refused,
        &read,
    );
    for cap in [first, second] {
        slots::release(cap);
    }

    let (narrow, wide) = (fresh(), fresh());
    let read = port_read(endpoint, |pd| {
        sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, narrow, 0x80, 1)
            .and_then(|()| sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, wide, 0x70, 0x20))
            .and_then(|()| sys::enable_io_ports(narrow, pd))
            .and_then(|()| sys::enable_io_ports(wide, pd))
            .and_then(|()| sys::destroy(narrow))
    });
    println!("hole 6: port 0x80 after one of two granting IoPorts died: {read:?}");
    c.that(
        "hole 6: a port stays open while another live IoPorts grants it",
        read == PortRead::Allowed,
        &read,
    );
    let _ = sys::destroy(wide);
    for cap in [narrow, wide, endpoint] {
        slots::release(cap);
    }
}

/// 11: writable and executable mappings were accepted.
fn write_and_execute(c: &mut Checks) {
    let dataspace = fresh();
    let _ = sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, PAGE);
    let Ok(window) = arbor::vspace::allocate(PAGE) else {
        c.that("hole 11: address space", false, ());
        return;
    };
    let result = sys::map(
        slot::OWN_PD,
        dataspace,
        0,
        window.start,
        PAGE,
        map::READ | map::WRITE | map::EXECUTE,
    );
    println!("hole 11: writable+executable mapping: {result:?}");
    c.err(
        "hole 11: refused a writable and executable mapping",
        result,
        Error::InvalidArgument,
    );
    arbor::vspace::free(window);
    let _ = sys::destroy(dataspace);
    slots::release(dataspace);
}

/// Kernel-made messages (fault reports, notifications) carried labels any
/// client could put on its own messages (a client forged 100,000 timer
/// ticks that way).
fn forged_kernel_labels(c: &mut Checks) {
    let endpoint = fresh();
    let _ = sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0);
    for (label, name) in [(NOTIFICATION_LABEL, "notification"), (FAULT_LABEL, "fault")] {
        let send = sys::send(endpoint, Message::new(label, [1, 0, 0, 0]));
        let call = sys::call(endpoint, Message::new(label, [1, 0, 0, 0]));
        let reply = sys::reply_recv(endpoint, Message::new(label, [1, 0, 0, 0]));
        println!("forged {name} label: send {send:?}, call {call:?}, reply_recv {reply:?}");
        c.that(
            "forged kernel label refused (InvalidArgument) on send, call and reply_recv",
            send == Err(Error::InvalidArgument)
                && call.is_err_and(|e| e == Error::InvalidArgument)
                && reply.is_err_and(|e| e == Error::InvalidArgument),
            (send, call.map(|m| m.label()), reply.map(|(_, m)| m.label())),
        );
    }
    let _ = sys::destroy(endpoint);
    slots::release(endpoint);
}

fn fs_selector() -> u16 {
    let value: u16;
    // SAFETY: reading a segment register has no effect.
    unsafe { core::arch::asm!("mov {0:x}, fs", out(reg) value, options(nomem, nostack)) };
    value
}

/// 12: segment selectors passed from one Pd to the next (covert channel).
fn segments_between_pds(c: &mut Checks) {
    let endpoint = fresh();
    let _ = sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0);
    let Ok(child) = spawn_pingpong(endpoint) else {
        c.that("hole 12: pingpong", false, ());
        return;
    };
    // SAFETY: 0x1B is the user data selector; FS is not used by this code.
    unsafe { core::arch::asm!("mov fs, {0:x}", in(reg) 0x1Bu16, options(nomem, nostack)) };
    let before = fs_selector();
    let reply = sys::call(endpoint, Message::new(pingpong::ECHO, [1, 2, 3, 4]));
    let after = fs_selector();
    println!(
        "hole 12: FS selector {before:#x} before a round trip to another Pd, {after:#x} after ({reply:?})"
    );
    c.that(
        "hole 12: segment selectors reset when another Pd ran",
        before == 0x1B && after == 0 && reply.is_ok(),
        (before, after),
    );
    let _ = child.destroy();
    let _ = sys::destroy(endpoint);
    slots::release(endpoint);
}

/// A second thread of kernel_test: sets the trap flag and enters the
/// kernel with `syscall`, so a #DB follows — in user mode or at the first
/// kernel instruction, depending on the CPU — taken on the kernel's own #DB
/// IST stack (which has a guard page); the user one is reported as a fault.
extern "C" fn single_stepper(_argument: u64) -> ! {
    // SAFETY: sets TF in RFLAGS; the #DB that follows stops this thread
    // (the kernel reports it to the Pd's fault endpoint). No memory is
    // touched but this thread's own stack.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "or qword ptr [rsp], 0x100",
            "popfq",
            "syscall",
            "nop",
            in("rax") arbor::abi::Syscall::Yield as u64,
            out("rcx") _,
            out("r11") _,
        );
    }
    loop {
        sys::yield_now();
    }
}

/// 12: #DB had no IST stack of its own; now it has one (with a guard page).
fn single_step_in_user_mode(c: &mut Checks) {
    const STACK: u64 = 16 * 1024;
    let (endpoint, stack, thread) = (fresh(), fresh(), fresh());
    let Ok(window) = arbor::vspace::allocate(STACK) else {
        c.that("hole 12: address space for a thread stack", false, ());
        return;
    };
    let started = sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0)
        .and_then(|()| sys::set_fault_endpoint(slot::OWN_PD, endpoint))
        .and_then(|()| sys::create(ObjectKind::Dataspace, slot::OWN_PD, stack, STACK))
        .and_then(|()| {
            sys::map(
                slot::OWN_PD,
                stack,
                0,
                window.start,
                STACK,
                map::READ | map::WRITE,
            )
        })
        .and_then(|()| sys::create(ObjectKind::Thread, slot::OWN_PD, thread, 0))
        .and_then(|()| {
            sys::start_thread(
                thread,
                single_stepper as *const () as u64,
                window.start + STACK - 8,
                0,
                0,
            )
        });
    let report = started.and_then(|()| sys::recv(endpoint));
    let fault = report.map(|(_, m)| (m.label(), FaultKind::from_raw(m.words[0]), m.words[3]));
    println!("hole 12: single step in user mode reported as (label, kind, vector) {fault:?}");
    c.that(
        "hole 12: a user-mode #DB (on its own IST stack) is reported as a fault",
        matches!(fault, Ok((FAULT_LABEL, Some(FaultKind::Other), 1))),
        fault,
    );
    let _ = sys::destroy(thread);
    let _ = sys::destroy(endpoint);
    let _ = sys::unmap(slot::OWN_PD, window.start, STACK);
    let _ = sys::destroy(stack);
    arbor::vspace::free(window);
    for cap in [endpoint, stack, thread] {
        slots::release(cap);
    }
}
