//! The copy engine: produces an image's output sector by sector (reading it raw, or
//! inflating gzip) and makes destination sectors hold it, skipping sectors that already do.
//!
//! Skipping identical sectors is what makes a resumed copy cheap and correct: a sector that
//! was completed before a power cut compares equal and is left alone; a torn one differs
//! and is erased and programmed again.

use core::cell::RefCell;

use embedded_storage::nor_flash::NorFlash;

use crate::boot::Mem;
use crate::flash::{self, Words, SECTOR};
use crate::inflate::{self, Source};
use crate::report::Code;

const SECTOR_LEN: usize = SECTOR as usize;

/// Where an image comes from and where its output goes.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    /// Staged bytes.
    pub src: u32,
    pub len: u32,
    pub gzip: bool,
    /// Output byte `o` goes to flash `dst + o`.
    pub dst: u32,
    /// Output chunks (sectors) before this index are not written (sector 0 of a sketch).
    pub first: u32,
    /// Flash sector whose first 16 bytes stay erased (the app header, written last), or 0.
    pub hole: u32,
}

/// gzip's CRC-32 (ISO-HDLC), also used for destination CRCs. `NoTable` keeps it small.
pub const CRC32: crc::Crc<u32, crc::NoTable> =
    crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

/// Reads staged gzip input from flash through a sector buffer. The flash is shared with
/// the output sink through a `RefCell` (never borrowed twice: input and output alternate).
struct FlashSource<'a, F> {
    flash: &'a RefCell<&'a mut F>,
    buf: &'a mut [u8; SECTOR_LEN],
    pos: u32,
    end: u32,
    i: usize,
    n: usize,
}

impl<F: NorFlash> Source for FlashSource<'_, F> {
    fn next(&mut self) -> Option<u8> {
        if self.i >= self.n {
            let left = self.end.checked_sub(self.pos)?;
            if left == 0 {
                return None;
            }
            let n = left.min(SECTOR);
            // SPIRead wants whole words: read past the end inside the (staging) sector.
            let rd = self.buf.get_mut(..((n + 3) & !3) as usize)?;
            let mut f = self.flash.try_borrow_mut().ok()?;
            flash::read(&mut **f, self.pos, rd).ok()?;
            self.pos += n;
            self.n = n as usize;
            self.i = 0;
        }
        let b = self.buf.get(self.i).copied();
        self.i += 1;
        b
    }
}

/// What the output was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Output {
    pub len: u32,
    /// Input consumed (gzip: through the trailer).
    pub consumed: u32,
}

/// What `produce` hands each output sector to: `(flash, scratch, index, chunk)`, where
/// `scratch` is a free sector buffer. A trait object, so the inflater is compiled once.
pub type Sink<'a, F> = &'a mut dyn FnMut(&mut F, &mut [u8; SECTOR_LEN], u32, &[u8]) -> Result<(), Code>;

/// Produces the output of `job` in sector-sized chunks.
pub fn produce<F: NorFlash>(flash: &mut F, mem: &mut Mem, job: &Job, f: Sink<'_, F>) -> Result<Output, Code> {
    let Mem { window, input, sector } = mem;
    if !job.gzip {
        let mut i = 0;
        while i * SECTOR < job.len {
            let n = (job.len - i * SECTOR).min(SECTOR);
            let buf = window.get_mut(..((n + 3) & !3) as usize).ok_or(Code::ReadFail)?;
            flash::read(flash, job.src + i * SECTOR, buf)?;
            f(flash, sector, i, buf.get(..n as usize).ok_or(Code::ReadFail)?)?;
            i += 1;
        }
        return Ok(Output { len: job.len, consumed: job.len });
    }
    let cell = RefCell::new(flash);
    let mut src = FlashSource { flash: &cell, buf: input, pos: job.src, end: job.src + job.len, i: 0, n: 0 };
    let mut err = Code::Ok;
    let mut i = 0;
    let mut sink = |chunk: &[u8]| {
        let r = match cell.try_borrow_mut() {
            Ok(mut fl) => f(&mut **fl, sector, i, chunk),
            Err(_) => Err(Code::ReadFail),
        };
        match r {
            Ok(()) => {
                i += 1;
                true
            }
            Err(c) => {
                err = c;
                false
            }
        }
    };
    let r = inflate::gunzip(&mut src, window, &mut sink as &mut dyn FnMut(&[u8]) -> bool);
    match r {
        Ok(g) => Ok(Output { len: g.out_len, consumed: g.in_len }),
        Err(inflate::Error::Sink) => Err(err),
        Err(inflate::Error::Header) => Err(Code::GzipHeader),
        Err(inflate::Error::Data) => Err(Code::GzipData),
        Err(inflate::Error::Truncated) | Err(inflate::Error::Trailer) => Err(Code::GzipTrailer),
    }
}

/// Whether the sector in `have` already holds `data` (after `hole` erased bytes, padded
/// with 0xFF).
fn same(have: &[u8; SECTOR_LEN], data: &[u8], hole: usize) -> bool {
    have.iter().enumerate().all(|(k, &b)| {
        let want = if k < hole { 0xFF } else { data.get(k).copied().unwrap_or(0xFF) };
        b == want
    })
}

/// Programs `data` at `addr`; a partial last word is padded with 0xFF.
pub fn program<F: NorFlash>(flash: &mut F, addr: u32, data: &[u8]) -> Result<(), Code> {
    let whole = data.len() & !3;
    let (body, tail) = data.split_at(whole);
    if !body.is_empty() {
        flash::write(flash, addr, body)?;
    }
    if !tail.is_empty() {
        let mut w = Words::<4>([0xFF; 4]);
        for (d, s) in w.0.iter_mut().zip(tail) {
            *d = *s;
        }
        flash::write(flash, addr + whole as u32, &w.0)?;
    }
    Ok(())
}

/// Makes the sector at `addr` hold `data` (its first `hole` bytes left erased). Returns
/// whether it had to erase and program.
pub fn put_sector<F: NorFlash>(
    flash: &mut F,
    scratch: &mut [u8; SECTOR_LEN],
    addr: u32,
    data: &[u8],
    hole: usize,
) -> Result<bool, Code> {
    flash::read(flash, addr, scratch)?;
    if same(scratch, data, hole) {
        return Ok(false);
    }
    flash::erase(flash, addr)?;
    program(flash, addr + hole as u32, data.get(hole..).unwrap_or(&[]))?;
    Ok(true)
}

/// CRC-32 (ISO-HDLC) of flash `[from, to)`, with the 16 bytes at `head_at` replaced by
/// `head` (the app header that is written last).
pub fn crc_flash<F: NorFlash>(
    flash: &mut F,
    buf: &mut [u8; SECTOR_LEN],
    from: u32,
    to: u32,
    head_at: u32,
    head: &[u8; 16],
) -> Result<u32, Code> {
    let mut d = CRC32.digest();
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(SECTOR - pos % SECTOR);
        let rd = buf.get_mut(..((n + 3) & !3) as usize).ok_or(Code::ReadFail)?;
        flash::read(flash, pos, rd)?;
        if pos == head_at {
            for (d, s) in rd.iter_mut().zip(head) {
                *d = *s;
            }
        }
        d.update(rd.get(..n as usize).ok_or(Code::ReadFail)?);
        pos += n;
    }
    Ok(d.finalize())
}
