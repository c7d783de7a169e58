/*
 * eboot-rs: small leaf routines of tier 1 in lx106 assembly (CALL0 ABI), the device's
 * versions of Rust routines that stay the specification (hosts and the simulator run those;
 * tests/bench/tests/leaf_asm.rs compares both on QEMU). Why: each is smaller than what the
 * compiler makes of the Rust one, and sector 0 is 4096 bytes.
 *
 *   u32  eboot_crc_mpeg2(const u32 *words, u32 n)             crc::mpeg2
 *   u32  eboot_segment_region(u32 addr, u32 len, u32 iram_end) image::segment_region
 *   void eboot_walker_feed(Walker *w, const u8 *data, u32 len) loader::Walker::feed
 *
 * (gzip's CRC, crc::gzip, is inflate.S's own `eboot_crc32`.)
 */
    .section .text.eboot_leaf, "ax", @progbits
    .literal_position

/* CRC-32/MPEG-2 (MSB first, init 0xFFFFFFFF, no final XOR) of n little-endian words, that
 * is of their bytes in memory order. One loop over the bits: a byte goes in on top every
 * 8. The shift is a rotate left (SAR 31), which brings the bit shifted out to bit 0:
 * (c << 1) ^ P equals rotl(c) ^ (P ^ 1) then. */
    .p2align 2
    .global eboot_crc_mpeg2
    .type eboot_crc_mpeg2, @function
eboot_crc_mpeg2:
    movi    a7, 0x04C11DB6      /* P ^ 1 */
    ssai    31
    movi    a4, -1
    slli    a3, a3, 5           /* bits left */
1:  beqz    a3, 3f
    extui   a6, a3, 0, 3
    bnez    a6, 2f
    l8ui    a6, a2, 0
    addi    a2, a2, 1
    slli    a6, a6, 24
    xor     a4, a4, a6
2:  src     a4, a4, a4
    bbci    a4, 0, 4f
    xor     a4, a4, a7
4:  addi    a3, a3, -1
    j       1b
3:  mov     a2, a4
    ret
    .size eboot_crc_mpeg2, . - eboot_crc_mpeg2

/* The region (0 Dram, 1 Iram, 2 Rtc, 3 Flash, 4 Invalid: image::Region's discriminants)
 * a segment [addr, addr + len) loads into, Invalid unless word aligned and inside one
 * region, IRAM ending at iram_end. A table of [start, end) by discriminant, IRAM's end 0
 * for iram_end. Reads a3 and a4 and clobbers only a5..a8: the walker below relies on it. */
    .p2align 2
    .global eboot_segment_region
    .type eboot_segment_region, @function
eboot_segment_region:
    movi    a5, .Lregions
    movi    a6, 0               /* discriminant */
1:  l32i    a7, a5, 0           /* start */
    l32i    a8, a5, 4           /* end */
    bnez    a8, 2f
    mov     a8, a4
2:  bltu    a2, a7, 3f
    bltu    a2, a8, 4f
3:  addi    a5, a5, 8
    addi    a6, a6, 1
    bnei    a6, 4, 1b
    j       5f
4:  sub     a8, a8, a2          /* room up to the region's end */
    bltu    a8, a3, 5f
    or      a7, a2, a3
    extui   a7, a7, 0, 2
    bnez    a7, 5f
    mov     a2, a6
    ret
5:  movi    a2, 4
    ret
    .p2align 2                  /* (inside the symbol: the size table counts it) */
.Lregions:
    .word   0x3FFE8000, 0x3FFFC000  /* Dram */
    .word   0x40100000, 0           /* Iram, up to iram_end */
    .word   0x60001000, 0x60002000  /* Rtc */
    .word   0x40200000, 0x40300000  /* Flash */
    .size eboot_segment_region, . - eboot_segment_region

/* loader::Walker::feed: the whole words of data (word aligned) through Walker::word, the
 * state being the repr(C) Walker (offsets below). The Rust one is the specification, line
 * for line; `left` at a segment header is never 0 (the checksum word is taken first). */
    .equ W_OFF, 0
    .equ W_NEXT, 4
    .equ W_LEFT, 8
    .equ W_FIRST, 12
    .equ W_SUM, 16
    .equ W_CRCW, 20
    .equ W_ARD, 24
    .equ W_LEN, 28
    .equ W_ENTRY, 32
    .equ W_HEAD, 36

    .p2align 2
    .global eboot_walker_feed
    .type eboot_walker_feed, @function
