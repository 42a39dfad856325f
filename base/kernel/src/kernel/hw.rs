//! The kernel logic's view of the hardware: the few effects that objects,
//! IPC and system calls have on the CPU and the interrupt controllers.
//!
//! On the target every function forwards to [`crate::arch`]. In host tests
//! they act on a recorder instead (loaded address space, masked lines, a
//! clock that the test advances, the console as a string), so the logic
//! that decides is tested on the host with the same code paths.

#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
mod imp {
    use crate::arch::{console, cpu, interrupts, paging};

    /// Loads `root` (with PCID `pcid`; keeps its TLB entries unless `flush`).
    pub fn activate(root: u64, pcid: u16, flush: bool) {
        paging::load_cr3(super::cr3_value(root, pcid, flush));
    }

    /// Loads a value made by [`super::cr3_value`].
    #[inline(always)]
    pub fn load_cr3(value: u64) {
        paging::load_cr3(value);
    }

    /// Loads the kernel's own page tables (before a Pd's are freed).
    pub fn activate_kernel_tables() {
        paging::load_cr3(paging::kernel_root());
    }

    /// The kernel half (entries 256..512) every new top-level table shares.
    pub fn kernel_half() -> [u64; 256] {
        paging::kernel_half()
    }

    /// The no-execute page-table bit, or 0 when the CPU has none.
    pub fn no_execute_bit() -> u64 {
        paging::no_execute_bit()
    }

    /// Resets DS/ES/FS/GS before another Pd runs.
    pub fn reset_user_segments() {
        cpu::reset_user_segments();
    }

    /// Copies `bitmap` into the TSS (None: every port denied).
    pub fn load_io_bitmap(bitmap: Option<&[u8; crate::ports::BITMAP_BYTES]>) {
        cpu::load_io_bitmap(bitmap);
    }

    /// Masks IOAPIC input `line`.
    pub fn mask_line(line: u8) {
        interrupts::mask_line(line);
    }

    /// Unmasks IOAPIC input `line`.
    pub fn unmask_line(line: u8) {
        interrupts::unmask_line(line);
    }

    /// The time-stamp counter.
    pub fn tsc() -> u64 {
        crate::arch::tsc()
    }

    /// The CPU's physical address width in bits.
    pub fn physical_address_bits() -> u32 {
        cpu::physical_address_bits()
    }

    /// Physical pages of the interrupt controllers, which only the kernel maps.
    pub const KERNEL_MMIO: [u64; 2] = [interrupts::LAPIC_BASE, interrupts::IOAPIC_BASE];

    /// Writes a component's bytes to the console.
    pub fn console_write(bytes: &[u8]) {
        console::write_bytes(bytes);
    }
}

#[cfg(not(target_os = "none"))]
mod imp {
    //! The host recorder. Each test thread has its own.
    use std::cell::RefCell;

    /// What the kernel did to the (pretend) hardware.
    #[derive(Default, Debug)]
    pub struct Recorder {
        /// The top-level table loaded last.
        pub loaded_root: u64,
        /// Unmasked IOAPIC lines, by bit.
        pub unmasked: u32,
        /// The clock, in ticks.
        pub tsc: u64,
        /// Console output, from components and from `kprintln!`.
        pub console: String,
        /// The I/O bitmap the TSS would hold (None: all denied).
        pub io_bitmap_loaded: bool,
    }

    thread_local! {
        /// This test thread's recorder.
        pub static RECORDER: RefCell<Recorder> = RefCell::new(Recorder::default());
    }

    fn record(f: impl FnOnce(&mut Recorder)) {
        RECORDER.with(|r| f(&mut r.borrow_mut()));
    }

    pub fn activate(root: u64, _pcid: u16, _flush: bool) {
        record(|r| r.loaded_root = root);
    }
    pub fn load_cr3(value: u64) {
        record(|r| r.loaded_root = value & 0x000F_FFFF_FFFF_F000);
    }
    pub fn activate_kernel_tables() {
        record(|r| r.loaded_root = 0);
    }
    pub fn kernel_half() -> [u64; 256] {
        [0; 256]
    }
    pub fn no_execute_bit() -> u64 {
        1 << 63
    }
    pub fn reset_user_segments() {}
    pub fn load_io_bitmap(bitmap: Option<&[u8; crate::ports::BITMAP_BYTES]>) {
        record(|r| r.io_bitmap_loaded = bitmap.is_some());
    }
    pub fn mask_line(line: u8) {
        record(|r| r.unmasked &= !(1 << line));
    }
    pub fn unmask_line(line: u8) {
        record(|r| r.unmasked |= 1 << line);
    }
    pub fn tsc() -> u64 {
        RECORDER.with(|r| r.borrow().tsc)
    }
    pub fn physical_address_bits() -> u32 {
        39
    }
    pub const KERNEL_MMIO: [u64; 2] = [0xFEE0_0000, 0xFEC0_0000];
    pub fn console_write(bytes: &[u8]) {
        record(|r| r.console.push_str(&String::from_utf8_lossy(bytes)));
    }

    /// `kprintln!` on the host: into the recorder's console.
    pub struct Console;

    impl core::fmt::Write for Console {
        fn write_str(&mut self, text: &str) -> core::fmt::Result {
            record(|r| r.console.push_str(text));
            Ok(())
        }
    }
}

pub use imp::*;

/// The CR3 value that loads top-level table `root` with PCID `pcid`
/// (0: none), keeping that PCID's TLB entries unless `flush`.
#[inline(always)]
pub fn cr3_value(root: u64, pcid: u16, flush: bool) -> u64 {
    let no_flush = if pcid != 0 && !flush { 1 << 63 } else { 0 };
    root | u64::from(pcid) | no_flush
}
