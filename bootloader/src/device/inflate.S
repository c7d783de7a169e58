/*
 * eboot-rs: streaming gzip inflater for the lx106 (CALL0 ABI), the device build's
 * replacement for `bootloader::inflate::gunzip` + `copy::FlashSource` (same contract and
 * error classes; the Rust one is the specification and tests/bench/tests/inflate_asm.rs
 * compares the two on QEMU). Why assembly: sector 0 is 4096 bytes, and this routine
 * (1108 bytes) took the image from 5664 to 5184 bytes, Rust inflater and plumbing out.
 *
 *   u32 eboot_gunzip(u32 src, u32 len, u8 *input, State *st,
 *                    u32 (*sink)(void *ctx, const u8 *data, u32 len), u32 *ctx);
 *
 * - Input: the gzip member at flash [src, src+len), src sector aligned, read with the ROM's
 *   SPIRead a whole 4 KiB sector at a time into `input`, only when a byte of that sector is
 *   needed (so nothing past the member is read, as FlashSource).
 * - Output: into the 32 KiB ring at st + WIN; every completed 4096-byte sector of the output
 *   stream, then the final partial one, goes to sink(ctx, data, len) (nonzero: go on).
 * - Returns 0, or the Rust `inflate::Error` discriminant + 1: 1 Header, 2 Data,
 *   3 Truncated (end of input or a failed SPIRead), 4 Trailer, 5 Sink. The Rust inflater
 *   records its first error and runs on without reading; here the first error returns at
 *   once, after exactly the same reads, so the class is the same.
 * - On success ctx[0] = output length, ctx[1] = its CRC-32, ctx[2] = input bytes consumed.
 *
 * RAM: st's first WIN bytes are this routine's frame and tables (a1 points there), the
 * 32 KiB window follows (34304 bytes in all, of the Rust State's 34368). Nothing else is
 * written but `input` and the caller's stack: 32 bytes of saved registers, below them
 * 64 bytes for a2..a11 around SPIRead and a1/a0 around every outside call, which runs
 * on the caller's stack (a1 switched back).
 *
 * Registers kept throughout: a12 output count (ring position mod 32768), a13 input bytes
 * consumed, a14 input bytes left, a15 bit buffer with a 1 above its valid bits (1: empty).
 * Decoding is puff-like (own code): canonical Huffman by counts, symbols in code order,
 * one bit at a time; length and distance bases by a counting loop; bitwise CRC-32.
 */
    .section .text.eboot_gunzip, "ax", @progbits
    .literal_position

    /* A plain call0: stops gas expanding some into l32r + callx0. */
    .macro CALL t
    .begin no-transform
    call0   \t
    .end no-transform
    .endm

    /* Frame (offsets from a1), all in reach of the narrow loads and stores. */
    .equ F_SP, 0            /* the caller's stack pointer, less our 32 bytes */
    .equ F_IN, 4
    .equ F_FLUSHED, 8       /* output handed to the sink so far */
    .equ F_CRC, 12          /* CRC-32s so far: output, header */
    .equ F_ICRC, 16
    .equ F_NDIST, 20
    .equ F_NLEN, 24
    .equ F_CTX, 28
    .equ F_SRC, 32
    .equ F_SINK, 36
    .equ F_RET, 40          /* return address of hbytes, decode, flush (never nested) */
    .equ F_FINAL, 44
    .equ F_GRET, 48
    .equ F_T, 52
    .equ F_LEFT, 56
    /* Tables: 15 u32 counts (code lengths 1..15) just below each symbol array (u16). */
    .equ T_DIST, 124        /* counts 64..123, 32 symbols 124..187 */
    .equ T_LIT, 256         /* counts 196..255, 288 symbols 256..831 */
    .equ LENS, 1024         /* 320 code lengths, + 138 slack for a repeat past the end */
    .equ WIN, 1536          /* the window */

    .p2align 2
    .global eboot_gunzip
    .type eboot_gunzip, @function
