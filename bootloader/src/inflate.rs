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
//! - the byte source and the sink are used through `dyn`, so the decoder exists once in the
//!   image however many (source, sink) pairs call [`gunzip`];
//! - every array index is masked or checked, so there is no panic path: malformed input
//!   only ever yields an [`Error`].
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

use crc::{Crc, Digest, NoTable, CRC_32_ISO_HDLC};

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

/// gzip's CRC-32. Bitwise (`NoTable`): ~40 instructions a byte, but no 1 KB table in flash.
static CRC32: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISO_HDLC);

const MASK: u32 = WINDOW as u32 - 1;
const _: () = assert!(WINDOW.is_power_of_two() && CHUNK.is_power_of_two() && CHUNK <= WINDOW);
/// Offset within a chunk.
const CMASK: u32 = CHUNK as u32 - 1;

/// Literal/length symbols a table can hold (288: the fixed code defines 286 and 287).
const NSYM: usize = 288;

/// Order in which a dynamic block sends the code-length code's lengths (RFC 1951 3.2.7).
const ORDER: [u8; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// Inflates one gzip member from `src`, using `window` as the 32 KiB history.
pub fn gunzip<S: Source, K: FnMut(&[u8]) -> bool>(
    src: &mut S,
    window: &mut [u8; WINDOW],
    mut sink: K,
) -> Result<Gzip, Error> {
    run(src, window, &mut sink)
}

/// Bit reader and output ring.
struct Io<'a> {
    src: &'a mut dyn Source,
    sink: &'a mut dyn FnMut(&[u8]) -> bool,
    window: &'a mut [u8; WINDOW],
    /// Pending input bits, next bit in bit 0; fewer than 8 between calls to `bits`.
    bitbuf: u32,
    bitcnt: u32,
    in_len: u32,
    /// Output bytes so far; also the ring position (mod `WINDOW`).
    out: u32,
    crc: Digest<'static, u32, NoTable>,
}

