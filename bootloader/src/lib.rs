//! eboot-rs bootloader core: target-independent, `no_std`, no allocation, no panics on any
//! input. The device layer (Xtensa only) is a thin shell around [`boot::boot`].
#![no_std]
#![cfg_attr(not(test), deny(clippy::panic, clippy::unwrap_used, clippy::expect_used))]

#[cfg(test)]
extern crate std;

pub mod boot;
pub mod command;
pub mod copy;
pub mod crc;
pub mod image;
pub mod inflate;
pub mod journal;
pub mod flash;
pub mod loader;
pub mod platform;
pub mod report;

pub use boot::{boot, power_on, Boot, Mem, EXTENSION, TIER1};
pub use flash::SECTOR;
pub use platform::Platform;