eboot_gunzip:
    addi    a1, a1, -32
    s32i    a0, a1, 0
    s32i    a12, a1, 4
    s32i    a13, a1, 8
    s32i    a14, a1, 12
    s32i    a15, a1, 16
    s32i    a1, a5, F_SP
    mov     a1, a5
    s32i    a4, a1, F_IN
    s32i    a2, a1, F_SRC
    s32i    a6, a1, F_SINK
    s32i    a7, a1, F_CTX
    movi    a12, 0
    s32i    a12, a1, F_FLUSHED
    movi    a13, 0
    mov     a14, a3
    movi    a15, 1
    s32i    a12, a1, F_CRC
    s32i    a12, a1, F_ICRC

    /* gzip header (RFC 1952 2.3), every byte through hbytes (CRC for FHCRC). As the Rust
     * one, the magic, method and reserved flags are checked once all four bytes are in. */
    movi    a10, 4
    CALL    hbytes              /* a11 = ID1 | ID2 << 8 | CM << 16 | FLG << 24 */
    extui   a8, a11, 24, 8      /* FLG */
    slli    a3, a11, 8
    movi    a4, 0x088B1F00
    sub     a3, a3, a4          /* ID1, ID2, CM = 1F 8B 08 */
    srli    a4, a8, 5           /* reserved flags */
    or      a3, a3, a4
    bnez    a3, .Lheader
    movi    a10, 6              /* MTIME, XFL, OS */
    CALL    hbytes
    bbci    a8, 2, 1f           /* FEXTRA: XLEN, then XLEN bytes */
    movi    a10, 2
    CALL    hbytes
    extui   a10, a11, 16, 16
    CALL    hbytes
1:  srli    a9, a8, 3           /* bit 0 FNAME, bit 1 FCOMMENT: zero-terminated */
2:  bbci    a9, 0, 4f
3:  movi    a10, 1
    CALL    hbytes
    extui   a3, a11, 24, 8
    bnez    a3, 3b
4:  srli    a9, a9, 1
    bnez    a9, 2b
    bbci    a8, 1, .Lblock      /* FHCRC: low half of the CRC-32 of the header so far */
    movi    a2, 16
    CALL    getbits
    l32i    a4, a1, F_ICRC
    xor     a3, a3, a4
    extui   a3, a3, 0, 16
    bnez    a3, .Lheader

.Lblock:
    movi    a2, 3               /* BFINAL, BTYPE */
    CALL    getbits
    s32i    a3, a1, F_FINAL
    srli    a3, a3, 1
    addmi   a8, a1, LENS
    beqi    a3, 2, .Ldyn
    beqi    a3, 1, .Lfixed
    bnez    a3, .Ldata          /* block type 3; 0: stored */
    movi    a15, 1              /* drop to a byte boundary */
    movi    a2, 32
    CALL    getbits             /* LEN | NLEN << 16 */
    slli    a4, a3, 16
    add     a4, a4, a3
    srai    a4, a4, 16          /* LEN + NLEN (mod 2^16), sign-extended: must be -1 */
    addi    a4, a4, 1
    bnez    a4, .Ldata
    extui   a3, a3, 0, 16
1:  s32i    a3, a1, F_LEFT
    beqz    a3, .Lend
    movi    a2, 8
    CALL    getbits
    mov     a7, a3
    CALL    putb
    CALL    flushchk
    l32i    a3, a1, F_LEFT
    addi    a3, a3, -1
    j       1b

.Lfixed: /* lengths 144x8 112x9 24x7 8x8 (packed runs: count/8 | (len-5)<<5), 32x5 */
    movi    a10, 0x61438E72
1:  extui   a9, a10, 0, 5
    slli    a9, a9, 3
    extui   a5, a10, 5, 3
    addi    a5, a5, 5
    CALL    fill
    srli    a10, a10, 8
    bnez    a10, 1b
    movi    a9, 32
    movi    a5, 5
    CALL    fill
    movi    a4, 32
    s32i    a4, a1, F_NDIST
    movi    a3, 288
    j       .Lcodes