eboot_walker_feed:
    addi    a1, a1, -16
    s32i    a0, a1, 0
    mov     a9, a2              /* kept in a9..a11: eboot_segment_region spares them */
    mov     a10, a3
    srli    a11, a4, 2          /* a partial last word is dropped */
    addx4   a11, a11, a3
.Lword:
    beq     a10, a11, .Lout
    l32i    a3, a10, 0          /* w */
    addi    a10, a10, 4
    l32i    a6, a9, W_OFF       /* o */
    addi    a7, a6, 4
    s32i    a7, a9, W_OFF
    bgeui   a6, 16, 1f
    add     a7, a9, a6
    s32i    a3, a7, W_HEAD      /* head[o / 4] */
1:  l32i    a7, a9, W_NEXT
    sub     a7, a6, a7          /* i */
    bltui   a7, 8, .Lheader
    l32i    a5, a9, W_SUM       /* segment data (or padding) */
    xor     a5, a5, a3
    s32i    a5, a9, W_SUM
    l32i    a5, a9, W_ARD
    beqz    a5, .Lword
    addi    a5, a6, -16
    bgeui   a5, 8, .Lword
    l32i    a5, a9, W_CRCW
    xor     a5, a5, a3
    s32i    a5, a9, W_CRCW
    j       .Lword
.Lheader:
    bnez    a7, .Lsecond
    l32i    a5, a9, W_LEFT
    bnez    a5, 1f
    bgeui   a6, 8, .Lcheck
1:  s32i    a3, a9, W_FIRST
    j       .Lword
.Lcheck:
    /* The checksum word: the XOR of its bytes and the sum's is the seed, or that with the
     * CRC words' XOR (a second try, skipped when it is 0). */
    l32i    a5, a9, W_SUM
    xor     a5, a5, a3
    l32i    a7, a9, W_CRCW
2:  extui   a8, a5, 16, 16
    xor     a8, a8, a5
    srli    a4, a8, 8
    xor     a8, a8, a4
    extui   a8, a8, 0, 8
    movi    a4, 0xEF
    beq     a8, a4, 3f
    beqz    a7, .Ldone
    xor     a5, a5, a7
    movi    a7, 0
    j       2b
3:  addi    a8, a6, 4
    s32i    a8, a9, W_LEN
    j       .Ldone
.Lsecond:
    l32i    a2, a9, W_FIRST     /* a2 = address, a3 = length */
    bnei    a6, 4, .Lsegment
    s32i    a3, a9, W_ENTRY     /* the image header: entry where a length would be */
    extui   a5, a2, 8, 8
    s32i    a5, a9, W_LEFT
    extui   a7, a2, 0, 8
    movi    a8, 0xE9
    bne     a7, a8, .Ldone
    addi    a5, a5, -1
    bgeui   a5, 16, .Ldone
    movi    a8, 8
    j       .Lnext
.Lsegment:
    movi    a4, 0x4010C000      /* IRAM_END */
    call0   eboot_segment_region
    beqi    a2, 4, .Ldone
    l32i    a6, a9, W_OFF       /* o + 4 */
    bnei    a6, 16, 1f          /* o == 12, Flash, at least 8 bytes: Arduino layout */
    bnei    a2, 3, 1f
    bltui   a3, 8, 1f
    s32i    a6, a9, W_ARD       /* nonzero */
1:  add     a8, a6, a3          /* next = o + 4 + len */
    l32i    a5, a9, W_LEFT
    addi    a5, a5, -1
    s32i    a5, a9, W_LEFT
    bnez    a5, .Lnext
    movi    a5, 12              /* the last: padded_len(next) - 4, next word aligned */
    or      a8, a8, a5
    j       .Lnext
.Ldone:
    movi    a8, 1
    slli    a8, a8, 31          /* DONE */
.Lnext:
    s32i    a8, a9, W_NEXT
    j       .Lword
.Lout:
    l32i    a0, a1, 0
    addi    a1, a1, 16
    ret
    .size eboot_walker_feed, . - eboot_walker_feed

/* No executable stack (silences GNU ld). */
    .section .note.GNU-stack, "", @progbits
