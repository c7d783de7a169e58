//! The ESP8266 flash image format (the ROM's "v1" image), as elf2bin.py writes it.
//!
//! ```text
//! 0  0xE9 | 1 segment count | 2 flash mode | 3 size (high nibble) / freq (low nibble) | 4..8 entry
//! then per segment: load address (LE u32), length (LE u32), data
//! then zero padding so that the image length is a multiple of 16, the last byte being
//! the checksum: 0xEF XOR every segment data byte.
//! ```
//!
//! This is the one definition of the format; `tools` and `updater` import it.

pub const MAGIC: u8 = 0xE9;
/// Bytes of the image header.
pub const HEADER_LEN: usize = 8;
/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 8;
/// Where the Arduino app image starts in flash (sector 0 holds the bootloader).
pub const APP_OFFSET: u32 = 0x1000;
/// Initial value of the XOR checksum.
pub const CHECKSUM_SEED: u8 = 0xEF;
/// More segments than this is an absurd table (elf2bin writes 5, esptool at most 16).
pub const MAX_SEGMENTS: u8 = 16;
/// Where elf2bin stores the whole-image CRC inside the app (`__crc_len`, `__crc_val`):
/// the first 8 bytes of `.irom0.text`, at flash 0x1010 and 0x1014.
pub const ARDUINO_CRC_OFFSET: u32 = 0x1010;

/// The 8-byte image header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub segments: u8,
    pub flash_mode: u8,
    /// High nibble: flash size code; low nibble: flash frequency code.
    pub size_freq: u8,
    pub entry: u32,
}

impl Header {
    /// `None` unless the magic is right and the segment count is plausible.
    pub fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER_LEN || b[0] != MAGIC || b[1] == 0 || b[1] > MAX_SEGMENTS {
            return None;
        }
        Some(Header { segments: b[1], flash_mode: b[2], size_freq: b[3], entry: le32(&b[4..8]) })
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let e = self.entry.to_le_bytes();
        [MAGIC, self.segments, self.flash_mode, self.size_freq, e[0], e[1], e[2], e[3]]
    }

    /// Flash chip size in bytes from the header's size code, if the code is known.
    pub fn flash_size(&self) -> Option<u32> {
        flash_size_from_code(self.size_freq >> 4)
    }
}

/// A segment header: where the data goes and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: u32,
    pub len: u32,
}

impl Segment {
    pub fn parse(b: &[u8]) -> Segment {
        Segment { addr: le32(&b[0..4]), len: le32(&b[4..8]) }
    }

    pub fn to_bytes(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0; SEGMENT_HEADER_LEN];
        b[..4].copy_from_slice(&self.addr.to_le_bytes());
        b[4..].copy_from_slice(&self.len.to_le_bytes());
        b
    }
}

/// What a segment is, by load address (the ESP8266 memory map).
/// `repr(u8)`: the device's assembly `segment_region` returns these discriminants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Region {
    /// Data RAM 0x3FFE8000..0x3FFFC000 (what apps may use; above it live the ROM's data
    /// and the stack the loader runs on): loaded.
    Dram,
    /// Instruction RAM 0x40100000..0x4010C000 (48 KiB, MMU options included): loaded.
    Iram,
    /// RTC memory 0x60001000..0x60002000: loaded (eboot loads anything at 0x60000000 and up).
    Rtc,
    /// Flash-mapped code 0x40200000..0x40300000: read by the cache, not loaded.
    Flash,
    /// Anything else: ROM, IRAM where the bootloader runs, unmapped space.
    Invalid,
}

pub const DRAM_START: u32 = 0x3FFE_8000;
pub const DRAM_END: u32 = 0x3FFF_C000;
pub const IRAM_START: u32 = 0x4010_0000;
/// The bootloader runs from 0x4010F000; an app may use IRAM only below this.
pub const IRAM_END: u32 = 0x4010_C000;
/// The extension image runs from `IRAM_END` up to tier 1's window: above every app, so the
/// extension can load an app without overwriting itself, and below tier 1, so tier 1 can
/// load the extension.
pub const EXT_IRAM_END: u32 = 0x4010_F000;
pub const FLASH_MAP_START: u32 = 0x4020_0000;
pub const FLASH_MAP_END: u32 = 0x4030_0000;
pub const RTC_START: u32 = 0x6000_1000;
pub const RTC_END: u32 = 0x6000_2000;

impl Region {
    pub fn of(addr: u32) -> Region {
        if (DRAM_START..DRAM_END).contains(&addr) {
            Region::Dram
        } else if (IRAM_START..IRAM_END).contains(&addr) {
            Region::Iram
        } else if (FLASH_MAP_START..FLASH_MAP_END).contains(&addr) {
            Region::Flash
        } else if (RTC_START..RTC_END).contains(&addr) {
            Region::Rtc
        } else {
            Region::Invalid
        }
    }

