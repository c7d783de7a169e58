//! End-to-end: the real bootloader image (target/esp8266/bootloader.bin from
//! `cargo xtask build`) on the bench, through every flow of the stock Arduino OTA stack.
use bench::app::expected_segs;
use bench::build::real_bootloader;
use bench::scenario::*;
use bench::{build_fixtures, AppSpec, Device, End, Fixtures, Reset, Run};
use bootloader::command::{Command, EXT_TRIAL};
use bootloader::report::{Code, Event, REPORT_MAGIC};

const FILLER: u32 = 24 * 1024;

struct Env {
    fx: Fixtures,
    bl: Vec<u8>,
    a: Vec<u8>,
    b: Vec<u8>,
}

fn env() -> Env {
    let fx = build_fixtures().unwrap();
    let bl = real_bootloader().unwrap();
    let a = fx.image(&bl, &AppSpec::new("A", 1, FILLER)).unwrap();
    let b = fx.image(&bl, &AppSpec::new("B", 2, FILLER + 5000)).unwrap();
    Env { fx, bl, a, b }
}

fn outcome(name: &'static str, image: &[u8], id: &str) -> Outcome {
    Outcome { name, image: image.to_vec(), app_id: id.into(), region: None }
}

/// No run may break the strict ROM rules or crash.
fn clean(runs: &[Run]) {
    for r in runs {
        assert_eq!(r.counters.violations, 0, "ROM rule violation:\n{}", r.console);
        assert!(matches!(r.end, End::SoftReset | End::PowerCut), "{:?}:\n{}", r.end, r.console);
    }
}

/// The boot report the app found in RTC memory: (event, code, journal, trial_left).
fn report(r: &Run) -> (u32, u32, u32, u32) {
    let a = r.app.as_ref().expect("app ran");
    assert_eq!(a.report.len(), 5);
    assert_eq!(a.report[0], REPORT_MAGIC, "no boot report:\n{}", r.console);
    (a.report[1], a.report[2], a.report[3], a.report[4])
}

/// Stages `payload`, writes the command, soft-resets (as `ESP.restart()` after
/// `Update.end()`), and boots until an app runs.
fn update(e: &Env, payload: &[u8], dst: u32, cmd: impl Fn(u32) -> [u32; 32], base: &[u8]) -> (Device, Vec<Run>) {
    let mut f = base.to_vec();
    let src = staging_addr(payload.len());
    stage(&mut f, src, payload);
    let mut d = Device::new(&e.fx.rom, f, 11);
    let _ = dst;
    d.write_command(&cmd(src));
    let runs = d.boot_until_app(Reset::Soft, 8);
    clean(&runs);
    (d, runs)
}

#[test]
fn boots_with_no_command() {
    let e = env();
    let mut d = Device::new(&e.fx.rom, flashed(&e.a), 1);
    let runs = d.boot_until_app(Reset::PowerOn, 3);
    clean(&runs);
    let last = runs.last().unwrap();
    check_outcome(&d.flash, last.app.as_ref(), &outcome("A", &e.a, "A"), &e.a[..4096]).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(report(last).0, Event::Nothing as u32);
    assert_eq!(last.counters.ops, 0, "a plain boot must not write flash");
    eprintln!("boot: {:?} instructions", last.boot_instructions());
}

#[test]
fn stock_updater_sketch_update_raw() {
    let e = env();
    let len = e.b.len();
    let (d, runs) = update(&e, &e.b, 0, |src| {
        // Updater::end() leaves args[3..] uninitialised; they are CRC-covered garbage.
        let mut c = Command::copy(src, 0, len as u32);
        for (i, a) in c.args.iter_mut().enumerate().skip(3) {
            *a = 0xA5A5_0000 ^ (i as u32 * 0x0101_0101);
        }
        c.encode()
    }, &flashed(&e.a));
    let last = runs.last().unwrap();
    check_outcome(&d.flash, last.app.as_ref(), &outcome("B", &e.b, "B"), &e.a[..4096]).unwrap();
    assert_eq!(report(last).0, Event::Applied as u32, "{}", last.console);
    assert_eq!(report(last).1, 0);
}

