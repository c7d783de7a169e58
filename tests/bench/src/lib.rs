//! QEMU bench harness: one QEMU process per power-on, flash carried between runs.
