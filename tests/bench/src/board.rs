//! Where the bootloader under test lives on the simulated board.
//!
//! A real ESP8266 loads its bootloader from flash 0, and every Arduino app starts at 0x1000,
//! so the bootloader image must fit sector 0 (4096 bytes); Arduino's elf2bin.py further
//! wants the image plus 8 bytes to fit, so at most 4,080 bytes. The bench runs exactly that
//! flashable image at flash 0 of a 1 MiB chip (layout 1M64), and refuses any other.
use std::path::{Path, PathBuf};

use crate::build::{flash_params, AppSpec, Fixtures};
use crate::qemu::Device;
use crate::scenario::{Outcome, Scenario, CHIP};

/// Flash sector 0: the bootloader's whole slot on a real chip.
pub const SLOT_LIMIT: usize = 4096;
/// The largest image elf2bin.py accepts: image + 8 ≤ 4096, images being 16-byte blocks.
pub const ELF2BIN_LIMIT: usize = (SLOT_LIMIT - 8) / 16 * 16;

/// The board for one bootloader image: the image at flash 0 and the sector 0 it makes.
#[derive(Clone, Debug)]
pub struct Board {
    pub bootloader: Vec<u8>,
    /// Where the image came from (for messages).
    pub source: PathBuf,
    sector0: Vec<u8>,
}

impl Board {
    /// Places `bootloader` (an ESP8266 image) at flash 0. Refuses an image that does not
    /// fit sector 0 or that elf2bin.py would refuse (over 4,080 bytes): no real chip could
    /// be flashed with it through the Arduino tools.
    pub fn new(bootloader: Vec<u8>, source: &Path) -> Result<Board, String> {
        let p = tools::image::parse_image(&bootloader).map_err(|e| format!("{}: {e}", source.display()))?;
        let n = p.len;
        if n > SLOT_LIMIT {
            return Err(format!(
                "{}: bootloader image is {n} bytes, over the {SLOT_LIMIT}-byte flash sector 0; \
                 the bench boots only a flashable image, from flash 0 (see `cargo xtask size`)",
                source.display()
            ));
        }
        if n > ELF2BIN_LIMIT {
            return Err(format!(
                "{}: bootloader image is {n} bytes, over {ELF2BIN_LIMIT} (image + 8 > {SLOT_LIMIT}): \
                 Arduino's elf2bin.py would refuse it, so the bench does too",
                source.display()
            ));
        }
        let sector0 = tools::image::bootloader_slot(&bootloader[..n], &flash_params())
            .map_err(|e| format!("{}: {e}", source.display()))?;
        Ok(Board { bootloader: bootloader[..n].to_vec(), source: source.to_path_buf(), sector0 })
    }

    /// What flash sector 0 holds (and must still hold after any update).
    pub fn sector0(&self) -> &[u8] {
        &self.sector0
    }

    /// The Arduino flash image of `app` with this bootloader in sector 0: exactly what
    /// `otatool image` makes.
    pub fn app_image(&self, fx: &Fixtures, app: &AppSpec) -> Result<Vec<u8>, String> {
        fx.image(&self.bootloader, app)
    }

    /// A blank 1 MiB chip with `image` (an Arduino image from [`Board::app_image`]) at 0.
    pub fn flashed(&self, image: &[u8]) -> Vec<u8> {
        crate::scenario::flashed(image)
    }

    /// A device for this board (the ROM loads the bootloader from flash 0).
    pub fn device(&self, rom: &Path, flash: Vec<u8>, seed: u64) -> Device {
        assert_eq!(flash.len(), CHIP, "flash for this board is {CHIP} bytes");
        Device::new(rom, flash, seed)
    }

    /// A sweep scenario on this board.
    pub fn scenario(&self, flash: Vec<u8>, command: [u32; 32], old: Outcome, new: Outcome) -> Scenario {
        Scenario { flash, command, old, new }
    }

    /// Sector 0 still holds what this board started with.
    pub fn check_boot_area(&self, flash: &[u8]) -> Result<(), String> {
        check_boot_area(flash, &self.sector0)
    }
}

/// The check of [`Board::check_boot_area`], for code that has sector 0 only.
pub fn check_boot_area(flash: &[u8], sector0: &[u8]) -> Result<(), String> {
    if &flash[..SLOT_LIMIT] != sector0 {
        return Err("sector 0 changed".into());
    }
    Ok(())
}

/// The bootloader image the bench runs: `EBOOT_BOOTLOADER_BIN` (an image or an ELF) if
/// set, else target/esp8266/bootloader.bin (the flashable image from `cargo xtask build`).
pub fn find_bootloader(root: &Path) -> Result<Board, String> {
    let path = match std::env::var_os("EBOOT_BOOTLOADER_BIN") {
        Some(p) => PathBuf::from(p),
        None => root.join("target/esp8266/bootloader.bin"),
    };
    if !path.exists() {
        return Err(format!("no bootloader image at {}: build it first (`cargo xtask build`)", path.display()));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let image = if tools::image::is_elf(&bytes) {
        // As elf2bin.py takes a bootloader ELF (eboot.elf).
        let params = tools::image::FlashParams::default();
        tools::image::image_from_sections(&bytes, &tools::image::BOOTLOADER_SECTIONS, &params).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        bytes
    };
    Board::new(image, &path)
}
