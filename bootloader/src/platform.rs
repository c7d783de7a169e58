//! What the core needs from the chip besides flash. The device layer implements it with
//! RTC registers and ROM calls; tests implement it in memory.

/// RTC memory, the reset cause and a console.
pub trait Platform {
    /// The 128-byte command block at 0x60001200, as words: the bootloader reads a command
    /// in place.
    fn rtc(&self) -> &[u32; 32];
    /// Word `i` (0..32) of the block.
    fn rtc_read(&self, i: usize) -> u32 {
        self.rtc()[i & 31]
    }
    fn rtc_write(&mut self, i: usize, v: u32);
    /// True after a power-on (or CHIP_EN) reset: RTC memory holds garbage then and any
    /// command found there is ignored.
    fn cold_boot(&self) -> bool;
    /// Console output (UART on the device). Short ASCII only.
    fn log(&mut self, s: &[u8]);
}
