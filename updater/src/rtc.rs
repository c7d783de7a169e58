//! RTC memory: the command block the app writes before its reset, the boot report the
//! bootloader leaves, and confirming a trial boot.

use embedded_storage::nor_flash::NorFlash;

use bootloader::command::{Command, ACTION_COPY_RAW, EXT_CRC, EXT_IMAGE, EXT_KNOWN, EXT_TRIAL, WORDS};
use bootloader::journal;
use bootloader::report::{Code, Event, Report};

use crate::{Result, UpdaterError};

/// The 32-word (128-byte) block of RTC user memory at 0x60001200 that holds eboot's
/// command and eboot-rs's boot report.
///
/// On the ESP8266 both are volatile 32-bit accesses:
///
/// ```ignore
/// struct EspRtc;
/// impl updater::Rtc for EspRtc {
///     fn read(&self, i: usize) -> u32 {
///         unsafe { core::ptr::read_volatile((0x6000_1200 as *const u32).add(i & 31)) }
///     }
///     fn write(&mut self, i: usize, v: u32) {
///         unsafe { core::ptr::write_volatile((0x6000_1200 as *mut u32).add(i & 31), v) }
///     }
/// }
/// ```
pub trait Rtc {
    /// Word `i` (0..32) of the block.
    fn read(&self, i: usize) -> u32;
    /// Stores word `i` (0..32) of the block.
    fn write(&mut self, i: usize, v: u32);
}

/// What the bootloader did on this boot, if RTC memory holds its report (magic and CRC
/// right). Compare `event` with [`Event`] values: `Trial` means [`confirm`] is due.
pub fn report<R: Rtc>(rtc: &R) -> Option<Report> {
    Report::decode(&core::array::from_fn(|i| rtc.read(i)))
}

/// Our extensions of eboot's command (docs/protocol.md §2). A stock eboot masks the flags
/// away and ignores the arguments, so an extended command still works there.
pub trait CommandExt: Sized {
    /// Boot the new sketch in trial: the bootloader restores the old one unless the new
    /// one calls [`confirm`] within `boots` boots (0: the bootloader's default, 3).
    /// Sets `EXT_TRIAL` and `args[4]`. Not for filesystem updates ([`request`] refuses).
    fn trial(self, boots: u8) -> Self;
    /// The bootloader refuses the update (code `CrcMismatch`) unless the bytes it would
    /// write have this CRC-32 (ISO-HDLC, gzip's): the whole output for a filesystem, the
    /// output from offset 4096 for a sketch (sector 0 is never installed). For a raw image
    /// that is [`Stager::output_crc`](crate::Stager::output_crc); a gzip image's output is
    /// the inflated bytes, which the updater does not compute — leave it unset then, or
    /// take the CRC from the build. Sets `EXT_CRC` and `args[5]`.
    fn expect_crc(self, crc: u32) -> Self;
}

impl CommandExt for Command {
    fn trial(mut self, boots: u8) -> Command {
        self.ext |= EXT_TRIAL;
        self.args[4] = boots as u32;
        self
    }

    fn expect_crc(mut self, crc: u32) -> Command {
        self.ext |= EXT_CRC;
        self.args[5] = crc;
        self
    }
}

/// Writes `cmd` into RTC memory for the bootloader to carry out on the next soft reset
/// (`ESP.restart()`; after a power-on reset RTC memory is garbage and ignored). Refuses a
/// command the bootloader would refuse for its form alone, and reads the block back.
pub fn request<R: Rtc>(rtc: &mut R, cmd: &Command) -> Result<()> {
    if cmd.action != ACTION_COPY_RAW {
        return Err(UpdaterError::BadAction);
    }
    if cmd.ext & !EXT_KNOWN != 0 {
        return Err(UpdaterError::UnsupportedExtension);
    }
    if cmd.ext & EXT_TRIAL != 0 && cmd.dst() != 0 {
        return Err(UpdaterError::TrialOnFilesystem);
    }
    // Sector 0 carries out only the stock contract; anything more runs in the extension
    // image the command names.
    if cmd.ext != 0 && cmd.ext & EXT_IMAGE == 0 {
        return Err(UpdaterError::NeedsExtension);
    }
    let w = cmd.encode();
    for (i, v) in w.iter().enumerate() {
        rtc.write(i, *v);
    }
    if (0..WORDS).any(|i| rtc.read(i) != w[i]) {
        return Err(UpdaterError::RtcMismatch);
    }
    Ok(())
}

/// Confirms a trial boot: the next boot makes the new sketch permanent. Call it once the
/// app knows it works (network up, whatever matters). Calling it again is harmless.
///
/// Fails with [`UpdaterError::NotInTrial`] unless the boot report says this boot is a
/// trial (event `Trial`).
pub fn confirm<F: NorFlash, R: Rtc>(flash: &mut F, rtc: &R) -> Result<()> {
    let rep = report(rtc).ok_or(UpdaterError::NoReport)?;
    if rep.event != Event::Trial as u32 {
        return Err(UpdaterError::NotInTrial);
    }
    journal::confirm(flash, rep.journal).map_err(|c| match c {
        Code::NoApp => UpdaterError::NoJournal,
        Code::BadAction => UpdaterError::NotInTrial,
        Code::NoSpace => UpdaterError::JournalFull,
        Code::ReadFail => UpdaterError::FlashRead,
        // journal::confirm returns no other code; anything else came from a write.
        _ => UpdaterError::FlashWrite,
    })
}