.Ldyn:
    movi    a2, 14              /* HLIT, HDIST, HCLEN: all read before any check */
    CALL    getbits
    extui   a4, a3, 0, 5
    addmi   a5, a4, 256
    addi    a5, a5, 1
    s32i    a5, a1, F_NLEN
    extui   a5, a3, 5, 5
    addi    a6, a5, 1
    s32i    a6, a1, F_NDIST
    addi    a6, a4, -30         /* HLIT or HDIST above 29: refused (as zlib) */
    bgez    a6, .Ldata
    addi    a6, a5, -30
    bgez    a6, .Ldata
    extui   a5, a3, 10, 4
    addi    a5, a5, 4           /* a5 = HCLEN + 4 */
    movi    a7, 0
1:  movi    a3, 0
    bgeu    a7, a5, 2f
    movi    a2, 3
    CALL    getbits
2:  /* a10 = order[a7]: 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1,15 */
    srli    a11, a7, 1
    addi    a10, a7, 16
    bltui   a7, 3, 3f
    addi    a10, a11, 6
    bbci    a7, 0, 3f
    neg     a10, a11
    addi    a10, a10, 1
    extui   a10, a10, 0, 3
3:  add     a10, a10, a8
    s8i     a3, a10, 0
    addi    a7, a7, 1
    movi    a4, 19
    bne     a7, a4, 1b
    mov     a2, a8
    movi    a3, 19
    addmi   a6, a1, T_LIT
    CALL    build               /* code-length code */
    bnez    a7, .Ldata          /* ... which must be complete */
    addmi   a8, a1, LENS
    l32i    a11, a1, F_NLEN
    l32i    a4, a1, F_NDIST
    add     a11, a11, a4
    add     a11, a11, a8        /* a11 = end of lengths */
    movi    a5, -1              /* previous length: none */
    addmi   a6, a1, T_LIT
.Lcl:
    CALL    decode
    bgeui   a2, 16, 1f
    mov     a5, a2
    movi    a9, 1
    j       .Lrep
1:  movi    a9, 3
    addi    a2, a2, -14         /* 16 -> 2, 17 -> 3, 18 -> 4 */
    beqi    a2, 2, 3f
    movi    a5, 0
    bnei    a2, 4, 3f
    movi    a9, 11
    movi    a2, 7
3:  bltz    a5, .Ldata          /* 16 first: refused before its extra bits */
    CALL    getbits
    add     a9, a9, a3
.Lrep:
    CALL    fill                /* may run past the end: LENS has slack */
    bltu    a8, a11, .Lcl
    bne     a8, a11, .Ldata     /* a repeat ran past the end */
    addmi   a3, a1, LENS + 256
    l8ui    a3, a3, 0
    beqz    a3, .Ldata          /* no end-of-block code */
    l32i    a3, a1, F_NLEN

.Lcodes:                        /* a3 = number of literal/length codes */
    addmi   a2, a1, LENS
    addmi   a6, a1, T_LIT
    CALL    build
    l32i    a3, a1, F_NDIST
    addi    a6, a1, T_DIST
    CALL    build
.Lsym:
    CALL    flushchk
    addmi   a6, a1, T_LIT
    CALL    decode
    bltui   a2, 256, .Llit
    beqi    a2, 256, .Lend
    addmi   a2, a2, -256
    addi    a2, a2, -1          /* 0..30 */
    movi    a3, 3
    movi    a4, 28
    bltu    a2, a4, 1f
    bne     a2, a4, .Ldata      /* 286, 287 */
    movi    a3, 258
    movi    a2, 0
1:  movi    a4, 4
    CALL    base
    mov     a8, a3              /* length */
    addi    a6, a1, T_DIST
    CALL    decode
    movi    a4, 30
    bgeu    a2, a4, .Ldata      /* 30, 31 */
    movi    a3, 1
    movi    a4, 2
    CALL    base                /* a3 = distance */
    bltu    a12, a3, .Ldata     /* before the start of the output */
1:  sub     a9, a12, a3
    extui   a9, a9, 0, 15
    add     a9, a9, a1
    addmi   a9, a9, WIN
    l8ui    a7, a9, 0
    CALL    putb
    addi    a8, a8, -1
    bnez    a8, 1b
    j       .Lsym
