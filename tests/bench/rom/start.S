/* Bench ROM: vectors, jump stubs at the ESP8266 mask-ROM addresses, entry, parking. */
#include "bench.h"

    .section .fixed, "ax"
    .global rom_fixed_base
rom_fixed_base:
    /* Vectors (VECBASE = 0x40000000 on lx106). */
    .org 0x10                       /* debug: DBREAK on the soft-reset register */
    j   debug_vector
    .org 0x20                       /* NMI */
    j   nmi_vector
    .org 0x30                       /* kernel exception */
    j   kernel_vector
    .org 0x50                       /* user exception */
    j   user_vector
    .org 0x70                       /* double exception */
    j   double_vector

/* ROM functions: a jump to our implementation at each real address, so code linked
 * against the real rom.ld (l32r + callx0) lands here with its arguments untouched. */
#define STUB(off, target) .org off ; j target
    STUB(0x24CC, rom_ets_printf)
    STUB(0x25E0, rom_rtc_get_reset_reason)
    STUB(0x2BE8, rom_ets_putc)
    STUB(0x2FA0, rom_ets_wdt_enable)
    STUB(0x30F0, rom_ets_wdt_disable)
    STUB(0x4678, rom_cache_read_enable)
    STUB(0x47F0, rom_cache_read_disable)
    STUB(0x4878, rom_spi_unlock)
    STUB(0x4984, rom_spi_erase_chip)
    STUB(0x49B4, rom_spi_erase_block)
    STUB(0x4A00, rom_spi_erase_sector)
    STUB(0x4A4C, rom_spi_write)
    STUB(0x4B1C, rom_spi_read)
    STUB(0x4C2C, rom_spi_param_cfg)
    STUB(0xDC88, rom_divsi3)
    STUB(0xDEA8, rom_memcmp)
    STUB(0xDF48, rom_memcpy)
    STUB(0xE04C, rom_memmove)
    STUB(0xE190, rom_memset)
    STUB(0xE21C, rom_udivsi3)
    STUB(0xE268, rom_umodsi3)
    /* Entry points not in the real ROM: test apps use them (BENCH_PARK). */
    STUB(BENCH_PARK_OFF, rom_bench_park)

    .section .entry.text, "ax"
    .align 4
    .global rom_reset
rom_reset:
    movi    a0, 0
    movi    a2, 0
    wsr     a2, intenable
    movi    a2, 0x40000000
    wsr     a2, vecbase
    /* PS = 0: INTLEVEL 0, EXCM 0, so the level-2 debug exception (DBREAK) is taken. */
    movi    a2, 0
    wsr     a2, ps
    rsync
    movi    a1, ROM_STACK_TOP
    call0   rom_main
1:  j       1b

/* rom_jump(entry): start the loaded image the way the ROM does: fresh stack, no args. */
    .global rom_jump
    .align 4
rom_jump:
    /* Arm the soft-reset trap: a store to 0x60000700 (bit 31 = software reset). */
    movi    a3, SOFT_RESET_REG
    wsr     a3, dbreaka0
    movi    a3, 0x8000003C          /* SB (break on store), mask: 4-byte word */
    wsr     a3, dbreakc0
    isync
    mov     a3, a2
    movi    a0, 0
    movi    a1, 0x3FFFFFF0
    movi    a4, rom_jump_cc
    rsr     a2, ccount              /* last ROM instruction count before the image runs */
    s32i    a2, a4, 0
    movi    a2, 0
    jx      a3

    .global rom_ccount
    .align 4
rom_ccount:
    rsr     a2, ccount
    ret

    .align 4
debug_vector:
    rsr     a2, epc2
    movi    a1, ROM_STACK_TOP
    call0   rom_soft_reset_trap
1:  j       1b

    .align 4
nmi_vector:
    movi    a2, 100
    j       exc_common
    .align 4
kernel_vector:
    movi    a2, 101
    j       exc_common
    .align 4
user_vector:
    movi    a2, 102
    j       exc_common
    .align 4
double_vector:
    movi    a2, 103
exc_common:
    rsr     a3, exccause
    rsr     a4, epc1
    rsr     a5, excvaddr
    movi    a1, ROM_STACK_TOP
    call0   rom_exception
1:  j       1b

/* rom_halt: power is gone or the run is over; sleep until the host collects state. */
    .global rom_halt
    .align 4
rom_halt:
    waiti   15
    j       rom_halt
