//! Where the bootloader under test lives on the simulated board.
//!
//! A real ESP8266 loads its bootloader from flash 0, and every Arduino app starts at 0x1000,
//! so the bootloader image must fit 4096 bytes. An image that fits goes exactly there (the
//! true flashable image at flash 0). While the real one is bigger, the bench can still run
//! it — bench-only, and every output says so: the chip is twice the layout's size, the image
//! sits in the top 64 KiB (flash the 1M64 layout never uses), the ROM is told to load it
//! from there (`Device::boot_offset`), and sector 0 holds a fixed marker instead. The
//! layout's own addresses (0x1000, staging, FS_start) stay those of the 1 MB layout; only
//! the chip is bigger, which the ROM's `flashchip` descriptor reports (the bootloader scans
//! all of it for journals, so that path runs over the bench-only slot too).
use std::path::{Path, PathBuf};

use crate::build::{flash_params, AppSpec, Fixtures};
use crate::qemu::Device;
use crate::scenario::{Outcome, Scenario, CHIP};

/// Flash sector 0: the bootloader's whole slot on a real chip.
pub const SLOT_LIMIT: usize = 4096;
/// Chip size while the bootloader is oversize: the layout's 1 MiB, twice.
pub const OVERSIZE_CHIP: usize = 2 * CHIP;
/// Where an oversize bootloader goes: the top 64 KiB of that chip.
pub const OVERSIZE_SLOT: u32 = (OVERSIZE_CHIP - 0x10000) as u32;
/// Sector 0 while the bootloader is elsewhere: not an image (no 0xE9), so no ROM boots
/// it, and a fixed content the tests can check is never rewritten.
pub const SECTOR0_MARKER: &[u8] = b"eboot-rs bench: sector 0 placeholder; the oversize bootloader boots from a bench-only slot\n";

/// The board for one bootloader image: chip size, where the ROM loads it, sector 0.
#[derive(Clone, Debug)]
pub struct Board {
    pub bootloader: Vec<u8>,
    /// Where the image came from (for messages).
    pub source: PathBuf,
    pub chip: usize,
    /// 0, or the bench-only slot for an image over 4096 bytes.
    pub boot_offset: u32,
    sector0: Vec<u8>,
}

impl Board {
    /// Places `bootloader` (an ESP8266 image): at 0 when it fits sector 0, else in the
    /// bench-only slot of a chip twice the layout's size.
    pub fn new(bootloader: Vec<u8>, source: &Path) -> Result<Board, String> {
        let p = tools::image::parse_image(&bootloader).map_err(|e| format!("{}: {e}", source.display()))?;
        let n = p.len;
        if n > 0x10000 {
            return Err(format!("{}: {n} bytes, larger than the bench's 64 KiB boot slot", source.display()));
        }
        let (chip, boot_offset, sector0) = if n <= SLOT_LIMIT {
            (CHIP, 0, in_place_slot(&bootloader[..n])?)
        } else {
            let mut s = SECTOR0_MARKER.to_vec();
            s.resize(SLOT_LIMIT, tools::image::SLOT_FILL);
            (OVERSIZE_CHIP, OVERSIZE_SLOT, s)
        };
        Ok(Board { bootloader: bootloader[..n].to_vec(), source: source.to_path_buf(), chip, boot_offset, sector0 })
    }

    /// The image is over 4096 bytes and boots from the bench-only slot.
    pub fn oversize(&self) -> bool {
        self.boot_offset != 0
    }

    /// What flash sector 0 holds (and must still hold after any update).
    pub fn sector0(&self) -> &[u8] {
        &self.sector0
    }

    /// The line every output that uses the bench-only slot prints (None at flash 0).
    pub fn note(&self) -> Option<String> {
        self.oversize().then(|| {
            format!(
                "BENCH NOTE: bootloader image is {} bytes (over {SLOT_LIMIT}): booted from a bench-only slot at {:#x} \
                 of a {} MiB chip (sector 0 holds a marker; layout 1M64 unchanged); a real chip cannot boot this image",
                self.bootloader.len(),
                self.boot_offset,
                self.chip >> 20
            )
        })
    }

    /// The Arduino flash image of `app` with this board's sector 0. At flash 0 with an
    /// image elf2bin accepts (image + 8 ≤ 4096: at most 4,080 bytes, images being 16-byte blocks), exactly what `otatool image` makes.
    pub fn app_image(&self, fx: &Fixtures, app: &AppSpec) -> Result<Vec<u8>, String> {
        if !self.oversize() && self.bootloader.len() + 8 <= SLOT_LIMIT {
            return fx.image(&self.bootloader, app);
        }
        // Same app bytes with another sector 0, and the whole-image CRC made again.
        let mut img = fx.image(&fx.miniboot()?, app)?;
        img[..SLOT_LIMIT].copy_from_slice(&self.sector0);
        tools::image::apply_arduino_crc(&mut img).map_err(|e| e.to_string())?;
        Ok(img)
    }

    /// A blank chip with `image` (an Arduino image from [`Board::app_image`]) at 0 and, in
    /// the oversize mode, the bootloader in its slot.
    pub fn flashed(&self, image: &[u8]) -> Vec<u8> {
        let mut f = vec![0xFF; self.chip];
        f[..image.len()].copy_from_slice(image);
        let o = self.boot_offset as usize;
        if o != 0 {
            f[o..o + self.bootloader.len()].copy_from_slice(&self.bootloader);
        }
        f
    }

