/*
 * eboot-rs: the few instructions Rust cannot express on Xtensa (upstream rustc has no
 * inline assembly for it). lx106, CALL0 ABI: args a2..a7, result a2, return address a0,
 * stack pointer a1. Assembled by xtensa-lx106-elf-as, like the compiler's own output.
 */

/* No `_start`: the ROM enters eboot_rs_main directly (ENTRY in bootloader.ld) on its own
 * stack, which we keep; a jump to it here would only cost bytes. */

/* u32 read_ccount(void): the cycle counter (one tick per instruction on the bench with
 * -icount shift=0). Dropped by --gc-sections unless the Rust side uses it. */
    .section .text.read_ccount, "ax", @progbits
    .global read_ccount
    .type read_ccount, @function
    .p2align 2
read_ccount:
    rsr.ccount a2
    ret
    .size read_ccount, . - read_ccount

/* noreturn jump_to_app(u32 entry): what eboot does after loading the segments: the app
 * gets a fresh stack at 0x3FFFFFF0 (the ROM stack top), no arguments and no return
 * address. a2 holds the entry (first argument). */
    .section .text.jump_to_app, "ax", @progbits
    .global jump_to_app
    .type jump_to_app, @function
    /* 4-byte entry: the Rust side reaches it with call0. */
    .p2align 2
jump_to_app:
    /* 0x3FFFFFF0 = 0xFFFFFFC0 >> 2: two instructions, one byte less than l32r + literal. */
    movi    a1, -64
    srli    a1, a1, 2
    jx      a2
    .size jump_to_app, . - jump_to_app

/* No executable stack (silences GNU ld; the note is what the compiler emits too). */
    .section .note.GNU-stack, "", @progbits
