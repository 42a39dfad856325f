//! Interrupt hardware: the legacy PIC (silenced), the local APIC (timer,
//! end-of-interrupt) and the IOAPIC (device lines), plus calibration of the
//! APIC timer and the TSC against the PIT.

use super::paging::phys_to_virt;
use x86_64::instructions::port::Port;

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u64 = 0x20;
/// Vector of IOAPIC input 0; input n arrives at `IRQ_BASE_VECTOR + n`.
pub const IRQ_BASE_VECTOR: u64 = 0x30;
/// IOAPIC inputs the kernel handles.
pub const IRQ_LINES: u8 = 24;
/// Spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u64 = 0xFF;
/// Length of a time slice.
pub const TIME_SLICE_MS: u64 = 10;

/// Physical address of the local APIC's registers.
pub const LAPIC_BASE: u64 = 0xFEE0_0000;
/// Physical address of the IOAPIC's registers.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;

const LAPIC_EOI: u64 = 0xB0;
const LAPIC_SPURIOUS: u64 = 0xF0;
const LAPIC_TASK_PRIORITY: u64 = 0x80;
const LAPIC_TIMER: u64 = 0x320;
const LAPIC_TIMER_INITIAL: u64 = 0x380;
const LAPIC_TIMER_CURRENT: u64 = 0x390;
const LAPIC_TIMER_DIVIDE: u64 = 0x3E0;

fn lapic_read(register: u64) -> u32 {
    // SAFETY: the LAPIC page is mapped uncached at its physical-window
    // address by `paging::map_devices`; registers are 32-bit and aligned.
    unsafe { core::ptr::read_volatile(phys_to_virt(LAPIC_BASE + register) as *const u32) }
}

fn lapic_write(register: u64, value: u32) {
    // SAFETY: as in `lapic_read`.
    unsafe { core::ptr::write_volatile(phys_to_virt(LAPIC_BASE + register) as *mut u32, value) }
}

fn ioapic_write(register: u32, value: u32) {
    // SAFETY: the IOAPIC page is mapped uncached (see `lapic_read`); the
    // select register is at offset 0, the window at 0x10.
    unsafe {
        core::ptr::write_volatile(phys_to_virt(IOAPIC_BASE) as *mut u32, register);
        core::ptr::write_volatile(phys_to_virt(IOAPIC_BASE + 0x10) as *mut u32, value);
    }
}

