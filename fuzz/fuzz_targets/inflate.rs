//! Arbitrary bytes into the bootloader's gunzip: it must not panic or hang, and whatever it
//! accepts must be what miniz_oxide makes of the same deflate data, with the CRC, length and
//! consumed input it reports.
#![no_main]

use bootloader::inflate::{gunzip, Source, State, CHUNK};
use libfuzzer_sys::fuzz_target;

struct Src<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Source for Src<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
}

/// Where the deflate data starts, for a header the inflater accepted.
fn body_start(gz: &[u8]) -> usize {
    let flags = gz[3];
    let mut p = 10;
    if flags & 4 != 0 {
        p += 2 + (gz[10] as usize | (gz[11] as usize) << 8);
    }
    for f in [8, 16] {
        if flags & f != 0 {
            p += gz[p..].iter().position(|&b| b == 0).unwrap() + 1;
        }
    }
    if flags & 2 != 0 {
        p += 2;
    }
    p
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { crc >> 1 ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    let mut st = Box::new(State::new());
    let mut src = Src { data, pos: 0 };
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    let res = gunzip(&mut src, &mut st, |c| {
        out.extend_from_slice(c);
        sizes.push(c.len());
        true
    });
    if let Some((_, full)) = sizes.split_last() {
        assert!(full.iter().all(|&n| n == CHUNK));
    }
    let Ok(g) = res else { return };
    let end = g.in_len as usize;
    assert_eq!(src.pos, end);
    assert_eq!(g.out_len as usize, out.len());
    assert_eq!(g.crc, crc32(&out));
    assert_eq!(data[end - 8..end - 4], g.crc.to_le_bytes());
    assert_eq!(data[end - 4..end], g.out_len.to_le_bytes());
    let start = body_start(data);
    let want = miniz_oxide::inflate::decompress_to_vec(&data[start..end - 8])
        .expect("accepted a stream miniz_oxide rejects");
    assert!(out == want, "output differs from miniz_oxide");
});
