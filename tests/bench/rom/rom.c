/* Bench ROM: what the ESP8266 mask ROM does for a bootloader, over a simulated SPI flash
 * with the project's fault model. Test fixture, not product code. */
#include <stdarg.h>
#include <stdint.h>
#include "bench.h"

#define UART_THR   (*(volatile uint32_t *)0x9D050020)
#define CFG        ((volatile struct bench_cfg *)CFG_BASE)
#define FLASH      ((volatile uint8_t *)FLASH_BASE)
#define SECTOR     4096u

extern uint32_t rom_ccount(void);
extern void rom_jump(uint32_t entry) __attribute__((noreturn));
extern void rom_halt(void) __attribute__((noreturn));
extern char _bss_start[], _bss_end[];

/* Counters reported to the host when the run ends. */
uint32_t rom_jump_cc;
static uint32_t chip_size, cut_at, ops, erases, prog_bytes, reads, read_bytes, errors,
    violations, boot_cc, rng, wdt_mode = 0xFFFFFFFFu, cache_maps;

void rom_ets_putc(int c) { UART_THR = (uint8_t)c; }

static void puts_(const char *s) { while (*s) rom_ets_putc(*s++); }

/* libgcc's division helpers, as the mask ROM has them (this toolchain's libgcc.a lacks
 * them). Shift-subtract: no call back into a division helper. */
static uint32_t udivmod(uint32_t n, uint32_t d, uint32_t *rem) {
    uint32_t q = 0, r = 0;
    if (d == 0) { *rem = n; return 0xFFFFFFFFu; }
    for (int i = 31; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) { r -= d; q |= 1u << i; }
    }
    *rem = r;
    return q;
}
uint32_t rom_udivsi3(uint32_t n, uint32_t d) { uint32_t r; return udivmod(n, d, &r); }
uint32_t rom_umodsi3(uint32_t n, uint32_t d) { uint32_t r; udivmod(n, d, &r); return r; }
int32_t rom_divsi3(int32_t n, int32_t d) {
    uint32_t r, q = udivmod(n < 0 ? -(uint32_t)n : (uint32_t)n, d < 0 ? -(uint32_t)d : (uint32_t)d, &r);
    return (n < 0) != (d < 0) ? -(int32_t)q : (int32_t)q;
}

static void put_num(uint32_t v, unsigned base, int width, char pad, int neg) {
    char buf[12];
    int n = 0;
    do { uint32_t d; v = udivmod(v, base, &d); buf[n++] = d < 10 ? '0' + d : 'a' + d - 10; } while (v);
    if (neg) buf[n++] = '-';
    while (n < width) { rom_ets_putc(pad); width--; }
    while (n) rom_ets_putc(buf[--n]);
}

static void vprintf_(const char *f, va_list ap) {
    for (; *f; f++) {
        if (*f != '%') { rom_ets_putc(*f); continue; }
        f++;
        char pad = ' ';
        int width = 0;
        if (*f == '0') { pad = '0'; f++; }
        while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
        if (*f == 'l') f++;
        switch (*f) {
        case 'd': { int32_t v = va_arg(ap, int32_t);
                    put_num(v < 0 ? -(uint32_t)v : (uint32_t)v, 10, width, pad, v < 0); break; }
        case 'u': put_num(va_arg(ap, uint32_t), 10, width, pad, 0); break;
        case 'x': case 'X': case 'p': put_num(va_arg(ap, uint32_t), 16, width, pad, 0); break;
        case 'c': rom_ets_putc(va_arg(ap, int)); break;
        case 's': { const char *s = va_arg(ap, const char *); puts_(s ? s : "(null)"); break; }
        case '%': rom_ets_putc('%'); break;
        case 0: return;
        default: rom_ets_putc('%'); rom_ets_putc(*f); break;
        }
    }
}

int rom_ets_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf_(fmt, ap);
    va_end(ap);
    return 0;
}
#define P rom_ets_printf

/* The one line the host waits for: the run is over, collect flash and RTC memory. */
static void __attribute__((noreturn)) end_run(const char *reason, uint32_t info) {
    uint32_t cc = rom_ccount();
    P("\n#BENCH END reason=%s info=%x ops=%u erases=%u programmed=%u reads=%u read_bytes=%u"
      " errors=%u violations=%u boot_cc=%u jump_cc=%u end_cc=%u maps=%u\n",
      reason, info, ops, erases, prog_bytes, reads, read_bytes, errors, violations, boot_cc,
      rom_jump_cc, cc, cache_maps);
    rom_halt();
}

void rom_soft_reset_trap(uint32_t pc) { end_run("soft_reset", pc); }

void rom_exception(uint32_t kind, uint32_t cause, uint32_t epc, uint32_t vaddr) {
    P("\n#BENCH EXCEPTION kind=%u cause=%u epc=%08x excvaddr=%08x\n", kind, cause, epc, vaddr);
    end_run("exception", cause);
}

/* Not in the real ROM: an app or test fixture ends the run explicitly (BENCH_PARK). */
void rom_bench_park(uint32_t code) { end_run("park", code); }

