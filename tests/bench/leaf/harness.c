/* Runs the device's assembly leaf routines (bootloader/src/device/leaf.S, and inflate.S's
 * eboot_crc32) on QEMU lx106 over a table of calls the host test (tests/leaf_asm.rs) loads
 * at DESC, their data in RAM at DATA. Per call it prints one line, "R op flags results...":
 *   1 eboot_crc32(crc, DATA + off, len)              -> CRC
 *   2 eboot_crc_mpeg2(DATA + off, n)                 -> CRC
 *   3 eboot_segment_region(addr, len, iram_end)      -> region
 *   4 eboot_walker_feed over chunks of DATA           -> the 13 words of the Walker
 * flags: the registers the routine did not keep (check.S's mask, of those it promises to
 * keep), 0x100 a write outside the walker's state. */
typedef unsigned int u32;
typedef unsigned char u8;

#define UART (*(volatile u32 *)0x9D050020)
#define DATA ((const u8 *)0x51000000)
#define DESC ((const u32 *)0x53000000) /* count, then per call: op and its words */

u32 eboot_crc32(u32 crc, const u8 *data, u32 len);
u32 eboot_crc_mpeg2(const u32 *words, u32 n);
u32 eboot_segment_region(u32 addr, u32 len, u32 iram_end);
void eboot_walker_feed(u32 *w, const u8 *data, u32 len);
u32 call_checked(void *f, u32 a, u32 b, u32 c, u32 *changed);

/* inflate.S (linked for eboot_crc32) calls the ROM's SPIRead; never reached here. */
u32 SPIRead(u32 addr, u32 *dst, u32 len) { (void)addr; (void)dst; (void)len; return 1; }

#define WORDS 13 /* size_of::<Walker>() / 4 */
#define GUARD 8
static u32 walker[GUARD + WORDS + GUARD];

static void pc(int c) { UART = c; }
static void hex(u32 v) { for (int i = 28; i >= 0; i -= 4) pc("0123456789abcdef"[(v >> i) & 15]); }

int main(void) {
    const u32 *d = DESC;
    u32 n = *d++;
    for (u32 i = 0; i < n; i++) {
        u32 op = *d++, flags = 0, out[WORDS], k = 1;
        if (op == 1) {
            out[0] = call_checked(eboot_crc32, d[0], (u32)(DATA + d[1]), d[2], &flags);
            flags &= 4 | 8 | 16 | 32 | 64; /* a8..a11 kept for the inflater */
            d += 3;
        } else if (op == 2) {
            out[0] = call_checked(eboot_crc_mpeg2, (u32)(DATA + d[0]), d[1], 0, &flags);
            flags &= 64;
            d += 2;
        } else if (op == 3) {
            out[0] = call_checked(eboot_segment_region, d[0], d[1], d[2], &flags);
            flags &= 1 | 2 | 8 | 16 | 32 | 64; /* a3, a4, a9..a11 kept for the walker */
            d += 3;
        } else {
            for (u32 j = 0; j < GUARD + WORDS + GUARD; j++) walker[j] = j < GUARD || j >= GUARD + WORDS ? 0x5A5A5A5A ^ j : 0;
            u32 chunks = *d++;
            for (u32 c = 0; c < chunks; c++, d += 2) {
                u32 f = 0;
                call_checked(eboot_walker_feed, (u32)(walker + GUARD), (u32)(DATA + d[0]), d[1], &f);
                flags |= f & 64;
            }
            for (u32 j = 0; j < GUARD + WORDS + GUARD; j++)
                if ((j < GUARD || j >= GUARD + WORDS) && walker[j] != (0x5A5A5A5A ^ j)) flags |= 0x100;
            for (u32 j = 0; j < WORDS; j++) out[j] = walker[GUARD + j];
            k = WORDS;
        }
        pc('R'); pc(' '); hex(op); pc(' '); hex(flags);
        for (u32 j = 0; j < k; j++) { pc(' '); hex(out[j]); }
        pc('\n');
    }
    pc('D'); pc('\n');
    return 0;
}
