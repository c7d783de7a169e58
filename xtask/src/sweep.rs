//! `sweep`: the host power-cut sweep (release build).
pub fn sweep(_args: &[&str]) -> Result<(), String> {
    Err("sweep: not written yet".into())
}
