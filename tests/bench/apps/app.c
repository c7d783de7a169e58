/* Bench test app: says who it is, checksums its own loaded segments, shows the boot
 * report, optionally confirms a trial boot, then soft-resets (which ends the bench run).
 * Built per variant with -DAPP_ID="..." -DAPP_VER=n [-DCONFIRM=1]. */
#include <stdint.h>

#define ets_printf ((int (*)(const char *, ...))0x400024CC)
#define Cache_Read_Enable ((void (*)(uint32_t, uint32_t, uint32_t))0x40004678)
#define SPIWrite ((int (*)(uint32_t, const uint32_t *, uint32_t))0x40004A4C)
#define SPIRead ((int (*)(uint32_t, uint32_t *, uint32_t))0x40004B1C)
#define RTC_USER ((volatile uint32_t *)0x60001200)
#define SOFT_RESET (*(volatile uint32_t *)0x60000700)

#ifndef CONFIRM
#define CONFIRM 0
#endif

extern uint8_t _irom0_start[], _irom0_end[], _text_start[], _text_end[], _text1_start[],
    _text1_end[], _data_start[], _data_end[], _rodata_start[], _rodata_end[];

/* Something in every loaded section, so each is a real segment. */
__attribute__((section(".text1"), used)) static const uint32_t text1_tag[2] = {APP_VER, 0x7E571};
__attribute__((used)) static const uint32_t data_tag[2] = {0xDA7A0000u | APP_VER, 0};
__attribute__((section(".data"), used)) static uint32_t data_word = 0x0D0D0000u | APP_VER;

/* Runs from the flash window: proves the irom0 segment is really there and executable. */
__attribute__((section(".irom0.text"), noinline)) uint32_t irom_probe(uint32_t x) {
    return x * 3 + APP_VER;
}

/* FNV-1a over the bytes as loaded (the host computes the same from the image). */
static uint32_t fnv(const uint8_t *p, const uint8_t *end) {
    uint32_t h = 0x811C9DC5u;
    while (p < end) { h ^= *p++; h *= 0x01000193u; }
    return h;
}

static void seg(const uint8_t *s, const uint8_t *e) {
    ets_printf("APP seg %08x %u %08x\n", (uint32_t)s, (uint32_t)(e - s), fnv(s, e));
}

void app_main(uint32_t entry_cc) {
    ets_printf("\nAPP id=%s ver=%u cc=%u\n", APP_ID, APP_VER, entry_cc);
    /* The SDK maps flash before touching irom0; the bench ROM copies it in now. */
    Cache_Read_Enable(0, 0, 1);
    seg(_irom0_start, _irom0_end);
    seg(_text_start, _text_end);
    seg(_text1_start, _text1_end);
    seg(_data_start, _data_end);
    seg(_rodata_start, _rodata_end);
    ets_printf("APP irom=%u\n", irom_probe(1000));
    /* The boot report: magic, event, code, journal, trial boots left, CRC of words 0..4. */
    ets_printf("APP report %08x %u %u %08x %u %08x\n", RTC_USER[0], RTC_USER[1], RTC_USER[2],
               RTC_USER[3], RTC_USER[4], RTC_USER[5]);
#if CONFIRM
    extern int app_confirm(void);
    ets_printf("APP confirm %d\n", app_confirm());
#endif
    ets_printf("APP done\n");
    SOFT_RESET |= 0x80000000u;  /* the software reset eboot and the SDK use */
    for (;;) {}
}
