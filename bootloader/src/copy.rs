//! The copy engine: produces an image's output sector by sector (reading it raw, or
//! inflating gzip) and either checks it (the dry run) or makes destination sectors hold it,
//! skipping sectors that already do.
//!
//! Skipping identical sectors is what makes a resumed copy cheap and correct: a sector that
//! was completed before a power cut compares equal and is left alone; a torn one differs
//! and is erased and programmed again.

#[cfg(not(target_arch = "xtensa"))]
use core::cell::RefCell;
use core::mem::MaybeUninit;

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
    /// Flash sector whose first 16 bytes stay erased (the app header, programmed last), or
    /// 0. A nonzero hole also marks the output as an app image (checked in the dry run),
    /// which starts there: output for sectors below it is skipped (sector 0 of a sketch,
    /// `dst` 0, hole 0x1000: the bootloader slot is never installed).
    pub hole: u32,
}

/// Dry-run state and results.
pub struct Dry {
    pub limit: u32,
    pub walk: Walker,
    /// Output length, set by a successful `produce`.
    pub len: u32,
}

impl Dry {
    pub fn new(limit: u32) -> Dry {
        Dry { limit, walk: Walker::new(), len: 0 }
    }
}

/// Where the chunks go, one after the other.
struct Sink<'d> {
    /// The dry run's state, or `None` to copy.
    dry: Option<&'d mut Dry>,
    /// The flash sector of the next chunk.
    addr: u32,
    hole: u32,
    crc: u32,
}

