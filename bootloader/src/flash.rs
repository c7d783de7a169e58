//! Thin wrappers over `embedded-storage` that turn flash errors into result codes.
//!
//! The core only issues 4-byte aligned reads and programs and whole-sector erases (the
//! ESP8266 ROM's SPIRead/SPIWrite rule), from buffers the device layer may have to bounce
//! if they are not word aligned.

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use crate::report::Code;

/// Flash sector (erase unit).
pub const SECTOR: u32 = 4096;

pub const fn round_up(x: u32) -> u32 {
    (x + SECTOR - 1) & !(SECTOR - 1)
}

pub fn read<F: ReadNorFlash>(f: &mut F, addr: u32, buf: &mut [u8]) -> Result<(), Code> {
    f.read(addr, buf).map_err(|_| Code::ReadFail)
}

pub fn erase<F: NorFlash>(f: &mut F, addr: u32) -> Result<(), Code> {
    f.erase(addr, addr + SECTOR).map_err(|_| Code::WriteFail)
}

pub fn write<F: NorFlash>(f: &mut F, addr: u32, data: &[u8]) -> Result<(), Code> {
    f.write(addr, data).map_err(|_| Code::WriteFail)
}

/// Reads whole words: LLVM cannot know a byte buffer is aligned, and the lx106 has no
/// unaligned loads, so every word built from bytes costs a dozen instructions. Inlined: a
/// call to `read` with the byte length costs what a call to this would.
#[inline(always)]
pub fn read_words<F: ReadNorFlash>(f: &mut F, addr: u32, buf: &mut [u32]) -> Result<(), Code> {
    read(f, addr, as_bytes(buf))
}

/// Programs whole words.
pub fn write_words<F: NorFlash>(f: &mut F, addr: u32, buf: &[u32]) -> Result<(), Code> {
    // SAFETY: u32 has no padding; any byte pattern of it is valid; the length covers
    // exactly the words (see `as_bytes`).
    let b = unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 4) };
    write(f, addr, b)
}

/// The bytes of a word buffer (little endian on the lx106 and on the hosts we test on).
pub fn as_bytes(buf: &mut [u32]) -> &mut [u8] {
    // SAFETY: u32 has no padding and every byte pattern is a valid u32; the slice covers
    // exactly `buf`, whose alignment (4) exceeds u8's.
    unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, buf.len() * 4) }
}

/// A word-aligned byte buffer for small reads on the stack.
#[repr(C, align(4))]
pub struct Words<const N: usize>(pub [u8; N]);

impl<const N: usize> Words<N> {
    pub const fn new() -> Self {
        Words([0; N])
    }

    pub fn word(&self, i: usize) -> u32 {
        let b = &self.0;
        let i = i * 4;
        match (b.get(i), b.get(i + 1), b.get(i + 2), b.get(i + 3)) {
            (Some(a), Some(b), Some(c), Some(d)) => u32::from_le_bytes([*a, *b, *c, *d]),
            _ => 0,
        }
    }
}

impl<const N: usize> Default for Words<N> {
    fn default() -> Self {
        Self::new()
    }
}
