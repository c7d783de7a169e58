//! The boot flow, top to bottom: read the command, validate (dry run), journal, copy,
//! verify, report, boot. `docs/protocol.md` describes the protocol and why it is safe.

use embedded_storage::nor_flash::NorFlash;

use crate::command::{self, Command, ACTION_COPY_RAW, EXT_CRC, EXT_KNOWN, EXT_TRIAL, EXT_WORK};
use crate::copy::{self, Job, CRC32};
use crate::flash::{self, round_up, Words, SECTOR};
use crate::image::APP_OFFSET;
use crate::inflate::WINDOW;
use crate::journal::{self, Journal, State, F_FS, F_GZIP, F_TRIAL};
use crate::journal::{L_BACKED_UP, L_CONFIRMED, L_COPIED, L_DONE, L_ROLLBACK, L_TRIAL_BOOT};
use crate::loader::{self, App, Walker};
use crate::platform::Platform;
use crate::report::{Code, Event, Report};

/// RAM the bootloader needs, supplied by the caller (the device layer puts it in DRAM).
/// Word aligned: the ROM's SPIRead/SPIWrite move words.
#[repr(C, align(4))]
pub struct Mem {
    /// Inflate history; raw copies use it as the sector buffer.
    pub window: [u8; WINDOW],
    /// Staged gzip input.
    pub input: [u8; SECTOR as usize],
    /// Destination reads (compare, verify, search).
    pub sector: [u8; SECTOR as usize],
}

impl Mem {
    pub const fn new() -> Mem {
        Mem { window: [0; WINDOW], input: [0; SECTOR as usize], sector: [0; SECTOR as usize] }
    }
}

impl Default for Mem {
    fn default() -> Self {
        Self::new()
    }
}

/// What the device layer does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boot {
    /// Load this app's segments and jump to its entry.
    App(App),
    /// Nothing bootable: report, then reset.
    Halt(Code),
}

/// One power-on of the bootloader: handles a command or an interrupted update, writes the
/// boot report, and says what to boot. Never panics; every flash error ends in `Halt`.
pub fn boot<F: NorFlash, P: Platform>(flash: &mut F, p: &mut P, mem: &mut Mem) -> Boot {
    // After a power-on RTC memory is garbage: a command there is never trusted.
    let cmd = if p.cold_boot() { None } else { read_command(p) };
    let mut rep = Report { event: Event::Nothing as u32, code: 0, journal: 0, trial_left: 0 };
    let r = run(flash, mem, cmd, &mut rep);
    if let Err(c) = r {
        rep.code = c as u32;
    }
    // The report overwrites the command block: a handled command is cleared either way.
    rep.write(p);
    match r {
        Ok(app) => Boot::App(app),
        Err(c) => Boot::Halt(c),
    }
}

fn read_command<P: Platform>(p: &P) -> Option<Command> {
    let mut w = [0u32; command::WORDS];
    for (i, v) in w.iter_mut().enumerate() {
        *v = p.rtc_read(i);
    }
    Command::decode(&w)
}

fn run<F: NorFlash>(flash: &mut F, mem: &mut Mem, cmd: Option<Command>, rep: &mut Report) -> Result<App, Code> {
    let head = loader::head(flash, APP_OFFSET)?;
    match loader::validate(flash, APP_OFFSET, &head, &mut mem.sector) {
        Ok(app) => {
            if let Some(cmd) = cmd.filter(|c| c.action == ACTION_COPY_RAW) {
                match start(flash, mem, &cmd, &app) {
                    Ok(j) => {
                        rep.event = Event::Applied as u32;
                        rep.journal = j.addr;
                        return finish(flash, mem, &j, rep);
                    }
                    Err(c) => {
                        rep.event = Event::Rejected as u32;
                        rep.code = c as u32;
                    }
                }
            }
            Ok(app)
        }
        // No valid app: an update borrowed 0x1000 (interrupted, or in trial).
        Err(_) => {
            let (j, _) = journal::search(flash, &mut mem.sector);
            let j = j.ok_or(Code::NoApp)?;
            rep.event = Event::Resumed as u32;
            rep.journal = j.addr;
            finish(flash, mem, &j, rep)
        }
    }
}

