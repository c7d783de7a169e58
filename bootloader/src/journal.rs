//! The update journal: what an update is doing, in flash, so that it survives power cuts.
//!
//! A journal fills one free sector: an 84-byte header (21 words, CRC-protected), two fixed
//! step words (`COPIED`, `DONE`), then an append-only log of 32-bit entries for the trial
//! events only the extension image writes. Nothing is ever erased mid-update.
//!
//! - A fixed step word is programmed to 0 once its step is complete. Both steps before
//!   them are idempotent, so a torn program (some bits cleared) reads as "not yet": the step
//!   is redone and the word programmed again, which completes it. Tier 1 reads only these.
//! - A log entry holds a 16-bit tag and its complement, so a torn program reads as invalid
//!   and is skipped; the log ends at the first erased word.
//!
//! The bootloader looks for journals (at sector starts) only when the app at 0x1000 does
//! not validate: an update borrows that sector, so a device mid-update never boots an app.
//! The newest journal (highest sequence number) wins; it is live until it logs `DONE`.

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use crate::crc;
use crate::flash::{self, SECTOR};
use crate::report::Code;

pub const MAGIC: u32 = 0x4A52_4245; // "EBRJ"
pub const HEADER_LEN: u32 = 84;
/// The fixed step words: `COPIED` at `STEPS`, `DONE` at `STEPS + 4`.
pub const STEPS: u32 = HEADER_LEN;
/// Where the append-only log starts.
pub const LOG: u32 = HEADER_LEN + 8;
/// Header words.
pub const WORDS: usize = 21;

/// `flags`: the staged image is gzip.
pub const F_GZIP: u32 = 1 << 16;
/// `flags`: filesystem update (destination is not the app).
pub const F_FS: u32 = 1 << 17;
/// `flags`: trial boot; roll back unless confirmed. Bits 24..32: allowed boots.
pub const F_TRIAL: u32 = 1 << 18;

/// Log entry: the trial's backup of the old app is complete. (A filesystem update's backup
/// of 0x1000 needs none: nothing changes that sector before `COPIED`, so redoing it is
/// idempotent.)
pub const L_BACKED_UP: u32 = 0;
/// Fixed step: every destination sector is written and verified (only the final header,
/// or the restore of 0x1000, remains).
pub const L_COPIED: u32 = 1;
/// Fixed step: the update is finished; the journal is dead.
pub const L_DONE: u32 = 2;
/// Log entry: the app confirmed it works (written by the app through `confirm`).
pub const L_CONFIRMED: u32 = 3;
/// Log entry: rollback to the backup started.
pub const L_ROLLBACK: u32 = 4;
/// Log entry: one trial boot of the new app (may repeat).
pub const L_TRIAL_BOOT: u32 = 5;

/// The journal header, as words.
///
/// | word | field |
/// |---|---|
/// | 0 | `MAGIC` |
/// | 1 | sequence number |
/// | 2, 3 | staged source, length |
/// | 4 | destination base: output byte `o` goes to `dst + o` |
/// | 5 | output length |
/// | 6 | CRC-32 (ISO-HDLC) of the bytes the destination must hold |
/// | 7 | flags |
/// | 8, 9 | backup address, backup length |
/// | 10..=13 | the new app's first 16 bytes, programmed last |
/// | 14..=17 | the old app's first 16 bytes (restored last on rollback or after a filesystem update) |
/// | 18 | extension image address (0: a tier-1 update, no extension) |
/// | 19 | CRC-32 (ISO-HDLC) of the extension image |
/// | 20 | CRC-32/MPEG-2 of words 0..=19 |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journal {
    /// Flash address (a sector start).
    pub addr: u32,
    pub w: [u32; WORDS],
}

pub const SEQ: usize = 1;
pub const SRC: usize = 2;
pub const LEN: usize = 3;
pub const DST: usize = 4;
pub const OUT_LEN: usize = 5;
pub const CRC: usize = 6;
pub const FLAGS: usize = 7;
pub const BACKUP: usize = 8;
pub const BACKUP_LEN: usize = 9;
pub const HEAD: usize = 10;
pub const OLD_HEAD: usize = 14;
pub const EXT_ADDR: usize = 18;
pub const EXT_CRC: usize = 19;
const CRC_WORD: usize = 20;

impl Journal {
    pub fn flags(&self) -> u32 {
        self.w[FLAGS]
    }

    /// The journal whose header is at `addr`, if there is a valid one.
    pub fn read<F: ReadNorFlash>(f: &mut F, addr: u32) -> Option<Journal> {
        let mut w = [0u32; WORDS];
        if !load(f, addr, &mut w) {
            return None;
        }
        Some(Journal { addr, w })
    }
}