static void violation(const char *what, uint32_t a, uint32_t b, uint32_t c) {
    violations++;
    P("\n#BENCH VIOLATION %s %08x %08x %08x\n", what, a, b, c);
}

int rom_rtc_get_reset_reason(void) { return CFG->reset_reason; }
void rom_ets_wdt_enable(uint32_t mode, uint32_t a, uint32_t b) { (void)a; (void)b; wdt_mode = mode; }
uint32_t rom_ets_wdt_disable(void) { uint32_t m = wdt_mode; wdt_mode = 0xFFFFFFFFu; return m; }
int rom_spi_unlock(void) { return 0; }
int rom_spi_param_cfg(void) { return 0; }
int rom_spi_erase_chip(void) { violation("SPIEraseChip", 0, 0, 0); errors++; return 1; }

/* libc, as the mask ROM provides it. Byte loops: simple, and gcc must not turn them back
 * into calls to themselves (-fno-builtin -fno-tree-loop-distribute-patterns). */
void *rom_memcpy(void *d, const void *s, uint32_t n) {
    uint8_t *dd = d; const uint8_t *ss = s;
    if ((((uint32_t)d | (uint32_t)s | n) & 3) == 0) {
        uint32_t *dw = d; const uint32_t *sw = s;
        for (n /= 4; n; n--) *dw++ = *sw++;
        return d;
    }
    while (n--) *dd++ = *ss++;
    return d;
}
void *rom_memmove(void *d, const void *s, uint32_t n) {
    uint8_t *dd = d; const uint8_t *ss = s;
    if (dd <= ss || dd >= ss + n) return rom_memcpy(d, s, n);
    while (n--) dd[n] = ss[n];
    return d;
}
void *rom_memset(void *d, int c, uint32_t n) {
    uint8_t *dd = d;
    while (n--) *dd++ = (uint8_t)c;
    return d;
}
int rom_memcmp(const void *a, const void *b, uint32_t n) {
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++) if (*x != *y) return *x - *y;
    return 0;
}

static uint8_t next_rand(void) {
    rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
    return (uint8_t)(rng >> 7);
}

/* Bytes of an op of `len` bytes that land before power is lost. */
static uint32_t frac(uint32_t len, uint32_t x) {
    if (x >= 65536) return len;
    return (len >> 16) * x + (((len & 0xFFFF) * x) >> 16); /* no 64-bit multiply helper */
}

/* Every erase/program is one operation; the configured one loses power partway. */
static int cut_now(void) { return ops++ == cut_at; }

static int in_chip(uint32_t addr, uint32_t len) {
    return addr <= chip_size && len <= chip_size - addr;
}

int rom_spi_read(uint32_t addr, uint32_t *dst, uint32_t len) {
    if ((addr | (uint32_t)dst | len) & 3) {
        violation("SPIRead-misaligned", addr, (uint32_t)dst, len);
        errors++;
        return 1;
    }
    if (!in_chip(addr, len)) { errors++; return 1; }
    if (CFG->flags & CFG_TRACE) P("#BENCH OP read %x %x %x\n", addr, (uint32_t)dst, len);
    reads++;
    read_bytes += len;
    const volatile uint32_t *src = (const volatile uint32_t *)(FLASH_BASE + addr);
    for (len /= 4; len; len--) *dst++ = *src++;
    return 0;
}

int rom_spi_write(uint32_t addr, const uint32_t *src, uint32_t len) {
    if ((addr | (uint32_t)src | len) & 3) {
        violation("SPIWrite-misaligned", addr, (uint32_t)src, len);
        errors++;
        return 1;
    }
    if (!in_chip(addr, len)) { errors++; return 1; }
    if (CFG->flags & CFG_TRACE) P("#BENCH OP write %x %x\n", addr, len);
    if (cut_now()) {
        /* A cut program leaves a prefix of the bytes programmed. */
        uint32_t keep = frac(len, CFG->cut_keep);
        const uint8_t *s = (const uint8_t *)src;
        for (uint32_t i = 0; i < keep; i++) FLASH[addr + i] &= s[i];
        prog_bytes += keep;
        end_run("power_cut", addr);
    }
    int bad = 0;
    volatile uint32_t *f = (volatile uint32_t *)(FLASH_BASE + addr);
    for (uint32_t i = 0; i < len / 4; i++) {
        uint32_t old = f[i], v = src[i];
        if (v & ~old) {
            if (!bad) violation("SPIWrite-sets-bits", addr + 4 * i, old, v);
            bad = 1;
        }
        f[i] = old & v; /* NOR flash: programming only clears bits */
    }
    prog_bytes += len;
    if (bad) { errors++; return 1; }
    return 0;
}

