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
//! - the tables and the 32 KiB window live in caller-supplied RAM ([`State`]), not on the
//!   stack: a 1.6 KB frame puts most of it beyond the 1020 bytes that lx106 loads and
//!   stores reach from the stack pointer, and building the struct there zeroes and copies
//!   it. Only the scalars stay in the (small) stack frame;
//! - the window is a ring; every 4096 output bytes the sector just completed is
//!   handed to the sink (4096 divides 32768, so a chunk is always one contiguous slice);
//! - errors are sticky (as puff's longjmp): the first one is recorded, after it input reads
//!   as zeros without touching the source, nothing more reaches the sink, and the loops that
//!   are not bounded by a count stop. Returning `Result` from every bit read instead costs
//!   hundreds of bytes on lx106, where it goes through memory;
//! - the byte source and the sink are generic, not `dyn`: the device has one (source, sink)
//!   pair, whose `next` and closure then inline into the decoder (about 140 bytes less on
//!   lx106). Each further pair would add a copy of the decoder;
//! - the output CRC is taken a chunk at a time as it goes to the sink; the header's (FHCRC)
//!   by running a CRC over every input byte, cheaper in code than one switched on for the
//!   header only;
//! - every array index is masked or checked, so there is no panic path.
//!
//! Input is pulled one byte at a time and only when a bit is needed, so nothing past the
//! trailer is read and [`Gzip::in_len`] is exact.
//!
//! API contract (stable; the copy engine codes against it):
//! - `WINDOW` = 32768; the caller supplies a [`State`] (the window and the Huffman tables),
//!   whose contents need not be initialised.
//! - `Source::next()` yields the next input byte, `None` at end of input or on a read error.
//! - `gunzip(src, state, sink)` inflates one gzip member, checks CRC-32 and ISIZE, and hands
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