/// Programs header words `w` at `addr` (the sector must be erased); completes magic and
/// CRC first. (Words in a caller's buffer, as for [`load`].)
pub fn write<F: NorFlash>(f: &mut F, addr: u32, w: &mut [u32; WORDS]) -> Result<(), Code> {
    w[0] = MAGIC;
    w[CRC_WORD] = crc::mpeg2(&w[..CRC_WORD]);
    flash::write_words(f, addr, w)
}

/// Reads the header at `addr` into `w`; true if it is a valid journal header. (Words in a
/// caller's buffer: a `Journal` returned by value is copied through memory on the device.)
pub fn load<F: ReadNorFlash>(f: &mut F, addr: u32, w: &mut [u32; WORDS]) -> bool {
    flash::read_words(f, addr, w).is_ok() && w[0] == MAGIC && crc::mpeg2(&w[..CRC_WORD]) == w[CRC_WORD]
}

/// What the log says: bit `tag` set for every tag seen, trial boots counted, and where
/// the next entry goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct State {
    pub tags: u32,
    pub trial_boots: u32,
    pub next: u32,
}

impl State {
    pub fn has(&self, tag: u32) -> bool {
        self.tags & (1 << tag) != 0
    }
}

/// Reads the step words and, with `EXT` (the extension image: trial events), the log of
/// the journal at `addr`.
pub fn state<F: ReadNorFlash, const EXT: bool>(f: &mut F, addr: u32) -> Result<State, Code> {
    let mut b = [!0u32; 2];
    flash::read_words(f, addr + STEPS, &mut b)?;
    let mut st = State { tags: ((b[0] == 0) as u32) << L_COPIED | ((b[1] == 0) as u32) << L_DONE, trial_boots: 0, next: addr + LOG };
    while EXT && st.next < addr + SECTOR {
        let mut b = [0u32];
        flash::read_words(f, st.next, &mut b)?;
        let w = b[0];
        if w == u32::MAX {
            break;
        }
        st.next += 4;
        // A torn entry is not its tag plus complement: skipped.
        if w >> 16 == !w & 0xFFFF && w & 0xFFFF < 16 {
            st.tags |= 1 << (w & 15);
            st.trial_boots += (w & 0xFFFF == L_TRIAL_BOOT) as u32;
        }
    }
    Ok(st)
}

/// Marks step `L_COPIED` or `L_DONE` complete (its fixed word programmed to 0).
pub fn step<F: NorFlash>(f: &mut F, addr: u32, tag: u32) -> Result<(), Code> {
    flash::write_words(f, addr + STEPS + (tag - L_COPIED) * 4, &[0])
}

/// Appends a trial event to the log. Only `st.next` moves: no caller reads `tags` or
/// `trial_boots` after logging (the boot flow decides from the state it read first).
pub fn log<F: NorFlash>(f: &mut F, st: &mut State, tag: u32) -> Result<(), Code> {
    if st.next.is_multiple_of(SECTOR) {
        return Err(Code::NoSpace);
    }
    flash::write_words(f, st.next, &[tag | (!tag << 16)])?;
    st.next += 4;
    Ok(())
}

/// Looks at every sector start from 0x2000 for a journal header. Returns the address of
/// the newest journal (0 if none) and the highest sequence number seen (0 if none).
pub fn search<F: ReadNorFlash>(f: &mut F) -> (u32, u32) {
    let mut best = 0;
    let mut seq = 0;
    let mut w = [0u32; WORDS];
    let mut a = 2 * SECTOR;
    while a < f.capacity() as u32 {
        if load(f, a, &mut w) && w[SEQ] >= seq {
            seq = w[SEQ];
            best = a;
        }
        a += SECTOR;
    }
    (best, seq)
}

/// Whether the newest journal is a trial update not yet ended (neither made permanent nor
/// rolled back): its backup of the old app and its extension image lie in free flash that
/// a new update would stage over, so nothing may be staged until it ends.
pub fn trial_pending<F: ReadNorFlash>(f: &mut F) -> bool {
    let a = search(f).0;
    a != 0
        && Journal::read(f, a).is_some_and(|j| j.flags() & F_TRIAL != 0)
        && state::<F, true>(f, a).is_ok_and(|s| !s.has(L_DONE))
}

/// Marks the trial of the update journaled at `addr` as confirmed: the next boot makes
/// the new app permanent. This is what an app does (through `updater`) once it works.
pub fn confirm<F: NorFlash>(f: &mut F, addr: u32) -> Result<(), Code> {
    let j = Journal::read(f, addr).ok_or(Code::NoApp)?;
    let mut st = state::<F, true>(f, addr)?;
    if j.flags() & F_TRIAL == 0 || st.has(L_DONE) || st.has(L_ROLLBACK) {
        return Err(Code::BadAction);
    }
    if st.has(L_CONFIRMED) {
        return Ok(());
    }
    log(f, &mut st, L_CONFIRMED)
}
