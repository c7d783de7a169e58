//! Where the Updater stages a sketch update and whether it fits: the one computation
//! behind `otatool layout --size/--image` and `otatool info --layout`.
//!
//! Two sizes matter and they differ for a gzip image:
//! * the **transferred** size (the file as sent, signature included) is what
//!   `Updater::begin(size)` gets, so staging = `FS_start − roundup4K(transferred)`;
//! * the **installed** size (the gzip inflated, the signature removed) is what the
//!   bootloader writes at 0x0, so it must fit the sketch area.
//!
//! The rules, with `S` = staging address:
//! * the Updater: `roundup4K(current) ≤ S` (UPDATE_ERROR_SPACE otherwise), where
//!   `current` is the running sketch (`ESP.getSketchSize()`); unknown unless given;
//! * the sketch area: installed ≤ max sketch + 4112;
//! * eboot-rs: it writes the installed image below the staged input and keeps its journal
//!   in the sector just below `S`, so `roundup4K(installed) + 4 KiB ≤ S` and
//!   `roundup4K(current) + 4 KiB ≤ S`.

use crate::error::{Error, Result};
use crate::layout::{roundup4k, Layout, SECTOR};
use crate::{gzip, image, sign};
use serde::Serialize;
use std::fmt::Write;

/// The sizes of one update file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpdateSizes {
    /// Bytes sent to the device (the whole file).
    pub transferred: u32,
    /// Bytes the bootloader writes at 0x0 (inflated, without signature).
    pub installed: u32,
    pub gzip: bool,
    pub signed: bool,
    /// Bytes after the gzip member (a second member or other data): the bootloader
    /// refuses such a file.
    pub gzip_trailing: usize,
}

/// The payload of a signed file, when the file has a signature trailer in front of which
/// an image or gzip stands; otherwise `None`.
pub fn signed_payload(b: &[u8]) -> Option<&[u8]> {
    let s = sign::split(b)?;
    (image::parse_image(s.payload).is_ok() || gzip::inspect(s.payload).is_ok()).then_some(s.payload)
}

fn u32_len(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::invalid("file larger than 4 GiB"))
}

/// Sizes of an update file: a flash or app image, its gzip, either of them signed.
pub fn sizes_of(file: &[u8]) -> Result<UpdateSizes> {
    let transferred = u32_len(file.len())?;
    let (payload, signed) = match signed_payload(file) {
        Some(p) => (p, true),
        None => (file, false),
    };
    let (inner, gz, trailing) = if gzip::is_gzip(payload) {
        let g = gzip::inspect(payload)?;
        let trailing = payload.len() - g.member_len;
        (g.data, true, trailing)
    } else {
        (payload.to_vec(), false, 0)
    };
    if image::is_elf(&inner) {
        return Err(Error::invalid(
            "this is an ELF file, not an update image; build one with `otatool image` first",
        ));
    }
    image::parse_image(&inner).map_err(|e| {
        Error::invalid(format!(
            "not an update image (a flash or app image, its gzip, or either signed): {e}"
        ))
    })?;
    Ok(UpdateSizes {
        transferred,
        installed: u32_len(inner.len())?,
        gzip: gz,
        signed,
        gzip_trailing: trailing,
    })
}

/// The verdict for one update on one layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fit {
    pub layout: String,
    pub transferred: u32,
    pub installed: u32,
    /// `FS_start − roundup4K(transferred)`; `None` when that would be below 0.
    pub staging: Option<u32>,
    /// FS_start: the staged copy ends here.
    pub staging_end: u32,
    /// The running sketch's size, when given.
    pub current: Option<u32>,
    /// The largest running sketch next to which this update fits (Updater and eboot-rs).
    pub max_current: Option<u32>,
    /// The Updater accepts it next to `current` (`None`: current not given).
    pub updater_accepts: Option<bool>,
    /// The installed image fits the sketch area.
    pub sketch_fits: bool,
    /// eboot-rs can install it below the staged copy, with its journal sector.
    pub bootloader_fits: bool,
    pub fits: bool,
    /// Why not, in words, when it does not fit.
    pub reasons: Vec<String>,
}

