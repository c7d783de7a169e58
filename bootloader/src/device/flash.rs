//! The SPI flash through the ROM routines, as an `embedded-storage` NOR flash.
//!
//! The ROM reads and programs whole 32-bit words: flash offsets, lengths and RAM buffers
//! must all be multiples of 4 (what the bench ROM enforces, and all eboot ever does).
//! Misaligned requests are refused here rather than handed to the ROM.

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

use super::rom;

pub struct RomFlash;

/// One test for the three alignment rules.
fn aligned(offset: u32, ptr: usize, len: usize) -> bool {
    (offset as usize | ptr | len) & 3 == 0
}

fn result(r: u32) -> Result<(), NorFlashErrorKind> {
    if r == 0 {
        Ok(())
    } else {
        Err(NorFlashErrorKind::Other)
    }
}

impl ErrorType for RomFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for RomFlash {
    const READ_SIZE: usize = 4;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if !aligned(offset, bytes.as_ptr() as usize, bytes.len()) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        // SAFETY: `bytes` is a writable buffer of exactly this length.
        result(unsafe { rom::SPIRead(offset, bytes.as_mut_ptr(), bytes.len() as u32) })
    }

    fn capacity(&self) -> usize {
        rom::flash_chip_size() as usize
    }
}

impl NorFlash for RomFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    /// Exactly one whole sector, all the core ever erases (`flash::erase`): with its
    /// `to = from + 4096` the range test folds away. Anything else is refused.
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if from % Self::ERASE_SIZE as u32 != 0 || to.wrapping_sub(from) != Self::ERASE_SIZE as u32 {
            return Err(NorFlashErrorKind::NotAligned);
        }
        // SAFETY: a ROM call with a plain integer argument.
        result(unsafe { rom::SPIEraseSector(from / 4096) })
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if !aligned(offset, bytes.as_ptr() as usize, bytes.len()) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        // SAFETY: `bytes` is readable for its length; the ROM only reads it.
        result(unsafe { rom::SPIWrite(offset, bytes.as_ptr(), bytes.len() as u32) })
    }
}
