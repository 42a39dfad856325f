//! Per-CPU set-up: the GDT with its TSS and I/O bitmap, the IDT, the
//! `syscall` MSRs, and the CPU protections the kernel relies on.
//!
//! Selectors are laid out for `syscall`/`sysret`: kernel code 0x08, kernel
//! data 0x10, user data 0x18, user code 0x20 (STAR expects user data right
//! below user code), TSS at 0x28.

use core::ptr::addr_of;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::{lidt, load_tss};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::Msr;
use x86_64::registers::model_specific::{Efer, EferFlags};
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use super::stacks::{self, DEBUG_IST, DOUBLE_FAULT_IST, MACHINE_CHECK_IST, NMI_IST};

/// The TSS followed by its I/O permission bitmap (Intel SDM Vol. 1, 19.5.2):
/// a set bit denies the port. The kernel copies in the bitmap of the Pd it
/// switches to (or all ones), so one driver's ports never leak to the next.
#[repr(C)]
struct TssWithBitmap {
    tss: TaskStateSegment,
    bitmap: [u8; IO_BITMAP_BYTES + 1],
}

const IO_BITMAP_BYTES: usize = 8192;

static mut TSS: TssWithBitmap = TssWithBitmap {
    tss: TaskStateSegment::new(),
    bitmap: [0xFF; IO_BITMAP_BYTES + 1],
};
static mut GDT: GlobalDescriptorTable<8> = GlobalDescriptorTable::empty();

/// One IDT gate (Intel SDM Vol. 3A, 6.14.1).
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        flags: 0,
        offset_middle: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present interrupt gate (interrupts stay off in the handler), callable
    /// by software only from ring 0.
    fn interrupt(handler: u64, ist: u16) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CODE.0,
            ist: ist as u8,
            flags: 0x8E,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

static mut IDT: [Gate; 256] = [Gate::MISSING; 256];

/// Kernel code selector.
pub const KERNEL_CODE: SegmentSelector = SegmentSelector(0x08);
/// Kernel data selector.
pub const KERNEL_DATA: SegmentSelector = SegmentSelector(0x10);

/// Loads the GDT, TSS and IDT, and turns on the protections the kernel relies
/// on; every entry from user space will start on `kernel_stack_top`.
pub fn init(kernel_stack_top: u64) {
    // SAFETY: runs once, on the boot CPU, before anything else reads these
    // statics; afterwards they are only read by the CPU itself.
    unsafe {
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        for slot in 1..=stacks::IST_COUNT as u16 {
            tss.tss.interrupt_stack_table[usize::from(slot - 1)] =
                VirtAddr::new(stacks::ist_top(slot));
        }
        tss.tss.privilege_stack_table[0] = VirtAddr::new(kernel_stack_top);
        tss.tss.iomap_base = core::mem::offset_of!(TssWithBitmap, bitmap) as u16;
        super::entry::set_kernel_stack(kernel_stack_top);

        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt.append(Descriptor::kernel_code_segment());
        gdt.append(Descriptor::kernel_data_segment());
        gdt.append(Descriptor::user_data_segment());
        gdt.append(Descriptor::user_code_segment());
        let tss_ref: &'static TssWithBitmap = &*addr_of!(TSS);
        let descriptor = Descriptor::tss_segment_with_iomap(&tss_ref.tss, &tss_ref.bitmap)
            .unwrap_or_else(|_| Descriptor::tss_segment(&tss_ref.tss));
        let tss_selector = gdt.append(descriptor);
        gdt.load_unsafe();
        CS::set_reg(KERNEL_CODE);
        for set in [DS::set_reg, ES::set_reg, SS::set_reg] {
            set(KERNEL_DATA);
        }
        load_tss(tss_selector);

        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (vector, &stub) in super::entry::stubs().iter().enumerate() {
            // Each on a stack of its own, so that none can land on a stack
            // that is broken (#DF), or in use by another of them.
            let ist = match vector {
                1 => DEBUG_IST,
                2 => NMI_IST,
                8 => DOUBLE_FAULT_IST,
                18 => MACHINE_CHECK_IST,
                _ => 0,
            };
            idt[vector] = Gate::interrupt(stub, ist);
            // `int3` may be used from ring 3 (it then reports a breakpoint fault).
            if vector == 3 {
                idt[vector].flags |= 3 << 5;
            }
        }
        lidt(&DescriptorTablePointer {
            limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
            base: VirtAddr::new(addr_of!(IDT) as u64),
        });

        // Write-protect applies to the kernel too; NX makes data
        // non-executable. EM makes x87 instructions fault: components use
        // no floating point, so there is no FPU state to switch or leak.
        Cr0::update(|flags| flags.insert(Cr0Flags::WRITE_PROTECT | Cr0Flags::EMULATE_COPROCESSOR));
        Cr0::update(|flags| flags.remove(Cr0Flags::MONITOR_COPROCESSOR));
        Efer::update(|flags| {
            flags.insert(EferFlags::SYSTEM_CALL_EXTENSIONS);
            if has_nx() {
                flags.insert(EferFlags::NO_EXECUTE_ENABLE);
            }
        });
        // syscall enters at `syscall_entry` with kernel CS 0x08; sysret
        // returns with user SS 0x10 + 8 and CS 0x10 + 16 (both RPL 3).
        Msr::new(STAR).write((0x10 << 48) | (0x08 << 32));
        Msr::new(LSTAR).write(super::entry::syscall_entry_address());
        // Interrupts, traps, direction and alignment-check off on entry.
        Msr::new(FMASK).write(0x4_7700);
    }
}

