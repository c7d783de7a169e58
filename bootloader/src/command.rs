//! eboot's RTC command block: 32 little-endian words at 0x60001200, and our extensions.
//!
//! This is the one definition of the format; `updater` and `tools` import it.
//!
//! | word | field |
//! |---|---|
//! | 0 | magic: `0xEB001000`, low 12 bits = our extension flags (eboot masks them away) |
//! | 1 | action: 1 = COPY_RAW, 0xFFFFFFFF = LOAD_APP |
//! | 2..=30 | args[0..29]: args[0] = source, args[1] = destination, args[2] = length |
//! | 31 | CRC-32/MPEG-2 of words 0..=30 (bytes 0..124, little endian) |
//!
//! The stock Arduino `Updater` leaves args[3..] uninitialised (but CRC-covered), so
//! extension arguments are read only when the matching flag is set in the magic.

use crc::{Crc, NoTable, CRC_32_MPEG_2};

/// Words in the block.
pub const WORDS: usize = 32;
/// What eboot's writer stores in word 0.
pub const MAGIC: u32 = 0xEB00_1000;
/// eboot accepts any magic equal to `MAGIC` under this mask.
pub const MAGIC_MASK: u32 = 0xFFFF_F000;

pub const ACTION_COPY_RAW: u32 = 1;
pub const ACTION_LOAD_APP: u32 = 0xFFFF_FFFF;

/// Extension: boot the new app in trial; roll back unless it confirms.
/// args[4] = unconfirmed boots allowed before rollback (0: `DEFAULT_TRIAL_BOOTS`).
pub const EXT_TRIAL: u32 = 0x001;
/// Extension: args[5] = expected CRC-32 (gzip's CRC, ISO-HDLC) of the copied output.
pub const EXT_CRC: u32 = 0x002;
/// Reserved: install the image's sector 0 too. Not implemented; refused like any flag
/// outside `EXT_KNOWN`, so sector 0 is never rewritten.
pub const EXT_SECTOR0: u32 = 0x004;
/// Extension: the extension image that carries out this command. args[6] = its flash
/// address, args[7] = CRC-32 (ISO-HDLC) of its image bytes. Tier 1 (sector 0) handles only
/// the stock contract: it checks the extension image and chain-loads it, and refuses any
/// other extension flag without this one (`Code::NeedsExtension`).
pub const EXT_IMAGE: u32 = 0x008;
/// Every extension flag this bootloader understands.
pub const EXT_KNOWN: u32 = EXT_TRIAL | EXT_CRC | EXT_IMAGE;
/// args index of the extension image's address and CRC.
pub const ARG_EXT_ADDR: usize = 6;
pub const ARG_EXT_CRC: usize = 7;

pub const DEFAULT_TRIAL_BOOTS: u32 = 3;

/// The CRC eboot, the Arduino core and elf2bin use (MSB first, no final XOR), for host
/// code; the bootloader computes it with `crc::mpeg2` (same result, smaller).
pub const CRC32_MPEG2: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_MPEG_2);

/// CRC of words 0..=30 as stored in word 31.
pub fn block_crc(words: &[u32; WORDS]) -> u32 {
    crate::crc::mpeg2(&words[..WORDS - 1])
}

/// Whether a block passes eboot's own checks (magic under mask, CRC). The bootloader reads
/// a valid block's fields in place with [`ext`] and [`arg`] (no decoded copy).
pub fn valid(words: &[u32; WORDS]) -> bool {
    words[0] & MAGIC_MASK == MAGIC && block_crc(words) == words[WORDS - 1]
}

/// The extension flags of a block (`Command::ext`).
pub fn ext(words: &[u32; WORDS]) -> u32 {
    words[0] & !MAGIC_MASK
}

/// args[i] of a block (`Command::args[i]`); `i < WORDS - 3`.
pub fn arg(words: &[u32; WORDS], i: usize) -> u32 {
    words[(i + 2) & (WORDS - 1)]
}

/// A command block that passed eboot's own checks (magic under mask, CRC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// Extension flags (low 12 bits of the magic).
    pub ext: u32,
    pub action: u32,
    pub args: [u32; WORDS - 3],
}

impl Command {
    /// A command as the stock Arduino `Updater` writes it (unused args zero here).
    pub const fn copy(src: u32, dst: u32, len: u32) -> Command {
        let mut args = [0; WORDS - 3];
        args[0] = src;
        args[1] = dst;
        args[2] = len;
        Command { ext: 0, action: ACTION_COPY_RAW, args }
    }

    pub fn src(&self) -> u32 {
        self.args[0]
    }
    pub fn dst(&self) -> u32 {
        self.args[1]
    }
    /// Staged length (args[2]); a command is not a container, so no `is_empty`.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u32 {
        self.args[2]
    }

    /// Reads a block the way eboot does: `None` when the magic or CRC is wrong.
    pub fn decode(words: &[u32; WORDS]) -> Option<Command> {
        if !valid(words) {
            return None;
        }
        let mut args = [0; WORDS - 3];
        args.copy_from_slice(&words[2..WORDS - 1]);
        Some(Command { ext: words[0] & !MAGIC_MASK, action: words[1], args })
    }

    /// The 32 words, CRC included.
    pub fn encode(&self) -> [u32; WORDS] {
        let mut w = [0; WORDS];
        w[0] = MAGIC | (self.ext & !MAGIC_MASK);
        w[1] = self.action;
        w[2..WORDS - 1].copy_from_slice(&self.args);
        w[WORDS - 1] = block_crc(&w);
        w
    }
}

/// The 128 bytes of a block, little endian.
pub fn to_bytes(words: &[u32; WORDS]) -> [u8; WORDS * 4] {
    let mut b = [0; WORDS * 4];
    for (i, w) in words.iter().enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    b
}

/// Words of a 128-byte block, little endian.
pub fn from_bytes(b: &[u8; WORDS * 4]) -> [u32; WORDS] {
    let mut w = [0; WORDS];
    for (i, w) in w.iter_mut().enumerate() {
        *w = u32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(CRC32_MPEG2.checksum(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn arduino_test_vector() {
        let w = Command::copy(0x100000, 0, 0x50000).encode();
        assert_eq!(w[0], 0xEB00_1000);
        assert_eq!(w[31], 0x0A5D_70E6);
        assert_eq!(Command::decode(&w), Some(Command::copy(0x100000, 0, 0x50000)));
    }

    #[test]
    fn garbage_args_are_crc_covered_and_accepted() {
        let mut c = Command::copy(0x80000, 0, 1234);
        c.args[7] = 0xDEAD_BEEF;
        let w = c.encode();
        assert_eq!(Command::decode(&w).unwrap().args[7], 0xDEAD_BEEF);
    }

    #[test]
    fn low_magic_bits_are_extensions() {
        let mut c = Command::copy(0x80000, 0, 1234);
        c.ext = EXT_TRIAL | EXT_CRC;
        let w = c.encode();
        assert_eq!(w[0], 0xEB00_1003);
        assert_eq!(Command::decode(&w).unwrap().ext, EXT_TRIAL | EXT_CRC);
    }

    #[test]
    fn bad_magic_or_crc_is_no_command() {
        let w = Command::copy(0x80000, 0, 1234).encode();
        for i in 0..WORDS {
            let mut bad = w;
            bad[i] ^= 0x0010_0000;
            assert_eq!(Command::decode(&bad), None, "word {i}");
        }
    }

    #[test]
    fn bytes_roundtrip() {
        let w = Command::copy(1, 2, 3).encode();
        assert_eq!(from_bytes(&to_bytes(&w)), w);
    }
}
