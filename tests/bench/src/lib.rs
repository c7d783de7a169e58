//! QEMU bench harness: the real bootloader image on an emulated lx106.
//!
//! * [`build`]: compiles the bench ROM and the test apps (xtensa-lx106-elf-gcc) and makes
//!   Arduino flash images with `tools::image`.
//! * [`qemu`]: one QEMU process per power-on; flash carried from run to run, RTC memory
//!   only across soft resets; console, flash counters and instruction counts per run.
//! * [`app`]: what a test app printed, and what it should have printed for an image.
//! * [`board`]: the bootloader under test at flash 0 (only a flashable image: at most
//!   4,080 bytes, what elf2bin.py accepts).
//! * [`scenario`]: flash layouts, staging like the Arduino `Updater`, and the power-cut sweep.
pub mod app;
pub mod board;
pub mod build;
pub mod qemu;
pub mod scenario;

pub use board::Board;
pub use build::{build_fixtures, AppSpec, Fixtures};
pub use qemu::{Counters, Cut, Device, End, Reset, Run};
