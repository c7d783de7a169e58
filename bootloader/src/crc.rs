//! The two CRC-32s the bootloader computes, bitwise. On the lx106 each loop is a few dozen
//! bytes, where the `crc` crate's table-less routine costs ~270 bytes plus inlined bit
//! reversals: a deliberate exception to "use the crate" for the 4 KB budget. Tests prove
//! both equal to the `crc` crate's `CRC_32_MPEG_2` and `CRC_32_ISO_HDLC`. On the device
//! both are lx106 assembly (gzip's shared with the inflater); these Rust ones are their
//! specification (tests/bench/tests/leaf_asm.rs compares them on QEMU).

#[cfg(target_arch = "xtensa")]
extern "C" {
    /// device/leaf.S: `mpeg2`.
    fn eboot_crc_mpeg2(words: *const u32, n: usize) -> u32;
    /// device/inflate.S: `gzip`.
    fn eboot_crc32(crc: u32, data: *const u8, len: usize) -> u32;
}

/// CRC-32/MPEG-2 (eboot's: MSB first, init 0xFFFFFFFF, no final XOR) of little-endian
/// words.
#[cfg(target_arch = "xtensa")]
#[inline(always)]
pub fn mpeg2(words: &[u32]) -> u32 {
    // SAFETY: reads `words` only.
    unsafe { eboot_crc_mpeg2(words.as_ptr(), words.len()) }
}

/// CRC-32/MPEG-2 (eboot's: MSB first, init 0xFFFFFFFF, no final XOR) of little-endian
/// words.
#[cfg(not(target_arch = "xtensa"))]
pub fn mpeg2(words: &[u32]) -> u32 {
    let mut crc = !0u32;
    for &w in words {
        // Bytes low to high by shifting the word: the byte's bits land on top without
        // going through a stack copy of the word (`to_le_bytes`).
        let mut x = w;
        for _ in 0..4 {
            crc ^= x << 24;
            x >>= 8;
            for _ in 0..8 {
                crc = (crc << 1) ^ (0x04C1_1DB7 & (crc >> 31).wrapping_neg());
            }
        }
    }
    crc
}

/// Continues a CRC-32/ISO-HDLC (gzip's) over `data`: `gzip(gzip(0, a), b)` is the CRC of
/// `a` followed by `b`.
#[cfg(target_arch = "xtensa")]
#[inline(always)]
pub fn gzip(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: reads `data` only.
    unsafe { eboot_crc32(crc, data.as_ptr(), data.len()) }
}

/// Continues a CRC-32/ISO-HDLC (gzip's) over `data`: `gzip(gzip(0, a), b)` is the CRC of
/// `a` followed by `b`.
#[cfg(not(target_arch = "xtensa"))]
pub fn gzip(crc: u32, data: &[u8]) -> u32 {
    !data.iter().fold(!crc, |c, &b| gzip_byte(c, b))
}

/// One byte into the (inverted) gzip CRC register.
pub fn gzip_byte(mut c: u32, b: u8) -> u32 {
    c ^= b as u32;
    for _ in 0..8 {
        c = (c >> 1) ^ (0xEDB8_8320 & (c & 1).wrapping_neg());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn equal_to_the_crc_crate() {
        let m = ::crc::Crc::<u32>::new(&::crc::CRC_32_MPEG_2);
        let g = ::crc::Crc::<u32>::new(&::crc::CRC_32_ISO_HDLC);
        let mut x = 1u32;
        for n in [0usize, 1, 3, 4, 31, 124, 1000] {
            let words: Vec<u32> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
                    x
                })
                .collect();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert_eq!(mpeg2(&words), m.checksum(&bytes));
            assert_eq!(gzip(0, &bytes), g.checksum(&bytes));
            let (a, b) = bytes.split_at(bytes.len() / 3);
            assert_eq!(gzip(gzip(0, a), b), g.checksum(&bytes));
        }
        assert_eq!(gzip(0, b"123456789"), 0xCBF4_3926);
    }
}
