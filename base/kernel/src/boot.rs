//! The start-up sequence: from the PVH entry to a kernel with its own page
//! tables that has validated the boot archive.

use crate::arch::{self, Verdict, entry::Frame, interrupts, paging};
use crate::cmdline::{self, SelfTest};
use crate::frames::{FrameInfo, FrameTable, FrameUse, Pfn};
use crate::kernel::store::{Objects, PhysWindow};
use crate::kernel::{Kernel, entry};
use crate::memory::{FreeFrames, PAGE_SIZE, PhysRange};
use crate::pvh::{self, PhysRead};
use crate::{kprint, kprintln};
use arbor_archive::Archive;

/// Reads physical memory below 4 GiB through the physical window, which both
/// the boot page tables and the kernel's own map.
struct BootMemory;

impl PhysRead for BootMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        const LIMIT: u64 = 4 << 30;
        let Some(end) = addr.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > LIMIT {
            return false;
        }
        // SAFETY: [addr, end) lies below 4 GiB, which the physical window maps;
        // the bytes are copied out, never referenced.
        unsafe {
            core::ptr::copy_nonoverlapping(paging::phys_to_virt(addr), buf.as_mut_ptr(), buf.len())
        };
        true
    }
}

/// Prints why the boot cannot go on and stops with a failing verdict.
fn fail(what: &str, error: impl core::fmt::Display) -> ! {
    kprintln!("boot failed: {what}: {error}");
    arch::exit(Verdict::Failure)
}

const MIB: u64 = 1 << 20;

/// Kernel entry after the switch to long mode; `start_info` is the physical
/// address of the PVH `hvm_start_info`.
pub fn start(start_info: u64) -> ! {
    // SAFETY: rdtsc has no side effects; the value marks kernel entry for
    // the boot-time benchmark.
    let entry_tsc = unsafe { core::arch::x86_64::_rdtsc() };
    arch::console::init();
    kprintln!(
        "Arbor kernel {} (x86_64, PVH boot), tsc {entry_tsc}",
        env!("CARGO_PKG_VERSION")
    );
    arch::cpu::init(entry_stack_top());

    let info =
        pvh::parse(&BootMemory, start_info).unwrap_or_else(|e| fail("reading PVH start info", e));
    kprintln!(
        "memory map: {} MiB usable in {} entries",
        info.usable_bytes() / MIB,
        info.regions.len()
    );
    for region in &info.regions {
        kprintln!(
            "  [{:#012x}, {:#012x}) {:>6} KiB {}",
            region.start,
            region.end(),
            region.size / 1024,
            if region.is_usable() {
                "usable"
            } else {
                "reserved"
            }
        );
    }
    let archive_module = info
        .boot_archive()
        .unwrap_or_else(|e| fail("finding the boot archive", e));

    let module_range = PhysRange {
        start: archive_module.start,
        end: archive_module.start + archive_module.size,
    };
    let (mut frames, dropped) =
        FreeFrames::new(&info.regions, &[paging::kernel_image(), module_range]);
    if dropped > 0 {
        kprintln!("warning: memory map too fragmented, {dropped} free ranges ignored");
    }

    let mut space =
        paging::AddressSpace::new(&mut frames).unwrap_or_else(|e| fail("page tables", e));
    let window = space
        .map_physical_window(&info.regions, &mut frames)
        .unwrap_or_else(|e| fail("page tables", e));
    space
        .map_kernel_image(&mut frames)
        .unwrap_or_else(|e| fail("page tables", e));
    for device in [interrupts::LAPIC_BASE, interrupts::IOAPIC_BASE] {
        space
            .map_device_page(device, &mut frames)
            .unwrap_or_else(|e| fail("page tables", e));
    }
    let features = arch::cpu::enable_features();
    space.activate();
    kprintln!(
        "paging: kernel tables at {:#x}, {} MiB physical window; {} MiB free in {} ranges",
        space.root,
        window / MIB,
        frames.free_bytes() / MIB,
        frames.ranges().len()
    );

    // SAFETY: the module lies in usable RAM (checked by `pvh::parse`), which
    // the physical window maps; the frame allocator never hands these pages
    // out, so the bytes stay valid and unaliased for the kernel's lifetime.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            paging::phys_to_virt(archive_module.start),
            archive_module.size as usize,
        )
    };
    let archive = Archive::parse(bytes).unwrap_or_else(|e| fail("boot archive", e));
    kprintln!(
        "boot archive: {} module(s), {} bytes",
        archive.len(),
        archive.size()
    );
    for module in archive.modules() {
        kprintln!("  {:<24} {:>9} bytes", module.name, module.data.len());
    }

    if let Some(name) = cmdline::value(&info.cmdline, "selftest") {
        match SelfTest::from_name(name) {
            Some(test) => provoke(test),
            None => fail(
                "kernel command line",
                format_args!("unknown selftest \"{name}\""),
            ),
        }
    }

    let Some(core) = archive.find("core") else {
        kprint!("no core module in the boot archive: nothing to start; ");
        kprintln!("kernel done");
        arch::exit(Verdict::Success)
    };

    let tsc_per_ms = interrupts::init();
    let ram_regions = info
        .regions
        .iter()
        .filter(|r| r.is_usable())
        .map(|r| PhysRange {
            start: r.start,
            end: r.end(),
        })
        .collect();
    // SAFETY: the physical window maps every RAM range of the memory map
    // (`map_physical_window`), the frame table only covers RAM, and from
    // here on the kernel reaches frames it hands out only through this
    // window (the boot archive and this table are reserved in it).
    let window = unsafe { PhysWindow::new(paging::phys_to_virt(0), 0, u64::MAX / 2) };
    let objects = Objects::new(frame_table(&mut frames), window);
    let kernel = Kernel::new(objects, features.pcid, ram_regions, tsc_per_ms);
    let ram = kernel.objects.frames.free_frames() as u64 * PAGE_SIZE;
    kprintln!(
        "kernel: {} MiB for user space, {} ms time slices, TSC {} kHz, PCID {}, SMEP {}, SMAP {}",
        ram / MIB,
        interrupts::TIME_SLICE_MS,
        tsc_per_ms,
        on_off(features.pcid),
        on_off(features.smep),
        on_off(features.smap)
    );
    entry::install(kernel);
    let quota = entry::with_kernel(|kernel| {
        let core_pd = kernel
            .load_core(core.data, (archive_module.start, archive_module.size))
            .unwrap_or_else(|e| fail("starting core", e));
        kernel.objects.pd(core_pd).map_or(0, |pd| pd.ram.limit)
    });
    kprintln!(
        "kernel: starting core ({} bytes) with {} KiB of RAM quota",
        core.data.len(),
        quota / 1024
    );

    // The first exit to user space, like every later one, leaves through a
    // frame at the top of the entry stack.
    let frame = (entry_stack_top() - core::mem::size_of::<Frame>() as u64) as *mut Frame;
    // SAFETY: the entry stack is unused until this first exit; the frame
    // lies at its top, where entries from user space put theirs.
    entry::resume(unsafe { &mut *frame });
    arch::entry::enter_user(frame)
}

