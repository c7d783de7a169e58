//! What the bootloader or the Updater would refuse, or what silently goes wrong, caught
//! on the host before a file reaches a device.

use crate::error::{Error, Result};
use crate::image::{self, FlashSize};
use crate::layout::{Layout, SECTOR};
use object::{Object, ObjectSymbol};

/// Refuses a copy command that the bootloader refuses: length 0, or a source or destination
/// that is not 4 KiB aligned (eboot: error 1; eboot-rs: Misaligned / Empty).
pub fn copy_command(src: u32, dst: u32, len: u32) -> Result<()> {
    let mut wrong = Vec::new();
    if len == 0 {
        wrong.push("--len is 0 (nothing to copy)".to_string());
    }
    for (name, v) in [("--src", src), ("--dst", dst)] {
        if v % SECTOR != 0 {
            wrong.push(format!(
                "{name} 0x{v:X} is not 4 KiB aligned (0x{:X} or 0x{:X} would be)",
                v / SECTOR * SECTOR,
                (v / SECTOR + 1) * SECTOR
            ));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "the bootloader refuses this command: {} (--force writes it anyway, for bench tests)",
        wrong.join("; ")
    )))
}

/// A warning when the image's flash size (`-s`) is not the layout's flash size: the SDK
/// halts a sketch whose header size differs from the chip the layout was built for.
pub fn flash_size_vs_layout(size: FlashSize, layout: &Layout) -> Option<String> {
    (size.bytes() != layout.flash_size).then(|| {
        format!(
            "flash size {size} (-s/--flash-size) differs from layout {}, which is for {} flash; \
             the image header says {size}",
            layout.name,
            FlashSize::from_bytes(layout.flash_size)
                .map_or(layout.flash_size.to_string(), |s| s.to_string())
        )
    })
}

/// Flash address of the whole-image CRC words (flash 0x1010 mapped at 0x40200000).
const CRC_WORDS_ADDR: u64 = 0x4020_1010;

/// A warning when an app ELF lacks the `__crc_len`/`__crc_val` words at 0x40201010 (ELFs of
/// cores before 3.0.0): elf2bin, and otatool with it, then write the whole-image length
/// and CRC over 8 bytes of the sketch's own code or data there.
pub fn crc_words(app_elf: &[u8]) -> Option<String> {
    if !image::is_elf(app_elf) {
        return None;
    }
    let file = object::read::elf::ElfFile32::<object::Endianness>::parse(app_elf).ok()?;
    let addr = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
    };
    let (len, val) = (addr("__crc_len"), addr("__crc_val"));
    if len == Some(CRC_WORDS_ADDR) && val == Some(CRC_WORDS_ADDR + 4) {
        return None;
    }
    Some(format!(
        "the app ELF has no __crc_len/__crc_val words at 0x{CRC_WORDS_ADDR:X} (an ELF of a core before 3.0.0?): \
         the whole-image length and CRC are written over the 8 bytes of the sketch's own code or data there \
         (exactly as elf2bin does), so the sketch may crash; build it with the core whose bootloader you ship"
    ))
}