/// Order in which a dynamic block sends the code-length code's lengths (RFC 1951 3.2.7).
const ORDER: [u8; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

// `Inflater::err` values: 0 (none) or an `Error`'s discriminant plus one. A plain word
// tests and sets in fewer instructions than an `Option<Error>`.
const HEADER: u32 = Error::Header as u32 + 1;
const DATA: u32 = Error::Data as u32 + 1;
const TRUNCATED: u32 = Error::Truncated as u32 + 1;
const TRAILER: u32 = Error::Trailer as u32 + 1;
const SINK: u32 = Error::Sink as u32 + 1;

use crate::crc;

/// The inflater's RAM: Huffman tables and history. Plain data, supplied by the caller
/// (the device keeps it in its non-zeroed DRAM reservation): `gunzip` writes every entry
/// before it reads it, so any contents will do, including a previous run's.
#[repr(C, align(4))]
pub struct State {
    tables: Tables,
    /// The history, a ring indexed by output position mod `WINDOW`.
    window: [u8; WINDOW],
}

/// `repr(C)`, in this order: the tables' offsets then fit (or nearly) the immediates of
/// the loads and stores indexing them (16 bytes less than `symbol` before `lengths`,
/// measured).
#[repr(C)]
struct Tables {
    /// Two canonical Huffman codes, literal/length (also the code-length code) and
    /// distance: how many codes of each length, and (`count[t][0]`, as no code has length
    /// 0) where in `symbol` their symbols start, in code order. Each code's symbols sit
    /// where its lengths do in `lengths`, so the two never overlap.
    count: [[u16; 16]; 2],
    /// Code lengths: literal/length then distance (first, those of the code-length code).
    /// 512, not 320: indices are masked instead of checked, and a repeat running past the
    /// end (an error, found afterwards) still lands inside.
    lengths: [u8; 512],
    /// 512, not 320: indices are masked instead of checked.
    symbol: [u16; 512],
}

impl State {
    /// Every byte `fill`. The inflater does not care which; tests pass garbage to show it.
    pub const fn filled(fill: u8) -> State {
        let h = fill as u16 * 0x101;
        State { tables: Tables { count: [[h; 16]; 2], symbol: [h; 512], lengths: [fill; 512] }, window: [fill; WINDOW] }
    }

    /// Zeroed (for hosts' `Mem::new()`; the device does not construct one).
    pub const fn new() -> State {
        State::filled(0)
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// Inflates one gzip member from `src`, using `st` for its tables and 32 KiB history.
pub fn gunzip<S: Source, K: FnMut(&[u8]) -> bool>(src: &mut S, st: &mut State, sink: K) -> Result<Gzip, Error> {
    // Two pointers, not one to `State`: the window at offset 0 of its own and the tables
    // at small offsets of theirs (16 bytes less, measured).
    let State { tables, window } = st;
    let mut z = Inflater { err: 0, bitbuf: 0, in_len: 0, out: 0, crc: 0, icrc: !0, src, sink, t: tables, window };
    z.run()
}

/// The per-run scalars (on the stack: a small frame) and the caller's state.
/// `repr(C)`: the scalars first, at small offsets that loads and stores encode directly.
#[repr(C)]
struct Inflater<'a, S, K> {
    /// The first error (see `HEADER`..); once set, input reads as zeros and the sink is no
    /// longer called.
    err: u32,
    /// Pending input bits, next bit in bit 0, with a 1 just above the last: 0 or 1 when
    /// empty. The marker stands in for a bit count (one field less to load and store).
    bitbuf: u32,
    in_len: u32,
    /// Output bytes so far; also the ring position (mod `WINDOW`).
    out: u32,
    /// CRC-32 of the output handed to the sink.
    crc: u32,
    /// CRC-32 register (inverted) of every input byte: FHCRC checks its value after the
    /// header. Cheaper than switching it on for the header only.
    icrc: u32,
    src: &'a mut S,
    sink: K,
    t: &'a mut Tables,
    window: &'a mut [u8; WINDOW],
}

impl<S: Source, K: FnMut(&[u8]) -> bool> Inflater<'_, S, K> {
    /// Not inlined: a call with its argument is a byte or so shorter than the test and
    /// store at each of the many call sites (8 bytes less in all, measured).
    #[inline(never)]
    fn fail(&mut self, e: u32) {
        if self.err == 0 {
            self.err = e;
        }
    }

    /// The next input byte; 0 once anything failed (the source is not asked again).
    /// Not inlined: `bits` then keeps only its own locals live across the call.
    #[inline(never)]
    fn byte(&mut self) -> u32 {
        if self.err == 0 {
            if let Some(b) = self.src.next() {
                self.in_len = self.in_len.wrapping_add(1);
                self.icrc = crc::gzip_byte(self.icrc, b);
                return b as u32;
            }
            self.err = TRUNCATED;
        }
        0
    }

    /// The next `n` (0..=32) bits, LSB first, a bit at a time (no variable masks: most
    /// reads are 1-bit `decode` steps anyway). Reads input only as far as it must.
    #[inline(never)]
    fn bits(&mut self, n: u32) -> u32 {
        let mut v = 0;
        let mut m = 1;
        for _ in 0..n {
            if self.bitbuf < 2 {
                self.bitbuf = self.byte() | 0x100;
            }
            // A running mask, not `<< i`: no shift-amount setup on the lx106.
            if self.bitbuf & 1 != 0 {
                v |= m;
            }
            m <<= 1;
            self.bitbuf >>= 1;
        }
        v
    }

    fn put(&mut self, b: u32) {
        self.window[(self.out & MASK) as usize] = b as u8;
        self.out = self.out.wrapping_add(1);
        if self.out & CMASK == 0 {
            self.flush();
        }
    }

    /// Hands over the (possibly partial) sector holding the last byte written.
    #[inline(never)]
    fn flush(&mut self) {
        if self.err != 0 {
            return;
        }
        let last = self.out.wrapping_sub(1);
        let start = (last & MASK & !CMASK) as usize;
        let end = start + (last & CMASK) as usize + 1;
        if let Some(chunk) = self.window.get(start..end) {
            self.crc = crc::gzip(self.crc, chunk);
            if !(self.sink)(chunk) {
                self.err = SINK;
            }
        }
    }

    /// Inlined (into `gunzip`, and that into the caller): with the tables in `State` the
    /// frame is small, and the scalars are then addressed off the stack pointer (32 bytes
    /// less than a separate function, measured).
    fn run(&mut self) -> Result<Gzip, Error> {
        // The gzip header (RFC 1952 2.3). Magic, method 8 (deflate), no reserved flag.
        // FLG read apart: its bits are then tested with small masks, no literals.
        let id = self.bits(24);
        let flg = self.bits(8);
        if (id ^ 0x08_8B1F) | flg >> 5 != 0 {
            self.fail(HEADER);
        }
        // MTIME, XFL, OS.
        self.bits(24);
        self.bits(24);
        let f = flg >> 1;
        // FEXTRA: a little-endian length and that many bytes.
        if f & 2 != 0 {
            for _ in 0..self.bits(16) {
                self.bits(8);
            }
        }
        // FNAME, FCOMMENT: zero-terminated (input reads as zeros after an error).
        if f & 4 != 0 {
            while self.bits(8) != 0 {}
        }
        if f & 8 != 0 {
            while self.bits(8) != 0 {}
        }
        // FHCRC: low half of the CRC-32 of the header so far.
        if f & 1 != 0 {
            let want = !self.icrc & 0xFFFF;
            if self.bits(16) != want {
                self.fail(HEADER);
            }
        }

        loop {
            // BFINAL, BTYPE.
            let h = self.bits(3);
            match h >> 1 {
                0 => {
                    // Stored: LEN, NLEN from the next byte boundary.
                    self.bitbuf = 0;
                    let w = self.bits(32);
                    let len = w & 0xFFFF;
                    if w >> 16 != len ^ 0xFFFF {
                        self.fail(DATA);
                    } else {
                        for _ in 0..len {
                            let b = self.bits(8);
                            self.put(b);
                        }
                    }
                }
                3 => self.fail(DATA),
                t => {
                    let (nlen, ndist) = if t == 1 {
                        // 32 distance codes, so that table is complete; 30 and 31 are
                        // rejected when decoded.
                        // Lengths by range (RFC 1951 3.2.6); compares are cheaper here
                        // than a run table in DRAM and its literal.
                        for i in 0..320 {
                            self.t.lengths[i] = if i < 144 {
                                8
                            } else if i < 256 {
                                9
                            } else if i < 280 {
                                7
                            } else if i < 288 {
                                8
                            } else {
                                5
                            };
                        }
                        (288, 32)
                    } else {
                        self.dynamic()
                    };
                    self.codes(nlen, ndist);
                }
            }
            if h & 1 != 0 || self.err != 0 {
                break;
            }
        }
        if self.out & CMASK != 0 {
            self.flush();
        }
        // The trailer, from the next byte boundary.
        self.bitbuf = 0;
        let want_crc = self.bits(32);
        let want_len = self.bits(32);
        // Discriminant order: LLVM turns this into arithmetic, no table.
        let e = match self.err {
            HEADER => Some(Error::Header),
            DATA => Some(Error::Data),
            TRUNCATED => Some(Error::Truncated),
            // Never set; there so that the map is linear.
            TRAILER => Some(Error::Trailer),
            SINK => Some(Error::Sink),
            _ => None,
        };
        if let Some(e) = e {
            return Err(e);
        }
        if want_crc != self.crc || want_len != self.out {
            return Err(Error::Trailer);
        }
        Ok(Gzip { out_len: self.out, crc: self.crc, in_len: self.in_len })
    }

    /// Reads a dynamic block's code lengths into `lengths`; returns the literal/length and
    /// distance code sizes.
    fn dynamic(&mut self) -> (usize, usize) {
        // HLIT, HDIST, HCLEN.
        let h = self.bits(14) as usize;
        let nlen = (h & 31) + 257;
        let ndist = (h >> 5 & 31) + 1;
        let ncode = (h >> 10) + 4;
        // HLIT > 29 or HDIST > 29: bits 1-4 of either field all set.
        // (Adding 2 to each field carries out of it exactly then.)
        if (h & 0x3DE) + 0x42 & 0x420 != 0 {
            self.fail(DATA);
        }
        for (i, &o) in ORDER.iter().enumerate() {
            let l = if i < ncode { self.bits(3) } else { 0 };
            self.t.lengths[o as usize] = l as u8;
        }
        self.build(0, 0, 19, true);

        let n = nlen + ndist;
        let mut i = 0;
        while i < n {
            let sym = self.decode(0);
            let (v, rep) = if sym < 16 {
                (sym as u8, 1)
            } else {
                // 16: repeat the previous length (none before the first) 3 + 2 bits times;
                // 17: zeros, 3 + 3 bits; 18 (and a failed `decode`): zeros, 11 + 7 bits.
                let v = if sym == 16 {
                    if i == 0 {
                        break;
                    }
                    self.t.lengths[(i - 1) & 511]
                } else {
                    0
                };
                let (base, extra) = if sym < 18 { (3, sym - 14) } else { (11, 7) };
                (v, base + self.bits(extra))
            };
            for _ in 0..rep {
                self.t.lengths[i & 511] = v;
                i += 1;
            }
        }
        // A repeat ran past the end or had nothing to repeat, or there is no end-of-block.
        if i != n {
            self.fail(DATA);
        }
        if self.t.lengths[256] == 0 {
            self.fail(DATA);
        }
        (nlen, ndist)
    }

    /// Builds table `t` from `lengths[start..start + n]` (0 = unused symbol). Over-subscribed
    /// codes are rejected; incomplete ones too, except (as zlib) a lone 1-bit code or no code
    /// at all, when not `strict`. The unused codes of an incomplete table fail in `decode`.
    fn build(&mut self, t: usize, start: usize, n: usize, strict: bool) {
        let count = &mut self.t.count[t & 1];
        count[0] = start as u16;
        // One pass over the lengths per code length puts the symbols in code order with
        // no offset table: 15 x 320 steps at most, little next to a block's output.
        let mut k = start;
        let mut left: i32 = 1;
        for len in 1..16 {
            let mut c = 0;
            for sym in 0..n {
                if self.t.lengths[(start + sym) & 511] as usize == len {
                    self.t.symbol[k & 511] = sym as u16;
                    k += 1;
                    c += 1;
                }
            }
            count[len] = c as u16;
            // Once negative, it stays so: an over-subscribed prefix cannot be undone.
            left = (left << 1) - c as i32;
        }
        // Incomplete is allowed for a lone 1-bit code (all codes are 1-bit) or none.
        let ones = count[1] as usize;
        if left < 0 || left > 0 && (strict || k - start != ones) {
            self.fail(DATA);
        }
    }

    /// Reads one symbol of table `t`, a bit at a time (codes arrive MSB first).
    fn decode(&mut self, t: usize) -> u32 {
        // `d` is the code so far less the first code of this length (never negative);
        // `index` where the symbols of this length start.
        let mut d = 0u32;
        let mut index = self.t.count[t & 1][0] as u32;
        for len in 1..16 {
            d |= self.bits(1);
            let count = self.t.count[t & 1][len] as u32;
            if d < count {
                return self.t.symbol[((index + d) & 511) as usize] as u32;
            }
            index += count;
            d = (d - count) << 1;
        }
        self.fail(DATA);
        // Not a valid symbol of any table, so the caller stops (`codes`) or ends
        // after a bounded amount of work (`dynamic`). Small: a `movi`, not a literal.
        512
    }

    /// Length (`k` = 2, `b0` = 3, symbols 257..284 less 257) or distance (`k` = 1, `b0` = 1)
    /// from its symbol: the first 2 << k symbols have no extra bits, then each group of
    /// 1 << k symbols has one more extra bit than the last and bases doubling.
    #[inline(always)]
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
        self.build(0, 0, nlen, false);
        self.build(1, nlen, ndist, false);
        while self.err == 0 {
            let sym = self.decode(0);
            if sym < 256 {
                self.put(sym);
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
            let d = self.decode(1);
            if d >= 30 {
                break;
            }
            let dist = self.base(d, 1, 1);
            if dist > self.out {
                break;
            }
            for _ in 0..len {
                let b = self.window[(self.out.wrapping_sub(dist) & MASK) as usize];
                self.put(b as u32);
            }
        }
        self.fail(DATA);
    }
}
