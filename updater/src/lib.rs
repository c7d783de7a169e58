//! Firmware side of eboot-rs: what a Rust app links to update itself.
//!
//! `no_std`, no allocation, no panics on any input; generic over `embedded-storage`'s
//! [`NorFlash`](embedded_storage::nor_flash::NorFlash). The formats (command block,
//! journal, boot report, image) are the bootloader's own, imported from the `bootloader`
//! crate, never redefined here.
//!
//! An update, in the order an app does it:
//!
//! 1. [`Stager::begin`] picks the staging address exactly as the Arduino `Updater` does
//!    (`FS_start − roundup4K(size)`) and refuses an image that does not fit;
//! 2. [`Stager::write`] takes the image in chunks of any size (erasing each sector when it
//!    first writes into it, programming whole words);
//! 3. [`Stager::finish`] reads the staged bytes back from flash, checks them against the
//!    MD5 or SHA-256 the caller expects, and returns the [`Command`] to hand over;
//! 4. [`request`] writes that command into RTC memory (optionally a trial boot,
//!    [`CommandExt::trial`], or an expected output CRC, [`CommandExt::expect_crc`]: both
//!    are carried out by the extension image, which [`stage_extension`] stages beside the
//!    update and names in the command); the app then soft-resets (a power-on reset makes
//!    the bootloader ignore RTC memory);
//! 5. after the reboot, [`report`] says what the bootloader did, and an app booted in trial
//!    calls [`confirm`] once it works — otherwise the bootloader restores the old app.
//!    Until the trial ends, [`Stager::begin`] refuses to stage anything
//!    ([`UpdaterError::TrialPending`]): the old app's backup and the extension image lie
//!    in the free flash.
//!
//! Signed images (Arduino's `payload ‖ signature ‖ u32 LE length`, RSA PKCS#1 v1.5 over
//! SHA-256) are not verified here: no well-kept `no_std` crate verifies RSA without an
//! allocator (RustCrypto's `rsa` needs `alloc`). Stage the payload only, with `size`
//! excluding the signature trailer, and verify the signature before calling [`request`].
//!
//! ```ignore
//! let layout = Layout { fs_start: 0xEB000, fs_end: 0xFB000 };
//! let mut st = Stager::begin(&mut flash, layout, Kind::Sketch, size)?;
//! while let Some(chunk) = net.next_chunk() {
//!     st.write(&mut flash, chunk)?;
//! }
//! let cmd = st.finish(&mut flash, Check::Md5(md5_from_server))?;
//! let cmd = updater::stage_extension(&mut flash, cmd.trial(3))?;
//! updater::request(&mut rtc, &cmd)?;
//! restart();
//! // ... on the next boot:
//! if updater::report(&rtc).is_some_and(|r| r.event == Event::Trial as u32) && self_test() {
//!     updater::confirm(&mut flash, &rtc)?;
//! }
//! ```
#![no_std]
#![cfg_attr(not(test), deny(clippy::panic, clippy::unwrap_used, clippy::expect_used))]

mod error;
mod rtc;
mod stage;

pub use bootloader::command::{self, Command};
pub use bootloader::report::{Code, Event, Report};
pub use error::UpdaterError;
pub use rtc::{confirm, report, request, CommandExt, Rtc};
pub use stage::{stage_extension, Check, Kind, Layout, Stager, EXTENSION};

/// Result of every fallible call in this crate.
pub type Result<T> = core::result::Result<T, UpdaterError>;