    /// A device for this board (the ROM loads the bootloader from `boot_offset`).
    pub fn device(&self, rom: &Path, flash: Vec<u8>, seed: u64) -> Device {
        assert_eq!(flash.len(), self.chip, "flash for this board is {} bytes", self.chip);
        let mut d = Device::new(rom, flash, seed);
        d.boot_offset = self.boot_offset;
        d
    }

    /// A sweep scenario on this board.
    pub fn scenario(&self, flash: Vec<u8>, command: [u32; 32], old: Outcome, new: Outcome) -> Scenario {
        let slot = if self.oversize() { self.bootloader.clone() } else { Vec::new() };
        Scenario { flash, boot_offset: self.boot_offset, slot, command, old, new }
    }

    /// Sector 0 and (oversize) the slot still hold what this board started with.
    pub fn check_boot_area(&self, flash: &[u8]) -> Result<(), String> {
        check_boot_area(flash, &self.sector0, self.boot_offset, &self.bootloader)
    }
}

/// The checks of [`Board::check_boot_area`], for code that has the pieces only.
pub fn check_boot_area(flash: &[u8], sector0: &[u8], boot_offset: u32, bootloader: &[u8]) -> Result<(), String> {
    if &flash[..SLOT_LIMIT] != sector0 {
        return Err("sector 0 changed".into());
    }
    let o = boot_offset as usize;
    if o != 0 && flash[o..o + bootloader.len()] != bootloader[..] {
        return Err(format!("the bootloader in the bench-only slot at {o:#x} changed"));
    }
    Ok(())
}

/// Sector 0 for a bootloader that fits: elf2bin's slot (image, 0xAA fill, the board's
/// flash mode/size bytes); elf2bin refuses images over 4,080 bytes, which still fit the
/// chip, so those are padded here the same way.
fn in_place_slot(bl: &[u8]) -> Result<Vec<u8>, String> {
    if let Ok(s) = tools::image::bootloader_slot(bl, &flash_params()) {
        return Ok(s);
    }
    let mut s = bl.to_vec();
    s[2] = flash_params().mode_byte();
    s[3] = flash_params().size_freq_byte();
    s.resize(SLOT_LIMIT, tools::image::SLOT_FILL);
    Ok(s)
}

/// `target/esp8266/bootloader-oversize.bin`: the oversize build as an image, bench-only.
pub fn oversize_bin(out_dir: &Path) -> PathBuf {
    out_dir.join("bootloader-oversize.bin")
}

/// After `cargo xtask build` refused an image over 4096 bytes: converts the ELF that build
/// linked into `bootloader-oversize.bin` and returns its path. The build deletes
/// bootloader.elf before linking and links oversize.elf only when bootloader.elf does not
/// link, so an existing bootloader.elf is the latest link (fits its IRAM window, image too
/// big all the same), else oversize.elf is.
pub fn convert_oversize(out_dir: &Path) -> Result<PathBuf, String> {
    let elf = [out_dir.join("bootloader.elf"), out_dir.join("oversize.elf")]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| format!("no bootloader.elf or oversize.elf in {}: run `cargo xtask build`", out_dir.display()))?;
    let bytes = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let img = tools::image::image_from_elf(&bytes, &tools::image::FlashParams::default())
        .map_err(|e| format!("{}: {e}", elf.display()))?;
    let out = oversize_bin(out_dir);
    tools::write_atomic(&out, &img).map_err(|e| e.to_string())?;
    // write_atomic's temporary file is private (0600); this one is an ordinary build output.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644));
    Ok(out)
}

/// The bootloader image the bench runs: `EBOOT_BOOTLOADER_BIN` (an image or an ELF) if
/// set; else target/esp8266/bootloader.bin (the flashable image, at flash 0); else the
/// oversize build (converted afresh when the ELF is newer than bootloader-oversize.bin).
pub fn find_bootloader(root: &Path) -> Result<Board, String> {
    let out = root.join("target/esp8266");
    let path = if let Some(p) = std::env::var_os("EBOOT_BOOTLOADER_BIN") {
        PathBuf::from(p)
    } else if out.join("bootloader.bin").exists() {
        out.join("bootloader.bin")
    } else {
        let bin = oversize_bin(&out);
        let newest_elf = ["bootloader.elf", "oversize.elf"].iter().filter_map(|n| mtime(&out.join(n))).max();
        match (mtime(&bin), newest_elf) {
            (Some(b), Some(e)) if b >= e => bin,
            (_, Some(_)) => convert_oversize(&out)?,
            (Some(_), None) => bin,
            (None, None) => {
                return Err(format!(
                    "no bootloader image in {}: build it first (`cargo xtask build`; when it is over 4096 bytes \
                     the bench uses the oversize ELF that build leaves)",
                    out.display()
                ))
            }
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let image = if tools::image::is_elf(&bytes) {
        tools::image::image_from_elf(&bytes, &tools::image::FlashParams::default()).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        bytes
    };
    Board::new(image, &path)
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}
