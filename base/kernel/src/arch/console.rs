//! The kernel's console: the first 16550 UART (COM1), 115200 8N1, polled.
//!
//! The kernel runs on one CPU with interrupts off, so writes cannot
//! interleave and need no lock; this also lets the exception path print
//! without risk of deadlock.

use core::fmt;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3F8;
const LINE_STATUS: u16 = COM1 + 5;
const TRANSMIT_EMPTY: u8 = 1 << 5;

fn outb(port: u16, value: u8) {
    // SAFETY: COM1's registers are owned by the kernel console; writing them
    // only configures or feeds the UART.
    unsafe { Port::<u8>::new(port).write(value) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as above; reading the line status has no side effect.
    unsafe { Port::<u8>::new(port).read() }
}

/// Programs the UART: no interrupts, 115200 baud, 8 data bits, no parity, FIFO on.
pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // divisor latch access
    outb(COM1, 0x01); // divisor 1 = 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1, latch off
    outb(COM1 + 2, 0xC7); // FIFO on, cleared, 14-byte threshold
    outb(COM1 + 4, 0x03); // DTR, RTS
}

fn write_byte(byte: u8) {
    // Bounded wait: a missing UART must not hang the kernel.
    for _ in 0..100_000 {
        if inb(LINE_STATUS) & TRANSMIT_EMPTY != 0 {
            break;
        }
    }
    outb(COM1, byte);
}

/// Writes raw bytes (from a component) to the console, `\n` as `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &byte in bytes {
        if byte == b'\n' {
            write_byte(b'\r');
        }
        write_byte(byte);
    }
}

/// A `fmt::Write` onto the serial port; `\n` becomes `\r\n`.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                write_byte(b'\r');
            }
            write_byte(byte);
        }
        Ok(())
    }
}

/// Prints to the kernel console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::arch::console::Console, $($arg)*);
    }};
}

/// Prints a line to the kernel console.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::arch::console::Console, $($arg)*);
    }};
}