/// Validates a command against flash (no writes until everything checks out), then
/// writes its journal. From the journal on, the update is committed.
fn start<F: NorFlash>(flash: &mut F, mem: &mut Mem, cmd: &Command, app: &App) -> Result<Journal, Code> {
    let (src, dst, len) = (cmd.src(), cmd.dst(), cmd.len());
    let cap = flash.capacity() as u32;
    if cmd.ext & !EXT_KNOWN & 0xFFF != 0 || cmd.ext & command::EXT_SECTOR0 != 0 {
        return Err(Code::BadExtension);
    }
    if (src | dst) % SECTOR != 0 {
        return Err(Code::Misaligned);
    }
    if len == 0 {
        return Err(Code::Empty);
    }
    if src >= cap || len > cap - src || dst >= cap {
        return Err(Code::OutOfRange);
    }
    let fs = dst != 0;
    let trial = cmd.ext & EXT_TRIAL != 0;
    let app_end = round_up(APP_OFFSET + app.len);
    // The staged image never overlaps the running app (the Updater guarantees it), and a
    // filesystem goes above its staged copy.
    if src < app_end || (fs && dst < round_up(src + len)) {
        return Err(Code::Overlap);
    }
    if fs && trial {
        return Err(Code::BadExtension);
    }
    let mut magic = Words::<4>::new();
    flash::read(flash, src, &mut magic.0)?;
    let gzip = magic.0[0] == 0x1F && magic.0[1] == 0x8B;

    // Dry run over the whole staged image.
    let first = if fs { 0 } else { 1 };
    // Gzip output must not reach the staged input at all: a resumed copy inflates again
    // from the start. Raw sketches may overlap (copied forward, progress journaled).
    let limit = if fs { cap } else if gzip { src } else { src + len };
    let mut crc = CRC32.digest();
    let mut walk = Walker::new();
    let mut head = [0xFFu8; 16];
    let job = Job { src, len, gzip, dst, first, hole: 0 };
    let out = copy::produce(flash, mem, &job, &mut |_, _, i, chunk| {
        if chunk.len() as u32 > limit.saturating_sub(dst + i * SECTOR) {
            return Err(Code::TooBig);
        }
        if i >= first {
            crc.update(chunk);
            if !fs {
                if i == 1 {
                    for (h, b) in head.iter_mut().zip(chunk) {
                        *h = *b;
                    }
                }
                walk.feed(chunk);
            }
        }
        Ok(())
    })?;
    if out.consumed != len {
        return Err(Code::GzipTrailer);
    }
    if !fs && walk.valid().is_none() {
        return Err(Code::BadImage);
    }
    let crc = crc.finalize();
    if cmd.ext & EXT_CRC != 0 && cmd.args[5] != crc {
        return Err(Code::CrcMismatch);
    }

    // Place the backup and the journal in free flash: above what stays or is written low
    // (the running app, a new sketch) and outside the staged image and the destination.
    let low = if fs { app_end } else { app_end.max(round_up(out.len)) };
    let free = |a: u32, n: u32| {
        a % SECTOR == 0
            && a >= low
            && n <= cap.saturating_sub(a)
            && disjoint(a, n, src, round_up(len))
            && disjoint(a, n, dst, round_up(out.len))
    };
    let backup_len = if fs { SECTOR } else if trial { app.len } else { 0 };
    let need = round_up(backup_len);
    let backup = if trial && cmd.args[3] != 0 { cmd.args[3] } else { low };
    if need > 0 && !free(backup, need) {
        return Err(Code::NoSpace);
    }
    let taken = |a: u32| need > 0 && !disjoint(a, SECTOR, backup, need);
    let mut area = if cmd.ext & EXT_WORK != 0 { cmd.args[6] } else { src.wrapping_sub(SECTOR) };
    let mut end = area.wrapping_add(SECTOR);
    let mut erase = true;
    if !free(area, SECTOR) || taken(area) {
        // The erased tail of the last staging sector (the Updater erased it).
        area = (src + len + 15) & !15;
        end = round_up(src + len);
        erase = false;
        if end < area + journal::MIN_AREA || !erased(flash, area, end)? {
            return Err(Code::NoSpace);
        }
    }
    // Raw sketches may log one progress word per destination sector.
    if !fs && !gzip && (end - area - journal::HEADER_LEN) / 4 < round_up(out.len) / SECTOR + 8 {
        return Err(Code::NoSpace);
    }
    let boots = match cmd.args[4] {
        _ if !trial => 0,
        0 => command::DEFAULT_TRIAL_BOOTS,
        n => n.min(255),
    };

    let (_, seq) = journal::search(flash, &mut mem.sector);
    let j = Journal {
        addr: area,
        seq: seq.wrapping_add(1),
        src,
        len,
        dst,
        out_len: out.len,
        crc,
        flags: (if gzip { F_GZIP } else { 0 })
            | (if fs { F_FS } else { 0 })
            | (if trial { F_TRIAL } else { 0 })
            | (boots << 24),
        backup,
        backup_len,
        head,
        end,
    };
    if erase {
        flash::erase(flash, area)?;
    }
    j.write(flash)?;
    Ok(j)
}

/// Whether `[a, a+n)` and `[b, b+m)` do not intersect.
fn disjoint(a: u32, n: u32, b: u32, m: u32) -> bool {
    a >= b.saturating_add(m) || b >= a.saturating_add(n)
}

