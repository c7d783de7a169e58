//! The device's assembly leaf routines (bootloader/src/device/leaf.S: `eboot_crc_mpeg2`,
//! `eboot_segment_region`, `eboot_walker_feed`; inflate.S: `eboot_crc32`) against the Rust
//! ones they replace on the device (`crc::mpeg2`, `crc::gzip`, `image::segment_region`,
//! `loader::Walker::feed`, the specification), call by call: thousands of inputs run on
//! QEMU lx106 in one batch (tests/bench/leaf/harness.c), the Rust routines on the host.
//! Per call they must agree on the result (for the walker: its whole state after every
//! chunk split), and the routine must keep the registers it promises to keep (the walker
//! relies on `eboot_segment_region` sparing a3, a4, a9..a11, the inflater on `eboot_crc32`
//! sparing a8..a11) and write nothing outside the walker's state.

use bootloader::crc;
use bootloader::image::{padded_len, segment_region, Header, Segment, CHECKSUM_SEED, DRAM_END, DRAM_START, EXT_IRAM_END, FLASH_MAP_END, FLASH_MAP_START, IRAM_END, IRAM_START, RTC_END, RTC_START};
use bootloader::loader::Walker;

const DATA_BASE: u32 = 0x5100_0000;
const DESC_BASE: u32 = 0x5300_0000;
const WALKER_WORDS: usize = 13;

/// One call: what the harness is told (op and words) and what the Rust routine says.
struct Call {
    what: String,
    desc: Vec<u32>,
    want: Vec<u32>,
}

struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        self.0 ^ (self.0 >> 15)
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

fn walker_state(w: Walker) -> [u32; WALKER_WORDS] {
    // SAFETY: `Walker` is repr(C), 13 u32 words (the harness uses the same layout).
    let mut s: [u32; WALKER_WORDS] = unsafe { std::mem::transmute(w) };
    // `arduino` (word 6) is a flag: the assembly stores a nonzero word, Rust 1.
    s[6] = (s[6] != 0) as u32;
    s
}

/// A random image like loader.rs's `walker_equals_byte_walker`: 1..=4 segments at region
/// boundaries and elsewhere, aligned or not, Arduino layouts, then corruptions and junk.
fn random_image(r: &mut Rng) -> Vec<u8> {
    let addrs = [0x4020_1010u32, 0x4010_0000, 0x3FFE_8000, 0x6000_1000, 0x4010_B000, 0x4000_0000, 0x4020_0000, 0x4010_BFF8, 0x3FFF_BFF0, 0x6000_1FF8, 0x402F_FFF8];
    let most = if r.below(20) == 0 { 17 } else { 4 };
    let n = 1 + r.below(most) as usize;
    let mut segs = Vec::new();
    for _ in 0..n {
        let a = addrs[r.below(addrs.len() as u32) as usize] + 4 * r.below(4) + (r.below(16) == 0) as u32;
        let len = [0usize, 4, 8, 12, 20, 3, 16, 64][r.below(8) as usize];
        segs.push((a, (0..len).map(|_| r.next() as u8).collect::<Vec<u8>>()));
    }
    let mut v = Vec::new();
    let entry = r.next();
    v.extend_from_slice(&Header { segments: n as u8, flash_mode: 2, size_freq: 0x20, entry }.to_bytes());
    let mut sum = CHECKSUM_SEED;
    for (a, d) in &segs {
        v.extend_from_slice(&Segment { addr: *a, len: d.len() as u32 }.to_bytes());
        v.extend_from_slice(d);
        sum ^= d.iter().fold(0, |s, b| s ^ b);
    }
    v.resize(padded_len(v.len() as u32) as usize, 0);
    *v.last_mut().unwrap() = sum;
    let flips = r.below(2) * (1 + r.below(3));
    for _ in 0..flips {
        let k = r.below(v.len() as u32) as usize;
        v[k] ^= 1 << r.below(8);
    }
    if r.below(4) == 0 && v.len() >= 24 {
        let b = r.next() as u8;
        v[16..24].copy_from_slice(&[b; 8]);
    }
    if r.below(10) == 0 {
        v[0] = r.next() as u8;
    }
    for _ in 0..r.below(24) {
        v.push(r.next() as u8);
    }
    v
}

