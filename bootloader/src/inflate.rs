//! Streaming gzip inflater for the 4 KB bootloader (being written: see the inflater brief).
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

pub fn gunzip<S: Source, K: FnMut(&[u8]) -> bool>(
    _src: &mut S,
    _window: &mut [u8; WINDOW],
    _sink: K,
) -> Result<Gzip, Error> {
    Err(Error::Data)
}