/// Whether flash `[from, to)` is erased.
fn erased<F: NorFlash>(flash: &mut F, from: u32, to: u32) -> Result<bool, Code> {
    let mut w = Words::<4>::new();
    let mut a = from;
    while a < to {
        flash::read(flash, a, &mut w.0)?;
        if w.word(0) != u32::MAX {
            return Ok(false);
        }
        a += 4;
    }
    Ok(true)
}

/// Carries a journaled update to its end from whatever state the log shows. Every step is
/// idempotent, so this is also the recovery after a power cut at any instant.
fn finish<F: NorFlash>(flash: &mut F, mem: &mut Mem, j: &Journal, rep: &mut Report) -> Result<App, Code> {
    let mut st = journal::state(flash, j)?;
    let fs = j.flags & F_FS != 0;
    let trial = j.flags & F_TRIAL != 0;
    if !st.has(L_DONE) {
        if !st.has(L_COPIED) {
            if (fs || trial) && !st.has(L_BACKED_UP) {
                let job = Job { src: APP_OFFSET, len: j.backup_len, gzip: false, dst: j.backup, first: 0, hole: 0 };
                write_all(flash, mem, &job, None)?;
                journal::log(flash, j, &mut st, L_BACKED_UP)?;
            }
            if fs {
                // Borrow 0x1000 so no app starts on a half-copied filesystem: clearing the
                // image magic only clears bits, so no erase is needed until the restore.
                flash::write(flash, APP_OFFSET, &Words::<4>::new().0)?;
            }
            let first = if fs { 0 } else { 1 };
            let hole = if fs { 0 } else { APP_OFFSET };
            let job = Job { src: j.src, len: j.len, gzip: j.flags & F_GZIP != 0, dst: j.dst, first, hole };
            write_all(flash, mem, &job, Some((j, &mut st)))?;
            let from = j.dst + first * SECTOR;
            if copy::crc_flash(flash, &mut mem.sector, from, j.dst + j.out_len, hole, &j.head)? != j.crc {
                return Err(Code::VerifyFail);
            }
            journal::log(flash, j, &mut st, L_COPIED)?;
        }
        if trial && !st.has(L_CONFIRMED) {
            if !st.has(L_ROLLBACK) && st.trial_boots < j.trial_boots() {
                journal::log(flash, j, &mut st, L_TRIAL_BOOT)?;
                rep.event = Event::Trial as u32;
                rep.journal = j.addr;
                rep.trial_left = j.trial_boots() - st.trial_boots;
                return loader::validate(flash, APP_OFFSET, &j.head, &mut mem.sector);
            }
            if !st.has(L_ROLLBACK) {
                journal::log(flash, j, &mut st, L_ROLLBACK)?;
            }
            restore(flash, mem, j.backup, j.backup_len)?;
            rep.event = Event::RolledBack as u32;
        } else if fs {
            restore(flash, mem, j.backup, SECTOR)?;
        } else {
            flash::write(flash, APP_OFFSET, &Words(j.head).0)?;
        }
        journal::log(flash, j, &mut st, L_DONE)?;
    }
    let head = loader::head(flash, APP_OFFSET)?;
    loader::validate(flash, APP_OFFSET, &head, &mut mem.sector)
}

/// Copies a backed-up app (or app sector) at `from` back to 0x1000, header last.
fn restore<F: NorFlash>(flash: &mut F, mem: &mut Mem, from: u32, len: u32) -> Result<(), Code> {
    let job = Job { src: from, len, gzip: false, dst: APP_OFFSET, first: 0, hole: APP_OFFSET };
    write_all(flash, mem, &job, None)?;
    let head = Words(loader::head(flash, from)?);
    flash::write(flash, APP_OFFSET, &head.0)
}

/// Makes the destination of `job` hold its output. With a journal, destination sectors
/// that overlap the staged input are announced in the log before they are erased, and a
/// resumed copy skips what the log says is done (its source may be overwritten).
fn write_all<F: NorFlash>(flash: &mut F, mem: &mut Mem, job: &Job, mut log: Option<(&Journal, &mut State)>) -> Result<(), Code> {
    let done = log.as_ref().map_or(0, |(_, st)| st.progress.saturating_sub(1));
    copy::produce(flash, mem, job, &mut |flash, scratch, i, chunk| {
        if i < job.first || i < done {
            return Ok(());
        }
        let addr = job.dst + i * SECTOR;
        let hole = if addr == job.hole { 16 } else { 0 };
        let overlaps = addr < job.src + job.len && addr + SECTOR > job.src;
        if let (true, Some((j, st))) = (overlaps, log.as_mut()) {
            if st.progress <= i {
                journal::log(flash, j, st, i as u16)?;
            }
        }
        copy::put_sector(flash, scratch, addr, chunk, hole)?;
        Ok(())
    })?;
    Ok(())
}
