/* miniboot: the smallest loader that boots the app at 0x1000 through the ROM's SPIRead,
 * like eboot's LOAD_APP path. It lets the bench ROM, harness and apps be tested without
 * the real bootloader, and serves as a "foreign bootloader" in sector 0 of staged images. */
#include <stdint.h>

#define ets_printf ((int (*)(const char *, ...))0x400024CC)
#define SPIRead ((int (*)(uint32_t, uint32_t *, uint32_t))0x40004B1C)
#define SOFT_RESET (*(volatile uint32_t *)0x60000700)

extern void miniboot_jump(uint32_t entry) __attribute__((noreturn));

static void __attribute__((noreturn)) fail(int code) {
    ets_printf("miniboot: e:%d\n", code);
    SOFT_RESET |= 0x80000000u;
    for (;;) {}
}

void __attribute__((noreturn)) miniboot_main(void) {
    uint32_t h[2];
    ets_printf("miniboot\n");
    uint32_t off = 0x1000;
    if (SPIRead(off, h, 8) || (h[0] & 0xFF) != 0xE9) fail(1);
    uint32_t n = (h[0] >> 8) & 0xFF, entry = h[1];
    off += 8;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s[2];
        if (SPIRead(off, s, 8)) fail(2);
        off += 8;
        uint32_t a = s[0], len = s[1];
        if (a < 0x40000000u || (a >= 0x40100000u && a < 0x4010C000u)) {
            if (SPIRead(off, (uint32_t *)a, len)) fail(3);
        }
        off += len;
    }
    miniboot_jump(entry);
}
