//! `bench`: figures from the QEMU bench, with the real bootloader image.
use std::path::PathBuf;

use bench::qemu::Run;
use bench::scenario::{stage, staging_addr, sweep, updater_command, check_outcome, Outcome, Scenario};
use bench::{build_fixtures, AppSpec, Board, Fixtures, Reset};

/// Builds the bootloader for the bench: target/esp8266/bootloader.bin, the flashable image
/// (the build fails when it does not fit).
pub fn bootloader() -> Result<PathBuf, String> {
    crate::device::build()
}

/// The board for `bootloader()`'s image: that image at flash 0.
pub fn board() -> Result<Board, String> {
    let path = bootloader()?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Board::new(bytes, &path)
}

/// Before `cargo test`: the bootloader image the e2e tests pick up and the bench fixtures,
/// so tests start from a fresh build.
pub fn prepare() -> Result<(), String> {
    board()?;
    build_fixtures()?;
    Ok(())
}

/// Instructions from the bootloader's start to the app's entry across the runs of one
/// boot sequence (runs before the last count whole).
pub fn sequence_instructions(runs: &[Run]) -> Option<u64> {
    let (last, before) = runs.split_last()?;
    Some(before.iter().map(|r| r.run_instructions()).sum::<u64>() + last.boot_instructions()?)
}

pub fn outcome(name: &'static str, image: &[u8], id: &str) -> Outcome {
    Outcome { name, image: image.to_vec(), app_id: id.into(), region: None }
}

/// The sweep scenario shared with the end-to-end tests: gzip sketch update, small apps.
pub fn sweep_scenario(fx: &Fixtures, board: &Board) -> Result<Scenario, String> {
    let a = board.app_image(fx, &AppSpec::new("A", 1, 24 * 1024))?;
    let b = board.app_image(fx, &AppSpec::new("B", 2, 24 * 1024 + 5000))?;
    let gz = tools::gzip::gzip_best(&b);
    let mut f = board.flashed(&a);
    let src = staging_addr(gz.len());
    stage(&mut f, src, &gz);
    Ok(board.scenario(f, updater_command(src, 0, gz.len()), outcome("A", &a, "A"), outcome("B", &b, "B")))
}

pub fn bench(_args: &[&str]) -> Result<(), String> {
    let board = board()?;
    let fx = build_fixtures()?;
    println!("BENCH bootloader_bytes={}", board.bootloader.len());

    // Boot time: no command, 300 KB app.
    let big_a = board.app_image(&fx, &AppSpec::new("A", 1, 300 * 1024))?;
    let mut d = board.device(&fx.rom, board.flashed(&big_a), 1);
    let runs = d.boot_until_app(Reset::PowerOn, 3);
    check_outcome(&d.flash, runs.last().and_then(|r| r.app.as_ref()), &outcome("A", &big_a, "A"), &big_a[..4096])
        .and_then(|_| board.check_boot_area(&d.flash))
        .map_err(|e| format!("boot: {e}\n{}", runs.last().map(|r| r.console.as_str()).unwrap_or("")))?;
    println!("BENCH boot_instructions={}", sequence_instructions(&runs).ok_or("no app entry")?);

    // Update: gzip sketch update to another 300 KB app, as the stock Updater stages it.
    let big_b = board.app_image(&fx, &AppSpec::new("B", 2, 300 * 1024 - 3000))?;
    let gz = tools::gzip::gzip_best(&big_b);
    let mut f = board.flashed(&big_a);
    let src = staging_addr(gz.len());
    stage(&mut f, src, &gz);
    let mut d = board.device(&fx.rom, f, 2);
    d.write_command(&updater_command(src, 0, gz.len()));
    let runs = d.boot_until_app(Reset::Soft, 6);
    check_outcome(&d.flash, runs.last().and_then(|r| r.app.as_ref()), &outcome("B", &big_b, "B"), &big_a[..4096])
        .and_then(|_| board.check_boot_area(&d.flash))
        .map_err(|e| format!("update: {e}\n{}", runs.last().map(|r| r.console.as_str()).unwrap_or("")))?;
    let insns = sequence_instructions(&runs).ok_or("no app entry")?;
    println!("BENCH update_instructions_per_byte={}", insns / big_b.len() as u64);
    let (erases, prog) = runs.iter().fold((0, 0), |(e, p), r| (e + r.counters.erases, p + r.counters.programmed));
    println!("BENCH update_erases={erases} update_bytes_programmed={prog}");

    // Power-cut sweep: every operation of a gzip sketch update.
    let s = sweep_scenario(&fx, &board)?;
    let r = sweep(&fx.rom, &s, 100, u32::MAX, 10, 2)?;
    for b in r.bricks().iter().take(3) {
        eprintln!("brick: {:?}", b);
    }
    println!("BENCH cut_points={} bricks={}", r.points.len(), r.bricks().len());

    // Our gzip against `gzip -9` on the 300 KB test app image.
    let ours = gz.len();
    let out = std::process::Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let mut i = c.stdin.take().expect("stdin");
            let data = big_b.clone();
            let t = std::thread::spawn(move || i.write_all(&data));
            let o = c.wait_with_output()?;
            let _ = t.join();
            Ok(o)
        })
        .map_err(|e| format!("gzip: {e}"))?;
    println!("GZIP ratio_vs_gzip9={:.3}", ours as f64 / out.stdout.len() as f64);
    Ok(())
}
