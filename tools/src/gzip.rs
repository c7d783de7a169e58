//! gzip for update images: as small as the libraries can make it, in the plain form every
//! gzip reader (eboot's uzlib, our inflater, `gzip -d`) accepts: one member, deflate, no
//! optional header fields, ISIZE and CRC-32 in the trailer.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::num::NonZeroU64;

/// Which compressor produced the output of [`gzip_best`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressor {
    Zopfli,
    Flate2Best,
}

/// zopfli iterations for an input of `len` bytes: its default 15 for firmware-sized inputs,
/// fewer for very large ones, where the extra passes cost minutes and win almost nothing.
fn zopfli_iterations(len: usize) -> u64 {
    match len {
        0..=2_000_000 => 15,
        2_000_001..=8_000_000 => 5,
        _ => 1,
    }
}

/// gzip with zopfli.
pub fn gzip_zopfli(data: &[u8]) -> Vec<u8> {
    let opts = zopfli::Options {
        iteration_count: NonZeroU64::new(zopfli_iterations(data.len())).unwrap_or(NonZeroU64::MIN),
        ..Default::default()
    };
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    zopfli::compress(opts, zopfli::Format::Gzip, data, &mut out).expect("zopfli into a Vec");
    out
}

/// gzip with flate2 (miniz_oxide) at its best level.
pub fn gzip_flate2(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("gzip into a Vec");
    enc.finish().expect("gzip into a Vec")
}

/// The smaller of zopfli's and flate2-best's output (zopfli wins in practice; flate2 is
/// the cheap guard for inputs where zopfli's block splitting does worse).
pub fn gzip_best_with(data: &[u8]) -> (Vec<u8>, Compressor) {
    let z = gzip_zopfli(data);
    let f = gzip_flate2(data);
    if z.len() <= f.len() {
        (z, Compressor::Zopfli)
    } else {
        (f, Compressor::Flate2Best)
    }
}

/// Smallest gzip the libraries can make of `data`.
pub fn gzip_best(data: &[u8]) -> Vec<u8> {
    gzip_best_with(data).0
}

/// `true` when `b` starts with the gzip magic (what eboot and the Updater look at).
pub fn is_gzip(b: &[u8]) -> bool {
    b.starts_with(&[0x1F, 0x8B])
}

/// What a gzip file holds, checked by decompressing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GzipInfo {
    /// Compressed bytes of the member (header to trailer).
    pub member_len: usize,
    pub flags: u8,
    pub mtime: u32,
    pub name: Option<String>,
    /// Trailer CRC-32 (ISO-HDLC) and ISIZE as stored.
    pub crc32: u32,
    pub isize: u32,
    /// Decompressed data (for inspecting the image inside).
    pub data: Vec<u8>,
    /// CRC and length of the decompressed data match the trailer.
    pub trailer_valid: bool,
}

/// Decompresses and checks one gzip member at the start of `b`; bytes after it are
/// reported through `member_len`.
pub fn inspect(b: &[u8]) -> Result<GzipInfo> {
    if !is_gzip(b) {
        return Err(Error::invalid("not gzip (no 1F 8B magic)"));
    }
    if b.len() < 18 {
        return Err(Error::invalid(
            "gzip file truncated (shorter than header + trailer)",
        ));
    }
    if b[2] != 8 {
        return Err(Error::invalid(format!(
            "gzip method {} is not deflate",
            b[2]
        )));
    }
    let flags = b[3];
    let mtime = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let short = || Error::invalid("gzip header truncated");
    let mut pos = 10;
    if flags & 4 != 0 {
        // FEXTRA: 2-byte length, then that many bytes.
        let x = b.get(pos..pos + 2).ok_or_else(short)?;
        pos += 2 + u16::from_le_bytes([x[0], x[1]]) as usize;
    }
    let mut name = None;
    for bit in [8u8, 16] {
        // FNAME, FCOMMENT: zero-terminated.
        if flags & bit != 0 {
            let z = b
                .get(pos..)
                .and_then(|r| r.iter().position(|&c| c == 0))
                .ok_or_else(short)?;
            if bit == 8 {
                name = Some(String::from_utf8_lossy(&b[pos..pos + z]).into_owned());
            }
            pos += z + 1;
        }
    }
    if flags & 2 != 0 {
        pos += 2; // FHCRC
    }
    let body = b.get(pos..).ok_or_else(short)?;
    // Inflate by hand (not GzDecoder) so a wrong trailer is reported, not an error:
    // eboot never checks the gzip CRC, so `info` must show it.
    let mut dec = flate2::bufread::DeflateDecoder::new(body);
    let mut data = Vec::new();
    dec.read_to_end(&mut data)
        .map_err(|e| Error::invalid(format!("gzip data is corrupt: {e}")))?;
    let member_len = pos + (body.len() - dec.into_inner().len()) + 8;
    let t = b
        .get(member_len - 8..member_len)
        .ok_or_else(|| Error::invalid("gzip trailer truncated"))?;
    let crc32 = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    let trailer_valid = crc32 == crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&data)
        && isize == data.len() as u32;
    Ok(GzipInfo {
        member_len,
        flags,
        mtime,
        name,
        crc32,
        isize,
        data,
        trailer_valid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..50_000u32)
            .flat_map(|i| ((i * 7) % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn both_compressors_roundtrip() {
        let d = sample();
        for gz in [gzip_zopfli(&d), gzip_flate2(&d), gzip_best(&d)] {
            let info = inspect(&gz).unwrap();
            assert_eq!(info.data, d);
            assert!(info.trailer_valid);
            assert_eq!(info.member_len, gz.len());
            assert_eq!(info.isize as usize, d.len());
        }
    }

    #[test]
    fn best_is_the_minimum() {
        let d = sample();
        let best = gzip_best(&d).len();
        assert!(best <= gzip_zopfli(&d).len() && best <= gzip_flate2(&d).len());
    }

    #[test]
    fn truncated_gzip_is_refused() {
        let gz = gzip_best(&sample());
        for cut in [5, 12, gz.len() / 2, gz.len() - 3] {
            assert!(inspect(&gz[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn wrong_trailer_is_reported_not_fatal() {
        // eboot ignores the gzip CRC, so info must show a bad one rather than fail.
        let mut gz = gzip_best(&sample());
        let n = gz.len();
        gz[n - 8] ^= 1;
        let info = inspect(&gz).unwrap();
        assert!(!info.trailer_valid);
        assert_eq!(info.data, sample());
    }
}
