//! The eboot-rs bootloader binary for the ESP8266 (flash 0x0, at most 4096 bytes).
//! Built only by `cargo xtask build`; the logic is in the `bootloader` library.
#![cfg_attr(target_arch = "xtensa", no_std, no_main)]

#[cfg(target_arch = "xtensa")]
mod device;

/// Host builds with `--all-features` (clippy, `cargo build --all-features`) get this
/// instead of a link error: the device layer exists only for the lx106.
#[cfg(not(target_arch = "xtensa"))]
fn main() {
    eprintln!("the bootloader binary runs on the ESP8266 only: build it with `cargo xtask build`");
    std::process::exit(2);
}