static int erase(uint32_t addr, uint32_t len) {
    if (!in_chip(addr, len)) { errors++; return 1; }
    if (CFG->flags & CFG_TRACE) P("#BENCH OP erase %x %x\n", addr, len);
    if (cut_now()) {
        /* A cut erase: a prefix erased, then possibly some arbitrary bytes, rest old. */
        uint32_t keep = frac(len, CFG->cut_keep);
        uint32_t junk = frac(len - keep, CFG->cut_garbage);
        for (uint32_t i = 0; i < keep; i++) FLASH[addr + i] = 0xFF;
        for (uint32_t i = keep; i < keep + junk; i++) FLASH[addr + i] = next_rand();
        end_run("power_cut", addr);
    }
    volatile uint32_t *f = (volatile uint32_t *)(FLASH_BASE + addr);
    for (uint32_t i = 0; i < len / 4; i++) f[i] = 0xFFFFFFFFu;
    erases++;
    return 0;
}

int rom_spi_erase_sector(uint32_t sector) {
    if (sector >= 0x1000000u / SECTOR) { errors++; return 1; }
    return erase(sector * SECTOR, SECTOR);
}

int rom_spi_erase_block(uint32_t block) {
    if (block >= 0x1000000u / 0x10000u) { errors++; return 1; }
    return erase(block * 0x10000u, 0x10000u);
}

/* The cache maps flash at 0x40200000; the bench copies the selected MiB there instead, at
 * the moment an app enables the cache, so the window shows flash as it is then. */
void rom_cache_read_enable(uint32_t odd_even, uint32_t mb, uint32_t x) {
    (void)odd_even; (void)x;
    uint32_t base = (mb & 3) * 0x100000u;
    uint32_t n = base < chip_size ? chip_size - base : 0;
    if (n > 0x100000u) n = 0x100000u;
    const volatile uint32_t *s = (const volatile uint32_t *)(FLASH_BASE + base);
    volatile uint32_t *d = (volatile uint32_t *)FLASH_WINDOW;
    for (n /= 4; n; n--) *d++ = *s++;
    cache_maps++;
}
void rom_cache_read_disable(void) {}

/* ROM flash descriptor the SDK reads (esp8266-compat §5): id, size, block, sector, page, mask. */
#define FLASHCHIP ((volatile uint32_t *)0x3FFFC714)

static uint32_t rd32(uint32_t a) {
    return FLASH[a] | FLASH[a + 1] << 8 | FLASH[a + 2] << 16 | (uint32_t)FLASH[a + 3] << 24;
}

static void refuse(const char *why, uint32_t v) {
    P("bench-rom: %s (%x), not booting\n", why, v);
    end_run("rom_refused", v);
}

/* What the mask ROM does at power-on: load the image at flash 0 and jump to it. */
void rom_main(void) {
    for (char *p = _bss_start; p < _bss_end; p++) *p = 0;
    wdt_mode = 0xFFFFFFFFu;
    boot_cc = rom_ccount();
    if (CFG->magic != CFG_MAGIC) { P("bench-rom: no config block\n"); rom_halt(); }
    chip_size = CFG->chip_size;
    cut_at = CFG->cut_at;
    rng = CFG->seed | 1;
    /* RTC_STATE1 low bits: the hardware reset cause, which rtc_get_reset_reason() reads. */
    *(volatile uint32_t *)0x60000714 = CFG->reset_reason;
    FLASHCHIP[0] = 0x1640EF; FLASHCHIP[1] = chip_size; FLASHCHIP[2] = 0x10000;
    FLASHCHIP[3] = SECTOR; FLASHCHIP[4] = 256; FLASHCHIP[5] = 0xFFFF;
    P("\n#BENCH ROM reset_reason=%u chip=%u cut_at=%d\n", CFG->reset_reason, chip_size, (int32_t)cut_at);

    /* The image at flash 0: segments only in DRAM or the 64 KiB of real IRAM. */
    if (FLASH[0] != 0xE9) refuse("no image at flash 0: magic", FLASH[0]);
    uint32_t nseg = FLASH[1], entry = rd32(4), off = 8;
    if (nseg == 0 || nseg > 16) refuse("segment count", nseg);
    uint8_t sum = 0xEF;
    /* First pass: bounds and checksum, so nothing is loaded from a bad image. */
    for (uint32_t i = 0; i < nseg; i++) {
        uint32_t addr = rd32(off), len = rd32(off + 4);
        off += 8;
        int ok = (addr >= 0x3FFE8000u && addr + len <= 0x3FFFC000u && addr + len > addr)
              || (addr >= 0x40100000u && addr + len <= 0x40110000u && addr + len > addr);
        if (!ok || len > chip_size || off + len > chip_size) refuse("segment outside IRAM/DRAM", addr);
        for (uint32_t j = 0; j < len; j++) sum ^= FLASH[off + j];
        off += len;
    }
    off = (off + 16) & ~15u;
    if (FLASH[off - 1] != sum) refuse("checksum mismatch", FLASH[off - 1] << 8 | sum);
    off = 8;
    for (uint32_t i = 0; i < nseg; i++) {
        uint32_t addr = rd32(off), len = rd32(off + 4);
        off += 8;
        P("load %08x len %u\n", addr, len);
        volatile uint8_t *d = (volatile uint8_t *)addr;
        for (uint32_t j = 0; j < len; j++) d[j] = FLASH[off + j];
        off += len;
    }
    P("#BENCH JUMP entry=%08x cc=%u\n", entry, rom_ccount());
    rom_jump(entry);
}
