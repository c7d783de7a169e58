//! The bootloader's gzip inflater against miniz_oxide (and the originals), on generated data,
//! flate2 and system gzip streams, hand-built headers and blocks, and damaged streams.

use bootloader::inflate::{gunzip, Error, Gzip, Source, State, CHUNK};
use flate2::{Compression, GzBuilder};
use std::io::Write;

mod streams;
use streams::*;

// ---------------------------------------------------------------- harness

struct Src<'a> {
    data: &'a [u8],
    pos: usize,
    /// `None`s handed out: the inflater must stop at the first.
    nones: u32,
}

impl Source for Src<'_> {
    fn next(&mut self) -> Option<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Some(b)
            }
            None => {
                self.nones += 1;
                None
            }
        }
    }
}

struct Run {
    res: Result<Gzip, Error>,
    out: Vec<u8>,
    chunks: Vec<usize>,
    /// Bytes taken from the source.
    read: usize,
    nones: u32,
}

fn new_state() -> Box<State> {
    // Not zeroed: the inflater must not depend on the initial content of its tables or
    // window (on the device they are whatever RAM held).
    Box::new(State::filled(0xA5))
}

fn run_with(input: &[u8], st: &mut State, stop_after: usize) -> Run {
    let mut src = Src { data: input, pos: 0, nones: 0 };
    let mut out = Vec::new();
    let mut chunks = Vec::new();
    let res = gunzip(&mut src, st, |c| {
        out.extend_from_slice(c);
        chunks.push(c.len());
        chunks.len() < stop_after
    });
    // Chunks end on 4096-byte boundaries: all full but the last, never empty.
    if let Some((_, full)) = chunks.split_last() {
        assert!(full.iter().all(|&n| n == CHUNK), "chunk sizes {chunks:?}");
        assert!((1..=CHUNK).contains(chunks.last().unwrap()));
    }
    if matches!(res, Err(Error::Data | Error::Header)) {
        // Only whole sectors go out before the end of the last block.
        assert!(chunks.iter().all(|&n| n == CHUNK), "chunk sizes {chunks:?} with {res:?}");
    }
    // Reading stops at the first `None`.
    assert!(src.nones <= 1);
    assert_eq!(src.nones == 1, res == Err(Error::Truncated), "{res:?}");
    Run { res, out, chunks, read: src.pos, nones: src.nones }
}

fn run(input: &[u8]) -> Run {
    run_with(input, &mut new_state(), usize::MAX)
}

/// The deflate data of a gzip member (header parsed independently of the inflater).
fn body(gz: &[u8]) -> &[u8] {
    let flags = gz[3];
    let mut p = 10;
    if flags & 4 != 0 {
        p += 2 + (gz[10] as usize | (gz[11] as usize) << 8);
    }
    for f in [8, 16] {
        if flags & f != 0 {
            while gz[p] != 0 {
                p += 1;
            }
            p += 1;
        }
    }
    if flags & 2 != 0 {
        p += 2;
    }
    &gz[p..]
}

fn miniz(gz: &[u8]) -> Vec<u8> {
    miniz_oxide::inflate::decompress_to_vec(body(gz)).expect("miniz_oxide rejects the stream")
}

/// `gz` must inflate to `want`, identically to miniz_oxide, consuming exactly `gz` (junk
/// after it is left unread), with the right CRC, length and chunking.
fn check_ok(gz: &[u8], want: &[u8], what: &str) {
    let mut input = gz.to_vec();
    input.extend_from_slice(b"JUNK after the member");
    let r = run(&input);
    let g = r.res.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert!(r.out == want, "{what}: output differs from the original");
    assert!(r.out == miniz(gz), "{what}: output differs from miniz_oxide");
    assert_eq!(g.out_len as usize, want.len(), "{what}");
    assert_eq!(g.crc, crc32(want), "{what}");
    assert_eq!(g.in_len as usize, gz.len(), "{what}: in_len");
    assert_eq!(r.read, gz.len(), "{what}: bytes read");
    assert_eq!(r.nones, 0);
    assert_eq!(r.chunks.len(), want.len().div_ceil(CHUNK), "{what}: chunk count");
}