impl Io<'_> {
    fn byte(&mut self) -> Result<u32, Error> {
        let b = self.src.next().ok_or(Error::Truncated)?;
        self.in_len = self.in_len.wrapping_add(1);
        Ok(b as u32)
    }

    /// The next `n` (1..=16) bits, LSB first. Reads input only as far as it must.
    fn bits(&mut self, n: u32) -> Result<u32, Error> {
        while self.bitcnt < n {
            self.bitbuf |= self.byte()? << self.bitcnt;
            self.bitcnt += 8;
        }
        let v = self.bitbuf & ((1 << n) - 1);
        self.bitbuf >>= n;
        self.bitcnt -= n;
        Ok(v)
    }

    /// Drops the bits left in the current byte (stored blocks and the trailer are aligned).
    fn align(&mut self) {
        self.bitbuf = 0;
        self.bitcnt = 0;
    }

    fn put(&mut self, b: u8) -> Result<(), Error> {
        self.window[(self.out & MASK) as usize] = b;
        self.out = self.out.wrapping_add(1);
        if self.out & CMASK == 0 {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands over the (possibly partial) sector holding the last byte written.
    fn flush(&mut self) -> Result<(), Error> {
        let last = self.out.wrapping_sub(1);
        let start = (last & MASK & !CMASK) as usize;
        let end = start + (last & CMASK) as usize + 1;
        let chunk = self.window.get(start..end).ok_or(Error::Data)?;
        self.crc.update(chunk);
        if (self.sink)(chunk) {
            Ok(())
        } else {
            Err(Error::Sink)
        }
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huff {
    count: [u16; 16],
    symbol: [u16; NSYM],
}

impl Huff {
    /// Builds the code for `lengths` (one per symbol, 0 = unused). Over-subscribed codes are
    /// rejected; incomplete ones too, except (as zlib) a lone 1-bit code or no code at all,
    /// when not `strict`. The unused codes of an incomplete table fail in `decode`.
    fn build(&mut self, lengths: &[u8], strict: bool) -> Result<(), Error> {
        self.count = [0; 16];
        for &l in lengths {
            self.count[(l & 15) as usize] += 1;
        }
        // offs[len]: index in `symbol` of the first code of that length.
        let mut offs = [0u16; 16];
        let mut left: i32 = 1;
        let mut sum = 0;
        for (o, &c) in offs.iter_mut().zip(&self.count).skip(1) {
            *o = sum;
            sum += c;
            left = (left << 1) - c as i32;
            if left < 0 {
                return Err(Error::Data);
            }
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[(l & 15) as usize];
                if let Some(s) = self.symbol.get_mut(*o as usize) {
                    *s = sym as u16;
                }
                *o += 1;
            }
        }
        if left > 0 && (strict || (self.count[0] + self.count[1]) as usize != lengths.len()) {
            return Err(Error::Data);
        }
        Ok(())
    }
}

/// Reads one symbol of `h`, a bit at a time (codes arrive MSB first).
fn decode(io: &mut Io, h: &Huff) -> Result<u32, Error> {
    // `code` is the bits so far; `first` the first code of this length; `index` the number of
    // symbols with shorter codes.
    let (mut code, mut first, mut index) = (0u32, 0u32, 0u32);
    for &count in &h.count[1..] {
        code |= io.bits(1)?;
        let count = count as u32;
        if code < first + count {
            let s = h.symbol.get((index + code - first) as usize);
            return s.map(|&s| s as u32).ok_or(Error::Data);
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    Err(Error::Data)
}

/// Length (`k` = 2, `b0` = 3, symbols 257..284 less 257) or distance (`k` = 1, `b0` = 1)
/// from its symbol: the first 2 << k symbols have no extra bits, then each group of 1 << k
/// symbols has one more extra bit than the last and bases doubling.
fn base(io: &mut Io, s: u32, k: u32, b0: u32) -> Result<u32, Error> {
    if s < 2 << k {
        return Ok(s + b0);
    }
    let extra = (s >> k) - 1;
    Ok((((1 << k) | (s & ((1 << k) - 1))) << extra) + b0 + io.bits(extra)?)
}

struct Tables {
    lens: Huff,
    dists: Huff,
    /// Code lengths of the literal/length then the distance code (and, first, of the
    /// code-length code). Sized so a u8 index needs no check.
    lengths: [u8; 320],
}

fn run(
    src: &mut dyn Source,
    window: &mut [u8; WINDOW],
    sink: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<Gzip, Error> {
    let mut io = Io { src, sink, window, bitbuf: 0, bitcnt: 0, in_len: 0, out: 0, crc: CRC32.digest() };
    let io = &mut io;
    header(io)?;

    let mut t = Tables {
        lens: Huff { count: [0; 16], symbol: [0; NSYM] },
        dists: Huff { count: [0; 16], symbol: [0; NSYM] },
        lengths: [0; 320],
    };
    loop {
        let last = io.bits(1)?;
        let (nlen, ndist) = match io.bits(2)? {
            0 => {
                stored(io)?;
                (0, 0)
            }
            1 => {
                for (i, l) in t.lengths.iter_mut().enumerate() {
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
                (288, 32)
            }
            2 => dynamic(io, &mut t)?,
            _ => return Err(Error::Data),
        };
        if nlen != 0 {
            let lens = t.lengths.get(..nlen).ok_or(Error::Data)?;
            t.lens.build(lens, false)?;
            let dists = t.lengths.get(nlen..nlen + ndist).ok_or(Error::Data)?;
            t.dists.build(dists, false)?;
            codes(io, &t)?;
        }
        if last != 0 {
            break;
        }
    }

    if io.out & CMASK != 0 {
        io.flush()?;
    }
    io.align();
    let crc = io.crc.clone().finalize();
    let want_crc = io.bits(16)? | io.bits(16)? << 16;
    let want_len = io.bits(16)? | io.bits(16)? << 16;
    if want_crc != crc || want_len != io.out {
        return Err(Error::Trailer);
    }
    Ok(Gzip { out_len: io.out, crc, in_len: io.in_len })
}

/// Checks and skips the gzip header (RFC 1952 2.3), verifying FHCRC when present.
fn header(io: &mut Io) -> Result<(), Error> {
    let mut h = CRC32.digest();
    let mut next = |io: &mut Io| -> Result<u32, Error> {
        let b = io.byte()?;
        h.update(&[b as u8]);
        Ok(b)
    };
    // Magic, method 8 (deflate).
    if next(io)? != 0x1F || next(io)? != 0x8B || next(io)? != 8 {
        return Err(Error::Header);
    }
    let flags = next(io)?;
    if flags & 0xE0 != 0 {
        return Err(Error::Header);
    }
    // MTIME, XFL, OS.
    for _ in 0..6 {
        next(io)?;
    }
    // FEXTRA: a little-endian length and that many bytes.
    if flags & 4 != 0 {
        let n = next(io)? | next(io)? << 8;
        for _ in 0..n {
            next(io)?;
        }
    }
    // FNAME, FCOMMENT: zero-terminated.
    for f in [8, 16] {
        if flags & f != 0 {
            while next(io)? != 0 {}
        }
    }
    // FHCRC: low half of the CRC-32 of the header so far.
    if flags & 2 != 0 {
        let want = h.finalize() & 0xFFFF;
        if io.bits(16)? != want {
            return Err(Error::Header);
        }
    }
    Ok(())
}

fn stored(io: &mut Io) -> Result<(), Error> {
    io.align();
    let len = io.bits(16)?;
    if io.bits(16)? != len ^ 0xFFFF {
        return Err(Error::Data);
    }
    for _ in 0..len {
        let b = io.byte()?;
        io.put(b as u8)?;
    }
    Ok(())
}

/// Reads a dynamic block's code lengths into `t.lengths`; returns the literal/length and
/// distance code sizes.
fn dynamic(io: &mut Io, t: &mut Tables) -> Result<(usize, usize), Error> {
    let nlen = io.bits(5)? as usize + 257;
    let ndist = io.bits(5)? as usize + 1;
    let ncode = io.bits(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(Error::Data);
    }
    t.lengths = [0; 320];
    for &o in ORDER.iter().take(ncode) {
        t.lengths[o as usize] = io.bits(3)? as u8;
    }
    t.lens.build(&t.lengths[..19], true)?;

    let n = nlen + ndist;
    let mut i = 0;
    while i < n {
        let sym = decode(io, &t.lens)?;
        let (v, rep) = match sym {
            0..=15 => (sym as u8, 1),
            // Repeat the previous length (none before the first: `get` fails).
            16 => (*t.lengths.get(i.wrapping_sub(1)).ok_or(Error::Data)?, 3 + io.bits(2)?),
            17 => (0, 3 + io.bits(3)?),
            _ => (0, 11 + io.bits(7)?),
        };
        for _ in 0..rep {
            *t.lengths.get_mut(i).ok_or(Error::Data)? = v;
            i += 1;
        }
    }
    // A repeat ran past the end, or there is no end-of-block code.
    if i != n || t.lengths[256] == 0 {
        return Err(Error::Data);
    }
    Ok((nlen, ndist))
}

/// Decodes a compressed block's symbols until end-of-block.
fn codes(io: &mut Io, t: &Tables) -> Result<(), Error> {
    loop {
        let sym = decode(io, &t.lens)?;
        if sym < 256 {
            io.put(sym as u8)?;
            continue;
        }
        let s = sym - 256;
        if s == 0 {
            return Ok(());
        }
        let len = match s - 1 {
            28 => 258,
            s @ 0..=27 => base(io, s, 2, 3)?,
            // 286, 287
            _ => return Err(Error::Data),
        };
        let d = decode(io, &t.dists)?;
        if d >= 30 {
            return Err(Error::Data);
        }
        let dist = base(io, d, 1, 1)?;
        if dist > io.out {
            return Err(Error::Data);
        }
        for _ in 0..len {
            let b = io.window[(io.out.wrapping_sub(dist) & MASK) as usize];
            io.put(b)?;
        }
    }
}
