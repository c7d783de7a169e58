//! `setup`, `build`, `size`: the device toolchain and the bootloader image.
use std::path::PathBuf;

pub fn setup() -> Result<(), String> {
    Err("setup: not written yet".into())
}

/// Builds target/esp8266/bootloader.bin and returns its path.
pub fn build() -> Result<PathBuf, String> {
    Err("build: not written yet".into())
}

pub fn size() -> Result<(), String> {
    Err("size: not written yet".into())
}
