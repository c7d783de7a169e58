//! `bench`: figures from the QEMU bench.
pub fn bench(_args: &[&str]) -> Result<(), String> {
    Err("bench: not written yet".into())
}