#[test]
fn stock_updater_sketch_update_gzip() {
    let e = env();
    let gz = tools::gzip::gzip_best(&e.b);
    assert!(gz.len() < e.b.len());
    let (d, runs) = update(&e, &gz, 0, |src| updater_command(src, 0, gz.len()), &flashed(&e.a));
    let last = runs.last().unwrap();
    check_outcome(&d.flash, last.app.as_ref(), &outcome("B", &e.b, "B"), &e.a[..4096]).unwrap();
    assert_eq!(report(last).0, Event::Applied as u32);
    eprintln!("gzip update: {} erases, {} bytes programmed", runs[0].counters.erases, runs[0].counters.programmed);
}

fn fs_image(seed: u8, len: usize) -> Vec<u8> {
    bench::build::code_like_filler(len, seed as u64 * 77 + 1)
}

#[test]
fn atomic_filesystem_update() {
    let e = env();
    let mut base = flashed(&e.a);
    let old_fs = fs_image(1, (FS_END - FS_START) as usize);
    base[FS_START as usize..FS_END as usize].copy_from_slice(&old_fs);
    let new_fs = fs_image(2, 40 * 1024);
    let (d, runs) = update(&e, &new_fs, FS_START, |src| updater_command(src, FS_START, new_fs.len()), &base);
    let last = runs.last().unwrap();
    let mut o = outcome("A+newfs", &e.a, "A");
    o.region = Some((FS_START, new_fs.clone()));
    check_outcome(&d.flash, last.app.as_ref(), &o, &e.a[..4096]).unwrap();
    assert_eq!(report(last).0, Event::Applied as u32);
}

fn trial_command(src: u32, len: usize, boots: u32) -> [u32; 32] {
    let mut c = Command::copy(src, 0, len as u32);
    c.ext = EXT_TRIAL;
    c.args[3] = 0; // the bootloader picks the backup area
    c.args[4] = boots;
    c.encode()
}

#[test]
fn trial_boot_without_confirmation_rolls_back() {
    let e = env();
    let gz = tools::gzip::gzip_best(&e.b);
    let (mut d, runs) = update(&e, &gz, 0, |src| trial_command(src, gz.len(), 2), &flashed(&e.a));
    let first = runs.last().unwrap();
    assert_eq!(first.app.as_ref().unwrap().id, "B");
    assert_eq!(report(first).0, Event::Trial as u32);
    // B never confirms: keep resetting (soft, as a crashing app would) until A is back.
    let mut seen = vec!["B".to_string()];
    for _ in 0..6 {
        let runs = d.boot_until_app(Reset::Soft, 4);
        clean(&runs);
        let r = runs.last().unwrap();
        seen.push(r.app.as_ref().map(|a| a.id.clone()).unwrap_or_default());
        if r.app.as_ref().is_some_and(|a| a.id == "A") {
            assert_eq!(report(r).0, Event::RolledBack as u32, "{}", r.console);
            check_outcome(&d.flash, r.app.as_ref(), &outcome("A", &e.a, "A"), &e.a[..4096]).unwrap();
            return;
        }
    }
    panic!("no rollback; apps booted: {seen:?}");
}

#[test]
fn trial_boot_confirmed_stays() {
    let e = env();
    let bc = e.fx.image(&e.bl, &AppSpec::new("B", 2, FILLER + 5000).confirming()).unwrap();
    let gz = tools::gzip::gzip_best(&bc);
    let (mut d, runs) = update(&e, &gz, 0, |src| trial_command(src, gz.len(), 2), &flashed(&e.a));
    let first = runs.last().unwrap();
    assert_eq!(report(first).0, Event::Trial as u32);
    assert_eq!(first.app.as_ref().unwrap().confirm, Some(0), "{}", first.console);
    for i in 0..4 {
        let runs = if i % 2 == 0 { d.boot_until_app(Reset::Soft, 4) } else { d.boot_until_app(Reset::PowerOn, 4) };
        clean(&runs);
        let r = runs.last().unwrap();
        assert_eq!(r.app.as_ref().unwrap().id, "B", "{}", r.console);
    }
    let r = d.boot_until_app(Reset::PowerOn, 4);
    check_outcome(&d.flash, r.last().unwrap().app.as_ref(), &outcome("B", &bc, "B"), &e.a[..4096]).unwrap();
}

