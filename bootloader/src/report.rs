//! Result codes and the boot report an app reads from RTC memory.
//!
//! The report lives in the command block's own 128 bytes (0x60001200), so the bootloader
//! touches no other RTC memory. Its magic differs from eboot's under eboot's mask, so stock
//! code sees "no command".
//!
//! | word | field |
//! |---|---|
//! | 0 | `REPORT_MAGIC` |
//! | 1 | event ([`Event`]) |
//! | 2 | result code ([`Code`]) of the update this boot handled, 0 if none |
//! | 3 | flash address of the journal of the last update (0 if none) |
//! | 4 | trial boots left after this one before a rollback (trial boots only, else 0) |
//! | 5 | CRC-32/MPEG-2 of words 0..=4 |
//!
//! Words 6..32 are left as they were.

use crate::crc;
use crate::platform::Platform;

pub const REPORT_MAGIC: u32 = 0xEB5E_0001;

/// Why an update was refused or failed. Every code is distinct; 0 (no variant) means
/// success in the report. No variant is 0 on purpose: `Result<(), Code>` then stores `Ok`
/// as 0, so each `?` on the device is one test against zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    /// Source or destination not 4 KiB aligned.
    Misaligned = 1,
    /// Length 0.
    Empty = 2,
    /// Source or destination beyond the flash chip.
    OutOfRange = 3,
    /// Source and destination overlap in a way that cannot be copied safely.
    Overlap = 4,
    /// Unknown action.
    BadAction = 5,
    /// Unknown extension flag in the magic.
    BadExtension = 6,
    /// Flash read failed.
    ReadFail = 7,
    /// Gzip header invalid.
    GzipHeader = 8,
    /// Deflate data invalid.
    GzipData = 9,
    /// Gzip CRC-32 or ISIZE wrong, or the stream is truncated or has trailing bytes.
    GzipTrailer = 10,
    /// The staged app image has no valid ESP8266 image header or segment table.
    BadImage = 11,
    /// The output does not fit its destination.
    TooBig = 12,
    /// No free flash for the journal (or the backup a trial or filesystem update needs).
    NoSpace = 13,
    /// The output CRC differs from the one the extended command expects.
    CrcMismatch = 14,
    /// Sector 0 update asked for, but the image's sector 0 is not a valid bootloader.
    BadBootloader = 15,
    /// Flash erase or program failed.
    WriteFail = 16,
    /// The destination differs from the dry run after the copy.
    VerifyFail = 17,
    /// No valid app at 0x1000 and no journal to recover from.
    NoApp = 18,
    /// The extension image a command or journal names is missing, malformed, placed where
    /// the update needs the flash, or does not have its CRC.
    ExtImage = 19,
    /// An extension flag (trial, expected CRC) without `EXT_IMAGE`: tier 1 cannot carry it
    /// out itself.
    NeedsExtension = 20,
}

/// What this boot did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Event {
    /// Booted the app; no command.
    Nothing = 0,
    /// Applied an update.
    Applied = 1,
    /// Refused an update (code says why); the old app is intact.
    Rejected = 2,
    /// Finished an update interrupted by a power cut or reset.
    Resumed = 3,
    /// Restored the previous app after unconfirmed trial boots.
    RolledBack = 4,
    /// Booting a new app in trial: it must confirm.
    Trial = 5,
}

/// Word indices of the report (the table above).
pub const EVENT: usize = 1;
pub const CODE: usize = 2;
pub const JOURNAL: usize = 3;
pub const TRIAL_LEFT: usize = 4;
const CHECK: usize = 5;

/// The report's words as the bootloader fills them in place: magic set, nothing done
/// (`Event::Nothing`, no code, no journal), the CRC word completed by [`write`].
pub const fn new() -> [u32; 6] {
    [REPORT_MAGIC, Event::Nothing as u32, 0, 0, 0, 0]
}

/// Completes the CRC of report words `w` and writes them to the RTC block.
pub fn write<P: Platform>(p: &mut P, w: &mut [u32; 6]) {
    w[CHECK] = crc::mpeg2(&w[..CHECK]);
    for (i, v) in w.iter().enumerate() {
        p.rtc_write(i, *v);
    }
}

/// A report as an app reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub event: u32,
    pub code: u32,
    pub journal: u32,
    pub trial_left: u32,
}

impl Report {
    /// Writes this report, as the bootloader does.
    pub fn write<P: Platform>(&self, p: &mut P) {
        write(p, &mut [REPORT_MAGIC, self.event, self.code, self.journal, self.trial_left, 0]);
    }

    /// The report of the last boot, if RTC memory holds one.
    pub fn read<P: Platform>(p: &P) -> Option<Report> {
        Report::decode(p.rtc())
    }

    /// The report in the first six words of an RTC block, if they hold one (magic and CRC
    /// right).
    pub fn decode(w: &[u32; 32]) -> Option<Report> {
        if w[0] != REPORT_MAGIC || crc::mpeg2(&w[..CHECK]) != w[CHECK] {
            return None;
        }
        Some(Report { event: w[EVENT], code: w[CODE], journal: w[JOURNAL], trial_left: w[TRIAL_LEFT] })
    }
}
