//! The boot flow, top to bottom: read the command, validate (dry run), journal, copy,
//! verify, report, boot. `docs/protocol.md` describes the protocol and why it is safe.

use embedded_storage::nor_flash::NorFlash;

use crate::command::{self, Command, ACTION_COPY_RAW, ACTION_LOAD_APP, EXT_CRC, EXT_KNOWN, EXT_TRIAL};
use crate::copy::{self, Dry, Job, Sink};
use crate::flash::{self, round_up, SECTOR};
use crate::image::APP_OFFSET;
use crate::inflate;
use crate::journal::{self as jn, Journal, F_FS, F_GZIP, F_TRIAL};
use crate::journal::{L_BACKED_UP, L_CONFIRMED, L_COPIED, L_DONE, L_ROLLBACK, L_TRIAL_BOOT};
use crate::loader::{self, App};
use crate::platform::Platform;
use crate::report::{Code, Event, Report};

/// The flash end every Arduino layout reserves: EEPROM, RF calibration, 3 SDK sectors.
const SYSTEM_SECTORS: u32 = 5 * SECTOR;

/// RAM the bootloader needs, supplied by the caller (the device layer puts it in DRAM).
/// Word aligned: the ROM's SPIRead/SPIWrite move words. Contents need not be initialised.
#[repr(C, align(4))]
pub struct Mem {
    /// The inflater's tables and history: here rather than in `produce`'s frame, which
    /// on lx106 would be mostly out of reach of the stack pointer's loads and stores.
    pub inflate: inflate::State,
    /// Staged input (gzip input, or a raw source sector).
    pub input: [u8; SECTOR as usize],
    /// Destination reads (compare, verify, validation).
    pub sector: [u8; SECTOR as usize],
}

impl Mem {
    pub const fn new() -> Mem {
        Mem { inflate: inflate::State::new(), input: [0; SECTOR as usize], sector: [0; SECTOR as usize] }
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
    // Built in place (no zeroing first).
    let w: [u32; command::WORDS] = core::array::from_fn(|i| p.rtc_read(i));
    // LOAD_APP is eboot's "just boot"; any other action is refused below.
    let cmd = Command::decode(&w).filter(|c| !p.cold_boot() && c.action != ACTION_LOAD_APP);
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

fn run<F: NorFlash>(flash: &mut F, mem: &mut Mem, cmd: Option<Command>, rep: &mut Report) -> Result<App, Code> {
    let journal = match loader::app(flash, APP_OFFSET) {
        Ok(app) => {
            let Some(cmd) = cmd else { return Ok(app) };
            match start(flash, mem, &cmd, &app) {
                Ok(j) => {
                    rep.event = Event::Applied as u32;
                    j
                }
                Err(c) => {
                    rep.event = Event::Rejected as u32;
                    rep.code = c as u32;
                    return Ok(app);
                }
            }
        }
        // No valid app: an update borrowed 0x1000 (interrupted, or in trial).
        Err(_) => {
            let j = jn::search(flash).0;
            if j == 0 {
                return Err(Code::NoApp);
            }
            rep.event = Event::Resumed as u32;
            j
        }
    };
    finish(flash, mem, journal, rep)
}

/// Validates a command against flash (no writes until everything checks out), then writes
/// its journal; returns the journal's address. From the journal on, the update is committed.
fn start<F: NorFlash>(flash: &mut F, mem: &mut Mem, cmd: &Command, app: &App) -> Result<u32, Code> {
    let (src, dst, len) = (cmd.src(), cmd.dst(), cmd.len());
    let cap = flash.capacity() as u32;
    let fs = dst != 0;
    let trial = cmd.ext & EXT_TRIAL != 0;
    if cmd.action != ACTION_COPY_RAW {
        return Err(Code::BadAction);
    }
    if cmd.ext & !EXT_KNOWN != 0 || (fs && trial) {
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
    // The staged image never overlaps the running app (the Updater guarantees it), and a
    // filesystem goes above its staged copy.
    let app_end = round_up(APP_OFFSET + app.len);
    if src < app_end || (fs && dst < round_up(src + len)) {
        return Err(Code::Overlap);
    }
    let mut magic = [0u32];
    flash::read_words(flash, src, &mut magic)?;
    let gzip = magic[0] & 0xFFFF == 0x8B1F;

    // Dry run over the whole staged image. A sketch may not reach its staged input (a
    // resumed copy reads or inflates it again from the start); a filesystem may not reach
    // the last five sectors, which every Arduino layout gives to EEPROM, RF calibration
    // and the SDK's settings.
    let job = Job { src, len, gzip, dst, first: !fs as u32, hole: if fs { 0 } else { APP_OFFSET } };
    let mut dry = Dry::new(if fs { cap.saturating_sub(SYSTEM_SECTORS) } else { src });
    let mut sink = Sink { job, dry: Some(&mut dry), crc: 0 };
    let out = copy::produce(flash, mem, &mut sink)?;
    let crc = sink.crc;
    if out.consumed != len {
        return Err(Code::GzipTrailer);
    }
    if !fs && dry.walk.valid().is_none() {
        return Err(Code::BadImage);
    }
    if cmd.ext & EXT_CRC != 0 && cmd.args[5] != crc {
        return Err(Code::CrcMismatch);
    }

    // Free flash below the staged image: the backup (trial: the old app; filesystem: the
    // 0x1000 sector) right above what stays or is written, the journal in the sector just
    // below the staged image.
    let low = if fs { app_end } else { app_end.max(round_up(out.len)) };
    let backup_len = if fs { SECTOR } else if trial { app.len } else { 0 };
    let area = src - SECTOR;
    if area < low + round_up(backup_len) {
        return Err(Code::NoSpace);
    }
    let boots = match cmd.args[4] {
        _ if !trial => 0,
        0 => command::DEFAULT_TRIAL_BOOTS,
        n => n.min(255),
    };
    let flags = (gzip as u32 * F_GZIP) | (fs as u32 * F_FS) | (trial as u32 * F_TRIAL) | (boots << 24);
    let seq = jn::search(flash).1.wrapping_add(1);
    let (h, o) = (dry.head, app.head);
    let w = [0, seq, src, len, dst, out.len, crc, flags, low, backup_len, h[0], h[1], h[2], h[3], o[0], o[1], o[2], o[3], 0, 0];
    let mut j = Journal { addr: area, w };
    flash::erase(flash, area)?;
    j.write(flash)?;
    Ok(area)
}

/// Carries a journaled update to its end from whatever state the log shows. Every step is
/// idempotent, so this is also the recovery after a power cut at any instant.
fn finish<F: NorFlash>(flash: &mut F, mem: &mut Mem, addr: u32, rep: &mut Report) -> Result<App, Code> {
    // Read back from flash, also right after `start` wrote it: one path for both.
    let mut w = [0u32; 20];
    if !jn::load(flash, addr, &mut w) {
        return Err(Code::NoApp);
    }
    let mut st = jn::state(flash, addr)?;
    let fs = w[jn::FLAGS] & F_FS != 0;
    let (backup, backup_len) = (w[jn::BACKUP], w[jn::BACKUP_LEN]);
    // References into `w`, not copies (constant ranges: no bounds checks remain).
    let (head, old_head) = (words4(&w, jn::HEAD), words4(&w, jn::OLD_HEAD));
    rep.journal = addr;
    if !st.has(L_DONE) {
        if !st.has(L_COPIED) {
            // Borrow 0x1000 first thing: clearing the image magic only clears bits, so it
            // needs no erase, and from here until the final header no boot takes 0x1000
            // for an app (a torn erase of that sector later cannot bring 0xE9 back with
            // the rest of a valid header): every boot resumes this journal. The old
            // header is in the journal for a rollback or a filesystem update's restore.
            flash::write_words(flash, APP_OFFSET, &[0])?;
            // Without trial the only backup is a filesystem update's copy of 0x1000, which
            // nothing changes before `COPIED` (the copy goes above the staged image): redoing
            // it is idempotent (compare-skip), so it needs no log entry of its own. A trial
            // backup (the old app) must not be redone once the copy overwrote 0x1000.
            let trial_backup = cfg!(feature = "trial") && !fs;
            if backup_len != 0 && !(trial_backup && st.has(L_BACKED_UP)) {
                let job = Job { src: APP_OFFSET, len: backup_len, gzip: false, dst: backup, first: 0, hole: 0 };
                copy::copy(flash, mem, job)?;
                if trial_backup {
                    jn::log(flash, &mut st, L_BACKED_UP)?;
                }
            }
            // Every sector is read back after it is written; then the whole destination
            // (with the header still to come) must have the dry run's CRC.
            let hole = if fs { 0 } else { APP_OFFSET };
            let job = Job { src: w[jn::SRC], len: w[jn::LEN], gzip: w[jn::FLAGS] & F_GZIP != 0, dst: w[jn::DST], first: !fs as u32, hole };
            if copy::copy(flash, mem, job)? != w[jn::CRC] {
                return Err(Code::VerifyFail);
            }
            jn::log(flash, &mut st, L_COPIED)?;
        }
        let rollback = w[jn::FLAGS] & F_TRIAL != 0 && !st.has(L_CONFIRMED);
        if rollback {
            let boots = w[jn::FLAGS] >> 24;
            if !st.has(L_ROLLBACK) && st.trial_boots < boots {
                jn::log(flash, &mut st, L_TRIAL_BOOT)?;
                rep.event = Event::Trial as u32;
                // `log` leaves the count as read: this boot is one more.
                rep.trial_left = boots - st.trial_boots - 1;
                return loader::walk(flash, APP_OFFSET, head, &mut |_, _| true);
            }
            if !st.has(L_ROLLBACK) {
                jn::log(flash, &mut st, L_ROLLBACK)?;
            }
        }
        if rollback || fs {
            // The backup: the old app, or (filesystem) the 0x1000 sector, `SECTOR` long.
            restore(flash, mem, backup, backup_len, old_head)?;
        } else {
            flash::write_words(flash, APP_OFFSET, head)?;
        }
        if rollback {
            rep.event = Event::RolledBack as u32;
        }
        jn::log(flash, &mut st, L_DONE)?;
    }
    loader::app(flash, APP_OFFSET)
}

/// Copies a backed-up app (or app sector) at `from` back to 0x1000, its `head` last (the
/// backup's own first word is the cleared magic).
fn restore<F: NorFlash>(flash: &mut F, mem: &mut Mem, from: u32, len: u32, head: &[u32; 4]) -> Result<(), Code> {
    copy::copy(flash, mem, Job { src: from, len, gzip: false, dst: APP_OFFSET, first: 0, hole: APP_OFFSET })?;
    flash::write_words(flash, APP_OFFSET, head)
}

/// Words `at..at + 4` of a journal header.
fn words4(w: &[u32; 20], at: usize) -> &[u32; 4] {
    w.split_at(at & 15).1.first_chunk().unwrap_or(&[0; 4])
}
