//! Per-CPU tables: the GDT with its TSS, and the IDT.
//!
//! Selectors are laid out for `syscall`/`sysret`: kernel code 0x08, kernel
//! data 0x10, user data 0x18, user code 0x20 (STAR expects user data right
//! below user code), TSS at 0x28.

use core::ptr::addr_of;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::{lidt, load_tss};
use x86_64::registers::control::{Cr0, Cr0Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// The IST slot used by faults that must not trust the current stack
/// (double fault, NMI, machine check).
pub const EMERGENCY_IST: u16 = 1;
const EMERGENCY_STACK_SIZE: usize = 16 * 1024;

/// Only its address is used: the CPU switches to it.
#[repr(align(16))]
struct Stack(#[allow(dead_code)] [u8; EMERGENCY_STACK_SIZE]);
static mut EMERGENCY_STACK: Stack = Stack([0; EMERGENCY_STACK_SIZE]);

static mut TSS: TaskStateSegment = TaskStateSegment::new();
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

/// Loads the GDT, TSS and IDT, and turns on the protections the kernel relies on.
pub fn init() {
    // SAFETY: runs once, on the boot CPU, before anything else reads these
    // statics; afterwards they are only read by the CPU itself.
    unsafe {
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        let stack_top = addr_of!(EMERGENCY_STACK) as u64 + EMERGENCY_STACK_SIZE as u64;
        tss.interrupt_stack_table[usize::from(EMERGENCY_IST - 1)] = VirtAddr::new(stack_top);

        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt.append(Descriptor::kernel_code_segment());
        gdt.append(Descriptor::kernel_data_segment());
        gdt.append(Descriptor::user_data_segment());
        gdt.append(Descriptor::user_code_segment());
        let tss_selector = gdt.append(Descriptor::tss_segment(&*addr_of!(TSS)));
        gdt.load_unsafe();
        CS::set_reg(KERNEL_CODE);
        for set in [DS::set_reg, ES::set_reg, SS::set_reg] {
            set(KERNEL_DATA);
        }
        load_tss(tss_selector);

        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (vector, &stub) in super::exceptions::stubs().iter().enumerate() {
            let ist = match vector {
                2 | 8 | 18 => EMERGENCY_IST, // NMI, double fault, machine check
                _ => 0,
            };
            idt[vector] = Gate::interrupt(stub, ist);
        }
        lidt(&DescriptorTablePointer {
            limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
            base: VirtAddr::new(addr_of!(IDT) as u64),
        });

        // Write-protect applies to the kernel too; NX makes data non-executable.
        Cr0::update(|flags| flags.insert(Cr0Flags::WRITE_PROTECT));
        if has_nx() {
            Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE));
        }
    }
}

/// Whether the CPU supports the no-execute page bit (CPUID 8000_0001h EDX bit 20).
pub fn has_nx() -> bool {
    let extended = core::arch::x86_64::__cpuid(0x8000_0001);
    extended.edx & (1 << 20) != 0
}
