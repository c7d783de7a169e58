//! Host library behind `otatool`: image building and inspection, gzip, signing, the RTC
//! command block and the Arduino flash layouts. The byte formats shared with the device
//! (`command`, `image`) are re-exported from the `bootloader` crate, their one definition.
pub use bootloader::command;
pub use bootloader::image as format;

pub mod error;
pub mod image;

pub use error::{Error, Result};
pub mod checks;
pub mod cmdblock;
pub mod dropin;
pub mod fit;
pub mod gzip;
pub mod info;
pub mod layout;
pub mod output;
pub mod ota;
pub mod sign;

/// Writes one output file under [`output`]'s rules (regular files only, through
/// symlinks, mode kept or umask honoured, nothing half-written left behind).
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    output::write_one(path, data)
}

/// Reads a whole file, with the path in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
