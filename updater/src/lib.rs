//! Firmware side of eboot-rs (not yet written beyond the shared formats it re-exports).
#![no_std]

pub use bootloader::command;