.Llit:
    mov     a7, a2
    CALL    putb
    j       .Lsym
    /* Error exits here, in the middle, where most branches to them reach. */
.Lheader:                       /* (bnez.n: a short jump, a2 is never 0 here) */
    movi    a2, 1
    bnez.n  a2, .Lret
.Ldata:
    movi    a2, 2
    bnez.n  a2, .Lret
.Ltrunc:
    movi    a2, 3
    bnez.n  a2, .Lret
.Ltrailer:
    movi    a2, 4
    bnez.n  a2, .Lret
.Lsink:
    movi    a2, 5
.Lret:
    l32i    a1, a1, F_SP
    l32i    a0, a1, 0
    l32i    a12, a1, 4
    l32i    a13, a1, 8
    l32i    a14, a1, 12
    l32i    a15, a1, 16
    addi    a1, a1, 32
    ret

.Lend:
    l32i    a3, a1, F_FINAL
    bbci    a3, 0, .Lblock
    l32i    a2, a1, F_FLUSHED   /* the last, partial sector (flushchk left < 4096) */
    sub     a4, a12, a2
    beqz    a4, 1f
    CALL    flush
1:  movi    a15, 1              /* trailer: CRC-32, ISIZE from a byte boundary */
    movi    a2, 32
    CALL    getbits
    mov     a10, a3
    movi    a2, 32
    CALL    getbits
    l32i    a4, a1, F_CRC
    bne     a4, a10, .Ltrailer
    bne     a3, a12, .Ltrailer
    l32i    a5, a1, F_CTX       /* results: length, CRC (= the stored one), input used */
    s32i    a12, a5, 0
    s32i    a10, a5, 4
    s32i    a13, a5, 8
    movi    a2, 0
    j       .Lret
    .size eboot_gunzip, . - eboot_gunzip

/* getbits: a2 = n (0..32) -> a3 = next n bits, LSB first.  getbits_add adds them to a3.
 * Clobbers a2, a4 (a refill saves and restores everything else). */
    .p2align 2
    .type getbits, @function
getbits:
    movi    a3, 0
getbits_add:
    movi    a4, 1
1:  beqz    a2, 3f
    bnei    a15, 1, 2f
    beqz    a14, .Ltrunc        /* end of input */
    addi    a14, a14, -1
    extui   a15, a13, 0, 12
    beqz    a15, .Lrefill       /* first byte of a sector: read it */
5:  s32i    a4, a1, F_T
    l32i    a4, a1, F_IN
    add     a4, a4, a15
    l8ui    a15, a4, 0
    l32i    a4, a1, F_T
    addi    a13, a13, 1
    addmi   a15, a15, 256
2:  bbci    a15, 0, 4f
    add     a3, a3, a4
4:  srli    a15, a15, 1
    add     a4, a4, a4
    addi    a2, a2, -1
    j       1b
3:  ret
.Lrefill:                       /* a15 = 0 */
    s32i    a0, a1, F_GRET
    l32i    a15, a1, F_SP       /* a2..a11 below our saved registers */
    addi    a15, a15, -48
    s32i    a2, a15, 0
    s32i    a3, a15, 4
    s32i    a4, a15, 8
    s32i    a5, a15, 12
    s32i    a6, a15, 16
    s32i    a7, a15, 20
    s32i    a8, a15, 24
    s32i    a9, a15, 28
    s32i    a10, a15, 32
    s32i    a11, a15, 36
    l32i    a2, a1, F_SRC
    add     a2, a2, a13
    l32i    a3, a1, F_IN
    movi    a4, 1
    slli    a4, a4, 12          /* 4096 */
    movi    a8, SPIRead
    CALL    xcall
    bnez    a2, .Ltrunc         /* a read error ends the input (FlashSource) */
    l32i    a2, a15, 0          /* a15 survives: callee-saved */
    l32i    a3, a15, 4
    l32i    a4, a15, 8
    l32i    a5, a15, 12
    l32i    a6, a15, 16
    l32i    a7, a15, 20
    l32i    a8, a15, 24
    l32i    a9, a15, 28
    l32i    a10, a15, 32
    l32i    a11, a15, 36
    l32i    a0, a1, F_GRET
    movi    a15, 0
    j       5b
    .size getbits, . - getbits

