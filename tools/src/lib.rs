//! Host library behind `otatool`: image building and inspection, gzip, signing, the RTC
//! command block and the Arduino flash layouts. The byte formats shared with the device
//! (`command`, `image`) are re-exported from the `bootloader` crate, their one definition.
pub use bootloader::command;
pub use bootloader::image as format;

pub mod error;
pub mod image;

pub use error::{Error, Result};
pub mod cmdblock;
pub mod gzip;
pub mod info;
pub mod layout;
pub mod ota;
pub mod sign;

/// Writes `data` to `path` through a temporary file in the same directory and a rename,
/// so a failure never leaves a half-written output behind.
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".otatool-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Reads a whole file, with the path in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
