//! The update journal: what an update is doing, in flash, so that it survives power cuts.
//!
//! A journal is a 64-byte header (16 words, CRC-protected) followed by an append-only log
//! of 32-bit entries, in an area no update step touches (a free sector, or the erased tail
//! of the last staging sector). Entries are only ever programmed into erased words, never
//! erased mid-update. Each entry holds a 16-bit value and its complement, so a torn
//! program reads as invalid and is skipped.
//!
//! The bootloader finds a journal by scanning flash when the app at 0x1000 does not
//! validate (the update borrows that sector, so a device mid-update never boots an app).
//! The newest journal (highest sequence number) wins; it is live until it logs `DONE`.

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use crate::command::CRC32_MPEG2;
use crate::flash::{self, Words, SECTOR};
use crate::report::Code;

pub const MAGIC: u32 = 0x4A52_4245; // "EBRJ"
pub const HEADER_LEN: u32 = 64;
/// Smallest journal area: header plus room for the log of any update.
pub const MIN_AREA: u32 = HEADER_LEN + 64;

/// `flags`: the staged image is gzip.
pub const F_GZIP: u32 = 1 << 16;
/// `flags`: filesystem update (destination is not the app).
pub const F_FS: u32 = 1 << 17;
/// `flags`: trial boot; roll back unless confirmed. Bits 24..32: allowed boots.
pub const F_TRIAL: u32 = 1 << 18;
/// `flags`: install the image's sector 0 too.
pub const F_SECTOR0: u32 = 1 << 19;

/// Log entry: the backup (old app, or the borrowed 0x1000 sector) is complete.
pub const L_BACKED_UP: u16 = 0xF001;
/// Log entry: every destination sector is written and verified (only the final header,
/// or the restore of 0x1000, remains).
pub const L_COPIED: u16 = 0xF002;
/// Log entry: the update is finished; the journal is dead.
pub const L_DONE: u16 = 0xF003;
/// Log entry: one trial boot of the new app.
pub const L_TRIAL_BOOT: u16 = 0xF004;
/// Log entry: the app confirmed it works (written by the app through `updater`).
pub const L_CONFIRMED: u16 = 0xF005;
/// Log entry: rollback to the backup started.
pub const L_ROLLBACK: u16 = 0xF006;
/// Log values below this are "about to write destination sector N" progress marks.
pub const L_PROGRESS_LIMIT: u16 = 0xF000;

/// The journal header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Journal {
    /// Flash address of the header.
    pub addr: u32,
    pub seq: u32,
    /// Staged image.
    pub src: u32,
    pub len: u32,
    /// Destination base: output byte `o` goes to `dst + o`.
    pub dst: u32,
    /// Output bytes (the inflated length for gzip).
    pub out_len: u32,
    /// CRC-32 (ISO-HDLC) of the output bytes written to the destination.
    pub crc: u32,
    pub flags: u32,
    /// Backup area (old app for trial updates, the 0x1000 sector for filesystem updates).
    pub backup: u32,
    /// Bytes backed up.
    pub backup_len: u32,
    /// The new app's first 16 bytes, programmed last.
    pub head: [u8; 16],
    /// End of the journal area (the log may grow up to here).
    pub end: u32,
}

impl Journal {
    fn words(&self) -> [u32; 16] {
        let h = |i: usize| u32::from_le_bytes([self.head[i], self.head[i + 1], self.head[i + 2], self.head[i + 3]]);
        let mut w = [
            MAGIC, self.seq, self.src, self.len, self.dst, self.out_len, self.crc, self.flags,
            self.backup, self.backup_len, h(0), h(4), h(8), h(12), self.end, 0,
        ];
        w[15] = crc_words(&w);
        w
    }

    fn from_words(addr: u32, w: &[u32; 16]) -> Option<Journal> {
        if w[0] != MAGIC || crc_words(w) != w[15] {
            return None;
        }
        let mut head = [0; 16];
        for i in 0..4 {
            head[i * 4..i * 4 + 4].copy_from_slice(&w[10 + i].to_le_bytes());
        }
        Some(Journal {
            addr,
            seq: w[1],
            src: w[2],
            len: w[3],
            dst: w[4],
            out_len: w[5],
            crc: w[6],
            flags: w[7],
            backup: w[8],
            backup_len: w[9],
            head,
            end: w[14],
        })
    }

    /// Unconfirmed trial boots allowed.
    pub fn trial_boots(&self) -> u32 {
        self.flags >> 24
    }

