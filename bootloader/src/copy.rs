//! The copy engine: produces an image's output sector by sector (reading it raw, or
//! inflating gzip) and either checks it (the dry run) or makes destination sectors hold it,
//! skipping sectors that already do.
//!
//! Skipping identical sectors is what makes a resumed copy cheap and correct: a sector that
//! was completed before a power cut compares equal and is left alone; a torn one differs
//! and is erased and programmed again.

#[cfg(not(target_arch = "xtensa"))]
use core::cell::RefCell;

use embedded_storage::nor_flash::NorFlash;

use crate::boot::Mem;
use crate::crc;
use crate::flash::{self, SECTOR};
use crate::inflate;
#[cfg(not(target_arch = "xtensa"))]
use crate::inflate::Source;
use crate::loader::Walker;
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
    /// Output sectors before this index are skipped (sector 0 of a sketch: the bootloader
    /// slot is never installed).
    pub first: u32,
    /// Flash sector whose first 16 bytes stay erased (the app header, programmed last), or
    /// 0. A nonzero hole also marks the output as an app image (checked in the dry run).
    pub hole: u32,
}

/// Dry-run state (scratch experiment: only the dry run builds it).
pub struct Dry {
    pub limit: u32,
    pub walk: Walker,
}

impl Dry {
    pub fn new(limit: u32) -> Dry {
        Dry { limit, walk: Walker::new() }
    }
}

pub struct Sink<'d> {
    pub job: Job,
    pub dry: Option<&'d mut Dry>,
    pub crc: u32,
}

impl Sink<'_> {
    fn chunk<F: NorFlash>(&mut self, f: &mut F, scratch: &mut [u8; SECTOR_LEN], i: u32, data: &[u8]) -> Result<(), Code> {
        let job = &self.job;
        if i < job.first {
            return Ok(());
        }
        let addr = job.dst + i * SECTOR;
        self.crc = crc::gzip(self.crc, data);
        let Some(d) = self.dry.as_deref_mut() else {
            return put_sector(f, scratch, addr, data, if addr == job.hole { 16 } else { 0 });
        };
        // No overflow: chunks are at most a sector, and `addr` stops growing at the first
        // chunk past `limit` (< 4 GiB - 4 KiB).
        if addr + data.len() as u32 > d.limit {
            return Err(Code::TooBig);
        }
        // The walker starts at the hole (a sketch's chunk `first`, 0x1000) and keeps the
        // app header.
        if job.hole != 0 {
            d.walk.feed(data);
        }
        Ok(())
    }
}

/// Reads staged gzip input from flash through a sector buffer. The flash is shared with
/// the sink through a `RefCell` (input and output alternate, never overlap in time).
#[cfg(not(target_arch = "xtensa"))]
struct FlashSource<'a, 'f, F> {
    flash: &'a RefCell<&'f mut F>,
    buf: &'a mut [u8; SECTOR_LEN],
    pos: u32,
    end: u32,
}

#[cfg(not(target_arch = "xtensa"))]
impl<F: NorFlash> Source for FlashSource<'_, '_, F> {
    fn next(&mut self) -> Option<u8> {
        if self.pos >= self.end {
            return None;
        }
        let k = self.pos % SECTOR;
        if k == 0 {
            // Whole sectors: staged images start sector aligned and the chip is whole
            // sectors, so this never reads past the chip.
            let mut f = self.flash.try_borrow_mut().ok()?;
            flash::read(&mut **f, self.pos, self.buf).ok()?;
        }
        self.pos += 1;
        self.buf.get(k as usize).copied()
    }
}

/// Input consumed (gzip: through the trailer) and output produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Output {
    pub len: u32,
    pub consumed: u32,
}

