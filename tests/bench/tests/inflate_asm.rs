//! The device's assembly inflater (bootloader/src/device/inflate.S) against the Rust one
//! (`bootloader::inflate::gunzip`, the specification), stream by stream: thousands of gzip
//! streams from the inflater tests' generators and compressors (and zopfli), hand-built and
//! damaged ones, run on QEMU lx106 in batches (tests/bench/inflate/harness.c), the Rust
//! inflater on the host over the same "flash". Per stream they must agree on the result
//! (error class, or output length, CRC and input consumed), the bytes handed to the sink
//! (count, CRC, chunks) and the sector reads; the harness also checks chunk sizes, SPIRead
//! alignment and guard words around the inflater's RAM.
use std::io::Write;

use bootloader::inflate::{gunzip, Error, Source, State};
use flate2::{Compression, GzBuilder};

#[path = "../../../bootloader/tests/streams/mod.rs"]
mod streams;
use streams::*;

const SECTOR: usize = 4096;
const FLASH_BASE: u32 = 0x5100_0000;
const DESC_BASE: u32 = 0x5300_0000;

struct Case {
    what: String,
    /// Staged bytes (the member, possibly followed by junk, or damaged).
    data: Vec<u8>,
    /// Sink returns false on this chunk (1-based); 0: never.
    stop: u32,
}

fn case(what: impl Into<String>, data: Vec<u8>) -> Case {
    Case { what: what.into(), data, stop: 0 }
}

/// What one inflater run told: error class (0 = ok, else `Error` discriminant + 1), then
/// out_len, crc, in_len (ok only), sink bytes, sink CRC, chunks, sector reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outcome {
    err: u32,
    out_len: u32,
    crc: u32,
    in_len: u32,
    sink_bytes: u32,
    sink_crc: u32,
    chunks: u32,
    reads: u32,
}

/// FlashSource on the host: whole-sector reads of the chip image, failing past its end.
struct FlashSrc<'a> {
    chip: &'a [u8],
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    reads: u32,
}

impl Source for FlashSrc<'_> {
    fn next(&mut self) -> Option<u8> {
        if self.pos >= self.end {
            return None;
        }
        let k = self.pos % SECTOR;
        if k == 0 {
            self.reads += 1;
            self.buf = self.chip.get(self.pos..self.pos + SECTOR)?.to_vec();
        }
        self.pos += 1;
        self.buf.get(k).copied()
    }
}

fn rust_outcome(chip: &[u8], src: usize, len: usize, stop: u32, st: &mut State) -> Outcome {
    let mut s = FlashSrc { chip, buf: Vec::new(), pos: src, end: src + len, reads: 0 };
    let (mut bytes, mut crc, mut chunks) = (0u32, 0u32, 0u32);
    let mut hasher = flate2::Crc::new();
    let r = gunzip(&mut s, st, |c| {
        hasher.update(c);
        bytes += c.len() as u32;
        crc = hasher.sum();
        chunks += 1;
        chunks != stop
    });
    let mut o = Outcome { err: 0, out_len: 0, crc: 0, in_len: 0, sink_bytes: bytes, sink_crc: crc, chunks, reads: s.reads };
    match r {
        Ok(g) => (o.out_len, o.crc, o.in_len) = (g.out_len, g.crc, g.in_len),
        Err(e) => {
            o.err = match e {
                Error::Header => 1,
                Error::Data => 2,
                Error::Truncated => 3,
                Error::Trailer => 4,
                Error::Sink => 5,
            }
        }
    }
    o
}

// ---------------------------------------------------------------- streams

