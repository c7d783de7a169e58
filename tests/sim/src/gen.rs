//! Realistic update payloads: Arduino flash images (stock-eboot slot + ESP8266 app image
//! built the way elf2bin.py does) filled with code-like bytes, and filesystem images.
//! Contents are seeded so every run of the sweep sees the same bytes.

use std::io::Write;

use bootloader::command::CRC32_MPEG2;
use bootloader::image::{self, Header, Segment};
use flate2::{Compression, GzBuilder};

use crate::rng::Rng;

/// Xtensa-ish code: a skewed vocabulary of 3- and 2-byte instructions, register fields,
/// call offsets, literal pools and strings. gzip -9 shrinks it to roughly half, like real
/// `.irom0.text`, so the inflater, window and sector pacing see realistic work.
pub fn code(rng: &mut Rng, len: usize) -> Vec<u8> {
    const REPEAT: u64 = 14;
    // Instruction "templates" shared by the whole program, with a Zipf-like pick.
    let mut vocab = Vec::new();
    let mut v = Rng::new(0xC0DE);
    for _ in 0..384 {
        vocab.push([v.byte(), v.byte(), v.byte()]);
    }
    const WORDS: &[&str] = &[
        "WiFi", "connect", "failed", "status", "http://", "update", "sensor", "value",
        "error", "timeout", "mqtt", "publish", "ESP8266", "config", "/index.html", "%d",
        "%s: %u\n", "begin", "ready", "Temperature", "Humidity", "ms", "OK", "client",
    ];
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let r = rng.below(100);
        if r < REPEAT && out.len() > 64 {
            // Idioms recur (prologues, inlined helpers, near-identical call sites).
            let n = rng.range(6, 30) as usize;
            let back = rng.range(n as u64, (out.len() as u64).min(16384)) as usize;
            let from = out.len() - back;
            for k in 0..n {
                out.push(out[from + k]);
            }
        } else if r < 58 {
            // Common instruction: low index far more likely.
            let i = (rng.below(384) * rng.below(384) / 384) as usize;
            out.extend_from_slice(&vocab[i]);
        } else if r < 80 {
            // Same opcode byte, fresh register/immediate fields.
            let i = (rng.below(64) * rng.below(64) / 64) as usize;
            out.extend_from_slice(&[vocab[i][0], rng.byte(), vocab[i][2]]);
        } else if r < 90 {
            // call/l32r with a random offset.
            out.extend_from_slice(&[0x05 | (rng.byte() & 0xC0), rng.byte(), rng.byte()]);
        } else if r < 96 {
            // Literal pool entry: an address in the flash map or DRAM.
            let base = if rng.chance(1, 2) { 0x4020_0000 } else { 0x3FFE_8000 };
            let a: u32 = base + (rng.below(0x4_0000) as u32 & !3);
            out.extend_from_slice(&a.to_le_bytes());
        } else {
            let w = WORDS[rng.below(WORDS.len() as u64) as usize];
            out.extend_from_slice(w.as_bytes());
            out.push(0);
        }
    }
    out.truncate(len);
    out
}

/// File-like data for filesystem images: text records, JSON, HTML, with some binary.
pub fn files(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "{\"id\":", "\"name\":\"", "\"value\":", "}, ", "<div class=\"row\">", "</div>\n",
        "temperature", "humidity", "2024-05-", "T12:", "sensor", "config", "true", "false",
        "<script src=\"/js/app.js\"></script>", "ssid", "password", "color: #", ";\n",
        "function(", ") {\n  return ", "\n}\n", "log entry ", "WARN ", "INFO ",
    ];
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        match rng.below(10) {
            0..=6 => {
                let w = WORDS[rng.below(WORDS.len() as u64) as usize];
                out.extend_from_slice(w.as_bytes());
            }
            7 | 8 => {
                let n = rng.below(100000);
                out.extend_from_slice(n.to_string().as_bytes());
            }
            _ => {
                for _ in 0..rng.range(2, 12) {
                    out.push(rng.byte());
                }
            }
        }
    }
    out.truncate(len);
    out
}

/// Where each app segment goes (elf2bin order: .irom0.text, .text, .text1, .data, .rodata).
#[derive(Clone, Debug)]
pub struct AppSpec {
    pub seed: u64,
    /// Bytes of the whole app image (approximate; the result is padded to 16).
    pub size: usize,
    /// Header flash size code (high nibble of byte 3).
    pub size_code: u8,
}

/// An ESP8266 app image as elf2bin writes it at 0x1000, with its segments.
pub fn app_image(spec: &AppSpec) -> Vec<u8> {
    let mut rng = Rng::new(spec.seed);
    // IRAM/DRAM parts scale with the image, capped at realistic sizes.
    let iram = (spec.size / 10).clamp(256, 28 * 1024) & !3;
    let iram1 = (spec.size / 100).clamp(64, 2048) & !3;
    let data = (spec.size / 200).clamp(32, 1280) & !3;
    let rodata = (spec.size / 40).clamp(64, 6 * 1024) & !3;
    let overhead = image::HEADER_LEN + 5 * image::SEGMENT_HEADER_LEN + 16;
    let irom = spec.size.saturating_sub(overhead + iram + iram1 + data + rodata).max(64) & !3;
    let entry = 0x4010_0004 + (rng.below(iram as u64 / 4) as u32) * 4;
    let mut irom = code(&mut rng, irom);
    // __crc_len / __crc_val placeholders, zero until the whole-file CRC is stamped.
    irom[..8].fill(0);
    let segs = [
        (0x4020_1010u32, irom),
        (image::IRAM_START, code(&mut rng, iram)),
        (image::IRAM_START + iram as u32, code(&mut rng, iram1)),
        (image::DRAM_START, files(&mut rng, data)),
        (image::DRAM_START + data as u32, files(&mut rng, rodata)),
    ];
    image_of(Header { segments: 5, flash_mode: 2, size_freq: spec.size_code << 4, entry }, segs)
}

