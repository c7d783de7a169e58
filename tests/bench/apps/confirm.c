/* Confirms a trial boot the way `bootloader::journal::confirm` does (the `updater` crate's
 * job on a real app): the boot report (RTC word 3) names the journal, which fills one
 * sector: an 84-byte header, the two fixed step words (COPIED, DONE), then the log; append
 * the CONFIRMED entry (tag | ~tag << 16) at the first erased word of the log. Mirrors
 * bootloader/src/journal.rs (HEADER_LEN, LOG); keep the two in step. */
#include <stdint.h>

#define SPIRead ((int (*)(uint32_t, uint32_t *, uint32_t))0x40004B1C)
#define SPIWrite ((int (*)(uint32_t, const uint32_t *, uint32_t))0x40004A4C)
#define RTC_USER ((volatile uint32_t *)0x60001200)

#define REPORT_MAGIC 0xEB5E0001u
#define JOURNAL_MAGIC 0x4A524245u
#define JOURNAL_HEADER 84u
#define JOURNAL_LOG (JOURNAL_HEADER + 8u)
#define SECTOR 4096u
#define L_CONFIRMED 3u

/* 0 confirmed; negative: nothing to confirm or a flash error. */
int app_confirm(void) {
    if (RTC_USER[0] != REPORT_MAGIC || RTC_USER[3] == 0) return -1;
    uint32_t addr = RTC_USER[3], h[21];
    if (SPIRead(addr, h, sizeof h) || h[0] != JOURNAL_MAGIC) return -2;
    uint32_t next = addr + JOURNAL_LOG;
    for (;;) {
        uint32_t w;
        if (next >= addr + SECTOR) return -4;
        if (SPIRead(next, &w, 4)) return -3;
        if (w == 0xFFFFFFFFu) break;
        next += 4;
    }
    uint32_t entry = L_CONFIRMED | (~L_CONFIRMED << 16);
    return SPIWrite(next, &entry, 4) ? -5 : 0;
}
