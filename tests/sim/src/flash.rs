//! SPI NOR flash with the fault model of design.md.
//!
//! - Erase sets a 4 KiB sector to 0xFF; program only clears bits (new = old AND data) on
//!   4-byte-aligned addresses and lengths. Programming a 1 over a 0 cannot be done: it is an
//!   error and changes nothing (re-programming identical bits is fine).
//! - Out-of-range or unaligned accesses are errors (the strictest plausible ROM rule).
//! - Power cuts are scheduled by *mutation index*: every erase of one sector and every
//!   program call that is attempted while powered gets the next index (counted across
//!   power-ons, so a cut can land in recovery). A cut fires before the operation (nothing
//!   happens) or inside it (partial effect). From then on every operation fails without
//!   effect until [`Flash::power_on`].

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::rng::Rng;

pub const SECTOR: usize = 4096;

/// How a power cut lands on the operation with index `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CutKind {
    /// The operation never starts.
    Before,
    /// The operation is interrupted. Erase: `variant` 0 = a prefix of the sector erased,
    /// the rest old; otherwise scattered bytes (0xFF, old, or arbitrary). Program: a
    /// byte prefix is programmed (variant ignored). Lengths/bytes come from `Cut::seed`.
    Inside(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cut {
    pub at: u64,
    pub kind: CutKind,
    pub seed: u64,
}

impl Cut {
    pub fn before(at: u64) -> Cut {
        Cut { at, kind: CutKind::Before, seed: 0 }
    }
    pub fn inside(at: u64, variant: u8, seed: u64) -> Cut {
        Cut { at, kind: CutKind::Inside(variant), seed }
    }

    /// `b12`, `i12.0.77` (index, variant, seed): the reproducer syntax of the sweep binary.
    pub fn spec(&self) -> String {
        match self.kind {
            CutKind::Before => format!("b{}", self.at),
            CutKind::Inside(v) => format!("i{}.{}.{}", self.at, v, self.seed),
        }
    }

    pub fn parse(s: &str) -> Option<Cut> {
        if let Some(n) = s.strip_prefix('b') {
            return Some(Cut::before(n.parse().ok()?));
        }
        let mut it = s.strip_prefix('i')?.split('.');
        let at = it.next()?.parse().ok()?;
        let v = it.next().unwrap_or("0").parse().ok()?;
        let seed = it.next().unwrap_or("0").parse().ok()?;
        Some(Cut::inside(at, v, seed))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashError {
    NotAligned,
    OutOfBounds,
    /// Program would have to set a bit from 0 to 1.
    NotErased,
    /// The power is gone (a cut fired); nothing happens until the next power-on.
    PowerLost,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// Operation counters (whole life of this `Flash`, reset with [`Flash::reset_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sector erases completed (a cut erase is not counted).
    pub erases: u64,
    /// Program calls completed.
    pub programs: u64,
    pub bytes_programmed: u64,
    pub reads: u64,
    pub bytes_read: u64,
    /// Errors the caller caused (not power loss): unaligned, out of range, 0→1 program.
    pub misaligned: u64,
    pub out_of_bounds: u64,
    pub not_erased: u64,
}

impl Stats {
    pub fn caller_errors(&self) -> u64 {
        self.misaligned + self.out_of_bounds + self.not_erased
    }
}

pub struct Flash {
    mem: Vec<u8>,
    /// Pending cuts, sorted by `at` descending (next one last).
    cuts: Vec<Cut>,
    /// Cuts that fired.
    fired: Vec<Cut>,
    /// Mutation attempts made while powered (the cut index space).
    ops: u64,
    powered: bool,
    stats: Stats,
    /// Per sector: ever erased (or partly erased) / ever programmed (or partly).
    erased: Vec<bool>,
    programmed: Vec<bool>,
    /// Kind of every mutation attempt, by index: true = sector erase, false = program.
    op_erase: Vec<bool>,
    /// Reads made while powered (the read-cut index space), pending read cuts (sorted
    /// descending, next one last) and how many fired. A cut at a read changes nothing in
    /// flash; it stops the boot there, like a power failure while the CPU only reads.
    reads: u64,
    read_cuts: Vec<u64>,
    fired_reads: usize,
}

impl Flash {
    /// A chip of `size` bytes (multiple of 4 KiB), all erased.
    pub fn new(size: usize) -> Flash {
        Flash::from_image(&vec![0xFF; size])
    }

    /// A chip holding `image` (its length is the chip size, a multiple of 4 KiB).
    pub fn from_image(image: &[u8]) -> Flash {
        assert!(image.len().is_multiple_of(SECTOR) && !image.is_empty(), "chip size");
        let sectors = image.len() / SECTOR;
        Flash {
            mem: image.to_vec(),
            cuts: Vec::new(),
            fired: Vec::new(),
            ops: 0,
            powered: true,
            stats: Stats::default(),
            erased: vec![false; sectors],
            programmed: vec![false; sectors],
            op_erase: Vec::new(),
            reads: 0,
            read_cuts: Vec::new(),
            fired_reads: 0,
        }
    }

    /// Back to `image` (same size) with no cuts, counters and marks cleared: lets one
    /// allocation serve many runs.
    pub fn reset_to(&mut self, image: &[u8]) {
        assert_eq!(image.len(), self.mem.len());
        self.mem.copy_from_slice(image);
        self.cuts.clear();
        self.fired.clear();
        self.ops = 0;
        self.op_erase.clear();
        self.powered = true;
        self.stats = Stats::default();
        self.erased.iter_mut().for_each(|x| *x = false);
        self.programmed.iter_mut().for_each(|x| *x = false);
        self.reads = 0;
        self.read_cuts.clear();
        self.fired_reads = 0;
    }

    /// Schedules power cuts at read indices (replacing any pending ones).
    pub fn set_read_cuts(&mut self, cuts: &[u64]) {
        self.read_cuts = cuts.to_vec();
        self.read_cuts.sort_by_key(|&c| std::cmp::Reverse(c));
    }
    /// Reads so far (the index the next one gets).
    pub fn reads(&self) -> u64 {
        self.reads
    }
    /// Read cuts that fired.
    pub fn fired_reads(&self) -> usize {
        self.fired_reads
    }

    pub fn data(&self) -> &[u8] {
        &self.mem
    }
    /// Direct access for building scenarios (not counted, no fault model).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }
    pub fn size(&self) -> usize {
        self.mem.len()
    }

    /// Schedules power cuts (replacing any pending ones).
    pub fn set_cuts(&mut self, cuts: &[Cut]) {
        self.cuts = cuts.to_vec();
        self.cuts.sort_by_key(|c| std::cmp::Reverse(c.at));
    }
    pub fn fired(&self) -> &[Cut] {
        &self.fired
    }
    pub fn pending(&self) -> usize {
        self.cuts.len()
    }
    /// Mutation attempts so far (the index the next one gets).
    pub fn ops(&self) -> u64 {
        self.ops
    }
    /// Whether mutation attempt `i` was a sector erase (else a program).
    pub fn op_is_erase(&self, i: u64) -> bool {
        self.op_erase.get(i as usize).copied().unwrap_or(false)
    }
    pub fn powered(&self) -> bool {
        self.powered
    }
    /// Power comes back (after a cut the flash keeps its contents; RTC is the caller's).
    pub fn power_on(&mut self) {
        self.powered = true;
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }
    /// Whether any byte of `[from, to)` was erased or programmed (even partly) since the
    /// last reset (sector granularity).
    pub fn touched(&self, from: u64, to: u64) -> bool {
        let s0 = (from / SECTOR as u64) as usize;
        let s1 = to.div_ceil(SECTOR as u64).min(self.erased.len() as u64) as usize;
        (s0..s1).any(|s| self.erased[s] || self.programmed[s])
    }
    pub fn any_touched(&self) -> bool {
        self.touched(0, self.mem.len() as u64)
    }

    /// Takes the next mutation index; returns the cut that lands on it, if any.
    fn next_op(&mut self, erase: bool) -> Option<Cut> {
        let i = self.ops;
        self.op_erase.push(erase);
        self.ops += 1;
        // Cuts scheduled at an index already passed (e.g. duplicates) are dropped unfired.
        while self.cuts.last().is_some_and(|c| c.at < i) {
            self.cuts.pop();
        }
        if self.cuts.last().is_some_and(|c| c.at == i) {
            let c = self.cuts.pop()?;
            self.fired.push(c);
            self.powered = false;
            return Some(c);
        }
        None
    }

    fn check(&mut self, off: u32, len: usize) -> Result<usize, FlashError> {
        if !self.powered {
            return Err(FlashError::PowerLost);
        }
        let off = off as usize;
        if !off.is_multiple_of(4) || !len.is_multiple_of(4) {
            self.stats.misaligned += 1;
            return Err(FlashError::NotAligned);
        }
        if off.checked_add(len).is_none_or(|end| end > self.mem.len()) {
            self.stats.out_of_bounds += 1;
            return Err(FlashError::OutOfBounds);
        }
        Ok(off)
    }

    fn erase_sector(&mut self, s: usize) -> Result<(), FlashError> {
        let range = s * SECTOR..(s + 1) * SECTOR;
        match self.next_op(true) {
            None => {
                self.mem[range].fill(0xFF);
                self.erased[s] = true;
                self.stats.erases += 1;
                Ok(())
            }
            Some(Cut { kind: CutKind::Before, .. }) => Err(FlashError::PowerLost),
            Some(Cut { kind: CutKind::Inside(variant), seed, .. }) => {
                let mut rng = Rng::new(seed ^ 0xE7A5E);
                let sec = &mut self.mem[range];
                if variant == 0 {
                    // Prefix erased, rest untouched: at least one byte each way.
                    let n = rng.range(1, SECTOR as u64) as usize;
                    sec[..n].fill(0xFF);
                } else {
                    for b in sec.iter_mut() {
                        match rng.below(3) {
                            0 => *b = 0xFF,
                            1 => {}
                            _ => *b = rng.byte(),
                        }
                    }
                }
                self.erased[s] = true;
                Err(FlashError::PowerLost)
            }
        }
    }

    fn program(&mut self, off: usize, data: &[u8]) -> Result<(), FlashError> {
        let cur = &self.mem[off..off + data.len()];
        if cur.iter().zip(data).any(|(o, d)| d & !o != 0) {
            // Checked before the op is counted: an impossible program is a caller bug,
            // reported without effect and without consuming a cut point.
            self.stats.not_erased += 1;
            return Err(FlashError::NotErased);
        }
        let n = match self.next_op(false) {
            None => data.len(),
            Some(Cut { kind: CutKind::Before, .. }) => return Err(FlashError::PowerLost),
            Some(Cut { seed, .. }) => {
                // A byte prefix, possibly ending mid-word; never all of it.
                Rng::new(seed ^ 0x960).below(data.len().max(1) as u64) as usize
            }
        };
        for (m, d) in self.mem[off..off + n].iter_mut().zip(data) {
            *m &= d;
        }
        if n > 0 {
            let first = off / SECTOR;
            let last = (off + n - 1) / SECTOR;
            self.programmed[first..=last].iter_mut().for_each(|x| *x = true);
        }
        if self.powered {
            self.stats.programs += 1;
            self.stats.bytes_programmed += data.len() as u64;
            Ok(())
        } else {
            Err(FlashError::PowerLost)
        }
    }
}

impl ErrorType for Flash {
    type Error = FlashError;
}

impl ReadNorFlash for Flash {
    const READ_SIZE: usize = 4;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        if self.powered {
            let i = self.reads;
            self.reads += 1;
            while self.read_cuts.last().is_some_and(|&c| c < i) {
                self.read_cuts.pop();
            }
            if self.read_cuts.last() == Some(&i) {
                self.read_cuts.pop();
                self.fired_reads += 1;
                self.powered = false;
            }
        }
        let off = self.check(offset, bytes.len())?;
        bytes.copy_from_slice(&self.mem[off..off + bytes.len()]);
        self.stats.reads += 1;
        self.stats.bytes_read += bytes.len() as u64;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for Flash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        if !self.powered {
            return Err(FlashError::PowerLost);
        }
        if !from.is_multiple_of(SECTOR as u32) || !to.is_multiple_of(SECTOR as u32) || to < from {
            self.stats.misaligned += 1;
            return Err(FlashError::NotAligned);
        }
        if to as usize > self.mem.len() {
            self.stats.out_of_bounds += 1;
            return Err(FlashError::OutOfBounds);
        }
        // One mutation index per sector: a multi-sector erase can be cut between sectors.
        for s in from as usize / SECTOR..to as usize / SECTOR {
            self.erase_sector(s)?;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let off = self.check(offset, bytes.len())?;
        if bytes.is_empty() {
            return Ok(());
        }
        self.program(off, bytes)
    }
}
