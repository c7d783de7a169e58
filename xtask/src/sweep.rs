//! `sweep`: the host power-cut sweep and corruption test (release build).
//!
//! Runs `tests/sim`'s `sweep` binary with the full counts; extra arguments are passed on
//! (`--quick`, `--random N`, `--only SUBSTR`, `--replay ...`; see `sweep --help`).
use crate::util;

pub fn sweep(args: &[&str]) -> Result<(), String> {
    let mut a = vec!["run", "--release", "--quiet", "-p", "sim", "--bin", "sweep", "--"];
    a.extend_from_slice(args);
    util::cargo(&a)
}