/// Produces the output of `sink.job` sector by sector into `sink`.
pub fn produce<F: NorFlash>(flash: &mut F, mem: &mut Mem, sink: &mut Sink<'_>) -> Result<Output, Code> {
    let Mem { inflate: st, input, sector } = mem;
    let job = sink.job;
    if !job.gzip {
        let mut i = 0;
        while i * SECTOR < job.len {
            let buf: &mut [u8; SECTOR_LEN] = input;
            flash::read(flash, job.src + i * SECTOR, buf)?;
            let n = (job.len - i * SECTOR).min(SECTOR) as usize;
            sink.chunk(flash, sector, i, buf.get(..n).unwrap_or(&[]))?;
            i += 1;
        }
        return Ok(Output { len: job.len, consumed: job.len });
    }
    // The device runs the assembly inflater, the host (tests, simulator) the Rust one.
    #[cfg(target_arch = "xtensa")]
    return gunzip_asm(flash, st, input, sector, sink);
    #[cfg(not(target_arch = "xtensa"))]
    gunzip_rust(flash, st, input, sector, sink)
}

/// The Rust inflater over a `FlashSource`.
#[cfg(not(target_arch = "xtensa"))]
fn gunzip_rust<F: NorFlash>(flash: &mut F, st: &mut inflate::State, input: &mut [u8; SECTOR_LEN], sector: &mut [u8; SECTOR_LEN], sink: &mut Sink<'_>) -> Result<Output, Code> {
    let job = sink.job;
    let cell = RefCell::new(flash);
    let mut src = FlashSource { flash: &cell, buf: input, pos: job.src, end: job.src + job.len };
    let mut err = None;
    let mut i = 0;
    let r = inflate::gunzip(&mut src, st, |data: &[u8]| {
        let r = match cell.try_borrow_mut() {
            Ok(mut fl) => sink.chunk(&mut **fl, sector, i, data),
            Err(_) => Err(Code::ReadFail),
        };
        i += 1;
        err = r.err();
        err.is_none()
    });
    match r {
        Ok(g) => Ok(Output { len: g.out_len, consumed: g.in_len }),
        Err(inflate::Error::Sink) => Err(err.unwrap_or(Code::ReadFail)),
        Err(inflate::Error::Header) => Err(Code::GzipHeader),
        Err(inflate::Error::Data) => Err(Code::GzipData),
        Err(_) => Err(Code::GzipTrailer),
    }
}

#[cfg(target_arch = "xtensa")]
extern "C" {
    /// `device/inflate.S`: `inflate::gunzip` over a `FlashSource` in lx106 assembly, the
    /// same contract and error classes (tests/bench/tests/inflate_asm.rs compares the two
    /// on QEMU), in fewer bytes. It reads flash with the ROM's SPIRead itself: on the
    /// device `F` is the ROM flash. Returns 0 or the `inflate::Error` discriminant + 1; on
    /// success it writes output length, CRC and input consumed to `ctx[0..3]`.
    fn eboot_gunzip(
        src: u32,
        len: u32,
        input: *mut u8,
        st: *mut inflate::State,
        sink: unsafe extern "C" fn(*mut u32, *const u8, u32) -> u32,
        ctx: *mut u32,
    ) -> u32;
}

/// The assembly uses the first 1536 bytes of `State` as its frame and tables and the
/// 32 KiB after them as its window.
#[cfg(target_arch = "xtensa")]
const _: () = assert!(core::mem::size_of::<inflate::State>() >= 1536 + inflate::WINDOW);

/// What the assembly inflater's sink callback works on. `repr(C)`: `res` first, where
/// the inflater writes its results through the same pointer.
#[cfg(target_arch = "xtensa")]
#[repr(C)]
struct GzCtx<'a, 'd, F> {
    res: [u32; 3],
    flash: &'a mut F,
    sector: &'a mut [u8; SECTOR_LEN],
    sink: &'a mut Sink<'d>,
    i: u32,
    err: Option<Code>,
}

