//! The ESP8266 mask-ROM functions and registers the bootloader uses. Addresses are in
//! `linker/rom.ld` (esp8266-compat.md §5); the calling convention is the ROM's CALL0 ABI,
//! which is what `extern "C"` compiles to for this target. LLVM calls every external
//! function through `l32r` + `callx0`, so the ROM (0x4000xxxx) is reachable from IRAM
//! (0x4010F000), beyond the +-512 KiB of a direct `call0`.

extern "C" {
    /// Flash `addr` -> RAM `dst`, `len` bytes. All three must be multiples of 4.
    /// Returns 0 on success, 1 on error, 2 on timeout.
    pub fn SPIRead(addr: u32, dst: *mut u8, len: u32) -> u32;
    /// RAM `src` -> flash `addr` (program: only clears bits). Same rules and results.
    pub fn SPIWrite(addr: u32, src: *const u8, len: u32) -> u32;
    /// Erases the 4 KiB sector with this index (address / 4096).
    pub fn SPIEraseSector(sector: u32) -> u32;
    pub fn ets_putc(c: u32);
    /// printf to the UART (the ROM's: `%x`, `%d`, `%s`...); `fmt` must be in DRAM
    /// (byte loads).
    pub fn ets_printf(fmt: *const u8, ...) -> i32;
    /// eboot re-arms the watchdog with (4, 12, 12) after an update (about 13 s).
    pub fn ets_wdt_enable(mode: u32, arg1: u32, arg2: u32);
    pub fn ets_wdt_disable() -> u32;
}

// entry.S
extern "C" {
    /// Sets SP to 0x3FFFFFF0 and jumps to `entry`, as eboot does.
    pub fn jump_to_app(entry: u32) -> !;
}

/// The ROM's flash descriptor (`SpiFlashChip flashchip`, ROM data): deviceId, chip_size,
/// block_size, sector_size, page_size, status_mask. The ROM's SPI routines refuse
/// operations beyond `chip_size`, so that is the capacity the bootloader can use.
const FLASHCHIP_CHIP_SIZE: *const u32 = (0x3FFF_C714 + 4) as *const u32;

pub fn flash_chip_size() -> u32 {
    // SAFETY: ROM data, always mapped; read-only use.
    unsafe { FLASHCHIP_CHIP_SIZE.read_volatile() }
}

/// RTC register block (`REG_RTC_BASE`). Bit 31 of word 0 resets the chip (eboot's
/// software reset).
const RTC_CTRL: *mut u32 = 0x6000_0700 as *mut u32;
/// `RTC_STATE1` (REG_RTC_BASE + 0x14): bits 0..3 hold the hardware reset cause, which
/// the ROM's `rtc_get_reset_reason()` returns and prints as "rst cause:N" (ESP8266
/// RTOS SDK `reset_reason.c`, `rtc_register.h`).
const RTC_STATE1: *const u32 = 0x6000_0714 as *const u32;
/// Reset cause 1: Vbat power-on (also CHIP_EN). 2 = external pin or software restart,
/// 4 = hardware watchdog (and stays 4 across a later software restart), 5 = deep sleep.
pub const POWERON_RESET: u32 = 1;

pub fn reset_cause() -> u32 {
    // SAFETY: an always-mapped RTC register; reading has no side effect.
    unsafe { RTC_STATE1.read_volatile() & 0xF }
}

/// Resets the chip the way eboot does; spins until the reset takes effect.
pub fn soft_reset() -> ! {
    // SAFETY: read-modify-write of the RTC control register; bit 31 is the system reset.
    unsafe { RTC_CTRL.write_volatile(RTC_CTRL.read_volatile() | 0x8000_0000) };
    #[allow(clippy::empty_loop)]
    loop {}
}
