//! Test data shared by the inflater's tests (`bootloader/tests/inflate.rs`) and the bench's
//! comparison of the device's assembly inflater with it (`tests/bench/tests/inflate_asm.rs`):
//! seeded generators of firmware-like data and the gzip compressors they are fed to.
#![allow(dead_code)]

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// splitmix64: seeded and reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

pub const WORDS: &[&str] = &[
    "the", "flash", "sector", "erase", "boot", "loader", "image", "update", "power", "cut",
    "journal", "copy", "inflate", "window", "header", "Arduino", "ESP8266", "void", "setup",
    "loop", "return", "if", "else", "while", "for", "int", "uint32_t", "Serial.println",
    "WiFi", "connect", "(", ")", "{", "}", ";", "=", "==", "0x4010", "0", "1", "\n", "\t",
];

pub fn text(rng: &mut Rng, n: usize, out: &mut Vec<u8>) {
    let end = out.len() + n;
    while out.len() < end {
        out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        out.push(if rng.below(8) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(end);
}

/// Pseudo lx106 code: a few instruction templates with varying register fields,
/// recurring prologues and epilogues, literal pools, padding.
pub fn code(rng: &mut Rng, n: usize, out: &mut Vec<u8>) {
    const OPS: [[u8; 3]; 12] = [
        [0x12, 0xc1, 0xf0], [0x09, 0x01, 0x00], [0xc2, 0x61, 0x00], [0x0c, 0x02, 0x00],
        [0x21, 0x00, 0x00], [0x01, 0x00, 0x00], [0xc0, 0x00, 0x00], [0x56, 0x00, 0x00],
        [0x0d, 0xf0, 0x00], [0x88, 0x21, 0x00], [0x20, 0x22, 0x20], [0xa2, 0xa0, 0x00],
    ];
    let end = out.len() + n;
    while out.len() < end {
        match rng.below(20) {
            0 => out.extend_from_slice(&[0x12, 0xc1, 0xf0, 0x09, 0x31, 0xc9, 0x21]),
            1 => out.extend_from_slice(&[0x08, 0x31, 0xc8, 0x21, 0x12, 0xc1, 0x10, 0x0d, 0xf0]),
            2 => {
                for _ in 0..rng.below(8) {
                    out.extend_from_slice(&(0x4010_0000u32 + rng.below(0x8000) as u32 * 4).to_le_bytes());
                }
            }
            3 => out.extend(std::iter::repeat_n(0, rng.below(16))),
            _ => {
                let op = OPS[rng.below(OPS.len())];
                let r = rng.byte() & 0x0F;
                out.extend_from_slice(&[op[0], op[1] | r << 4 & 0xF0, op[2] ^ (rng.byte() & 3)]);
            }
        }
    }
    out.truncate(end);
}

pub fn generate(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let kind = rng.below(7);
    while out.len() < n {
        let m = (n - out.len()).min(if kind == 6 { 1 + rng.below(8192) } else { n });
        match if kind == 6 { rng.below(6) } else { kind } {
            0 => out.extend((0..m).map(|_| rng.byte())),
            1 => text(rng, m, &mut out),
            2 => code(rng, m, &mut out),
            3 => {
                // Skewed symbol frequencies: deep Huffman trees, up to the 15-bit limit.
                out.extend((0..m).map(|_| ((rng.next() | 1 << 40).trailing_zeros() as u8).wrapping_mul(7)));
            }
            4 => {
                // A block repeated with small changes: matches up to the full 32 KiB back.
                let len = 1 + rng.below(32768);
                let block: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
                let start = out.len();
                while out.len() < start + m {
                    let mut b = block.clone();
                    for _ in 0..rng.below(4) {
                        let i = rng.below(b.len());
                        b[i] = rng.byte();
                    }
                    out.extend_from_slice(&b);
                }
                out.truncate(start + m);
            }
            _ => out.extend(std::iter::repeat_n(if rng.below(2) == 0 { 0xFF } else { 0 }, m)),
        }
    }
    out
}

pub fn size(rng: &mut Rng) -> usize {
    match rng.below(20) {
        0..=1 => rng.below(64),
        2..=9 => rng.below(4097),
        10..=16 => rng.below(40_000),
        _ => rng.below(200_001),
    }
}

pub fn flate2_gz(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A plain 10-byte header, `deflate`, and the trailer for `data`.
pub fn wrap(deflate: &[u8], data: &[u8]) -> Vec<u8> {
    let mut gz = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(deflate);
    gz.extend_from_slice(&crc32(data).to_le_bytes());
    gz.extend_from_slice(&(data.len() as u32).to_le_bytes());
    gz
}

pub fn system_gzip(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("gzip")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("this test needs the system `gzip` command: install gzip (apt-get install gzip)");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "gzip {args:?} failed");
    out.stdout
}


/// A Huffman code: (code, length in bits).
pub type Code = (u32, u32);

/// Deflate bit writer for hand-built streams: values LSB first, Huffman codes MSB first.
#[derive(Default)]
pub struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    pub fn put(&mut self, v: u32, n: u32) -> &mut Self {
        self.acc |= (v as u64) << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
        self
    }
    pub fn code(&mut self, (code, len): Code) -> &mut Self {
        self.put(code.reverse_bits() >> (32 - len), len)
    }
    pub fn align(&mut self) -> &mut Self {
        if self.n > 0 {
            self.put(0, 8 - self.n);
        }
        self
    }
    pub fn done(&mut self) -> Vec<u8> {
        self.align();
        std::mem::take(&mut self.out)
    }
}