fn outb(port: u16, value: u8) {
    // SAFETY: the PIC and PIT ports belong to the kernel; writing them
    // programs those chips only.
    unsafe { Port::<u8>::new(port).write(value) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in `outb`.
    unsafe { Port::<u8>::new(port).read() }
}

/// Moves the legacy PIC out of the exception vectors and masks it for good.
fn silence_pic() {
    for (command, data, offset, cascade) in [(0x20, 0x21, 0xE0, 4), (0xA0, 0xA1, 0xE8, 2)] {
        outb(command, 0x11); // initialise, expect ICW4
        outb(data, offset);
        outb(data, cascade);
        outb(data, 0x01); // 8086 mode
        outb(data, 0xFF); // mask every line
    }
}

/// Sets up PIC, LAPIC and IOAPIC and starts the periodic time-slice timer.
/// Returns TSC ticks per millisecond.
pub fn init() -> u64 {
    silence_pic();
    lapic_write(LAPIC_TASK_PRIORITY, 0);
    lapic_write(LAPIC_SPURIOUS, 0x100 | SPURIOUS_VECTOR as u32);
    for line in 0..IRQ_LINES {
        mask_line(line);
    }
    let (lapic_per_ms, tsc_per_ms) = calibrate();
    lapic_write(LAPIC_TIMER_DIVIDE, 0x3); // divide by 16, as calibrated
    lapic_write(LAPIC_TIMER, TIMER_VECTOR as u32 | (1 << 17)); // periodic
    lapic_write(
        LAPIC_TIMER_INITIAL,
        (lapic_per_ms * TIME_SLICE_MS).clamp(1, u64::from(u32::MAX)) as u32,
    );
    tsc_per_ms
}

/// APIC-timer and TSC ticks per millisecond, from five 2 ms windows of
/// PIT channel 2, keeping the window with the fewest TSC ticks: under
/// emulation the host may deschedule the virtual CPU while it waits for
/// the PIT, which only ever makes a window look longer, so the shortest is
/// the truest (one 10 ms window once calibrated the TSC at 11.6 GHz on a
/// loaded host, and timer-versus-TSC checks failed).
fn calibrate() -> (u64, u64) {
    const TRIALS: usize = 5;
    const WINDOW_US: u64 = 2000;
    let (mut lapic_ticks, mut tsc_ticks) = pit_window(WINDOW_US);
    for _ in 1..TRIALS {
        let (lapic, tsc) = pit_window(WINDOW_US);
        if tsc < tsc_ticks {
            (lapic_ticks, tsc_ticks) = (lapic, tsc);
        }
    }
    (
        (lapic_ticks * 1000 / WINDOW_US).max(1),
        (tsc_ticks * 1000 / WINDOW_US).max(1),
    )
}

/// Counts APIC-timer (divided by 16) and TSC ticks across `window_us`
/// microseconds of PIT channel 2 in one-shot mode.
fn pit_window(window_us: u64) -> (u64, u64) {
    const PIT_HZ: u64 = 1_193_182;
    let count = (PIT_HZ * window_us / 1_000_000) as u16;
    outb(0x61, (inb(0x61) & !0x02) | 0x01); // gate channel 2 on, speaker off
    outb(0x43, 0xB0); // channel 2, lobyte/hibyte, mode 0
    outb(0x42, count as u8);
    outb(0x42, (count >> 8) as u8);
    lapic_write(LAPIC_TIMER_DIVIDE, 0x3);
    lapic_write(LAPIC_TIMER, 1 << 16); // masked, one-shot
    let gate = inb(0x61) & !0x01;
    outb(0x61, gate); // restart the count
    outb(0x61, gate | 0x01);
    lapic_write(LAPIC_TIMER_INITIAL, u32::MAX);
    // SAFETY: rdtsc has no side effects.
    let tsc_start = unsafe { core::arch::x86_64::_rdtsc() };
    let mut spins = 0u64;
    while inb(0x61) & 0x20 == 0 && spins < 100_000_000 {
        spins += 1;
    }
    // SAFETY: as above.
    let tsc_end = unsafe { core::arch::x86_64::_rdtsc() };
    let lapic_ticks = u64::from(u32::MAX - lapic_read(LAPIC_TIMER_CURRENT));
    lapic_write(LAPIC_TIMER_INITIAL, 0);
    (lapic_ticks, tsc_end.wrapping_sub(tsc_start))
}

/// Signals end of interrupt to the local APIC.
pub fn end_of_interrupt() {
    lapic_write(LAPIC_EOI, 0);
}

/// The redirection entry for IOAPIC input `line`: its vector, with ISA
/// inputs (0–15) edge-triggered active-high and PCI inputs (16–23)
/// level-triggered active-low, delivered to CPU 0.
fn redirection(line: u8, masked: bool) -> u32 {
    let mut low = (IRQ_BASE_VECTOR as u32 + u32::from(line)) | (u32::from(masked) << 16);
    if line >= 16 {
        low |= (1 << 15) | (1 << 13);
    }
    low
}

/// Stops IOAPIC input `line` from interrupting.
pub fn mask_line(line: u8) {
    if line < IRQ_LINES {
        ioapic_write(0x11 + 2 * u32::from(line), 0);
        ioapic_write(0x10 + 2 * u32::from(line), redirection(line, true));
    }
}

/// Lets IOAPIC input `line` interrupt again.
pub fn unmask_line(line: u8) {
    if line < IRQ_LINES {
        ioapic_write(0x11 + 2 * u32::from(line), 0);
        ioapic_write(0x10 + 2 * u32::from(line), redirection(line, false));
    }
}

/// Waits for the next interrupt with interrupts on, then turns them off again.
pub fn idle_wait() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}
