/* Runs bootloader/src/device/inflate.S (eboot_gunzip) on QEMU lx106 over every stream of a
 * table the host test (tests/inflate_asm.rs) loads at DESC, with the streams in a RAM "flash"
 * at FLASH read through this file's SPIRead (the ROM's rules: word-aligned address, buffer
 * and length; reads past the chip fail). Per stream it prints one line:
 *   R idx err out_len crc in_len sink_bytes sink_crc chunks reads flags
 * flags: 1 bad chunk size, 2 chunk outside the inflater's RAM, 4 misaligned SPIRead, 8 a write
 * outside the inflater's RAM and the input buffer (guards), 16 sink called after it said stop. */
typedef unsigned int u32;
typedef unsigned char u8;

#define UART (*(volatile u32 *)0x9D050020)
#define FLASH ((const u8 *)0x51000000)
#define DESC ((const u32 *)0x53000000) /* count, chip size, then (src, len, stop_after) */

#define STATE_SIZE 34368 /* size_of::<bootloader::inflate::State>() */
#define GUARD 64

u32 eboot_gunzip(u32 src, u32 len, u8 *input, void *st,
                 u32 (*sink)(void *ctx, const u8 *data, u32 len), u32 *ctx);

/* guard | state | guard | input | guard, word aligned */
static u32 ram[(GUARD + STATE_SIZE + GUARD + 4096 + GUARD) / 4];
#define ST ((u8 *)ram + GUARD)
#define INPUT (ST + STATE_SIZE + GUARD)

static u32 chip, reads, flags, chunks, sink_bytes, sink_crc, stop_after, stopped;

static void pc(int c) { UART = c; }
static void hex(u32 v) { for (int i = 28; i >= 0; i -= 4) pc("0123456789abcdef"[(v >> i) & 15]); }

static u32 crc_update(u32 c, const u8 *p, u32 n) {
    c = ~c;
    while (n--) { c ^= *p++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1)); }
    return ~c;
}

u32 SPIRead(u32 addr, u32 *dst, u32 len) {
    reads++;
    if ((addr | (u32)dst | len) & 3) { flags |= 4; return 1; }
    if (addr > chip || len > chip - addr) return 1;
    const u32 *s = (const u32 *)(FLASH + addr);
    for (u32 i = 0; i < len / 4; i++) dst[i] = s[i];
    return 0;
}

static u32 sink(void *ctx, const u8 *data, u32 len) {
    (void)ctx;
    if (stopped) flags |= 16;
    /* The previous chunk must have been full; this one 1..4096 bytes. */
    if (len == 0 || len > 4096 || (sink_bytes & 4095)) flags |= 1;
    if (data < ST || data + len > ST + STATE_SIZE) flags |= 2; /* inside the given RAM */
    sink_crc = crc_update(sink_crc, data, len);
    sink_bytes += len;
    chunks++;
    if (chunks == stop_after) { stopped = 1; return 0; }
    return 1;
}

static u32 guard_word(u32 i) { return 0xA5A5A5A5u ^ (i * 2654435761u); }
static int guard_ok(u32 w0, u32 n) {
    for (u32 i = w0; i < w0 + n; i++) if (ram[i] != guard_word(i)) return 0;
    return 1;
}

int main(void) {
    u32 n = DESC[0];
    chip = DESC[1];
    u32 words = sizeof ram / 4;
    for (u32 i = 0; i < words; i++) ram[i] = guard_word(i); /* garbage in the state too */
    for (u32 i = 0; i < n; i++) {
        u32 src = DESC[2 + 3 * i], len = DESC[3 + 3 * i];
        stop_after = DESC[4 + 3 * i];
        reads = flags = chunks = sink_bytes = sink_crc = stopped = 0;
        u32 res[3] = { 0, 0, 0 };
        /* The state keeps the previous stream's contents: any will do. */
        u32 err = eboot_gunzip(src, len, INPUT, ST, sink, res);
        if (!guard_ok(0, GUARD / 4) || !guard_ok((GUARD + STATE_SIZE) / 4, GUARD / 4) ||
            !guard_ok((GUARD + STATE_SIZE + GUARD + 4096) / 4, GUARD / 4))
            flags |= 8;
        pc('R');
        u32 v[10] = { i, err, res[0], res[1], res[2], sink_bytes, sink_crc, chunks, reads, flags };
        for (int k = 0; k < 10; k++) { pc(' '); hex(v[k]); }
        pc('\n');
    }
    pc('D'); pc('\n');
    return 0;
}
