//! The Arduino core's flash layouts (the "Flash Size" menu) and the Updater's arithmetic on
//! them. Where an update is staged and whether it fits is [`crate::fit`].
//!
//! Computed with the same rules as the core's `tools/boards.txt.py` (`flash_map`), which
//! generates the `eagle.flash.*.ld` scripts; the test below pins the results to the table
//! in esp8266-compat.md §4.

use crate::error::{Error, Result};
use serde::Serialize;

pub const SECTOR: u32 = 4096;
/// Flash offset of the app image (the bootloader has sector 0).
pub const APP_START: u32 = 0x1000;
/// Bytes at the start of flash that are not sketch (bootloader sector + app/irom0 headers).
const RESERVED: u32 = 4112;
/// irom0 maps at most 1 MiB of flash, so no sketch image ends past it.
const IROM_WINDOW: u32 = 1 << 20;

/// Every menu entry of the core, as (flash KiB, FS KiB).
const MENUS: [(u32, u32); 28] = [
    (512, 0),
    (512, 32),
    (512, 64),
    (512, 128),
    (1024, 0),
    (1024, 64),
    (1024, 128),
    (1024, 144),
    (1024, 160),
    (1024, 192),
    (1024, 256),
    (1024, 512),
    (2048, 0),
    (2048, 64),
    (2048, 128),
    (2048, 256),
    (2048, 512),
    (2048, 1024),
    (4096, 0),
    (4096, 1024),
    (4096, 2048),
    (4096, 3072),
    (8192, 0),
    (8192, 6144),
    (8192, 7168),
    (16384, 0),
    (16384, 14336),
    (16384, 15360),
];

/// One flash layout. All addresses are flash offsets (not 0x402xxxxx).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Menu name, e.g. `4M2M`, `1M64`, `1M` (no filesystem).
    pub name: String,
    pub flash_size: u32,
    pub fs_start: u32,
    pub fs_end: u32,
    /// FS block size (0 without a filesystem).
    pub fs_block: u32,
    pub eeprom: u32,
    pub rf_cal: u32,
    pub sdk_config: u32,
    /// Largest sketch the linker accepts (the irom0 region length).
    pub max_sketch: u32,
    /// The menu's "OTA:~" figure: largest update that fits next to a sketch of the same size.
    pub max_ota: u32,
}

fn size_name(kb: u32) -> String {
    if kb >= 1024 {
        format!("{}M", kb / 1024)
    } else {
        format!("{kb}K")
    }
}

/// A layout by boards.txt.py's rules for a flash of `flash_kb` KiB with `fs_kb` KiB of FS.
pub fn compute(flash_kb: u32, fs_kb: u32) -> Layout {
    let sdk_kb = 12;
    let rfcal_kb = 4;
    let eeprom_kb = 4;
    let eeprom = (flash_kb - sdk_kb - rfcal_kb - eeprom_kb) * 1024;
    let rf_cal = (flash_kb - sdk_kb - rfcal_kb) * 1024;
    let (max_sketch, fs_start) = if flash_kb <= 1024 {
        (
            (flash_kb - fs_kb - eeprom_kb - rfcal_kb - sdk_kb) * 1024 - RESERVED,
            eeprom - fs_kb * 1024,
        )
    } else {
        (IROM_WINDOW - RESERVED, (flash_kb - fs_kb) * 1024)
    };
    let (fs_start, fs_end, fs_block) = if fs_kb == 0 {
        // The linker script then puts FS_start = FS_end at the EEPROM sector.
        (eeprom, eeprom, 0)
    } else {
        let block = if fs_kb < 512 { 4096 } else { 8192 };
        (
            fs_start,
            fs_start + (eeprom - fs_start) / block * block,
            block,
        )
    };
    let fs_name = if fs_kb == 0 {
        String::new()
    } else {
        size_name(fs_kb)
    };
    let fs_name = fs_name.trim_end_matches('K').to_string();
    Layout {
        name: format!("{}{}", size_name(flash_kb), fs_name),
        flash_size: flash_kb * 1024,
        fs_start,
        fs_end,
        fs_block,
        eeprom,
        rf_cal,
        sdk_config: rf_cal + rfcal_kb * 1024,
        max_sketch,
        max_ota: max_sketch.min(fs_start / 2),
    }
}