    /// Programs the header (the area must be erased).
    pub fn write<F: NorFlash>(&self, f: &mut F) -> Result<(), Code> {
        let w = self.words();
        let mut b = Words::<64>::new();
        for (i, v) in w.iter().enumerate() {
            b.0[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        flash::write(f, self.addr, &b.0)
    }

    /// Reads a header at `addr`, if one is there.
    pub fn read<F: ReadNorFlash>(f: &mut F, addr: u32) -> Option<Journal> {
        let mut b = Words::<64>::new();
        flash::read(f, addr, &mut b.0).ok()?;
        let mut w = [0u32; 16];
        for (i, v) in w.iter_mut().enumerate() {
            *v = b.word(i);
        }
        Journal::from_words(addr, &w)
    }
}

fn crc_words(w: &[u32; 16]) -> u32 {
    let mut d = CRC32_MPEG2.digest();
    for v in &w[..15] {
        d.update(&v.to_le_bytes());
    }
    d.finalize()
}

/// What the log says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct State {
    /// Bit `t - 0xF000` set for every tag entry `t` seen.
    pub tags: u32,
    /// Last progress mark + 1 (0: none).
    pub progress: u32,
    pub trial_boots: u32,
    /// Address of the next free log word.
    pub next: u32,
}

impl State {
    pub fn has(&self, tag: u16) -> bool {
        self.tags & (1 << (tag & 31)) != 0
    }
}

/// Reads the log of `j`.
pub fn state<F: ReadNorFlash>(f: &mut F, j: &Journal) -> Result<State, Code> {
    let mut st = State { next: j.addr + HEADER_LEN, ..State::default() };
    let mut pos = j.addr + HEADER_LEN;
    let mut b = Words::<4>::new();
    while pos < j.end {
        flash::read(f, pos, &mut b.0)?;
        let w = b.word(0);
        pos += 4;
        if w == u32::MAX {
            continue;
        }
        st.next = pos;
        let v = w as u16;
        if (w >> 16) as u16 != !v {
            continue; // torn entry
        }
        if v < L_PROGRESS_LIMIT {
            st.progress = v as u32 + 1;
        } else {
            st.tags |= 1 << (v & 31);
            if v == L_TRIAL_BOOT {
                st.trial_boots += 1;
            }
        }
    }
    Ok(st)
}

/// Appends one entry to the log.
pub fn log<F: NorFlash>(f: &mut F, j: &Journal, st: &mut State, v: u16) -> Result<(), Code> {
    if st.next + 4 > j.end {
        return Err(Code::NoSpace);
    }
    let w = (v as u32) | ((!v as u32) << 16);
    let b = Words::<4>(w.to_le_bytes());
    flash::write(f, st.next, &b.0)?;
    st.next += 4;
    match v {
        L_TRIAL_BOOT => st.trial_boots += 1,
        _ if v < L_PROGRESS_LIMIT => st.progress = v as u32 + 1,
        _ => st.tags |= 1 << (v & 31),
    }
    Ok(())
}

/// Scans flash from 0x2000 for journal headers (16-byte aligned). Returns the newest
/// journal and the highest sequence number seen (0 if none). `buf` is scratch.
pub fn search<F: ReadNorFlash>(
    f: &mut F,
    buf: &mut [u8; SECTOR as usize],
) -> (Option<Journal>, u32) {
    let cap = f.capacity() as u32;
    let mut best: Option<Journal> = None;
    let mut seq = 0;
    let mut sector = 2 * SECTOR;
    while sector + SECTOR <= cap {
        if flash::read(f, sector, buf).is_ok() {
            let mut i = 0;
            while i < SECTOR {
                let at = |k: usize| buf.get(k).copied().unwrap_or(0);
                let k = i as usize;
                if u32::from_le_bytes([at(k), at(k + 1), at(k + 2), at(k + 3)]) == MAGIC {
                    if let Some(j) = Journal::read(f, sector + i) {
                        if j.seq >= seq {
                            seq = j.seq;
                            best = Some(j);
                        }
                    }
                }
                i += 16;
            }
        }
        sector += SECTOR;
    }
    (best, seq)
}

/// Marks the trial of the update journaled at `addr` as confirmed: the next boot makes
/// the new app permanent. This is what an app does (through `updater`) once it works.
pub fn confirm<F: NorFlash>(f: &mut F, addr: u32) -> Result<(), Code> {
    let j = Journal::read(f, addr).ok_or(Code::NoApp)?;
    let mut st = state(f, &j)?;
    if j.flags & F_TRIAL == 0 || st.has(L_DONE) || st.has(L_ROLLBACK) {
        return Err(Code::BadAction);
    }
    if st.has(L_CONFIRMED) {
        return Ok(());
    }
    log(f, &j, &mut st, L_CONFIRMED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_crc() {
        let j = Journal { addr: 0x5000, seq: 7, src: 0x80000, len: 1234, dst: 0, out_len: 5000, crc: 0xABCD, flags: F_GZIP | F_TRIAL | (3 << 24), backup: 0x60000, backup_len: 8192, head: [9; 16], end: 0x6000 };
        let w = j.words();
        assert_eq!(Journal::from_words(0x5000, &w), Some(j));
        for i in 0..16 {
            let mut bad = w;
            bad[i] ^= 1;
            assert_eq!(Journal::from_words(0x5000, &bad), None);
        }
        assert_eq!(j.trial_boots(), 3);
    }
}