    /// Whether the bootloader copies this segment into RAM (eboot's rule, bounded).
    pub fn loaded(self) -> bool {
        matches!(self, Region::Dram | Region::Iram | Region::Rtc)
    }

    /// First address past the region (0 for `Invalid`).
    pub fn end(self) -> u32 {
        match self {
            Region::Dram => DRAM_END,
            Region::Iram => IRAM_END,
            Region::Flash => FLASH_MAP_END,
            Region::Rtc => RTC_END,
            Region::Invalid => 0,
        }
    }
}

/// The device's `segment_region` (below): lx106 assembly.
#[cfg(target_arch = "xtensa")]
#[inline(always)]
pub fn segment_region(addr: u32, len: u32, iram_end: u32) -> Region {
    extern "C" {
        /// device/leaf.S: this function, returning a `Region` discriminant (0..=4).
        fn eboot_segment_region(addr: u32, len: u32, iram_end: u32) -> Region;
    }
    // SAFETY: no memory access; the result is always a discriminant of `Region`.
    unsafe { eboot_segment_region(addr, len, iram_end) }
}

/// The region a segment header's data loads into, or `Invalid` unless the segment is word
/// aligned (SPIRead loads straight into RAM) and lies inside one region, IRAM ending at
/// `iram_end` (`IRAM_END` for an app, `EXT_IRAM_END` for the extension image). The one rule
/// for the dry run's walker and the boot-time check; the device runs it in assembly
/// (device/leaf.S, compared with this one on QEMU by tests/bench/tests/leaf_asm.rs).
#[cfg(not(target_arch = "xtensa"))]
pub fn segment_region(addr: u32, len: u32, iram_end: u32) -> Region {
    let (r, end) = if addr.wrapping_sub(IRAM_START) < iram_end - IRAM_START {
        (Region::Iram, iram_end)
    } else {
        let r = Region::of(addr);
        (r, r.end())
    };
    // `Invalid` needs no test of its own: it is returned either way.
    if (addr | len) & 3 != 0 || len > end.wrapping_sub(addr) {
        return Region::Invalid;
    }
    r
}

/// Flash size in bytes for a header size code (esptool's table for the ESP8266).
pub fn flash_size_from_code(code: u8) -> Option<u32> {
    Some(match code {
        0 => 512 << 10,
        1 => 256 << 10,
        2 => 1 << 20,
        3 | 5 => 2 << 20,
        4 | 6 => 4 << 20,
        8 => 8 << 20,
        9 => 16 << 20,
        _ => return None,
    })
}

/// The header size code elf2bin writes for a flash size in bytes.
pub fn flash_size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        0x8_0000 => 0,
        0x4_0000 => 1,
        0x10_0000 => 2,
        0x20_0000 => 3,
        0x40_0000 => 4,
        0x80_0000 => 8,
        0x100_0000 => 9,
        _ => return None,
    })
}

/// Length of an image whose segment data ends at `end` (relative to the image start):
/// padding plus the checksum byte make it a multiple of 16.
pub const fn padded_len(end: u32) -> u32 {
    (end + 16) & !15
}

/// Folds segment data into the XOR checksum.
pub fn checksum_update(mut sum: u8, data: &[u8]) -> u8 {
    for b in data {
        sum ^= b;
    }
    sum
}

/// Little-endian u32 from the first 4 bytes of `b`.
pub fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let h = Header { segments: 5, flash_mode: 2, size_freq: 0x40, entry: 0x4010_0004 };
        assert_eq!(Header::parse(&h.to_bytes()), Some(h));
        assert_eq!(h.flash_size(), Some(4 << 20));
    }

    #[test]
    fn absurd_headers_refused() {
        assert_eq!(Header::parse(&[0xE8, 1, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Header::parse(&[0xE9, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Header::parse(&[0xE9, 17, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Header::parse(&[0xE9, 1, 0]), None);
    }

    #[test]
    fn regions() {
        assert!(Region::of(0x3FFE_8000).loaded());
        assert!(Region::of(0x4010_0000).loaded());
        assert!(!Region::of(0x4010_F000).loaded());
        assert_eq!(Region::of(0x4020_1010), Region::Flash);
        assert!(!Region::of(0x4000_0000).loaded());
    }

    #[test]
    fn region_discriminants_as_the_assembly_returns_them() {
        let d = [Region::Dram, Region::Iram, Region::Rtc, Region::Flash, Region::Invalid];
        for (i, r) in d.into_iter().enumerate() {
            assert_eq!(r as u8, i as u8);
        }
    }

    #[test]
    fn sizes() {
        for code in [0u8, 1, 2, 3, 4, 8, 9] {
            assert_eq!(flash_size_code(flash_size_from_code(code).unwrap()), Some(code));
        }
        assert_eq!(padded_len(15), 16);
        assert_eq!(padded_len(16), 32);
    }
}