/// All layouts of the core's menu, smallest flash first.
pub fn all() -> Vec<Layout> {
    MENUS.iter().map(|&(f, s)| compute(f, s)).collect()
}

/// A layout by menu name (case-insensitive; `4M2M`, `1M64`, `1M`, `4M` ...).
pub fn find(name: &str) -> Result<Layout> {
    all()
        .into_iter()
        .find(|l| l.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<String> = all().into_iter().map(|l| l.name).collect();
            Error::invalid(format!(
                "unknown layout '{name}'; known: {}",
                names.join(", ")
            ))
        })
}

pub const fn roundup4k(n: u32) -> u32 {
    n.div_ceil(SECTOR) * SECTOR
}

impl Layout {
    /// End of the sketch area in flash: an image written at 0x0 must end at or below it.
    pub fn sketch_end(&self) -> u32 {
        self.max_sketch + RESERVED
    }

    /// Refuses an image of `size` bytes that cannot be a sketch in this layout.
    pub fn check_sketch(&self, size: u32) -> Result<()> {
        if size > self.sketch_end() {
            return Err(Error::DoesNotFit(format!(
                "image is {size} bytes, too big for layout {}: a sketch image may be at most {} bytes (max sketch {} + {RESERVED})",
                self.name,
                self.sketch_end(),
                self.max_sketch
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// esp8266-compat.md §4, row by row.
    #[test]
    fn matches_the_compat_table() {
        let rows: [(&str, u32, u32, u32, u32, u32); 8] = [
            ("1M", 0xFB000, 0xFB000, 0, 0xFB000, 1_023_984),
            ("1M64", 0xEB000, 0xFB000, 4096, 0xFB000, 958_448),
            ("1M256", 0xBB000, 0xFB000, 4096, 0xFB000, 761_840),
            ("2M1M", 0x100000, 0x1FA000, 8192, 0x1FB000, 1_044_464),
            ("4M1M", 0x300000, 0x3FA000, 8192, 0x3FB000, 1_044_464),
            ("4M2M", 0x200000, 0x3FA000, 8192, 0x3FB000, 1_044_464),
            ("4M3M", 0x100000, 0x3FA000, 8192, 0x3FB000, 1_044_464),
            ("16M14M", 0x200000, 0xFFA000, 8192, 0xFFB000, 1_044_464),
        ];
        for (name, fs_start, fs_end, blk, eeprom, max) in rows {
            let l = find(name).unwrap();
            assert_eq!(
                (l.fs_start, l.fs_end, l.fs_block, l.eeprom, l.max_sketch),
                (fs_start, fs_end, blk, eeprom, max),
                "{name}"
            );
            assert_eq!(
                (l.rf_cal, l.sdk_config),
                (eeprom + 0x1000, eeprom + 0x2000),
                "{name}"
            );
        }
        assert_eq!(
            find("4M2M").unwrap().fs_end - find("4M2M").unwrap().fs_start,
            2_072_576
        );
        assert_eq!(
            find("16M14M").unwrap().fs_end - find("16M14M").unwrap().fs_start,
            14_655_488
        );
    }

    #[test]
    fn sketch_limit() {
        let l = find("1M64").unwrap();
        assert!(l.check_sketch(l.sketch_end() + 1).is_err());
        assert!(l.check_sketch(l.sketch_end()).is_ok());
    }

    #[test]
    fn menu_ota_figure() {
        // The menu text "1MB (FS:64KB OTA:~470KB)" comes from max_ota / 1024.
        assert_eq!(find("1M64").unwrap().max_ota / 1024, 470);
        assert_eq!(find("4M2M").unwrap().max_ota / 1024, 1019);
    }
}
