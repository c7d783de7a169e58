/* Shared by the bench ROM and the test apps (C and assembly). Must match src/qemu.rs. */
#ifndef BENCH_H
#define BENCH_H

#define ROM_STACK_TOP   0x400EFFF0      /* ROM's own stack (boot and traps only) */
#define FLASH_BASE      0x51000000      /* simulated SPI flash, up to 16 MiB */
#define CFG_BASE        0x53000000      /* configuration block written by the harness */
#define CFG_MAGIC       0x48434E42      /* "BNCH" */
#define SOFT_RESET_REG  0x60000700      /* bit 31: software reset (what eboot writes) */
#define FLASH_WINDOW    0x40200000      /* where the cache maps flash */
#define BENCH_PARK_OFF  0xF000          /* bench-only: rom_bench_park(reason) */
#define BENCH_PARK      (0x40000000 + BENCH_PARK_OFF)

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Filled by the harness; see src/qemu.rs `Config`. */
struct bench_cfg {
    uint32_t magic;
    uint32_t chip_size;
    uint32_t reset_reason;  /* what rtc_get_reset_reason() returns: 1 power-on, 2 soft */
    uint32_t cut_at;        /* index of the flash op (erase or program) that loses power */
    uint32_t cut_keep;      /* x/65536 of the cut op's bytes that take effect (a prefix) */
    uint32_t cut_garbage;   /* erase only: x/65536 of the sector after that prefix turns arbitrary */
    uint32_t seed;          /* for the arbitrary bytes */
    uint32_t flags;         /* bit 0: print every flash operation */
};
#define CUT_NONE 0xFFFFFFFFu
#define CFG_TRACE 1u
#endif
#endif