fn on_off(flag: bool) -> &'static str {
    if flag { "on" } else { "off" }
}

/// The stack every entry from user space runs on (distinct from the boot stack
/// `start` runs on, so that the first exit can build its frame there).
fn entry_stack_top() -> u64 {
    arch::stacks::entry_stack_top()
}

/// The frame table over all usable RAM, placed in frames taken from `free`;
/// what is still free afterwards becomes allocatable, everything else reserved.
fn frame_table(free: &mut FreeFrames) -> FrameTable<'static> {
    // Capabilities name objects by frame number; RAM above 16 TiB (frame
    // numbers past 32 bits) is left out rather than ever truncated.
    const FRAME_LIMIT: u64 = 1 << 32;
    let first = free.ranges().iter().map(|r| r.start).min().unwrap_or(0) / PAGE_SIZE;
    let end = (free.ranges().iter().map(|r| r.end).max().unwrap_or(0) / PAGE_SIZE)
        .clamp(first, FRAME_LIMIT.max(first));
    let count = (end - first) as usize;
    let bytes = (count * core::mem::size_of::<FrameInfo>()) as u64;
    let table = free
        .allocate_contiguous(bytes.div_ceil(PAGE_SIZE))
        .unwrap_or_else(|| fail("frame table", "no room for the frame table"));
    // SAFETY: frames just taken from the free ranges (never handed out again),
    // reached through the physical window, large enough for `count` entries.
    let infos = unsafe {
        core::slice::from_raw_parts_mut(paging::phys_to_virt(table.0) as *mut FrameInfo, count)
    };
    infos.fill(FrameInfo::RESERVED);
    for range in free.ranges() {
        for pfn in range.start / PAGE_SIZE..(range.end / PAGE_SIZE).min(end) {
            infos[(pfn - first) as usize].usage = FrameUse::Free;
        }
    }
    FrameTable::new(Pfn(first), infos)
}

/// Recurses until the stack runs into its guard page (for the
/// `stack_overflow` self-test).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [depth; 64];
    core::hint::black_box(&mut frame);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(core::hint::black_box(frame[63]))
}

/// Raises the exception a self-test asks for; the exception handler reports
/// it and stops the machine, so this never returns normally.
fn provoke(test: SelfTest) {
    kprintln!("selftest: provoking {test:?}");
    // SAFETY: each instruction below faults on purpose; the exception handler
    // reports it and ends the run without returning here.
    unsafe {
        match test {
            SelfTest::InvalidOpcode => core::arch::asm!("ud2"),
            SelfTest::PageFault => {
                let _ = core::ptr::read_volatile(0xDEAD_0000 as *const u64);
            }
            SelfTest::DivideError => {
                core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _)
            }
            SelfTest::GeneralProtection => {
                let _ = core::ptr::read_volatile(0x8000_0000_0000_0000_u64 as *const u64);
            }
            SelfTest::Breakpoint => core::arch::asm!("int3"),
            SelfTest::StackOverflow => {
                kprintln!("selftest: recursed {} times?", recurse(0));
            }
        }
    }
    // #BP is a trap: execution would continue here if the handler returned.
    fail("selftest", "the provoked exception did not stop the kernel");
}