/// The sink callback: one output chunk to `Sink::chunk`; nonzero to go on.
#[cfg(target_arch = "xtensa")]
unsafe extern "C" fn gz_chunk<F: NorFlash>(ctx: *mut u32, data: *const u8, len: u32) -> u32 {
    // SAFETY: `ctx` is the `GzCtx` that `gunzip_asm` handed the inflater, not otherwise
    // used while it runs; `data[..len]` is a chunk of its window (1..=4096 bytes).
    let (g, data) = unsafe { (&mut *(ctx as *mut GzCtx<F>), core::slice::from_raw_parts(data, len as usize)) };
    let r = g.sink.chunk(g.flash, g.sector, g.i, data);
    g.i += 1;
    g.err = r.err();
    g.err.is_none() as u32
}

#[cfg(target_arch = "xtensa")]
fn gunzip_asm<F: NorFlash>(flash: &mut F, st: &mut inflate::State, input: &mut [u8; SECTOR_LEN], sector: &mut [u8; SECTOR_LEN], sink: &mut Sink<'_>) -> Result<Output, Code> {
    let job = sink.job;
    let mut g = GzCtx { res: [0; 3], flash, sector, sink, i: 0, err: None };
    // SAFETY: the inflater writes only `st` (its size checked above), `input` (4096
    // bytes, word aligned as SPIRead needs: `Mem` is align(4)), `g.res` and below our
    // stack pointer (the call0 ABI's free stack), reads flash [src, src + len) through
    // the ROM, and calls `gz_chunk` with `g` on our stack.
    let r = unsafe { eboot_gunzip(job.src, job.len, input.as_mut_ptr(), st, gz_chunk::<F>, &mut g as *mut GzCtx<F> as *mut u32) };
    match r {
        0 => Ok(Output { len: g.res[0], consumed: g.res[2] }),
        1 => Err(Code::GzipHeader),
        2 => Err(Code::GzipData),
        5 => Err(g.err.unwrap_or(Code::ReadFail)),
        _ => Err(Code::GzipTrailer),
    }
}

/// Copies `job`'s output to its destination (compare-skip per sector).
pub fn copy<F: NorFlash>(flash: &mut F, mem: &mut Mem, job: Job) -> Result<u32, Code> {
    let mut s = Sink { job, dry: None, crc: 0 };
    produce(flash, mem, &mut s)?;
    Ok(s.crc)
}

/// Makes the sector at `addr` hold `data` then 0xFF, its first `hole` bytes erased, and
/// reads it back. Leaves it alone when it already does.
fn put_sector<F: NorFlash>(flash: &mut F, scratch: &mut [u8; SECTOR_LEN], addr: u32, data: &[u8], hole: usize) -> Result<(), Code> {
    // `data` is at most a sector (a raw sector or one `inflate::CHUNK`).
    let n = data.len();
    let mut written = false;
    loop {
        flash::read(flash, addr, scratch)?;
        let same = scratch.iter().enumerate().all(|(k, &b)| b == if k < hole { 0xFF } else { data.get(k).copied().unwrap_or(0xFF) });
        if same {
            return Ok(());
        }
        if written {
            return Err(Code::VerifyFail);
        }
        flash::erase(flash, addr)?;
        // The sector image is built in `scratch` (read again just below anyway) and
        // programmed whole past the hole: one word-aligned program, the 0xFF padding
        // included (programming 0xFF over erased bytes changes nothing), with no length
        // to work out. (The hole's bytes are built too but not programmed.)
        scratch.fill(0xFF);
        if let Some(d) = scratch.get_mut(..n) {
            d.copy_from_slice(data);
        }
        flash::write(flash, addr + hole as u32, scratch.get(hole..).unwrap_or(&[]))?;
        written = true;
    }
}

/// CRC-32 (ISO-HDLC) of flash `[from, to)`, `from` word aligned.
pub fn crc_flash<F: NorFlash>(flash: &mut F, buf: &mut [u8; SECTOR_LEN], from: u32, to: u32) -> Result<u32, Code> {
    let mut c = 0;
    let mut pos = from;
    while pos < to {
        flash::read(flash, pos, buf)?;
        let n = (to - pos).min(SECTOR) as usize;
        c = crc::gzip(c, buf.get(..n).unwrap_or(&[]));
        pos += SECTOR;
    }
    Ok(c)
}