impl Sink<'_> {
    fn chunk<F: NorFlash>(&mut self, f: &mut F, scratch: &mut [u8; SECTOR_LEN], data: &[u8]) -> Result<(), Code> {
        let addr = self.addr;
        self.addr += SECTOR;
        // Below the hole: not installed (output addresses start at `dst`, at or below it).
        if addr < self.hole {
            return Ok(());
        }
        self.crc = crc::gzip(self.crc, data);
        let Some(d) = self.dry.as_deref_mut() else {
            return put_sector(f, scratch, addr, data, if addr == self.hole { 16 } else { 0 });
        };
        // No overflow: chunks are at most a sector, and `addr` stops growing at the first
        // chunk past `limit` (< 4 GiB - 4 KiB).
        if addr + data.len() as u32 > d.limit {
            return Err(Code::TooBig);
        }
        // The walker starts at the hole (the first chunk not skipped) and keeps the app
        // header.
        if self.hole != 0 {
            d.walk.feed(data);
        }
        Ok(())
    }

    /// The run's CRC, after telling the dry run the output length.
    fn finish(self, len: u32) -> Result<u32, Code> {
        if let Some(d) = self.dry {
            d.len = len;
        }
        Ok(self.crc)
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

/// What one run works on, handed to `put` (the raw loop's and the assembly inflater's sink
/// callback: one function, `Sink::chunk` inlined once). `repr(C)`: `res` first, where the
/// assembly inflater writes its results through the same pointer.
#[repr(C)]
struct Run<'a, 'd, F> {
    /// Written by the assembly inflater, on success only.
    res: MaybeUninit<[u32; 3]>,
    flash: &'a mut F,
    sector: &'a mut [u8; SECTOR_LEN],
    sink: Sink<'d>,
    err: Result<(), Code>,
}

/// One output chunk to `Sink::chunk`; nonzero to go on (else the error is in `err`).
unsafe extern "C" fn put<F: NorFlash>(ctx: *mut u32, data: *const u8, len: u32) -> u32 {
    // SAFETY: `ctx` is a `Run` not otherwise used while this runs (the raw loop's own, or
    // the one `produce` handed the inflater); `data[..len]` is a chunk (1..=4096 bytes)
    // of `Mem::input` or of the inflater's window.
    let (g, data) = unsafe { (&mut *(ctx as *mut Run<F>), core::slice::from_raw_parts(data, len as usize)) };
    g.err = g.sink.chunk(g.flash, g.sector, data);
    g.err.is_ok() as u32
}

/// Produces `job`'s output sector by sector and copies it to its destination, or with
/// `dry` only checks it (and sets `dry.len`). Returns the CRC of the output it does not
/// skip. Gzip input must end with its trailer.
#[inline(always)]
pub fn produce<F: NorFlash>(flash: &mut F, mem: &mut Mem, job: Job, dry: Option<&mut Dry>) -> Result<u32, Code> {
    let Job { src, len, gzip, dst, hole } = job;
    produce_fields(flash, mem, src, len, gzip, dst, hole, dry)
}

/// [`produce`] with the job's fields as arguments: on the device they travel in
/// registers, where a `Job` goes through memory (built in the caller's large frame).
#[allow(clippy::too_many_arguments)]
fn produce_fields<F: NorFlash>(flash: &mut F, mem: &mut Mem, src: u32, len: u32, gzip: bool, dst: u32, hole: u32, dry: Option<&mut Dry>) -> Result<u32, Code> {
    let job = Job { src, len, gzip, dst, hole };
    let Mem { inflate: st, input, sector } = mem;
    let sink = Sink { dry, addr: job.dst, hole: job.hole, crc: 0 };
    // The host (tests, simulator) runs the Rust inflater, the device the assembly one.
    #[cfg(not(target_arch = "xtensa"))]
    if job.gzip {
        return gunzip_rust(flash, st, input, sector, sink, job);
    }
    let mut g = Run { res: MaybeUninit::uninit(), flash, sector, sink, err: Ok(()) };
    let ctx = &mut g as *mut Run<F> as *mut u32;
    #[cfg(target_arch = "xtensa")]
    if job.gzip {
        // SAFETY: the inflater writes only `st` (its size checked with `eboot_gunzip`),
        // `input` (4096 bytes, word aligned as SPIRead needs: `Mem` is align(4)), `g.res`
        // and below our stack pointer (the call0 ABI's free stack), reads flash
        // [src, src + len) through the ROM, and calls `put` with `g` on our stack.
        return match unsafe { eboot_gunzip(job.src, job.len, input.as_mut_ptr(), st, put::<F>, ctx) } {
            // SAFETY: the inflater returned 0: it wrote its results. Nothing may follow the
            // trailer.
            0 if unsafe { g.res.assume_init_ref()[2] } == job.len => g.sink.finish(unsafe { g.res.assume_init_ref()[0] }),
            1 => Err(Code::GzipHeader),
            2 => Err(Code::GzipData),
            // 5: the sink's error.
            _ => g.err.and(Err(Code::GzipTrailer)),
        };
    }
    let (mut pos, end) = (job.src, job.src + job.len);
    while pos < end {
        flash::read(g.flash, pos, input)?;
        // SAFETY: `g` is ours, `input[..n]` readable.
        if unsafe { put::<F>(ctx, input.as_ptr(), (end - pos).min(SECTOR)) } == 0 {
            break;
        }
        pos += SECTOR;
    }
    // Ok unless `put` stopped the loop.
    g.err?;
    g.sink.finish(job.len)
}

/// The Rust inflater over a `FlashSource`.
#[cfg(not(target_arch = "xtensa"))]
fn gunzip_rust<F: NorFlash>(flash: &mut F, st: &mut inflate::State, input: &mut [u8; SECTOR_LEN], sector: &mut [u8; SECTOR_LEN], mut sink: Sink<'_>, job: Job) -> Result<u32, Code> {
    let cell = RefCell::new(flash);
    let mut src = FlashSource { flash: &cell, buf: input, pos: job.src, end: job.src + job.len };
    let mut err = Ok(());
    let r = inflate::gunzip(&mut src, st, |data: &[u8]| {
        err = match cell.try_borrow_mut() {
            Ok(mut fl) => sink.chunk(&mut **fl, sector, data),
            Err(_) => Err(Code::ReadFail),
        };
        err.is_ok()
    });
    match r {
        // Nothing may follow the trailer.
        Ok(g) if g.in_len == job.len => sink.finish(g.out_len),
        Err(inflate::Error::Header) => Err(Code::GzipHeader),
        Err(inflate::Error::Data) => Err(Code::GzipData),
        _ => err.and(Err(Code::GzipTrailer)),
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

/// Copies `job`'s output to its destination (compare-skip per sector); returns its CRC.
#[inline(always)]
pub fn copy<F: NorFlash>(flash: &mut F, mem: &mut Mem, job: Job) -> Result<u32, Code> {
    produce(flash, mem, job, None)
}

/// Makes the sector at `addr` hold `data` then 0xFF, its first `hole` bytes erased, and
/// reads it back. Leaves it alone when it already does.
fn put_sector<F: NorFlash>(flash: &mut F, scratch: &mut [u8; SECTOR_LEN], addr: u32, data: &[u8], hole: usize) -> Result<(), Code> {
    // `data` is at most a sector (a raw sector or one `inflate::CHUNK`).
    let n = data.len();
    let mut written = false;
    loop {
        flash::read(flash, addr, scratch)?;
        let same = scratch.iter().enumerate().all(|(k, &b)| b as u32 == if k < hole { 0xFF } else { data.get(k).map_or(0xFF, |&d| d as u32) });
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
