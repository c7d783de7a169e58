//! The boot flow, top to bottom: command, validate, journal, copy, verify, report, boot.
//! (Being written by the lead; the signatures below are the contract.)

use embedded_storage::nor_flash::NorFlash;

use crate::inflate::WINDOW;
use crate::loader::App;
use crate::platform::Platform;
use crate::report::Code;

/// Flash sector (erase unit).
pub const SECTOR: u32 = 4096;

/// RAM the bootloader needs, supplied by the caller (the device layer puts it in DRAM).
pub struct Mem {
    pub window: [u8; WINDOW],
    pub sector: [u8; SECTOR as usize],
}

impl Mem {
    pub const fn new() -> Mem {
        Mem { window: [0; WINDOW], sector: [0; SECTOR as usize] }
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
pub fn boot<F: NorFlash, P: Platform>(_flash: &mut F, _p: &mut P, _mem: &mut Mem) -> Boot {
    Boot::Halt(Code::NoApp)
}