/* xcall: calls a8(a2, a3, a4) on the caller's stack (below the refill's saves) -> a2.
 * Clobbers a2..a11. */
    .p2align 2
    .type xcall, @function
xcall:
    l32i    a9, a1, F_SP
    addi    a9, a9, -64
    s32i    a1, a9, 0
    s32i    a0, a9, 4
    mov     a1, a9
    callx0  a8
    l32i    a0, a1, 4
    l32i    a1, a1, 0
    ret
    .size xcall, . - xcall

/* hbytes: a10 header bytes (any number); each goes into the header CRC and a11 (a11 >>= 8,
 * the byte on top). Clobbers a2..a7, a10. */
    .p2align 2
    .type hbytes, @function
hbytes:
    s32i    a0, a1, F_RET
1:  beqz    a10, 2f
    movi    a2, 8
    CALL    getbits
    ssai    8                   /* a11 = a3 << 24 | a11 >> 8 (a3 < 256) */
    src     a11, a3, a11
    s32i    a3, a1, F_T         /* the byte, for the CRC (little endian: at F_T) */
    addi    a3, a1, F_T
    movi    a4, 1
    l32i    a2, a1, F_ICRC
    CALL    eboot_crc32
    s32i    a2, a1, F_ICRC
    addi    a10, a10, -1
    j       1b
2:  l32i    a0, a1, F_RET
    ret
    .size hbytes, . - hbytes

/* u32 eboot_crc32(u32 crc, const u8 *data, u32 len): CRC-32/ISO-HDLC (gzip's) continued
 * over data, also the device's `crc::gzip` (C ABI; one copy of the loop for both).
 * Clobbers a3..a7 (hbytes and flush rely on it) and SAR. One loop over the bits, a byte
 * going in every 8. The shift is a rotate right (SAR 1), which brings the bit shifted out
 * to bit 31: (c >> 1) ^ P equals rotr(c) ^ (P ^ 1 << 31) then. */
    .p2align 2
    .global eboot_crc32
    .type eboot_crc32, @function
eboot_crc32:
    movi    a7, 0x6DB88320      /* P ^ 1 << 31 */
    ssai    1
    movi    a6, -1
    xor     a2, a2, a6
    slli    a4, a4, 3           /* bits left */
1:  beqz    a4, 3f
    extui   a5, a4, 0, 3
    bnez    a5, 2f
    l8ui    a5, a3, 0
    addi    a3, a3, 1
    xor     a2, a2, a5
2:  src     a2, a2, a2
    bgez    a2, 4f
    xor     a2, a2, a7
4:  addi    a4, a4, -1
    j       1b
3:  xor     a2, a2, a6
    ret
    .size eboot_crc32, . - eboot_crc32

/* flushchk: hands over the sector just completed, if any (called where only a12..a15 are
 * live: before each symbol and after each stored byte, so before any further input is
 * read, as the Rust inflater's immediate flush).  flush: a4 (1..4096) bytes from output
 * position a2 (a multiple of 4096).  Both clobber a2..a11. */
    .p2align 2
    .type flushchk, @function
flushchk:
    l32i    a2, a1, F_FLUSHED
    sub     a4, a12, a2
    srli    a4, a4, 12
    beqz    a4, 1f
    movi    a4, 1
    slli    a4, a4, 12
    j       flush
1:  ret
    .size flushchk, . - flushchk

    .p2align 2
    .type flush, @function
flush:
    s32i    a0, a1, F_RET
    add     a3, a2, a4
    s32i    a3, a1, F_FLUSHED
    extui   a3, a2, 0, 15
    add     a3, a3, a1
    addmi   a3, a3, WIN         /* data */
    mov     a10, a3
    mov     a11, a4             /* length */
    l32i    a2, a1, F_CRC
    CALL    eboot_crc32
    s32i    a2, a1, F_CRC
    l32i    a2, a1, F_CTX
    mov     a3, a10
    mov     a4, a11
    l32i    a8, a1, F_SINK
    CALL    xcall
    beqz    a2, .Lsink
    l32i    a0, a1, F_RET
    ret
    .size flush, . - flush

