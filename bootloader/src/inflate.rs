//! Streaming gzip inflater for the 4 KB bootloader.
//!
//! Why its own: `miniz_oxide`'s inflater is about 8 KB of lx106 code at opt-level z, twice the
//! whole bootloader budget. This one trades speed for size, in the manner of zlib's "puff":
//!
//! - canonical Huffman tables are just a count per code length plus the symbols sorted by
//!   code; one builder makes every table (code-length, literal/length, distance, and the fixed
//!   ones, built from their code lengths rather than stored), and one routine decodes all of
//!   them bit by bit, without lookup tables;
//! - length and distance bases are computed from the symbol, not tabulated;
//! - the caller's 32 KiB window is a ring; every 4096 output bytes the sector just completed is
//!   handed to the sink (4096 divides 32768, so a chunk is always one contiguous slice);
//! - errors are sticky (as puff's longjmp): the first one is recorded, after it input reads
//!   as zeros without touching the source, nothing more reaches the sink, and the loops that
//!   are not bounded by a count stop. Returning `Result` from every bit read instead costs
//!   hundreds of bytes on lx106, where it goes through memory;
//! - the byte source and the sink are used through `dyn`, so the decoder exists once in the
//!   image however many (source, sink) pairs call [`gunzip`];
//! - every array index is masked or checked, so there is no panic path.
//!
//! Input is pulled one byte at a time and only when a bit is needed, so nothing past the
//! trailer is read and [`Gzip::in_len`] is exact.
//!
//! API contract (stable; the copy engine codes against it):
//! - `WINDOW` = 32768; the caller supplies the window buffer.
//! - `Source::next()` yields the next input byte, `None` at end of input or on a read error.
//! - `gunzip(src, window, sink)` inflates one gzip member, checks CRC-32 and ISIZE, and hands
//!   the output to `sink` in chunks that end on 4096-byte boundaries of the output stream
//!   (every chunk but the last is exactly 4096 bytes). `sink` returns false to abort.

pub const WINDOW: usize = 32768;
/// Output is delivered in chunks of this size (one flash sector).
pub const CHUNK: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not a gzip member, unknown method, reserved flags, bad header CRC.
    Header,
    /// Bad block type, bad Huffman table, bad code, distance too far back, bad stored length.
    Data,
    /// Input ended (or could not be read) before the member did.
    Truncated,
    /// CRC-32 or ISIZE in the trailer does not match the output.
    Trailer,
    /// The sink asked to stop.
    Sink,
}

pub trait Source {
    fn next(&mut self) -> Option<u8>;
}

/// What a complete member told us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gzip {
    /// Output bytes (equals the trailer's ISIZE).
    pub out_len: u32,
    /// CRC-32 (ISO-HDLC, as in the trailer) of the output.
    pub crc: u32,
    /// Input bytes consumed, header and trailer included.
    pub in_len: u32,
}

const MASK: u32 = WINDOW as u32 - 1;
/// Offset within a chunk.
const CMASK: u32 = CHUNK as u32 - 1;
const _: () = assert!(WINDOW.is_power_of_two() && CHUNK.is_power_of_two() && CHUNK <= WINDOW);

/// Code lengths kept: 288 literal/length + 32 distance (fixed code; a dynamic one is smaller).
const NLENGTHS: usize = 320;

