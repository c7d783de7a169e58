//! Host library behind `otatool`.
pub use bootloader::{command, image};