/* putb: a7 to the output.  Clobbers a9. */
    .p2align 2
    .type putb, @function
putb:
    extui   a9, a12, 0, 15
    add     a9, a9, a1
    addmi   a9, a9, WIN
    s8i     a7, a9, 0
    addi    a12, a12, 1
    ret
    .size putb, . - putb

/* build: a2 = lengths, a3 = n (>0), a6 = table -> a2 += n, a7 = codes left (0: complete).
 * Refuses over-subscribed codes, and incomplete ones but for a lone 1-bit code or none
 * (as the Rust `build` when not strict; the caller refuses any incomplete code-length
 * code).  Clobbers a4, a5, a7..a11. */
    .p2align 2
    .type build, @function
build:
    mov     a5, a6              /* symbol write pointer */
    movi    a4, 1               /* length */
    movi    a7, 1               /* codes left */
    addi    a10, a6, -60        /* &count[1] */
1:  movi    a8, 0               /* symbol */
    movi    a9, 0               /* count */
2:  add     a11, a2, a8
    l8ui    a11, a11, 0
    bne     a11, a4, 3f
    s16i    a8, a5, 0
    addi    a5, a5, 2
    addi    a9, a9, 1
3:  addi    a8, a8, 1
    bne     a8, a3, 2b
    s32i    a9, a10, 0
    add     a7, a7, a7
    sub     a7, a7, a9
    bltz    a7, .Ldata
    addi    a10, a10, 4
    addi    a4, a4, 1
    bne     a10, a6, 1b
    add     a2, a2, a3
    beqz    a7, 4f
    addi    a8, a6, -60
    l32i    a8, a8, 0
    addx2   a8, a8, a6
    bne     a8, a5, .Ldata
4:  ret
    .size build, . - build

/* decode: a6 = table -> a2 = symbol.  Reads at most 15 bits; a code not in the table
 * (only an incomplete one has such) is refused after all 15, as the Rust `decode`.
 * Clobbers a3, a4, a7, a9, a10. */
    .p2align 2
    .type decode, @function
decode:
    s32i    a0, a1, F_RET
    movi    a7, 0               /* code - first code of this length */
    mov     a9, a6              /* first symbol of this length */
    addi    a10, a6, -60        /* &count[1] */
1:  movi    a2, 1
    CALL    getbits
    add     a7, a7, a3
    l32i    a3, a10, 0
    bltu    a7, a3, 2f
    addx2   a9, a3, a9
    sub     a7, a7, a3
    add     a7, a7, a7
    addi    a10, a10, 4
    bne     a10, a6, 1b
    j       .Ldata
2:  addx2   a9, a7, a9
    l16ui   a2, a9, 0
    l32i    a0, a1, F_RET
    ret
    .size decode, . - decode

/* base: a2 = s, a3 = b0, a4 = g -> a3 = b0 + sum of steps before s + extra bits.
 * The first 2g symbols step by 1 with no extra bits, then every g symbols the step doubles
 * and one more extra bit.  Clobbers a2, a4, a7, a9, a10. */
    .p2align 2
    .type base, @function
base:
    movi    a7, 1
    add     a9, a4, a4
    movi    a10, 0
1:  beqz    a2, 2f
    add     a3, a3, a7
    addi    a2, a2, -1
    addi    a9, a9, -1
    bnez    a9, 1b
    mov     a9, a4
    add     a7, a7, a7
    addi    a10, a10, 1
    j       1b
2:  mov     a2, a10
    j       getbits_add
    .size base, . - base

/* fill: a9 (>0) bytes of a5 at a8 (a8 advances).  */
    .p2align 2
    .type fill, @function
fill:
    s8i     a5, a8, 0
    addi    a8, a8, 1
    addi    a9, a9, -1
    bnez    a9, fill
    ret
    .size fill, . - fill

/* No executable stack (silences GNU ld). */
    .section .note.GNU-stack, "", @progbits