fn gz_with(b: GzBuilder, data: &[u8], level: u32) -> Vec<u8> {
    let mut e = b.write(Vec::new(), Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The shared bit writer (streams::Bits), plus what only these streams need.
impl Bits {
    /// A 2-bit code of the code-length code below (symbols 0, 1, 16, 18 or 0, 8, 16, 18).
    fn cl(&mut self, code: u32) -> &mut Self {
        self.put(code >> 1 & 1, 1).put(code & 1, 1)
    }
}

/// Dynamic block header: final, HLIT, HDIST, and a code-length code of `lens` in the
/// RFC's order (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15).
fn dyn_head(w: &mut Bits, hlit: u32, hdist: u32, lens: &[u32]) {
    w.put(1, 1).put(2, 2).put(hlit, 5).put(hdist, 5).put(lens.len() as u32 - 4, 4);
    for &l in lens {
        w.put(l, 3);
    }
}

/// Hand-built deflate data (with a gzip wrapper) aimed at each refusal rule of the Rust
/// inflater, plus the lone 1-bit code it accepts.
fn hand_built() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut push = |what: &str, mut w: Bits| v.push((what.to_string(), wrap(&w.done(), b"")));
    // Code-length code 0:2 8:2 16:2 18:2 (codes 00, 01, 10, 11), complete.
    let cl08 = [2, 0, 2, 2, 2];
    for (what, hlit, hdist) in [("HLIT 30", 30, 0), ("HDIST 30", 0, 30), ("HLIT 31 HDIST 31", 31, 31), ("HLIT 29 HDIST 29", 29, 29)] {
        let mut w = Bits::default();
        dyn_head(&mut w, hlit, hdist, &cl08);
        for _ in 0..40 {
            w.cl(3).put(127, 7);
        }
        push(what, w);
    }
    // A lone 1-bit code-length code (symbol 0), and no code at all.
    let mut w = Bits::default();
    dyn_head(&mut w, 0, 0, &[0, 0, 0, 1]);
    push("lone 1-bit code-length code", w);
    let mut w = Bits::default();
    dyn_head(&mut w, 0, 0, &[0, 0, 0, 0]);
    push("empty code-length code", w);
    // 16 with nothing to repeat.
    let mut w = Bits::default();
    dyn_head(&mut w, 0, 0, &cl08);
    w.cl(2);
    push("16 first", w);
    // 18 twice past the 258 lengths.
    let mut w = Bits::default();
    dyn_head(&mut w, 0, 0, &cl08);
    w.cl(3).put(127, 7).cl(3).put(127, 7);
    push("repeat past the end", w);
    // Literals 0..255 of 8 bits, no end-of-block code, no distance code.
    let mut w = Bits::default();
    dyn_head(&mut w, 0, 0, &cl08);
    for _ in 0..256 {
        w.cl(1);
    }
    w.cl(0).cl(0).put(0, 16);
    push("no end-of-block", w);
    // 254 literals + end-of-block of 8 bits: incomplete.
    let mut w = Bits::default();
    dyn_head(&mut w, 0, 0, &cl08);
    for i in 0..256 {
        w.cl(if i < 254 { 1 } else { 0 });
    }
    w.cl(1).cl(0).put(0, 16);
    push("incomplete literal/length code", w);
    // Code-length code 0:2 1:2 16:2 18:2: a lone 1-bit end-of-block, no distance code.
    let cl01 = [2, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    for (what, bit) in [("lone 1-bit code, used", 0), ("lone 1-bit code, missing code", 1)] {
        let mut w = Bits::default();
        dyn_head(&mut w, 0, 0, &cl01);
        w.cl(3).put(127, 7).cl(3).put(107, 7).cl(1).cl(0);
        w.put(bit, 1).put(0, 15);
        push(what, w);
    }
    // Fixed: distance code 30, a distance before the start, length code 286.
    let fixed = |w: &mut Bits, lit: u32| {
        // 0..143: 8 bits from 0x30; 280..287: 8 bits from 0xC0 (MSB first).
        w.code((if lit < 144 { 0x30 + lit } else { 0xC0 + lit - 280 }, 8));
    };
    let mut w = Bits::default();
    w.put(1, 1).put(1, 2);
    fixed(&mut w, 65);
    w.code((1, 7)).code((30, 5)); // length 3 (257), distance code 30
    push("distance code 30", w);
    let mut w = Bits::default();
    w.put(1, 1).put(1, 2);
    fixed(&mut w, 65);
    w.code((1, 7)).code((4, 5)).put(0, 1); // distance code 4 (5 or 6) after 1 byte
    push("distance too far", w);
    let mut w = Bits::default();
    w.put(1, 1).put(1, 2);
    fixed(&mut w, 286);
    push("length code 286", w);
    // Stored: LEN/NLEN mismatch; type 3.
    let mut w = Bits::default();
    w.put(1, 1).put(0, 2).put(0, 5).put(5, 16).put(0xFFFB, 16);
    push("stored length mismatch", w);
    let mut w = Bits::default();
    w.put(1, 1).put(3, 2).put(0, 16);
    push("type 3", w);
    v
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    // The inflater tests' 1000 generated streams, flate2 levels 0..9 (same seed); every
    // third with junk after the member (in_len must stop at the trailer).
    let mut rng = Rng(0x00EB_0075);
    for i in 0..1000 {
        let n = size(&mut rng);
        let data = generate(&mut rng, n);
        let mut gz = flate2_gz(&data, (i % 10) as u32);
        if i % 3 == 0 {
            gz.extend_from_slice(b"JUNK after the member");
        }
        v.push(case(format!("generated {i}, {n} bytes, level {}", i % 10), gz));
    }
    let mut rng = Rng(7);
    for n in [0, 1, 4095, 4096, 4097, 8192, 32767, 32768, 32769, 65536, 65537, 131072] {
        let data = generate(&mut rng, n);
        for level in [0, 1, 6, 9] {
            v.push(case(format!("{n} bytes, level {level}"), flate2_gz(&data, level)));
        }
    }
    // System gzip -1 / -9 (as the inflater tests), and with a file name.
    let mut rng = Rng(0x6A1F);
    for i in 0..30 {
        let n = size(&mut rng);
        let data = generate(&mut rng, n);
        for level in ["-1", "-9"] {
            v.push(case(format!("gzip {level}, case {i}"), system_gzip(&["-c", "-n", level], &data)));
        }
    }
    // zopfli (tools' update compressor): long block splits, unusual code-length codes.
    let mut rng = Rng(0x2F0F);
    let inputs: Vec<Vec<u8>> = (0..16).map(|_| {
        let n = rng.below(30_000);
        generate(&mut rng, n)
    }).collect();
    let zopfli: Vec<Vec<u8>> = std::thread::scope(|sc| {
        let hs: Vec<_> = inputs.iter().map(|d| sc.spawn(move || tools::gzip::gzip_zopfli(d))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, gz) in zopfli.into_iter().enumerate() {
        v.push(case(format!("zopfli {i}"), gz));
    }
    v.push(case("zopfli, code-like filler", tools::gzip::gzip_zopfli(&bench::build::code_like_filler(20_000, 5))));
    // Header fields (flate2's builder and by hand, FHCRC good and bad), bad headers.
    let data = b"header fields: FEXTRA, FNAME, FCOMMENT, FHCRC, FTEXT".repeat(50);
    v.push(case("extra", gz_with(GzBuilder::new().extra(vec![0x41, 0x70, 3, 0, 1, 2, 3]), &data, 6)));
    v.push(case("name", gz_with(GzBuilder::new().filename("firmware.bin"), &data, 6)));
    v.push(case("comment", gz_with(GzBuilder::new().comment("made by the test"), &data, 6)));
    let all = GzBuilder::new().extra(vec![7; 300]).filename("x.bin").comment("c").mtime(12345);
    v.push(case("all fields", gz_with(all, &data, 9)));
    let deflate = &flate2_gz(&data, 6)[10..];
    let mut h = vec![0x1F, 0x8B, 8, 1 | 2 | 4 | 8 | 16, 1, 2, 3, 4, 0, 255, 4, 0, b'a', b'b', 2, 0];
    h.extend_from_slice(b"name\0comment\0");
    let mut gz = h.clone();
    gz.extend_from_slice(&(crc32(&h) as u16).to_le_bytes());
    gz.extend_from_slice(deflate);
    for i in [0, h.len(), h.len() + 1] {
        let mut g = gz.clone();
        if i > 0 {
            g[i] ^= 0x10;
        }
        v.push(case(format!("FHCRC, byte {i} flipped"), g));
    }
    // A long FEXTRA across a sector boundary, then FHCRC.
    let mut h = vec![0x1F, 0x8B, 8, 2 | 4, 0, 0, 0, 0, 0, 3, 0x10, 0x27];
    h.extend((0..10_000).map(|i| i as u8));
    let mut gz = h.clone();
    gz.extend_from_slice(&(crc32(&h) as u16).to_le_bytes());
    gz.extend_from_slice(deflate);
    v.push(case("10000-byte FEXTRA, FHCRC", gz));
    let good = flate2_gz(b"payload", 6);
    for (i, b) in [(0, 0x1E), (1, 0x8C), (2, 7), (2, 0), (3, 0x20), (3, 0x40), (3, 0x80), (0, 0x8B)] {
        let mut g = good.clone();
        g[i] = b;
        v.push(case(format!("header byte {i} = {b:#x}"), g));
    }
    // Hand-built refusals, each also cut at every byte.
    for (what, gz) in hand_built() {
        for cut in 0..gz.len() {
            v.push(case(format!("{what}, cut at {cut}"), gz[..cut].to_vec()));
        }
        v.push(case(what, gz));
    }
    // Damaged: every truncation, bit flips (some also cut), garbage after a header.
    let mut rng = Rng(0xBAD);
    let mut samples = Vec::new();
    for (i, n) in [0, 10, 300, 3000, 5000, 9000, 20_000].into_iter().enumerate() {
        let data = generate(&mut rng, n);
        samples.push(flate2_gz(&data, [0, 1, 6, 9][i % 4]));
        let b = GzBuilder::new().filename("f").comment("c").extra(vec![1, 2]);
        samples.push(gz_with(b, &data, 9));
    }
    for gz in samples.iter().take(6) {
        for cut in 0..gz.len() {
            v.push(case(format!("cut at {cut} of {}", gz.len()), gz[..cut].to_vec()));
        }
    }
    let mut rng = Rng(0xF11B);
    for (s, gz) in samples.iter().enumerate() {
        for k in 0..200 {
            let mut bad = gz.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bad.len());
                bad[i] ^= 1 << rng.below(8);
            }
            if rng.below(8) == 0 {
                bad.truncate(rng.below(bad.len() + 1));
            }
            v.push(case(format!("sample {s}, bit flips {k}"), bad));
        }
    }
    let mut rng = Rng(0x6A2B);
    for i in 0..3000 {
        let mut gz = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3];
        let first = rng.byte();
        gz.push(if i % 2 == 0 { first & !6 | 4 } else { first });
        gz.extend((0..rng.below(2000)).map(|_| rng.byte()));
        v.push(case(format!("garbage after a header {i}"), gz));
    }
    // The sink stops it: at each of the first chunks, and at the last (partial) one.
    let mut rng = Rng(11);
    let data = generate(&mut rng, 20_000);
    let gz = flate2_gz(&data, 6);
    for stop in [1, 2, 4, 5] {
        v.push(Case { what: format!("sink stops at chunk {stop}"), data: gz.clone(), stop });
    }
    let n = gz.len();
    for i in n - 8..n {
        let mut bad = gz.clone();
        bad[i] ^= 1;
        v.push(case(format!("trailer byte {} flipped", i + 8 - n), bad));
    }
    v
}

// ---------------------------------------------------------------- the comparison

#[test]
fn asm_inflater_matches_the_rust_one_on_qemu() {
    let fx = bench::build_fixtures().expect("bench fixtures");
    let elf = fx.inflate_harness().expect("inflater harness");
    let mut cases = cases();
    // Last: a stream whose second sector lies past the end of the chip (a failed read).
    let mut rng = Rng(99);
    let big = flate2_gz(&generate(&mut rng, 30_000), 1);
    assert!(big.len() > SECTOR);
    cases.push(case("read past the chip", big));

    // Batches of up to 12 MiB of flash (QEMU RAM at 0x51000000), one QEMU run each: every
    // stream from a sector boundary, its last sector padded with 0xEE.
    let t = std::time::Instant::now();
    let mut results: Vec<(Vec<u8>, usize, Vec<u32>)> = Vec::new(); // (flash, src, line)
    let mut first = 0;
    while first < cases.len() {
        let mut flash = Vec::new();
        let mut desc: Vec<u32> = vec![0, 0];
        let mut end = first;
        while end < cases.len() && flash.len() + cases[end].data.len() < 12 << 20 {
            let c = &cases[end];
            desc.extend([flash.len() as u32, c.data.len() as u32, c.stop]);
            flash.extend_from_slice(&c.data);
            flash.resize(flash.len().div_ceil(SECTOR) * SECTOR, 0xEE);
            end += 1;
        }
        if end == cases.len() {
            // The read-past-the-chip stream: the chip ends after its first sector.
            flash.truncate(desc[desc.len() - 3] as usize + SECTOR);
        }
        desc[0] = (end - first) as u32;
        desc[1] = flash.len() as u32;
        let lines = run_batch(&elf, &flash, &desc);
        assert_eq!(lines.len(), end - first, "results of streams {first}..{end}");
        for (k, line) in lines.into_iter().enumerate() {
            assert_eq!(line[0], k as u32);
            results.push((Vec::new(), desc[2 + 3 * k] as usize, line));
        }
        // Keep each batch's flash only once (for the host run below).
        if let Some(r) = results.get_mut(first) {
            r.0 = flash;
        }
        first = end;
    }
    eprintln!("QEMU: {} streams in {:.1} s", cases.len(), t.elapsed().as_secs_f64());

    let mut st = Box::new(State::filled(0xA5));
    let mut compared = 0;
    let (mut oks, mut errs) = (0, [0; 6]);
    let mut flash: &[u8] = &[];
    for (i, (c, (fl, src, f))) in cases.iter().zip(&results).enumerate() {
        if !fl.is_empty() {
            flash = fl;
        }
        let src = *src;
        assert_eq!(f[9], 0, "stream {i} ({}): harness flags {:#x} (1 chunk size, 2 chunk outside the state, 4 SPIRead alignment, 8 guard, 16 sink after stop)", c.what, f[9]);
        let mut asm = Outcome { err: f[1], out_len: f[2], crc: f[3], in_len: f[4], sink_bytes: f[5], sink_crc: f[6], chunks: f[7], reads: f[8] };
        if asm.err != 0 {
            // Not written on error.
            (asm.out_len, asm.crc, asm.in_len) = (0, 0, 0);
        }
        let rust = rust_outcome(flash, src, c.data.len(), c.stop, &mut st);
        assert_eq!(asm, rust, "stream {i} ({}, {} bytes): assembly (left) and Rust (right) disagree", c.what, c.data.len());
        if rust.err == 0 {
            oks += 1;
        } else {
            errs[rust.err as usize] += 1;
        }
        compared += 1;
    }
    eprintln!("compared {compared} streams: {oks} ok; errors header {}, data {}, truncated {}, trailer {}, sink {}", errs[1], errs[2], errs[3], errs[4], errs[5]);
    assert!(compared >= 1000, "only {compared} streams compared");
    // Every class is exercised.
    assert!(oks >= 1000 && errs[1..].iter().all(|&n| n > 0), "{oks} ok, errors {errs:?}");
}

/// One QEMU run of the harness over `flash` and its stream table; the result lines' fields.
fn run_batch(elf: &std::path::Path, flash: &[u8], desc: &[u32]) -> Vec<Vec<u32>> {
    let desc: Vec<u8> = desc.iter().flat_map(|w| w.to_le_bytes()).collect();
    // A whole batch takes seconds.
    let lines = bench::qemu::run_harness(elf, &[(FLASH_BASE, flash), (DESC_BASE, &desc)], 300).unwrap_or_else(|e| panic!("{e}"));
    for f in &lines {
        assert_eq!(f.len(), 10, "{f:x?}");
    }
    lines
}
