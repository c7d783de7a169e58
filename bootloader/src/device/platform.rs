//! `bootloader::Platform` on the chip: the RTC command block, the reset cause, the UART.

use super::rom;

/// User RTC memory 0x60001200..0x60001280: eboot's command block, our boot report.
const RTC_BLOCK: *mut u32 = 0x6000_1200 as *mut u32;

pub struct Device;

impl bootloader::Platform for Device {
    fn rtc(&self) -> &[u32; 32] {
        // SAFETY: user RTC memory is always-mapped RAM, read and written a word at a time
        // (all a `u32` load is on the lx106); nothing but the bootloader touches it while
        // it runs, and the core writes it (`rtc_write`, `&mut self`) only once no shared
        // borrow of the block is alive.
        unsafe { &*(RTC_BLOCK as *const [u32; 32]) }
    }

    fn rtc_write(&mut self, i: usize, v: u32) {
        // SAFETY: as above; nothing else in RTC memory can be touched.
        unsafe { RTC_BLOCK.add(i & 31).write_volatile(v) }
    }

    /// Only a power-on reset loses RTC memory; external-pin, software, watchdog and
    /// deep-sleep resets keep it (esp8266-compat.md §2).
    fn cold_boot(&self) -> bool {
        rom::reset_cause() == rom::POWERON_RESET
    }

    fn log(&mut self, s: &[u8]) {
        for &c in s {
            // SAFETY: ROM UART output of one byte.
            unsafe { rom::ets_putc(c as u32) }
        }
    }
}
