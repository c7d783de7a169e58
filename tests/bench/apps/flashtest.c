/* Exercises the bench ROM's flash model from the app side; tests/rom.rs checks the result.
 * Ops: 0 erase 0x80000, 1 program 4 KiB pattern there, 2 erase 0x81000, 3 program 8 bytes.
 * In between: calls that must fail (misaligned, setting bits, beyond the chip). */
#include <stdint.h>

#define ets_printf ((int (*)(const char *, ...))0x400024CC)
#define SPIRead ((int (*)(uint32_t, uint32_t *, uint32_t))0x40004B1C)
#define SPIWrite ((int (*)(uint32_t, const uint32_t *, uint32_t))0x40004A4C)
#define SPIEraseSector ((int (*)(uint32_t))0x40004A00)
#define memcmp_rom ((int (*)(const void *, const void *, uint32_t))0x4000DEA8)
#define udiv ((uint32_t (*)(uint32_t, uint32_t))0x4000E21C)
#define umod ((uint32_t (*)(uint32_t, uint32_t))0x4000E268)
#define sdiv ((int32_t (*)(int32_t, int32_t))0x4000DC88)

static uint32_t buf[1024];

__attribute__((section(".text1"), used)) static const uint32_t t1 = 1;
__attribute__((section(".irom0.text"), used)) static const uint32_t i0 = 1;

void app_main(uint32_t cc) {
    (void)cc;
    ets_printf("\nFT start %d %u %x %08x %s\n", -42, 42u, 0xabcu, 0xabcu, "ok");
    ets_printf("FT div %u %u %d\n", udiv(1000003, 7), umod(1000003, 7), sdiv(-1000003, 7));
    for (int i = 0; i < 1024; i++) buf[i] = 0x01020304u * (uint32_t)(i + 1);
    ets_printf("FT r0 %d\n", SPIEraseSector(0x80));
    ets_printf("FT r1 %d\n", SPIWrite(0x80000, buf, 4096));
    uint32_t ones = 0xFFFFFFFFu;
    ets_printf("FT setbits %d\n", SPIWrite(0x80000, &ones, 4));        /* must fail */
    ets_printf("FT misaligned %d\n", SPIRead(0x80002, buf, 4));         /* must fail */
    ets_printf("FT beyond %d\n", SPIRead(0x100000, buf, 4));            /* must fail */
    uint32_t back[4];
    ets_printf("FT readback %d %d\n", SPIRead(0x80000, back, 16), memcmp_rom(back, buf, 16));
    ets_printf("FT r2 %d\n", SPIEraseSector(0x81));
    uint32_t w[2] = {0x12345678u, 0x9ABCDEF0u};
    ets_printf("FT r3 %d\n", SPIWrite(0x81000, w, 8));
    ets_printf("FT done\n");
    *(volatile uint32_t *)0x60000700 |= 0x80000000u;
    for (;;) {}
}
