//! The CMOS real-time clock (ports 0x70/0x71): the only place fat_fs
//! touches hardware. Register numbers follow the MC146818 datasheet as PCs
//! implement it: 0x00 seconds, 0x02 minutes, 0x04 hours, 0x07 day, 0x08
//! month, 0x09 year, 0x32 century (ACPI FADT's usual one), 0x0A bit 7
//! "update in progress", 0x0B bit 2 "binary" (else BCD).

use arbor::abi::slot;
use arbor::sys;
use core::sync::atomic::{AtomicBool, Ordering};
use fat_fs::clock::{from_bcd, rtc_seconds};

/// The index port; the data port is the next one.
pub const FIRST_PORT: u16 = 0x70;
/// Ports claimed.
pub const PORT_COUNT: u16 = 2;

/// Set once the kernel enabled the ports for this Pd.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Enables the RTC's ports (the IoPort session's capability).
pub fn enable(ports: arbor::abi::CapSlot) -> Result<(), arbor::abi::Error> {
    sys::enable_io_ports(ports, slot::OWN_PD)?;
    ENABLED.store(true, Ordering::Release);
    Ok(())
}

fn read_register(register: u8) -> u8 {
    let value: u8;
    // SAFETY: port I/O to the RTC changes no memory of this program. It runs
    // only after `enable` (callers check ENABLED), and only on 0x70/0x71,
    // the ports the session covers; any other would raise #GP, a fault the
    // parent sees, not undefined behaviour.
    unsafe {
        core::arch::asm!("out 0x70, al", in("al") register, options(nomem, nostack, preserves_flags));
        core::arch::asm!("in al, 0x71", out("al") value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// Seconds since 1970 from the RTC; 0 when the ports are not ours or the
/// clock reads nonsense (files then carry 1980-01-01).
pub fn now_seconds() -> u64 {
    if !ENABLED.load(Ordering::Acquire) {
        return 0;
    }
    // Wait out an update in progress (it lasts under 2 ms), boundedly.
    for _ in 0..10_000 {
        if read_register(0x0a) & 0x80 == 0 {
            break;
        }
    }
    let binary = read_register(0x0b) & 0x04 != 0;
    let field = |register: u8| {
        let raw = read_register(register);
        if binary { raw } else { from_bcd(raw) }
    };
    let hour_raw = read_register(0x04);
    // 12-hour mode sets bit 7 for PM; QEMU and firmware use 24-hour mode.
    let hour = if binary {
        hour_raw & 0x7f
    } else {
        from_bcd(hour_raw & 0x7f)
    };
    let century = match field(0x32) {
        19..=21 => u16::from(field(0x32)),
        _ => 20,
    };
    let year = century * 100 + u16::from(field(0x09));
    rtc_seconds(
        year,
        field(0x08),
        field(0x07),
        hour,
        field(0x02),
        field(0x00),
    )
    .unwrap_or(0)
}