/// The calls and the data blob they read (at DATA_BASE).
fn calls() -> (Vec<Call>, Vec<u8>, [usize; 4]) {
    let mut r = Rng(0x1EAF);
    let mut data: Vec<u8> = (0..64 * 1024).map(|_| r.next() as u8).collect();
    let mut v = Vec::new();
    let mut count = [0; 4];
    // gzip's CRC: any length (0 too), any alignment, any CRC to continue.
    for i in 0..1500 {
        let len = match i % 10 {
            0 => r.below(5000),
            1 => 0,
            _ => r.below(300),
        };
        let off = r.below(data.len() as u32 - len);
        let c = if i % 3 == 0 { 0 } else { r.next() };
        let want = crc::gzip(c, &data[off as usize..(off + len) as usize]);
        v.push(Call { what: format!("gzip crc {c:#x} off {off} len {len}"), desc: vec![1, c, off, len], want: vec![want] });
        count[0] += 1;
    }
    // MPEG-2 CRC of words.
    for i in 0..1500 {
        let n = if i % 10 == 0 { r.below(1000) } else { r.below(40) };
        let off = 4 * r.below((data.len() as u32 / 4) - n);
        let words: Vec<u32> = data[off as usize..(off + 4 * n) as usize].chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        v.push(Call { what: format!("mpeg2 off {off} n {n}"), desc: vec![2, off, n], want: vec![crc::mpeg2(&words)] });
        count[1] += 1;
    }
    // segment_region: around every region boundary (both IRAM ends), with lengths up to,
    // at and past the room left, then random.
    let bounds = [DRAM_START, DRAM_END, IRAM_START, IRAM_END, EXT_IRAM_END, FLASH_MAP_START, FLASH_MAP_END, RTC_START, RTC_END, 0, 0x4010_F000, 0x6000_0000, 0xFFFF_FFFC];
    let mut seg = |addr: u32, len: u32, iram_end: u32, v: &mut Vec<Call>| {
        let want = segment_region(addr, len, iram_end) as u32;
        v.push(Call { what: format!("segment_region({addr:#x}, {len:#x}, {iram_end:#x})"), desc: vec![3, addr, len, iram_end], want: vec![want] });
        count[2] += 1;
    };
    for iram_end in [IRAM_END, EXT_IRAM_END] {
        for &b in &bounds {
            for d in [-8i32, -4, -3, -1, 0, 1, 2, 4, 8] {
                let addr = b.wrapping_add(d as u32);
                let mut lens = vec![0u32, 1, 3, 4, 8, 0x1000, 0x1_0000, 0xFFFF_FFFC, u32::MAX];
                for &e in &[DRAM_END, iram_end, FLASH_MAP_END, RTC_END] {
                    let room = e.wrapping_sub(addr);
                    lens.extend([room, room.wrapping_sub(4), room.wrapping_add(4), room.wrapping_sub(1)]);
                }
                for len in lens {
                    seg(addr, len, iram_end, &mut v);
                }
            }
        }
    }
    for _ in 0..3000 {
        let b = bounds[r.below(bounds.len() as u32) as usize];
        let addr = if r.below(2) == 0 { r.next() } else { b.wrapping_add(r.below(0x2_0000)).wrapping_sub(0x1_0000) & !(r.below(2) * 3) };
        let len = if r.below(2) == 0 { r.next() } else { r.below(0x2_0000) & !(r.below(2) * 3) };
        let iram_end = [IRAM_END, EXT_IRAM_END][r.below(2) as usize];
        seg(addr, len, iram_end, &mut v);
    }
    // The walker: random images in random whole-word chunks (the last one partial),
    // from word-aligned buffers as on the device.
    let (mut valid, mut arduino) = (0, 0);
    for i in 0..6000 {
        let img = random_image(&mut r);
        let base = data.len() as u32;
        data.extend_from_slice(&img);
        data.resize(data.len().div_ceil(4) * 4, 0xEE);
        let mut w = Walker::new();
        let mut desc = vec![4, 0];
        let mut pos = 0;
        while pos < img.len() {
            let k = if i % 7 == 0 { 4 } else { 4 * (1 + r.below(8) as usize) };
            let k = k.min(img.len() - pos);
            w.feed(&img[pos..pos + k]);
            desc.extend([base + pos as u32, k as u32]);
            desc[1] += 1;
            pos += k;
            if k % 4 != 0 {
                break;
            }
        }
        let ok = w.valid().is_some();
        let want = walker_state(w);
        if ok {
            valid += 1;
            // Valid only by the Arduino rule: the CRC words' XOR (word 5) is not 0.
            arduino += (want[6] != 0 && img[16..24].iter().fold(0, |s, b| s ^ b) != 0) as usize;
        }
        v.push(Call { what: format!("walker, image {i} ({} bytes, {} chunks): {img:02x?}", img.len(), desc[1]), desc, want: want.to_vec() });
        count[3] += 1;
    }
    assert!(valid > 400 && arduino > 20, "{valid} valid images among the walker's, {arduino} by the Arduino rule");
    eprintln!("walker: {valid} valid images, {arduino} by the Arduino rule");
    (v, data, count)
}

#[test]
fn asm_leaf_routines_match_the_rust_ones_on_qemu() {
    let (calls, data, count) = calls();
    let fx = bench::build_fixtures().expect("bench fixtures");
    let elf = fx.leaf_harness().expect("leaf harness");
    let mut desc = vec![calls.len() as u32];
    for c in &calls {
        desc.extend_from_slice(&c.desc);
    }
    assert!(data.len() < 12 << 20 && desc.len() * 4 < 16 << 20);
    let desc: Vec<u8> = desc.iter().flat_map(|w| w.to_le_bytes()).collect();
    let t = std::time::Instant::now();
    let lines = bench::qemu::run_harness(&elf, &[(DATA_BASE, &data), (DESC_BASE, &desc)], 120).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("QEMU: {} calls in {:.1} s", lines.len(), t.elapsed().as_secs_f64());
    assert_eq!(lines.len(), calls.len(), "one result line per call");
    let mut compared = [0; 4];
    for (i, (c, l)) in calls.iter().zip(&lines).enumerate() {
        let op = c.desc[0];
        assert_eq!(l[0], op, "call {i} ({})", c.what);
        assert_eq!(l[1], 0, "call {i} ({}): flags {:#x} (registers not kept: 1 a3, 2 a4, 4 a8, 8 a9, 16 a10, 32 a11, 64 a12..a15; 0x100 a write outside the walker)", c.what, l[1]);
        let mut asm = l[2..].to_vec();
        if op == 4 {
            asm[6] = (asm[6] != 0) as u32;
        }
        assert_eq!(asm, c.want, "call {i} ({}): assembly (left) and Rust (right) disagree", c.what);
        compared[op as usize - 1] += 1;
    }
    eprintln!("compared: {} gzip CRCs, {} MPEG-2 CRCs, {} segment_region calls, {} walker runs", compared[0], compared[1], compared[2], compared[3]);
    assert_eq!(compared, count);
    assert!(compared.iter().all(|&n| n >= 1000), "{compared:?}");
}