/// Order in which a dynamic block sends the code-length code's lengths (RFC 1951 3.2.7).
const ORDER: [u8; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

// The CRC-32 is `crate::crc`'s bitwise one (see there why not the `crc` crate; a 16-entry
// nibble table would halve its 8 steps a byte for 64 more bytes).
use crate::crc::gzip_byte as crc_byte;

/// Inflates one gzip member from `src`, using `window` as the 32 KiB history.
pub fn gunzip<S: Source, K: FnMut(&[u8]) -> bool>(
    src: &mut S,
    window: &mut [u8; WINDOW],
    mut sink: K,
) -> Result<Gzip, Error> {
    inflate(src, window, &mut sink)
}

/// The one, non-generic, instance of the decoder.
fn inflate(
    src: &mut dyn Source,
    window: &mut [u8; WINDOW],
    sink: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<Gzip, Error> {
    let mut z = Inflater {
        bitbuf: 0,
        bitcnt: 0,
        in_len: 0,
        out: 0,
        crc: !0,
        in_header: false,
        err: None,
        src,
        sink,
        window,
        huff: [Huff { count: [0; 16], symbol: [0; NLENGTHS] }, Huff { count: [0; 16], symbol: [0; NLENGTHS] }],
        lengths: [0; NLENGTHS],
    };
    z.run()
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huff {
    count: [u16; 16],
    symbol: [u16; NLENGTHS],
}

/// Which table of `Inflater::huff`: literal/length (also the code-length code), distance.
const LENS: usize = 0;
const DISTS: usize = 1;

/// `repr(C)`: the scalars first, so that on lx106 they sit at small offsets that loads and
/// stores encode directly, with the big tables after them.
#[repr(C)]
struct Inflater<'a> {
    /// The first error; once set, input reads as zeros and the sink is no longer called.
    err: Option<Error>,
    /// Pending input bits, next bit in bit 0; fewer than 8 between calls to `bits`.
    bitbuf: u32,
    bitcnt: u32,
    in_len: u32,
    /// Output bytes so far; also the ring position (mod `WINDOW`).
    out: u32,
    /// CRC-32 (inverted) of the output; of the header bytes before it.
    crc: u32,
    in_header: bool,
    src: &'a mut dyn Source,
    sink: &'a mut dyn FnMut(&[u8]) -> bool,
    window: &'a mut [u8; WINDOW],
    huff: [Huff; 2],
    /// Code lengths: literal/length then distance (first, those of the code-length code).
    lengths: [u8; NLENGTHS],
}

impl Inflater<'_> {
    fn fail(&mut self, e: Error) {
        if self.err.is_none() {
            self.err = Some(e);
        }
    }

    /// The next input byte; 0 once anything failed (the source is not asked again).
    /// Not inlined: `bits` then keeps only its own two fields live across the call.
    #[inline(never)]
    fn byte(&mut self) -> u32 {
        if self.err.is_none() {
            if let Some(b) = self.src.next() {
                self.in_len = self.in_len.wrapping_add(1);
                if self.in_header {
                    self.crc = crc_byte(self.crc, b);
                }
                return b as u32;
            }
            self.err = Some(Error::Truncated);
        }
        0
    }

    /// The next `n` (0..=16) bits, LSB first. Reads input only as far as it must.
    fn bits(&mut self, n: u32) -> u32 {
        while self.bitcnt < n {
            self.bitbuf |= self.byte() << self.bitcnt;
            self.bitcnt += 8;
        }
        let v = self.bitbuf & ((1 << n) - 1);
        self.bitbuf >>= n;
        self.bitcnt -= n;
        v
    }

    /// Drops the bits left in the current byte (stored blocks and the trailer start on one).
    fn align(&mut self) {
        self.bitbuf = 0;
        self.bitcnt = 0;
    }

    /// A 32-bit little-endian field.
    fn word(&mut self) -> u32 {
        self.bits(16) | self.bits(16) << 16
    }

    fn put(&mut self, b: u8) {
        self.crc = crc_byte(self.crc, b);
        self.window[(self.out & MASK) as usize] = b;
        self.out = self.out.wrapping_add(1);
        if self.out & CMASK == 0 {
            self.flush();
        }
    }

    /// Hands over the (possibly partial) sector holding the last byte written.
    fn flush(&mut self) {
        if self.err.is_some() {
            return;
        }
        let last = self.out.wrapping_sub(1);
        let start = (last & MASK & !CMASK) as usize;
        let end = start + (last & CMASK) as usize + 1;
        if let Some(chunk) = self.window.get(start..end) {
            if !(self.sink)(chunk) {
                self.err = Some(Error::Sink);
            }
        }
    }

    /// Not inlined into `inflate`: the frame holding the tables is big, and on lx106 every
    /// register spill at a large frame offset costs an extra instruction.
    #[inline(never)]
    fn run(&mut self) -> Result<Gzip, Error> {
        self.header();
        loop {
            // BFINAL, BTYPE.
            let h = self.bits(3);
            match h >> 1 {
                0 => self.stored(),
                1 => {
                    for (i, l) in self.lengths.iter_mut().enumerate() {
                        *l = match i {
                            0..=143 => 8,
                            144..=255 => 9,
                            256..=279 => 7,
                            280..=287 => 8,
                            // 32 distance codes, so the table is complete; 30 and 31 are
                            // rejected when decoded.
                            _ => 5,
                        };
                    }
                    self.codes(288, 32);
                }
                2 => {
                    let (nlen, ndist) = self.dynamic();
                    self.codes(nlen, ndist);
                }
                _ => self.fail(Error::Data),
            }
            if h & 1 != 0 || self.err.is_some() {
                break;
            }
        }
        if self.out & CMASK != 0 {
            self.flush();
        }
        let crc = !self.crc;
        self.align();
        let want_crc = self.word();
        let want_len = self.word();
        if let Some(e) = self.err {
            return Err(e);
        }
        if want_crc != crc || want_len != self.out {
            return Err(Error::Trailer);
        }
        Ok(Gzip { out_len: self.out, crc, in_len: self.in_len })
    }

    /// Checks and skips the gzip header (RFC 1952 2.3), verifying FHCRC when present.
    /// `crc` meanwhile accumulates the header bytes (see `byte`).
    fn header(&mut self) {
        self.in_header = true;
        let id = self.word();
        // Magic, method 8 (deflate), no reserved flag.
        if id & 0xE0FF_FFFF != 0x0008_8B1F {
            self.fail(Error::Header);
        }
        let flags = id >> 24;
        // MTIME, XFL, OS.
        for _ in 0..3 {
            self.bits(16);
        }
        // FEXTRA: a little-endian length and that many bytes.
        if flags & 4 != 0 {
            for _ in 0..self.bits(16) {
                self.bits(8);
            }
        }
        // FNAME, FCOMMENT: zero-terminated (input reads as zeros after an error).
        for f in [8, 16] {
            if flags & f != 0 {
                while self.bits(8) != 0 {}
            }
        }
        self.in_header = false;
        // FHCRC: low half of the CRC-32 of the header so far.
        if flags & 2 != 0 && self.bits(16) != !self.crc & 0xFFFF {
            self.fail(Error::Header);
        }
        self.crc = !0;
    }

    fn stored(&mut self) {
        self.align();
        // LEN, NLEN.
        let w = self.word();
        let len = w & 0xFFFF;
        if w >> 16 != len ^ 0xFFFF {
            self.fail(Error::Data);
            return;
        }
        for _ in 0..len {
            let b = self.bits(8);
            self.put(b as u8);
        }
    }

    /// Reads a dynamic block's code lengths into `lengths`; returns the literal/length and
    /// distance code sizes.
    fn dynamic(&mut self) -> (usize, usize) {
        // HLIT, HDIST, HCLEN.
        let h = self.bits(14) as usize;
        let nlen = (h & 31) + 257;
        let ndist = (h >> 5 & 31) + 1;
        let ncode = (h >> 10) + 4;
        if nlen > 286 || ndist > 30 {
            self.fail(Error::Data);
        }
        self.lengths[..19].fill(0);
        for &o in ORDER.iter().take(ncode) {
            self.lengths[o as usize] = self.bits(3) as u8;
        }
        self.build(LENS, 0, 19, true);

        let n = nlen + ndist;
        let mut i = 0;
        while i < n {
            let sym = self.decode(LENS);
            // (length, repeat count base, extra bits)
            let (v, base, extra) = match sym {
                0..=15 => (sym as u8, 1, 0),
                // Repeat the previous length (none before the first: `get` fails).
                16 => match self.lengths.get(i.wrapping_sub(1)) {
                    Some(&v) => (v, 3, 2),
                    None => break,
                },
                17 => (0, 3, 3),
                _ => (0, 11, 7),
            };
            let rep = base + self.bits(extra);
            for _ in 0..rep {
                if let Some(l) = self.lengths.get_mut(i) {
                    *l = v;
                }
                i += 1;
            }
        }
        // A repeat ran past the end or had nothing to repeat, or there is no end-of-block.
        if i != n || self.lengths[256] == 0 {
            self.fail(Error::Data);
        }
        (nlen, ndist)
    }

    /// Builds table `t` from `lengths[start..start + n]` (0 = unused symbol). Over-subscribed
    /// codes are rejected; incomplete ones too, except (as zlib) a lone 1-bit code or no code
    /// at all, when not `strict`. The unused codes of an incomplete table fail in `decode`.
    fn build(&mut self, t: usize, start: usize, n: usize, strict: bool) {
        let h = &mut self.huff[t & 1];
        let Some(lengths) = self.lengths.get(start..start + n) else {
            self.err = Some(Error::Data);
            return;
        };
        // One pass over the lengths per code length puts the symbols in code order with
        // no offset table: 15 x 320 steps at most, little next to a block's output.
        let mut k = 0;
        let mut left: i32 = 1;
        for len in 1..16 {
            let mut c = 0;
            for (sym, &l) in lengths.iter().enumerate() {
                if l as usize == len {
                    if let Some(s) = h.symbol.get_mut(k + c) {
                        *s = sym as u16;
                    }
                    c += 1;
                }
            }
            h.count[len] = c as u16;
            k += c;
            // Once negative, it stays so: an over-subscribed prefix cannot be undone.
            left = (left << 1) - c as i32;
        }
        // Incomplete is allowed for a lone 1-bit code (all `k` codes are 1-bit) or none.
        if left < 0 || left > 0 && (strict || k != h.count[1] as usize) {
            self.fail(Error::Data);
        }
    }

    /// Reads one symbol of table `t`, a bit at a time (codes arrive MSB first).
    fn decode(&mut self, t: usize) -> u32 {
        // `code` is the bits so far; `first` the first code of this length; `index` the
        // number of symbols with shorter codes.
        let (mut code, mut first, mut index) = (0u32, 0u32, 0u32);
        for len in 1..16 {
            code |= self.bits(1);
            let h = &self.huff[t & 1];
            let count = h.count[len] as u32;
            if code < first + count {
                if let Some(&s) = h.symbol.get((index + code - first) as usize) {
                    return s as u32;
                }
                break;
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        self.fail(Error::Data);
        // Not a valid symbol of any table, so the caller stops (`codes`) or ends
        // after a bounded amount of work (`dynamic`).
        u32::MAX >> 1
    }

    /// Length (`k` = 2, `b0` = 3, symbols 257..284 less 257) or distance (`k` = 1, `b0` = 1)
    /// from its symbol: the first 2 << k symbols have no extra bits, then each group of
    /// 1 << k symbols has one more extra bit than the last and bases doubling.
    fn base(&mut self, s: u32, k: u32, b0: u32) -> u32 {
        if s < 2 << k {
            return s + b0;
        }
        let extra = (s >> k) - 1;
        (((1 << k) | (s & ((1 << k) - 1))) << extra) + b0 + self.bits(extra)
    }

    /// Builds the tables from `lengths` and decodes a compressed block's symbols until
    /// end-of-block.
    fn codes(&mut self, nlen: usize, ndist: usize) {
        self.build(LENS, 0, nlen, false);
        self.build(DISTS, nlen, ndist, false);
        while self.err.is_none() {
            let sym = self.decode(LENS);
            if sym < 256 {
                self.put(sym as u8);
                continue;
            }
            let len = match sym.wrapping_sub(257) {
                // End of block: wraps round.
                u32::MAX => return,
                28 => 258,
                s @ 0..=27 => self.base(s, 2, 3),
                // 286, 287, or `decode` failed.
                _ => break,
            };
            let d = self.decode(DISTS);
            if d >= 30 {
                break;
            }
            let dist = self.base(d, 1, 1);
            if dist > self.out {
                break;
            }
            for _ in 0..len {
                let b = self.window[(self.out.wrapping_sub(dist) & MASK) as usize];
                self.put(b);
            }
        }
        self.fail(Error::Data);
    }
}
