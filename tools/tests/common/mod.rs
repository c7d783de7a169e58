//! What every otatool integration test needs: the binary, the fixtures, and running it.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const OTATOOL: &str = env!("CARGO_BIN_EXE_otatool");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs otatool; stdout, stderr and status come back in the `Output`.
pub fn ota(args: &[&str]) -> Output {
    Command::new(OTATOOL).args(args).output().expect("run otatool")
}

/// Asserts success (showing both streams otherwise) and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