// ---------------------------------------------------------------- valid streams

#[test]
fn matches_miniz_on_generated_flate2_streams() {
    let mut rng = Rng(0x00EB_0075);
    let mut total = 0;
    for i in 0..1000 {
        let n = size(&mut rng);
        let data = generate(&mut rng, n);
        let level = i % 10;
        let gz = flate2_gz(&data, level as u32);
        check_ok(&gz, &data, &format!("case {i}, {n} bytes, level {level}"));
        total += n;
    }
    eprintln!("{total} bytes inflated");
    assert!(total > 10_000_000, "too little data: {total}");
}

#[test]
fn exact_sector_and_window_multiples() {
    let mut rng = Rng(7);
    for n in [0, 1, 4095, 4096, 4097, 8192, 32767, 32768, 32769, 65536, 65537, 131072] {
        let data = generate(&mut rng, n);
        for level in [0, 1, 6, 9] {
            check_ok(&flate2_gz(&data, level), &data, &format!("{n} bytes, level {level}"));
        }
    }
}

#[test]
fn matches_system_gzip() {
    let mut rng = Rng(0x6A1F);
    for i in 0..30 {
        let n = size(&mut rng);
        let data = generate(&mut rng, n);
        for level in ["-1", "-9"] {
            let gz = system_gzip(&["-c", "-n", level], &data);
            check_ok(&gz, &data, &format!("gzip {level}, case {i}, {n} bytes"));
        }
    }
    // From a file, gzip stores its name (FNAME) and time.
    let data = generate(&mut rng, 50_000);
    let path = std::env::temp_dir().join(format!("eboot-inflate-{}.bin", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let gz = system_gzip(&["-c", "-9", path.to_str().unwrap()], &[]);
    std::fs::remove_file(&path).unwrap();
    assert_ne!(gz[3] & 8, 0, "gzip did not store the file name");
    check_ok(&gz, &data, "gzip -9 file");
}

#[test]
fn header_fields() {
    let data = b"header fields: FEXTRA, FNAME, FCOMMENT, FHCRC, FTEXT".repeat(50);
    type Builder = fn() -> GzBuilder;
    let builders: [(&str, Builder); 4] = [
        ("extra", || GzBuilder::new().extra(vec![0x41, 0x70, 3, 0, 1, 2, 3])),
        ("name", || GzBuilder::new().filename("firmware.bin")),
        ("comment", || GzBuilder::new().comment("made by the test")),
        ("all", || {
            GzBuilder::new().extra(vec![7; 300]).filename("x.bin").comment("c").mtime(12345)
        }),
    ];
    for (what, b) in builders {
        let mut e = b().write(Vec::new(), Compression::default());
        e.write_all(&data).unwrap();
        check_ok(&e.finish().unwrap(), &data, what);
    }

    // Hand-built: every flag, with the header CRC; FTEXT is only a hint.
    let deflate = miniz_oxide::deflate::compress_to_vec(&data, 6);
    let mut h = vec![0x1F, 0x8B, 8, 1 | 2 | 4 | 8 | 16, 1, 2, 3, 4, 0, 255];
    h.extend_from_slice(&[4, 0, b'a', b'b', 2, 0]);
    h.extend_from_slice(b"name\0comment\0");
    let hcrc = crc32(&h) as u16;
    let mut gz = h.clone();
    gz.extend_from_slice(&hcrc.to_le_bytes());
    gz.extend_from_slice(&wrap(&deflate, &data)[10..]);
    check_ok(&gz, &data, "all flags, good FHCRC");

    // FHCRC mismatch, in either byte.
    for i in [h.len(), h.len() + 1] {
        let mut bad = gz.clone();
        bad[i] ^= 0x10;
        assert_eq!(run(&bad).res, Err(Error::Header), "FHCRC byte {i}");
    }
    // Empty FEXTRA, empty name.
    let mut gz = vec![0x1F, 0x8B, 8, 4 | 8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    gz.extend_from_slice(&wrap(&deflate, &data)[10..]);
    check_ok(&gz, &data, "empty extra and name");
}

#[test]
fn bad_headers() {
    let data = b"payload".to_vec();
    let good = flate2_gz(&data, 6);
    let mut cases: Vec<(usize, u8)> = vec![(0, 0x1E), (1, 0x8C), (2, 7), (2, 0), (3, 0x20), (3, 0x40), (3, 0x80)];
    cases.push((0, 0x8B));
    for (i, v) in cases {
        let mut gz = good.clone();
        gz[i] = v;
        let r = run(&gz);
        assert_eq!(r.res, Err(Error::Header), "byte {i} = {v:#x}");
        assert!(r.out.is_empty());
    }
    assert_eq!(run(&[]).res, Err(Error::Truncated));
}

// ---------------------------------------------------------------- hand-built deflate


/// Canonical codes for `lengths` (RFC 1951 3.2.2), as (code, length).
fn canonical(lengths: &[u8]) -> Vec<Code> {
    let mut count = [0u32; 16];
    for &l in lengths {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u32; 16];
    for len in 1..16 {
        next[len] = (next[len - 1] + count[len - 1]) << 1;
    }
    lengths
        .iter()
        .map(|&l| {
            let c = next[l as usize];
            next[l as usize] += 1;
            (c, l as u32)
        })
        .collect()
}

fn fixed_lit() -> Vec<Code> {
    let l: Vec<u8> = (0..288).map(|i| match i { 0..=143 => 8, 144..=255 => 9, 256..=279 => 7, _ => 8 }).collect();
    canonical(&l)
}

const ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// A dynamic block header: HLIT/HDIST/HCLEN from the arguments, the code-length code
/// `cl` (19 lengths by symbol), then `syms`: (code-length symbol, extra value, extra bits).
fn dyn_header(w: &mut Bits, last: bool, nlen: u32, ndist: u32, cl: &[u8; 19], syms: &[(usize, u32, u32)]) {
    w.put(last as u32, 1).put(2, 2).put(nlen - 257, 5).put(ndist - 1, 5).put(15, 4);
    for o in ORDER {
        w.put(cl[o] as u32, 3);
    }
    let codes = canonical(cl);
    for &(s, v, n) in syms {
        w.code(codes[s]).put(v, n);
    }
}

/// The code-length code used by `dyn_block`: a complete code for all 19 symbols,
/// 0..=12 in 4 bits and 13..=18 in 5.
fn cl_code() -> [u8; 19] {
    let mut cl = [5u8; 19];
    cl[..13].fill(4);
    cl
}

/// Writes a dynamic block header sending `lit` and `dist` lengths plainly (one code-length
/// symbol each); returns the literal/length and distance codes.
fn dyn_block(w: &mut Bits, lit: &[u8], dist: &[u8]) -> (Vec<Code>, Vec<Code>) {
    let cl = cl_code();
    assert_eq!(cl.iter().map(|&l| 1u32 << (15 - l)).sum::<u32>(), 1 << 15);
    let syms: Vec<_> = lit.iter().chain(dist).map(|&l| (l as usize, 0, 0)).collect();
    dyn_header(w, true, lit.len() as u32, dist.len() as u32, &cl, &syms);
    (canonical(lit), canonical(dist))
}

fn lengths(n: usize, set: &[(usize, u8)]) -> Vec<u8> {
    let mut l = vec![0u8; n];
    for &(s, v) in set {
        l[s] = v;
    }
    l
}

/// "abc" then (length 3, distance 1) then end, with these distance code lengths.
fn abc_block(dist: &[u8], dist_sym: usize) -> Vec<u8> {
    let lit = lengths(258, &[(97, 2), (98, 2), (99, 2), (256, 3), (257, 3)]);
    let mut w = Bits::default();
    let (lc, dc) = dyn_block(&mut w, &lit, dist);
    for s in [97, 98, 99, 257] {
        w.code(lc[s]);
    }
    w.code(dc[dist_sym]);
    w.code(lc[256]);
    w.done()
}

fn expect_data_error(deflate: &[u8], what: &str) {
    let gz = wrap(deflate, b"");
    let r = run(&gz);
    assert_eq!(r.res, Err(Error::Data), "{what}");
    assert!(r.read <= gz.len() - 8, "{what}: read into the trailer ({} of {})", r.read, gz.len());
}

#[test]
fn dynamic_tables() {
    let abc = b"abcccc";
    // A lone 1-bit distance code is allowed (incomplete), as in zlib.
    let gz = wrap(&abc_block(&lengths(1, &[(0, 1)]), 0), abc);
    check_ok(&gz, abc, "single distance code");
    // Its unused code is an error when decoded.
    let mut w = Bits::default();
    let lit = lengths(258, &[(97, 2), (98, 2), (99, 2), (256, 3), (257, 3)]);
    let (lc, _) = dyn_block(&mut w, &lit, &lengths(1, &[(0, 1)]));
    for s in [97, 98, 99, 257] {
        w.code(lc[s]);
    }
    w.code((1, 1)).put(0, 16);
    expect_data_error(&w.done(), "unused code of a single-code distance table");

    // Complete two-code distance table, distance 2.
    let gz = wrap(&abc_block(&lengths(2, &[(0, 1), (1, 1)]), 1), b"abcbcb");
    check_ok(&gz, b"abcbcb", "two distance codes");
    // Incomplete with two codes, or one code longer than 1 bit: rejected.
    expect_data_error(&abc_block(&lengths(3, &[(0, 2), (1, 2)]), 0), "incomplete distance code");
    expect_data_error(&abc_block(&lengths(2, &[(1, 2)]), 1), "lone 2-bit distance code");
    // Over-subscribed distance code.
    expect_data_error(&abc_block(&lengths(3, &[(0, 1), (1, 1), (2, 1)]), 0), "oversubscribed distances");

    // No distance codes at all is fine while no match needs one.
    let mut w = Bits::default();
    let lit = lengths(257, &[(97, 1), (256, 1)]);
    let (lc, _) = dyn_block(&mut w, &lit, &[0]);
    w.code(lc[97]).code(lc[97]).code(lc[256]);
    check_ok(&wrap(&w.done(), b"aa"), b"aa", "no distance codes");
    // ... and a match with no distance code is an error.
    let mut w = Bits::default();
    let lit = lengths(258, &[(97, 1), (256, 2), (257, 2)]);
    let (lc, _) = dyn_block(&mut w, &lit, &[0]);
    w.code(lc[97]).code(lc[257]).put(0, 15);
    expect_data_error(&w.done(), "match without distance codes");

    // Literal/length code with only end-of-block (a lone 1-bit code): empty output.
    let mut w = Bits::default();
    let (lc, _) = dyn_block(&mut w, &lengths(257, &[(256, 1)]), &[0]);
    w.code(lc[256]);
    check_ok(&wrap(&w.done(), b""), b"", "end-of-block only");

    // Literal/length: over-subscribed, incomplete, no end-of-block.
    for (lit, what) in [
        (lengths(257, &[(97, 1), (98, 1), (256, 1)]), "oversubscribed literals"),
        (lengths(257, &[(97, 2), (256, 2)]), "incomplete literals"),
        (lengths(257, &[(97, 1), (98, 1)]), "no end-of-block"),
        (lengths(257, &[(97, 15), (256, 15)]), "incomplete 15-bit literals"),
    ] {
        let mut w = Bits::default();
        dyn_block(&mut w, &lit, &[1, 1]);
        expect_data_error(&w.done(), what);
    }

    // Longest codes: a complete code with lengths 1..=15 and two of 15.
    let mut lens = vec![0u8; 270];
    for (i, l) in (1..=15).enumerate() {
        lens[i + 60] = l;
    }
    lens[256] = 15;
    let mut w = Bits::default();
    let (lc, _) = dyn_block(&mut w, &lens, &[1, 1]);
    let want: Vec<u8> = (60..75).collect();
    for &s in &want {
        w.code(lc[s as usize]);
    }
    w.code(lc[256]);
    check_ok(&wrap(&w.done(), &want), &want, "15-bit codes");
}

#[test]
fn code_length_codes() {
    let full = cl_code();
    // Over-subscribed, incomplete, and a lone 1-bit code-length code (zlib rejects it).
    let mut over = full;
    over[18] = 4;
    let mut incomplete = [0u8; 19];
    incomplete[1] = 2;
    incomplete[8] = 2;
    let mut lone = [0u8; 19];
    lone[0] = 1;
    for (cl, what) in [(over, "oversubscribed"), (incomplete, "incomplete"), (lone, "lone"), ([0; 19], "empty")] {
        let mut w = Bits::default();
        dyn_header(&mut w, true, 257, 1, &cl, &[]);
        w.put(0, 32);
        expect_data_error(&w.done(), &format!("{what} code-length code"));
    }

    // Repeats. 18 with extra 127 is 138 zeros, with 106 is 117: 255 zeros in all.
    let zeros = [(18, 127, 7), (18, 106, 7)];
    let with_zeros = |rest: &[(usize, u32, u32)]| [&zeros[..], rest].concat();
    // Exact fill, a 16 spanning the literal/distance boundary: 255 = 1, then 256 (end of
    // block) and both distance codes = 1 by repeating it.
    let mut w = Bits::default();
    dyn_header(&mut w, true, 257, 2, &full, &with_zeros(&[(1, 0, 0), (16, 0, 2)]));
    w.code((0, 1)).code((1, 1));
    check_ok(&wrap(&w.done(), &[255]), &[255], "repeat to the exact end");
    // The same with one distance code: the 16 runs past the end.
    let mut w = Bits::default();
    dyn_header(&mut w, true, 257, 1, &full, &with_zeros(&[(1, 0, 0), (16, 0, 2)]));
    w.put(0, 16);
    expect_data_error(&w.done(), "16 past the end");
    // 17 past the end.
    let mut w = Bits::default();
    dyn_header(&mut w, true, 257, 1, &full, &with_zeros(&[(1, 0, 0), (1, 0, 0), (17, 0, 3)]));
    w.put(0, 16);
    expect_data_error(&w.done(), "17 past the end");
    // 18 past the end.
    let mut w = Bits::default();
    dyn_header(&mut w, true, 257, 1, &full, &[(18, 127, 7), (18, 127, 7)]);
    w.put(0, 16);
    expect_data_error(&w.done(), "18 past the end");
    // 16 with nothing before it.
    let mut w = Bits::default();
    dyn_header(&mut w, true, 257, 1, &full, &[(16, 0, 2)]);
    w.put(0, 16);
    expect_data_error(&w.done(), "repeat before any length");

    // HLIT 286 / HDIST 30 are the limits; 287, 288, 31, 32 are errors.
    for (nlen, ndist, ok) in [(286, 30, true), (287, 1, false), (288, 1, false), (257, 31, false), (257, 32, false)] {
        let mut lit = vec![0u8; nlen as usize];
        lit[97] = 1;
        lit[256] = 1;
        let mut dist = vec![0u8; ndist as usize];
        dist[0] = 1;
        if ndist > 1 {
            dist[1] = 1;
        }
        let mut w = Bits::default();
        let (lc, _) = dyn_block(&mut w, &lit, &dist);
        w.code(lc[97]).code(lc[256]);
        let d = w.done();
        if ok {
            check_ok(&wrap(&d, b"a"), b"a", "HLIT 286, HDIST 30");
        } else {
            expect_data_error(&d, &format!("HLIT {nlen}, HDIST {ndist}"));
        }
    }
}

/// One fixed block: literals, then (length code, extra, extra bits, distance code, extra,
/// extra bits), then end of block.
fn fixed_block(lits: &[u8], m: Option<(usize, u32, u32, u32, u32, u32)>) -> Vec<u8> {
    let lc = fixed_lit();
    let mut w = Bits::default();
    w.put(1, 1).put(1, 2);
    for &b in lits {
        w.code(lc[b as usize]);
    }
    if let Some((l, lv, ln, d, dv, dn)) = m {
        w.code(lc[l]).put(lv, ln).code((d, 5)).put(dv, dn);
    }
    w.code(lc[256]);
    w.done()
}

#[test]
fn fixed_blocks_and_distances() {
    check_ok(&wrap(&fixed_block(b"ab", Some((257, 0, 0, 0, 0, 0))), b"abbbb"), b"abbbb", "dist 1");
    check_ok(&wrap(&fixed_block(b"ab", Some((257, 0, 0, 1, 0, 0))), b"ababa"), b"ababa", "dist 2");
    // Length 258 two ways: symbol 285, and symbol 284 with all extra bits set.
    let want = [b'x'; 259];
    check_ok(&wrap(&fixed_block(b"x", Some((285, 0, 0, 0, 0, 0))), &want), &want, "285");
    check_ok(&wrap(&fixed_block(b"x", Some((284, 31, 5, 0, 0, 0))), &want), &want, "284+31");
    // Too far back.
    expect_data_error(&fixed_block(b"ab", Some((257, 0, 0, 2, 0, 0))), "distance 3 after 2 bytes");
    expect_data_error(&fixed_block(b"", Some((257, 0, 0, 0, 0, 0))), "distance 1 at the start");
    // Distance codes 30 and 31, literal/length codes 286 and 287.
    for d in [30, 31] {
        expect_data_error(&fixed_block(b"abcd", Some((257, 0, 0, d, 0, 0))), "distance code 30/31");
    }
    for l in [286, 287] {
        expect_data_error(&fixed_block(b"abcd", Some((l, 0, 0, 0, 0, 0))), "length code 286/287");
    }

    // The whole window: 32768 bytes stored, then a match 32768 back (code 29, extra 8191).
    let mut rng = Rng(32768);
    let data: Vec<u8> = (0..32768).map(|_| rng.byte()).collect();
    for (have, ok) in [(32768, true), (32767, false)] {
        let mut w = Bits::default();
        w.put(0, 1).put(0, 2).align();
        w.put(have, 16).put(have ^ 0xFFFF, 16);
        for &b in &data[..have as usize] {
            w.put(b as u32, 8);
        }
        let lc = fixed_lit();
        w.put(1, 1).put(1, 2).code(lc[285]).code((29, 5)).put(8191, 13).code(lc[256]);
        let d = w.done();
        if ok {
            let mut want = data.clone();
            want.extend_from_slice(&data[..258]);
            check_ok(&wrap(&d, &want), &want, "distance 32768");
        } else {
            expect_data_error(&d, "distance 32768 after 32767 bytes");
        }
    }
}

#[test]
fn stored_and_block_types() {
    // Stored blocks of 0 and 65535 bytes, then a final empty fixed block.
    let mut rng = Rng(3);
    let data: Vec<u8> = (0..65535).map(|_| rng.byte()).collect();
    let mut w = Bits::default();
    w.put(0, 3).align().put(0, 16).put(0xFFFF, 16);
    w.put(0, 3).align().put(0xFFFF, 16).put(0, 16);
    for &b in &data {
        w.put(b as u32, 8);
    }
    w.put(1, 1).put(1, 2).code(fixed_lit()[256]);
    check_ok(&wrap(&w.done(), &data), &data, "stored blocks");

    // LEN/NLEN mismatch.
    for (len, nlen) in [(5, 0xFFFA ^ 1), (0, 0), (0xFFFF, 0xFFFF)] {
        let mut w = Bits::default();
        w.put(1, 3).align().put(len, 16).put(nlen, 16).put(0, 32);
        expect_data_error(&w.done(), &format!("stored {len:#x}/{nlen:#x}"));
    }
    // Block type 3, first or after a good block.
    let mut w = Bits::default();
    w.put(1, 1).put(3, 2).put(0, 16);
    expect_data_error(&w.done(), "type 3");
    let mut w = Bits::default();
    w.put(0, 1).put(1, 2).code(fixed_lit()[256]).put(1, 1).put(3, 2).put(0, 16);
    expect_data_error(&w.done(), "type 3 after a block");
}

#[test]
fn trailer_and_sink() {
    let mut rng = Rng(11);
    let data = generate(&mut rng, 20_000);
    let gz = flate2_gz(&data, 6);
    let n = gz.len();
    for i in n - 8..n {
        let mut bad = gz.clone();
        bad[i] ^= 1;
        let r = run(&bad);
        assert_eq!(r.res, Err(Error::Trailer), "trailer byte {}", i + 8 - n);
        // Everything was still inflated and handed over before the trailer check.
        assert_eq!(r.out, data);
    }

    // The sink stops it at once.
    for stop in [1, 2, 4] {
        let r = run_with(&gz, &mut new_state(), stop);
        assert_eq!(r.res, Err(Error::Sink));
        assert_eq!(r.chunks.len(), stop);
        assert_eq!(r.out, data[..stop * CHUNK]);
    }
    // Stopping at the last (partial) chunk still fails.
    let r = run_with(&gz, &mut new_state(), data.len().div_ceil(CHUNK));
    assert_eq!(r.res, Err(Error::Sink));
    assert_eq!(r.out, data);
}

// ---------------------------------------------------------------- damaged streams

fn samples() -> Vec<Vec<u8>> {
    let mut rng = Rng(0xBAD);
    let mut v = Vec::new();
    for (i, n) in [0, 10, 300, 3000, 5000, 9000, 20_000].into_iter().enumerate() {
        let data = generate(&mut rng, n);
        v.push(flate2_gz(&data, [0, 1, 6, 9][i % 4]));
        let mut e = GzBuilder::new().filename("f").comment("c").extra(vec![1, 2]).write(Vec::new(), Compression::new(9));
        e.write_all(&data).unwrap();
        v.push(e.finish().unwrap());
    }
    let abc = b"abcccc";
    v.push(wrap(&abc_block(&lengths(1, &[(0, 1)]), 0), abc));
    v
}

#[test]
fn every_truncation() {
    for gz in samples().iter().take(10) {
        for cut in 0..gz.len() {
            let r = run(&gz[..cut]);
            assert_eq!(r.res, Err(Error::Truncated), "cut at {cut} of {}", gz.len());
            assert_eq!(r.read, cut);
        }
    }
}

#[test]
fn bit_flips() {
    let mut rng = Rng(0xF11B);
    let mut st = new_state();
    let (mut oks, mut errs) = (0, 0);
    for gz in samples() {
        for _ in 0..400 {
            let mut bad = gz.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bad.len());
                bad[i] ^= 1 << rng.below(8);
            }
            // Occasionally also chop the end.
            if rng.below(8) == 0 {
                bad.truncate(rng.below(bad.len() + 1));
            }
            let r = run_with(&bad, &mut st, usize::MAX);
            match r.res {
                Ok(g) => {
                    oks += 1;
                    // Whatever was accepted is what its own trailer describes...
                    let end = g.in_len as usize;
                    assert_eq!(r.read, end);
                    assert_eq!(g.out_len as usize, r.out.len());
                    assert_eq!(g.crc, crc32(&r.out));
                    assert_eq!(bad[end - 8..end - 4], g.crc.to_le_bytes());
                    assert_eq!(bad[end - 4..end], g.out_len.to_le_bytes());
                    // ... and what miniz_oxide makes of it.
                    assert!(miniz(&bad) == r.out, "accepted output differs from miniz_oxide");
                }
                Err(_) => errs += 1,
            }
        }
    }
    eprintln!("bit flips: {oks} accepted, {errs} rejected");
    assert!(errs > oks, "damage mostly went unnoticed: {oks} ok, {errs} errors");
}

#[test]
fn random_garbage_after_a_header() {
    let mut rng = Rng(0x6A2B);
    let mut st = new_state();
    for i in 0..3000 {
        let mut gz = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3];
        // Bias the block type bits towards dynamic blocks, the most intricate header.
        let first = rng.byte();
        gz.push(if i % 2 == 0 { first & !6 | 4 } else { first });
        gz.extend((0..rng.below(2000)).map(|_| rng.byte()));
        let r = run_with(&gz, &mut st, usize::MAX);
        if let Ok(g) = r.res {
            assert_eq!(g.crc, crc32(&r.out));
            assert!(miniz(&gz) == r.out);
        }
    }
}