const STAR: u32 = 0xC000_0081;
const LSTAR: u32 = 0xC000_0082;
const FMASK: u32 = 0xC000_0084;

/// CPU features the kernel uses when present.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// Process-context identifiers: TLB entries survive address-space switches.
    pub pcid: bool,
    /// Supervisor-mode execution prevention.
    pub smep: bool,
    /// Supervisor-mode access prevention.
    pub smap: bool,
}

/// Detects and enables PCID, SMEP and SMAP where the CPU has them. Must run
/// while CR3's low 12 bits are zero (PCIDE can only be set then).
pub fn enable_features() -> Features {
    let basic = core::arch::x86_64::__cpuid(1);
    let extended = core::arch::x86_64::__cpuid_count(7, 0);
    let features = Features {
        pcid: basic.ecx & (1 << 17) != 0,
        smep: extended.ebx & (1 << 7) != 0,
        smap: extended.ebx & (1 << 20) != 0,
    };
    // SAFETY: each bit is set only if CPUID reports the feature; the kernel
    // never touches user pages directly (it goes through the physical
    // window), so SMEP/SMAP cannot fire on correct kernel code.
    unsafe {
        Cr4::update(|flags| {
            if features.pcid {
                flags.insert(Cr4Flags::PCID);
            }
            if features.smep {
                flags.insert(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION);
            }
            if features.smap {
                flags.insert(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION);
            }
        });
    }
    features
}

/// Copies a Pd's I/O permission bitmap into the TSS, or denies every port.
pub fn load_io_bitmap(bitmap: Option<&[u8; IO_BITMAP_BYTES]>) {
    // SAFETY: the TSS bitmap is only written here, on the one CPU, with
    // interrupts off.
    unsafe {
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        match bitmap {
            Some(source) => tss.bitmap[..IO_BITMAP_BYTES].copy_from_slice(source),
            None => tss.bitmap[..IO_BITMAP_BYTES].fill(0xFF),
        }
    }
}

/// The CPU's physical address width in bits (CPUID 8000_0008h EAX[7:0]),
/// at most 52; 36 if the CPU does not say (Intel SDM Vol. 3A, 4.1.4).
pub fn physical_address_bits() -> u32 {
    let highest = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    if highest < 0x8000_0008 {
        return 36;
    }
    (core::arch::x86_64::__cpuid(0x8000_0008).eax & 0xFF).min(52)
}

/// Loads the user data selector into DS and ES and the null selector into
/// FS and GS, which also zeroes the FS and GS bases (no Pd can set them:
/// FSGSBASE is off and the base MSRs are privileged). Called whenever
/// another Pd's thread is about to run, so no selector value passes from
/// one Pd to the next as a covert channel.
pub fn reset_user_segments() {
    // SAFETY: 0x1B is the user data segment of this GDT, valid in DS/ES at
    // any privilege; the null selector is valid in FS/GS in 64-bit mode.
    // The kernel does not use DS, ES, FS or GS for addressing.
    unsafe {
        core::arch::asm!(
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov fs, {null:x}",
            "mov gs, {null:x}",
            data = in(reg) 0x1Bu64,
            null = in(reg) 0u64,
            options(nostack, preserves_flags),
        );
    }
}

/// Whether the CPU supports the no-execute page bit (CPUID 8000_0001h EDX bit 20).
pub fn has_nx() -> bool {
    let extended = core::arch::x86_64::__cpuid(0x8000_0001);
    extended.edx & (1 << 20) != 0
}
