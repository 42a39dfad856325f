/* PVH entry: QEMU jumps here in 32-bit protected mode, paging off, with
 * %ebx holding the physical address of hvm_start_info. We build just enough
 * page tables to reach the 64-bit kernel in the top 2 GiB, switch to long
 * mode and call kernel_main(start_info). The kernel replaces these tables
 * with its own as soon as it knows the memory map. */

    .section .note.pvh, "a", @note
    .balign 4
    .long 4                      /* name size: "Xen\0" */
    .long 4                      /* descriptor size */
    .long 18                     /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start
    .balign 4

    .section .boot.text, "ax", @progbits
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov %ebx, %esi               /* keep start_info across the set-up */

    /* Four page directories of 2 MiB pages map physical 0..4 GiB. */
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax               /* present, writable, 2 MiB page */
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jne 1b

    /* The low PDPT points at the four directories; it serves both the
     * identity map (PML4[0]) and the physical-memory window (PML4[256]). */
    mov $boot_pd + 3, %eax
    mov %eax, boot_pdpt
    add $4096, %eax
    mov %eax, boot_pdpt + 8
    add $4096, %eax
    mov %eax, boot_pdpt + 16
    add $4096, %eax
    mov %eax, boot_pdpt + 24
    /* The high PDPT maps the top 2 GiB onto physical 0..2 GiB (kernel image). */
    mov $boot_pd + 3, %eax
    mov %eax, boot_pdpt_high + 510 * 8
    add $4096, %eax
    mov %eax, boot_pdpt_high + 511 * 8

    mov $boot_pdpt + 3, %eax
    mov %eax, boot_pml4
    mov %eax, boot_pml4 + 256 * 8
    mov $boot_pdpt_high + 3, %eax
    mov %eax, boot_pml4 + 511 * 8

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax           /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx        /* EFER */
    rdmsr
    or $(1 << 8), %eax           /* long mode enable */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax         /* paging + protection */
    mov %eax, %cr0

    lgdt boot_gdt_pointer
    ljmp $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs

    /* Zero the kernel's .bss through its high mapping. */
    movabs $__bss_start, %rdi
    movabs $__bss_end, %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb

    movabs $boot_stack_top, %rsp
    mov %esi, %edi               /* kernel_main(start_info_paddr) */
    movabs $kernel_main, %rax
    call *%rax
2:  hlt
    jmp 2b

    .section .boot.data, "aw", @progbits
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF     /* 64-bit code */
    .quad 0x00CF92000000FFFF     /* data */
boot_gdt_pointer:
    .word boot_gdt_pointer - boot_gdt - 1
    .long boot_gdt

    .balign 4096
boot_pml4:      .fill 4096, 1, 0
boot_pdpt:      .fill 4096, 1, 0
boot_pdpt_high: .fill 4096, 1, 0
boot_pd:        .fill 4 * 4096, 1, 0

    /* A guard page below the boot stack, left unmapped by the kernel's own
     * page tables (see arch/stacks.rs): an overflow faults. */
    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .global boot_stack_guard
boot_stack_guard:
    .skip 4096
boot_stack_bottom:
    .skip 64 * 1024
boot_stack_top:
