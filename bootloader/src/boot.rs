//! The boot flow, top to bottom: read the command, validate (dry run), journal, copy,
//! verify, report, boot. `docs/protocol.md` describes the protocol and why it is safe.
//!
//! One flow, two builds, chosen by the const parameter `EXT`:
//! - **tier 1** (`TIER1`, sector 0, at most 4,000 bytes): the whole stock eboot contract
//!   (copy a raw or gzip sketch or filesystem) with every guarantee. A command or journal
//!   that needs more (trial boot, expected CRC) names an extension image: tier 1 checks it
//!   and chain-loads it ([`Boot::Extension`]), writing nothing itself.
//! - **the extension image** (`EXTENSION`): every feature; staged by the updater beside the
//!   update, it runs this same flow and boots the app.

use embedded_storage::nor_flash::NorFlash;

use crate::command::{self, arg, ACTION_COPY_RAW, ACTION_LOAD_APP, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_CRC, EXT_IMAGE, EXT_KNOWN, EXT_TRIAL};
use crate::copy::{self, Dry, Job};
use crate::flash::{self, round_up, SECTOR};
use crate::image::APP_OFFSET;
use crate::inflate;
use crate::journal::{self as jn, F_FS, F_GZIP, F_TRIAL};
use crate::journal::{L_BACKED_UP, L_CONFIRMED, L_COPIED, L_DONE, L_ROLLBACK, L_TRIAL_BOOT, WORDS};
use crate::loader::{self, App};
use crate::platform::Platform;
use crate::report::{self, Code, Event};

/// `EXT` of the sector-0 build.
pub const TIER1: bool = false;
/// `EXT` of the extension image's build.
pub const EXTENSION: bool = true;

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
    /// Tier 1 only: load the extension image (checked, at `App::offset`) and jump to it, as
    /// for an app. The command block is left for it; it writes the report.
    Extension(App),
    /// Nothing bootable: report, then reset.
    Halt(Code),
}

/// One power-on of the bootloader: handles a command or an interrupted update, writes the
/// boot report, and says what to boot. Never panics; every flash error ends in `Halt`.
pub fn boot<F: NorFlash, P: Platform, const EXT: bool>(flash: &mut F, p: &mut P, mem: &mut Mem) -> Boot {
    let mut app = App { offset: 0, head: [0; 4], len: 0 };
    match select::<F, P, EXT>(flash, p, mem, &mut app) {
        // Only the extension image lives anywhere but 0x1000 (`loader::extension`).
        Ok(()) if app.offset != APP_OFFSET => Boot::Extension(app),
        Ok(()) => Boot::App(app),
        Err(c) => Boot::Halt(c),
    }
}

/// [`boot`] as the device calls it: fills `app` with the app to load and jump to (an
/// `offset` other than 0x1000 is the extension image, [`Boot::Extension`]), or says why
/// nothing boots. The `App` is built in the caller's slot all the way down (no `App`
/// returned by value through memory).
pub fn select<F: NorFlash, P: Platform, const EXT: bool>(flash: &mut F, p: &mut P, mem: &mut Mem, app: &mut App) -> Result<(), Code> {
    // After a power-on RTC memory is garbage: a command there is never trusted.
    // A command is read where it is, in RTC memory (no copy).
    let w = p.rtc();
    // LOAD_APP is eboot's "just boot"; any other action is refused below.
    let cmd = if !p.cold_boot() && w[1] != ACTION_LOAD_APP && command::valid(w) { Some(w) } else { None };
    let mut rep = report::new();
    let next = run::<F, EXT>(flash, mem, cmd, &mut rep, app);
    match next {
        // The extension image writes the report.
        Ok(()) if app.offset != APP_OFFSET => return next,
        Ok(()) => {}
        Err(c) => rep[report::CODE] = c as u32,
    }
    // The report overwrites the command block: a handled command is cleared either way.
    report::write(p, &mut rep);
    next
}

/// One power-on of the device on a host: tier 1 decides, and when it chain-loads the
/// extension image, that image's flow runs next — what the device does by loading the
/// image and jumping to it. `loaded` sees the extension image tier 1 checked and chose
/// before it "runs" (tests check it is the one staged). Never returns `Boot::Extension`.
pub fn power_on<F: NorFlash, P: Platform>(flash: &mut F, p: &mut P, mem: &mut Mem, loaded: &mut dyn FnMut(&App)) -> Boot {
    match boot::<F, P, TIER1>(flash, p, mem) {
        Boot::Extension(ext) => {
            loaded(&ext);
            boot::<F, P, EXTENSION>(flash, p, mem)
        }
        b => b,
    }
}

/// The boot report's words (`report::new`), filled in as the flow goes.
type Rep = [u32; 6];

/// A valid command block, read in place (`command::arg`).
type Cmd = [u32; command::WORDS];

/// Fills `app` with what boots (see [`select`]).
fn run<F: NorFlash, const EXT: bool>(flash: &mut F, mem: &mut Mem, cmd: Option<&Cmd>, rep: &mut Rep, app: &mut App) -> Result<(), Code> {
    // The journal header's words: built by `start`, read back by `finish` (one buffer).
    let mut w = [0u32; WORDS];
    let journal = match loader::check(flash, APP_OFFSET, app) {
        Ok(()) => {
            let Some(cmd) = cmd else { return Ok(()) };
            // Tier 1 carries out only the stock contract; anything more is the named
            // extension image's to do, once that image checks out.
            let r = if EXT || command::ext(cmd) == 0 {
                start::<F, EXT>(flash, mem, cmd, app, &mut w)
            } else {
                match extension(flash, mem, cmd, app) {
                    // The check of a refused image left garbage in `app`: the app at
                    // 0x1000 (nothing was written) is checked into it again.
                    Err(c) => {
                        loader::check(flash, APP_OFFSET, app)?;
                        Err(c)
                    }
                    ok => return ok,
                }
            };
            match r {
                Ok(j) => {
                    rep[report::EVENT] = Event::Applied as u32;
                    j
                }
                Err(c) => {
                    rep[report::EVENT] = Event::Rejected as u32;
                    rep[report::CODE] = c as u32;
                    return Ok(());
                }
            }
        }
        // No valid app: an update borrowed 0x1000 (interrupted, or in trial).
        Err(_) => {
            let j = jn::search(flash).0;
            if j == 0 {
                return Err(Code::NoApp);
            }
            rep[report::EVENT] = Event::Resumed as u32;
            j
        }
    };
    finish::<F, EXT>(flash, mem, journal, &mut w, rep, app)
}

/// Tier 1, extended command: only extension flags it knows, `EXT_IMAGE` among them, and a
/// sound extension image, which is returned for chain-loading.
fn extension<F: NorFlash>(flash: &mut F, mem: &mut Mem, cmd: &Cmd, ext_app: &mut App) -> Result<(), Code> {
    let ext = command::ext(cmd);
    if ext & !EXT_KNOWN != 0 {
        return Err(Code::BadExtension);
    }
    if ext & EXT_IMAGE == 0 {
        return Err(Code::NeedsExtension);
    }
    loader::extension(flash, &mut mem.sector, arg(cmd, ARG_EXT_ADDR), arg(cmd, ARG_EXT_CRC), ext_app)
}

/// Validates a command against flash (no writes until everything checks out), then writes
/// its journal; returns the journal's address. From the journal on, the update is committed.
fn start<F: NorFlash, const EXT: bool>(flash: &mut F, mem: &mut Mem, cmd: &Cmd, app: &App, w: &mut [u32; WORDS]) -> Result<u32, Code> {
    let (src, dst, len) = (arg(cmd, 0), arg(cmd, 1), arg(cmd, 2));
    let cap = flash.capacity() as u32;
    let fs = dst != 0;
    let ext = command::ext(cmd);
    let trial = EXT && ext & EXT_TRIAL != 0;
    if cmd[1] != ACTION_COPY_RAW {
        return Err(Code::BadAction);
    }
    // Tier 1 gets here only for a command without extension flags.
    if ext & !EXT_KNOWN != 0 || (fs && trial) {
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
    w[jn::SRC] = src;
    w[jn::LEN] = len;
    w[jn::DST] = dst;
    w[jn::OLD_HEAD..jn::OLD_HEAD + 4].copy_from_slice(&app.head);
    let mut magic = [0u32];
    flash::read_words(flash, src, &mut magic)?;
    let gzip = magic[0] & 0xFFFF == 0x8B1F;

    // Dry run over the whole staged image. A sketch may not reach its staged input (a
    // resumed copy reads or inflates it again from the start); a filesystem may not reach
    // the last five sectors, which every Arduino layout gives to EEPROM, RF calibration
    // and the SDK's settings.
    let job = Job { src, len, gzip, dst, hole: if fs { 0 } else { APP_OFFSET } };
    let mut dry = Dry::new(if fs { cap.saturating_sub(SYSTEM_SECTORS) } else { src });
    let crc = copy::produce(flash, mem, job, Some(&mut dry))?;
    if !fs && dry.walk.valid().is_none() {
        return Err(Code::BadImage);
    }
    if EXT && ext & EXT_CRC != 0 && arg(cmd, 5) != crc {
        return Err(Code::CrcMismatch);
    }

    // Free flash below the staged image: the backup (trial: the old app; filesystem: the
    // 0x1000 sector) right above what stays or is written, the journal in the sector just
    // below the staged image, the extension image (if any) between the two.
    let low = if fs { app_end } else { app_end.max(round_up(dry.len)) };
    let backup_len = if fs { SECTOR } else if trial { app.len } else { 0 };
    let area = src - SECTOR;
    let free = low + round_up(backup_len);
    if area < free {
        return Err(Code::NoSpace);
    }
    let (mut ext_addr, mut ext_crc) = (0, 0);
    if EXT && ext & EXT_IMAGE != 0 {
        (ext_addr, ext_crc) = (arg(cmd, ARG_EXT_ADDR), arg(cmd, ARG_EXT_CRC));
        let mut ext = App { offset: 0, head: [0; 4], len: 0 };
        loader::extension(flash, &mut mem.sector, ext_addr, ext_crc, &mut ext)?;
        // The update never writes where the extension image lies, so no cut can damage it.
        if ext_addr < free || ext_addr + ext.len > area {
            return Err(Code::ExtImage);
        }
    }
    let boots = match arg(cmd, 4) {
        _ if !trial => 0,
        0 => command::DEFAULT_TRIAL_BOOTS,
        n => n.min(255),
    };
    let flags = (gzip as u32 * F_GZIP) | (fs as u32 * F_FS) | (trial as u32 * F_TRIAL) | (boots << 24);
    let seq = jn::search(flash).1.wrapping_add(1);
    // Every word but the magic and the CRC (`jn::write`), at constant indices (no copy of
    // the whole header through registers).
    w[jn::SEQ] = seq;
    w[jn::OUT_LEN] = dry.len;
    w[jn::CRC] = crc;
    w[jn::FLAGS] = flags;
    w[jn::BACKUP] = low;
    w[jn::BACKUP_LEN] = backup_len;
    w[jn::HEAD..jn::HEAD + 4].copy_from_slice(&dry.walk.head);
    w[jn::EXT_ADDR] = ext_addr;
    w[jn::EXT_CRC] = ext_crc;
    flash::erase(flash, area)?;
    jn::write(flash, area, w)?;
    Ok(area)
}

/// Carries a journaled update to its end from whatever state the log shows. Every step is
/// idempotent, so this is also the recovery after a power cut at any instant. Tier 1 hands
/// a journal that names an extension image to that image.
fn finish<F: NorFlash, const EXT: bool>(flash: &mut F, mem: &mut Mem, addr: u32, w: &mut [u32; WORDS], rep: &mut Rep, app: &mut App) -> Result<(), Code> {
    // Read back from flash, also right after `start` wrote it: one path for both.
    if !jn::load(flash, addr, w) {
        return Err(Code::NoApp);
    }
    if !EXT && w[jn::EXT_ADDR] != 0 {
        // The extension image lies where the update never writes; checked on every boot
        // all the same (a cut while checking or loading it just repeats this).
        return loader::extension(flash, &mut mem.sector, w[jn::EXT_ADDR], w[jn::EXT_CRC], app);
    }
    let mut st = jn::state::<F, EXT>(flash, addr)?;
    let fs = w[jn::FLAGS] & F_FS != 0;
    let (backup, backup_len) = (w[jn::BACKUP], w[jn::BACKUP_LEN]);
    // References into `w`, not copies (constant ranges: no bounds checks remain).
    let (head, old_head) = (words4(w, jn::HEAD), words4(w, jn::OLD_HEAD));
    rep[report::JOURNAL] = addr;
    if !st.has(L_DONE) {
        let trial = EXT && w[jn::FLAGS] & F_TRIAL != 0;
        if !st.has(L_COPIED) {
            // Borrow 0x1000 first thing: clearing the image magic only clears bits, so it
            // needs no erase, and from here until the final header no boot takes 0x1000
            // for an app (a torn erase of that sector later cannot bring 0xE9 back with
            // the rest of a valid header): every boot resumes this journal. The old
            // header is in the journal for a rollback or a filesystem update's restore.
            flash::write_words(flash, APP_OFFSET, &[0])?;
            // A filesystem update's backup of 0x1000 is redone until `COPIED` (nothing
            // changes that sector before then: idempotent, no log entry). A trial's backup
            // of the old app must not be redone once the copy overwrote 0x1000.
            if backup_len != 0 && !(trial && st.has(L_BACKED_UP)) {
                let job = Job { src: APP_OFFSET, len: backup_len, gzip: false, dst: backup, hole: 0 };
                copy::copy(flash, mem, job)?;
                if trial {
                    jn::log(flash, &mut st, L_BACKED_UP)?;
                }
            }
            // Every sector is read back after it is written, and the CRC of everything
            // produced must be the dry run's.
            let hole = if fs { 0 } else { APP_OFFSET };
            let job = Job { src: w[jn::SRC], len: w[jn::LEN], gzip: w[jn::FLAGS] & F_GZIP != 0, dst: w[jn::DST], hole };
            if copy::copy(flash, mem, job)? != w[jn::CRC] {
                return Err(Code::VerifyFail);
            }
            jn::step(flash, addr, L_COPIED)?;
        }
        let rollback = trial && !st.has(L_CONFIRMED);
        if rollback {
            let boots = w[jn::FLAGS] >> 24;
            if !st.has(L_ROLLBACK) && st.trial_boots < boots {
                jn::log(flash, &mut st, L_TRIAL_BOOT)?;
                rep[report::EVENT] = Event::Trial as u32;
                // `log` leaves the count as read: this boot is one more.
                rep[report::TRIAL_LEFT] = boots - st.trial_boots - 1;
                *app = App { offset: APP_OFFSET, head: *head, len: 0 };
                return loader::check_head(flash, app);
            }
            if !st.has(L_ROLLBACK) {
                jn::log(flash, &mut st, L_ROLLBACK)?;
            }
        }
        // The header 0x1000 ends with, programmed last: the new app's, or after the copy
        // back of the backup (the old app, or a filesystem update's 0x1000 sector,
        // `SECTOR` long; its own first word is the cleared magic) the old one. One call
        // for both.
        let last = if rollback || fs {
            let job = Job { src: backup, len: backup_len, gzip: false, dst: APP_OFFSET, hole: APP_OFFSET };
            copy::copy(flash, mem, job)?;
            old_head
        } else {
            head
        };
        flash::write_words(flash, APP_OFFSET, last)?;
        if rollback {
            rep[report::EVENT] = Event::RolledBack as u32;
        }
        jn::step(flash, addr, L_DONE)?;
    }
    loader::check(flash, APP_OFFSET, app)
}

/// Words `at..at + 4` of a journal header.
fn words4(w: &[u32; WORDS], at: usize) -> &[u32; 4] {
    w.split_at(at & 15).1.first_chunk().unwrap_or(&[0; 4])
}