#[test]
fn corrupt_staged_image_is_refused_and_old_app_boots() {
    let e = env();
    let mut gz = tools::gzip::gzip_best(&e.b);
    let mid = gz.len() / 2;
    gz[mid] ^= 0x5A;
    let base = flashed(&e.a);
    let (d, runs) = update(&e, &gz, 0, |src| updater_command(src, 0, gz.len()), &base);
    let last = runs.last().unwrap();
    check_outcome(&d.flash, last.app.as_ref(), &outcome("A", &e.a, "A"), &e.a[..4096]).unwrap();
    let (ev, code, _, _) = report(last);
    assert_eq!(ev, Event::Rejected as u32, "{}", last.console);
    assert!([Code::GzipData as u32, Code::GzipTrailer as u32, Code::GzipHeader as u32].contains(&code), "code {code}");
    assert!(d.flash[0x1000..e.a.len()] == e.a[0x1000..], "old app untouched");
}

#[test]
fn stock_eboot_image_keeps_our_sector0() {
    let e = env();
    // An Arduino image built with another bootloader (miniboot stands in for eboot).
    let foreign = e.fx.image(&e.fx.miniboot().unwrap(), &AppSpec::new("B", 2, FILLER + 5000)).unwrap();
    assert!(foreign[..4096] != e.a[..4096], "the staged image must carry a different sector 0");
    let (d, runs) = update(&e, &foreign, 0, |src| updater_command(src, 0, foreign.len()), &flashed(&e.a));
    let last = runs.last().unwrap();
    let app = last.app.as_ref().unwrap();
    assert_eq!(app.id, "B");
    assert_eq!(app.segs, expected_segs(&foreign).unwrap());
    assert!(d.flash[..4096] == e.a[..4096], "sector 0 must stay ours");
    assert!(d.flash[0x1000..foreign.len()] == foreign[0x1000..], "app B byte-exact");
    assert!(!last.console.contains("miniboot"));
}

fn assert_sweep(name: &str, s: &Scenario) {
    let e = env();
    let r = sweep(&e.fx.rom, s, 100, 200, 10, 1).unwrap();
    let bricks = r.bricks();
    let new = r.points.iter().filter(|p| p.result == Ok("new")).count();
    eprintln!("{name}: {} ops, {} cut points, {} bricks, {new} ended new", r.ops, r.points.len(), bricks.len());
    assert!(r.points.len() >= 100, "only {} cut points", r.points.len());
    assert!(bricks.is_empty(), "{} bricks, first: {:?}", bricks.len(), bricks[0]);
}

#[test]
fn power_cut_sweep_gzip_sketch_update() {
    let e = env();
    let gz = tools::gzip::gzip_best(&e.b);
    let mut f = flashed(&e.a);
    let src = staging_addr(gz.len());
    stage(&mut f, src, &gz);
    let s = Scenario { flash: f, command: updater_command(src, 0, gz.len()), old: outcome("A", &e.a, "A"), new: outcome("B", &e.b, "B") };
    assert_sweep("gzip sketch", &s);
}

#[test]
fn power_cut_sweep_filesystem_update() {
    let e = env();
    let mut f = flashed(&e.a);
    let old_fs = fs_image(1, (FS_END - FS_START) as usize);
    f[FS_START as usize..FS_END as usize].copy_from_slice(&old_fs);
    let new_fs = fs_image(2, 40 * 1024);
    let src = staging_addr(new_fs.len());
    stage(&mut f, src, &new_fs);
    let mut new_full = old_fs.clone();
    new_full[..new_fs.len()].copy_from_slice(&new_fs);
    let mut old = outcome("A+oldfs", &e.a, "A");
    old.region = Some((FS_START, old_fs[..new_fs.len()].to_vec()));
    let mut new = outcome("A+newfs", &e.a, "A");
    new.region = Some((FS_START, new_fs.clone()));
    let s = Scenario { flash: f, command: updater_command(src, FS_START, new_fs.len()), old, new };
    assert_sweep("filesystem", &s);
}
