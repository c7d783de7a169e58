/*
 * eboot-rs: the few instructions Rust cannot express on Xtensa (upstream rustc has no
 * inline assembly for it). lx106, CALL0 ABI: args a2..a7, result a2, return address a0,
 * stack pointer a1. Assembled by xtensa-lx106-elf-as, like the compiler's own output.
 */

/* Where the ROM starts us (the image header's entry). The ROM has loaded our IRAM and
 * DRAM segments and runs us on its own stack; we keep that stack and never return. */
    .section .text._start, "ax", @progbits
    .global _start
    .type _start, @function
    .align 4
_start:
    j       eboot_rs_main
    .size _start, . - _start

/* u32 read_ccount(void): the cycle counter (one tick per instruction on the bench with
 * -icount shift=0). Dropped by --gc-sections unless the Rust side uses it. */
    .section .text.read_ccount, "ax", @progbits
    .global read_ccount
    .type read_ccount, @function
    .align 4
read_ccount:
    rsr.ccount a2
    ret
    .size read_ccount, . - read_ccount

/* noreturn jump_to_app(u32 entry): what eboot does after loading the segments: the app
 * gets a fresh stack at 0x3FFFFFF0 (the ROM stack top), no arguments and no return
 * address. a2 holds the entry (first argument). */
    .section .text.jump_to_app, "ax", @progbits
    .literal_position
    .literal .Lapp_stack, 0x3FFFFFF0
    .global jump_to_app
    .type jump_to_app, @function
    .align 4
jump_to_app:
    l32r    a1, .Lapp_stack
    jx      a2
    .size jump_to_app, . - jump_to_app

/* No executable stack (silences GNU ld; the note is what the compiler emits too). */
    .section .note.GNU-stack, "", @progbits