/// Where `sizes` is staged on `layout` and whether it fits next to a running sketch of
/// `current` bytes (unknown when `None`: then only what does not depend on it is judged).
pub fn fit(layout: &Layout, sizes: &UpdateSizes, current: Option<u32>) -> Fit {
    let (t, inst) = (sizes.transferred, sizes.installed);
    let staging = layout.fs_start.checked_sub(roundup4k(t));
    let mut reasons = Vec::new();
    let sketch_end = layout.sketch_end();
    let sketch_fits = inst <= sketch_end;
    if !sketch_fits {
        reasons.push(format!(
            "the installed image is {inst} bytes, more than the {sketch_end} a sketch may have in {}",
            layout.name
        ));
    }
    let bootloader_fits =
        staging.is_some_and(|s| roundup4k(inst) as u64 + SECTOR as u64 <= s as u64);
    match staging {
        None => reasons.push(format!(
            "{t} bytes do not fit below the filesystem start 0x{:X} at all",
            layout.fs_start
        )),
        Some(s) if !bootloader_fits => reasons.push(format!(
            "the installed image (roundup4K({inst}) = {}) plus eboot-rs's journal sector does not fit below the staging address 0x{s:06X}",
            roundup4k(inst)
        )),
        _ => {}
    }
    // A running sketch is never larger than the sketch area either.
    let max_current = staging
        .and_then(|s| s.checked_sub(SECTOR))
        .map(|m| m.min(sketch_end));
    let updater_accepts = current.map(|c| staging.is_some_and(|s| roundup4k(c) <= s));
    if let (Some(c), Some(s)) = (current, staging) {
        if roundup4k(c) > s {
            reasons.push(format!(
                "the Updater refuses it (UPDATE_ERROR_SPACE): roundup4K({c}) + roundup4K({t}) = {} > FS start 0x{:X}",
                roundup4k(c) as u64 + roundup4k(t) as u64,
                layout.fs_start
            ));
        } else if roundup4k(c) + SECTOR > s {
            reasons.push(format!(
                "next to a {c}-byte running sketch there is no free sector below 0x{s:06X} for eboot-rs's journal"
            ));
        }
    }
    let current_ok = match (current, max_current) {
        (Some(c), Some(_)) => {
            staging.is_some_and(|s| roundup4k(c) as u64 + SECTOR as u64 <= s as u64)
        }
        (Some(_), None) => false,
        (None, _) => true,
    };
    Fit {
        layout: layout.name.clone(),
        transferred: t,
        installed: inst,
        staging,
        staging_end: layout.fs_start,
        current,
        max_current,
        updater_accepts,
        sketch_fits,
        bootloader_fits,
        fits: staging.is_some() && sketch_fits && bootloader_fits && current_ok,
        reasons,
    }
}

impl Fit {
    /// `Ok` when it fits, else the error with exit code [`crate::error::EXIT_DOES_NOT_FIT`].
    pub fn check(&self) -> Result<()> {
        if self.fits {
            return Ok(());
        }
        Err(Error::DoesNotFit(format!(
            "update does not fit layout {}: {}",
            self.layout,
            self.reasons.join("; ")
        )))
    }

    /// The verdict as text lines (shared by `layout` and `info`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let size = if self.transferred == self.installed {
            format!("update of {} bytes", self.transferred)
        } else {
            format!(
                "update of {} bytes sent, {} bytes installed",
                self.transferred, self.installed
            )
        };
        let staging = self.staging.map_or(
            "nowhere (larger than the space below the FS)".to_string(),
            |s| {
                format!(
                    "0x{s:06X}..0x{:06X} (FS_start - roundup4K({}))",
                    self.staging_end, self.transferred
                )
            },
        );
        let _ = writeln!(out, "layout {}: {size}: staged at {staging}", self.layout);
        match (self.current, self.max_current) {
            (Some(c), _) => {
                let _ = writeln!(out, "  running sketch {c} bytes (given with --current)");
            }
            (None, Some(m)) => {
                let _ = writeln!(
                    out,
                    "  fits next to a running sketch of at most {m} bytes (give --current to check yours)"
                );
            }
            (None, None) => {}
        }
        let _ = writeln!(out, "  {}", if self.fits { "FITS" } else { "DOES NOT FIT" });
        for r in &self.reasons {
            let _ = writeln!(out, "  - {r}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::find;

    fn sizes(transferred: u32, installed: u32) -> UpdateSizes {
        UpdateSizes {
            transferred,
            installed,
            gzip: transferred != installed,
            signed: false,
            gzip_trailing: 0,
        }
    }

    #[test]
    fn staging_uses_the_transferred_size_and_the_sketch_the_installed_one() {
        let l = find("4M2M").unwrap();
        // A 1.2 MB image that gzips to 280 KB: staged by its compressed size
        // (0x200000 - 0x46000 = 0x1BA000), refused for its inflated size.
        let f = fit(&l, &sizes(280_000, 1_200_000), None);
        assert_eq!(f.staging, Some(0x200000 - roundup4k(280_000)));
        assert!(!f.sketch_fits && !f.fits);
        assert!(f.check().is_err());
        let f = fit(&l, &sizes(280_000, 900_000), Some(500_000));
        assert!(f.fits, "{:?}", f.reasons);
        assert_eq!(f.updater_accepts, Some(true));
    }

    #[test]
    fn the_updater_rule_needs_the_running_sketch() {
        let l = find("1M64").unwrap(); // FS start 0xEB000 = 962,560
        let s = sizes(400_000, 400_000);
        let f = fit(&l, &s, None);
        assert_eq!(f.updater_accepts, None);
        assert_eq!(f.max_current, Some(0xEB000 - roundup4k(400_000) - SECTOR));
        assert!(f.fits);
        // roundup4K(600,000) + roundup4K(400,000) > 0xEB000: UPDATE_ERROR_SPACE.
        let f = fit(&l, &s, Some(600_000));
        assert_eq!(f.updater_accepts, Some(false));
        assert!(!f.fits && f.reasons[0].contains("UPDATE_ERROR_SPACE"));
        // Exactly at the Updater's limit: accepted by it, but no sector for the journal.
        let at = 0xEB000 - roundup4k(400_000);
        let f = fit(&l, &s, Some(at));
        assert_eq!(f.updater_accepts, Some(true));
        assert!(!f.fits && f.reasons[0].contains("journal"));
        assert!(fit(&l, &s, Some(at - SECTOR)).fits);
    }
}