/// Header, segments (header + data each), zero padding and the XOR checksum byte.
fn image_of(h: Header, segs: impl IntoIterator<Item = (u32, Vec<u8>)>) -> Vec<u8> {
    let mut img = h.to_bytes().to_vec();
    let mut sum = image::CHECKSUM_SEED;
    for (addr, bytes) in segs {
        img.extend_from_slice(&Segment { addr, len: bytes.len() as u32 }.to_bytes());
        sum = image::checksum_update(sum, &bytes);
        img.extend_from_slice(&bytes);
    }
    let total = image::padded_len(img.len() as u32) as usize;
    img.resize(total - 1, 0);
    img.push(sum);
    img
}

/// An extension image as tier 1 sees one (what `cargo xtask build` makes as
/// extension.bin): code in the extension's IRAM window (0x4010C000..0x4010F000) and a
/// little DRAM data.
pub fn ext_image() -> Vec<u8> {
    let mut rng = Rng::new(0xE87);
    let h = Header { segments: 2, flash_mode: 2, size_freq: 0, entry: 0x4010_C1F4 };
    image_of(h, [(image::IRAM_END, code(&mut rng, 6200)), (0x3FFF_2640, files(&mut rng, 24))])
}

/// The stock eboot image elf2bin puts in the file's first 4 KiB: 0xE9 header, two
/// segments (.text in IRAM 0x4010F000, .rodata), padded to 4096 with 0xAA.
pub fn stock_eboot(size_code: u8) -> Vec<u8> {
    let mut rng = Rng::new(0xEB00);
    let text = code(&mut rng, 3408);
    let mut rodata = b"v%08x\n\0@cp:\0ld\0e:%d\n\0".to_vec();
    rodata.resize(40, 0); // 0x28 bytes, as in the shipped eboot.elf
    let h = Header { segments: 2, flash_mode: 2, size_freq: size_code << 4, entry: 0x4010_F474 };
    let mut img = image_of(h, [(0x4010_F000u32, text), (0x3FFF_20B8, rodata)]);
    img.resize(4096, 0xAA);
    img
}

/// The Arduino `.bin`: stock eboot slot + app, with elf2bin's whole-file CRC stamped at
/// 0x1010 (length) and 0x1014 (CRC-32/MPEG-2 over the file with those words zero).
pub fn arduino_bin(app: &[u8], size_code: u8) -> Vec<u8> {
    let mut f = stock_eboot(size_code);
    f.extend_from_slice(app);
    let crc = CRC32_MPEG2.checksum(&f);
    let len = f.len() as u32;
    f[0x1010..0x1014].copy_from_slice(&len.to_le_bytes());
    f[0x1014..0x1018].copy_from_slice(&crc.to_le_bytes());
    f
}

/// A filesystem image: blocks of file data, metadata-ish headers and unused (0xFF)
/// blocks, like an mklittlefs image of a partly filled filesystem.
pub fn fs_image(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut img = Vec::with_capacity(len);
    while img.len() < len {
        let block = 4096.min(len - img.len());
        if rng.chance(1, 6) {
            img.extend(std::iter::repeat_n(0xFF, block));
        } else {
            let mut b = files(&mut rng, block);
            // Block header: revision count and a tag, different in every block.
            let tag = rng.next_u32();
            for (i, x) in tag.to_le_bytes().iter().enumerate() {
                b[i] = *x;
            }
            img.extend_from_slice(&b);
        }
    }
    img
}

/// gzip level 9, with a file name in the header (as `gzip file` / Python's gzip.open).
pub fn gzip(data: &[u8], name: Option<&str>) -> Vec<u8> {
    let mut b = GzBuilder::new().mtime(0x6500_0000);
    if let Some(n) = name {
        b = b.filename(n);
    }
    let mut e = b.write(Vec::new(), Compression::best());
    e.write_all(data).expect("gzip to memory");
    e.finish().expect("gzip to memory")
}

/// gzip level 1: for the many mutated images of the reject test.
pub fn gzip_fast(data: &[u8]) -> Vec<u8> {
    let mut e = GzBuilder::new().write(Vec::new(), Compression::fast());
    e.write_all(data).expect("gzip to memory");
    e.finish().expect("gzip to memory")
}

/// The segments of an ESP8266 image in `img` (header at 0): (segment, data offset).
/// `None` if the table runs past the buffer. Used to check what the loader loads.
pub fn segments(img: &[u8]) -> Option<Vec<(Segment, usize)>> {
    let h = Header::parse(img)?;
    let mut off = image::HEADER_LEN;
    let mut v = Vec::new();
    for _ in 0..h.segments {
        let s = Segment::parse(img.get(off..off + 8)?);
        off += 8;
        v.push((s, off));
        off = off.checked_add(s.len as usize)?;
        if off > img.len() {
            return None;
        }
    }
    Some(v)
}

pub fn roundup4k(n: usize) -> usize {
    n.div_ceil(4096) * 4096
}
