//! Walks the app image at 0x1000: validates its header and segment table and tells the
//! device layer which segments to load. (Being written by the lead; contract below.)

use embedded_storage::nor_flash::ReadNorFlash;

use crate::image::Segment;
use crate::report::Code;

/// A bootable app: where it is and the 16 bytes that start it (image header + first
/// segment header). Normally those bytes are in flash at `offset`; during a trial boot they
/// come from the journal, because the app's first 16 bytes stay erased until it confirms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct App {
    pub offset: u32,
    pub head: [u8; 16],
    pub entry: u32,
}

/// Calls `f(segment, flash offset of its data)` for every segment the bootloader must
/// copy into RAM (IRAM, DRAM, RTC), in image order. `f` returns false to stop (error).
pub fn for_each_load<F: ReadNorFlash>(
    _flash: &mut F,
    _app: &App,
    _f: impl FnMut(Segment, u32) -> bool,
) -> Result<(), Code> {
    Err(Code::BadImage)
}
