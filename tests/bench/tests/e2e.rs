//! End-to-end: the real bootloader image on the bench, through every flow of the stock
//! Arduino OTA stack. The image is target/esp8266/bootloader.bin from `cargo xtask build`
//! (`EBOOT_BOOTLOADER_BIN` overrides), at flash 0 as on a real chip.

use bench::app::expected_segs;
use bench::build::{real_bootloader, real_extension};
use bench::scenario::*;
use bench::{build_fixtures, AppSpec, Board, Cut, Device, End, Fixtures, Reset, Run};
use bootloader::command::{Command, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_IMAGE, EXT_TRIAL};
use bootloader::report::{Code, Event, REPORT_MAGIC};

const FILLER: u32 = 24 * 1024;

struct Env {
    fx: Fixtures,
    board: Board,
    a: Vec<u8>,
    b: Vec<u8>,
}

fn env() -> Env {
    let fx = build_fixtures().unwrap();
    let board = real_bootloader().unwrap();
    let a = board.app_image(&fx, &AppSpec::new("A", 1, FILLER)).unwrap();
    let b = board.app_image(&fx, &AppSpec::new("B", 2, FILLER + 5000)).unwrap();
    Env { fx, board, a, b }
}

impl Env {
    fn device(&self, flash: Vec<u8>, seed: u64) -> Device {
        self.board.device(&self.fx.rom, flash, seed)
    }
    fn flashed(&self, image: &[u8]) -> Vec<u8> {
        self.board.flashed(image)
    }
}

fn outcome(name: &'static str, image: &[u8], id: &str) -> Outcome {
    Outcome { name, image: image.to_vec(), app_id: id.into(), region: None }
}

/// No run may break the strict ROM rules or crash, and sector 0 stays.
fn clean(e: &Env, d: &Device, runs: &[Run]) {
    for r in runs {
        assert_eq!(r.counters.violations, 0, "ROM rule violation:\n{}", r.console);
        assert!(matches!(r.end, End::SoftReset | End::PowerCut), "{:?}:\n{}", r.end, r.console);
    }
    e.board.check_boot_area(&d.flash).unwrap();
}

/// The boot report the app found in RTC memory: (event, code, journal, trial_left), after
/// checking its magic and CRC (word 5, CRC-32/MPEG-2 of words 0..=4).
fn report(r: &Run) -> (u32, u32, u32, u32) {
    let a = r.app.as_ref().expect("app ran");
    assert_eq!(a.report.len(), 6, "{}", r.console);
    assert_eq!(a.report[0], REPORT_MAGIC, "no boot report:\n{}", r.console);
    assert_eq!(a.report[5], bootloader::crc::mpeg2(&a.report[..5]), "boot report CRC:\n{}", r.console);
    (a.report[1], a.report[2], a.report[3], a.report[4])
}

/// Stages `payload`, writes the command, soft-resets (as `ESP.restart()` after
/// `Update.end()`), and boots until an app runs.
fn update(e: &Env, payload: &[u8], dst: u32, cmd: impl Fn(u32) -> [u32; 32], base: &[u8]) -> (Device, Vec<Run>) {
    let mut f = base.to_vec();
    let src = staging_addr(payload.len());
    stage(&mut f, src, payload);
    let mut d = e.device(f, 11);
    let _ = dst;
    d.write_command(&cmd(src));
    let runs = d.boot_until_app(Reset::Soft, 8);
    clean(e, &d, &runs);
    (d, runs)
}

#[test]
fn boots_with_no_command() {
    let e = env();
    let mut d = e.device(e.flashed(&e.a), 1);
    let runs = d.boot_until_app(Reset::PowerOn, 3);
    clean(&e, &d, &runs);
    let last = runs.last().unwrap();
    // The ROM booted the bootloader from flash 0: the image there is the bootloader's bytes
    // (2, 3: the board's flash mode and size), then elf2bin's fill, and its entry was taken.
    let bl = &e.board.bootloader;
    assert!(bl.len() + 8 <= 4096, "{} bytes", bl.len());
    assert_eq!((&d.flash[..2], &d.flash[4..bl.len()]), (&bl[..2], &bl[4..]));
    assert!(d.flash[bl.len()..4096].iter().all(|&b| b == tools::image::SLOT_FILL));
    let entry = u32::from_le_bytes(bl[4..8].try_into().unwrap());
    assert!(last.console.contains(&format!("#BENCH JUMP entry={entry:08x}")), "{}", last.console);
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
    }, &e.flashed(&e.a));
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
    let (d, runs) = update(&e, &gz, 0, |src| updater_command(src, 0, gz.len()), &e.flashed(&e.a));
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
    let mut base = e.flashed(&e.a);
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

/// A trial update's command, naming the extension image staged at `ext` (address, CRC).
fn trial_command(src: u32, len: usize, boots: u32, ext: (u32, u32)) -> [u32; 32] {
    let mut c = Command::copy(src, 0, len as u32);
    c.ext = EXT_TRIAL | EXT_IMAGE;
    c.args[3] = 0; // the bootloader picks the backup area
    c.args[4] = boots;
    c.args[ARG_EXT_ADDR] = ext.0;
    c.args[ARG_EXT_CRC] = ext.1;
    c.encode()
}

/// A's board with the real extension image staged for an update of `len` bytes; returns
/// the flash and the extension's (address, CRC).
fn with_extension(e: &Env, len: usize) -> (Vec<u8>, (u32, u32)) {
    let mut f = e.flashed(&e.a);
    let ext = stage_ext(&mut f, len, &real_extension().unwrap());
    (f, ext)
}

/// A trial boot's report. Tier 1 has no trial code (its build leaves it out): this event
/// comes only from the extension image, so it shows tier 1 chain-loaded it.
fn assert_trial_report(r: &Run) {
    assert_eq!(report(r).0, Event::Trial as u32, "{}", r.console);
}

#[test]
fn trial_boot_without_confirmation_rolls_back() {
    let e = env();
    let gz = tools::gzip::gzip_best(&e.b);
    let (base, ext) = with_extension(&e, gz.len());
    let (mut d, runs) = update(&e, &gz, 0, |src| trial_command(src, gz.len(), 2, ext), &base);
    let first = runs.last().unwrap();
    assert_eq!(first.app.as_ref().unwrap().id, "B", "report {:?}\n{}", report(first), first.console);
    assert_trial_report(first);
    // B never confirms: keep resetting (soft, as a crashing app would) until A is back.
    let mut seen = vec!["B".to_string()];
    for _ in 0..6 {
        let runs = d.boot_until_app(Reset::Soft, 4);
        clean(&e, &d, &runs);
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
    let bc = e.board.app_image(&e.fx, &AppSpec::new("B", 2, FILLER + 5000).confirming()).unwrap();
    let gz = tools::gzip::gzip_best(&bc);
    let (base, ext) = with_extension(&e, gz.len());
    let (mut d, runs) = update(&e, &gz, 0, |src| trial_command(src, gz.len(), 2, ext), &base);
    let first = runs.last().unwrap();
    assert_trial_report(first);
    assert_eq!(first.app.as_ref().unwrap().confirm, Some(0), "{}", first.console);
    for i in 0..4 {
        let runs = if i % 2 == 0 { d.boot_until_app(Reset::Soft, 4) } else { d.boot_until_app(Reset::PowerOn, 4) };
        clean(&e, &d, &runs);
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
    let base = e.flashed(&e.a);
    let (d, runs) = update(&e, &gz, 0, |src| updater_command(src, 0, gz.len()), &base);
    let last = runs.last().unwrap();
    check_outcome(&d.flash, last.app.as_ref(), &outcome("A", &e.a, "A"), &e.a[..4096]).unwrap();
    let (ev, code, _, _) = report(last);
    assert_eq!(ev, Event::Rejected as u32, "{}", last.console);
    assert!([Code::GzipData as u32, Code::GzipTrailer as u32, Code::GzipHeader as u32].contains(&code), "code {code}");
    assert!(d.flash[0x1000..e.a.len()] == e.a[0x1000..], "old app untouched");
}

/// A trial update whose extension image is corrupt (one bit) or missing: tier 1 refuses it
/// before writing anything, and A boots.
#[test]
fn corrupt_or_missing_extension_image_is_refused_and_old_app_boots() {
    let e = env();
    let gz = tools::gzip::gzip_best(&e.b);
    for case in ["corrupt", "missing"] {
        let (mut base, ext) = with_extension(&e, gz.len());
        let at = ext.0 as usize;
        if case == "corrupt" {
            base[at + 200] ^= 0x04;
        } else {
            base[at..at + 0x2000].fill(0xFF);
        }
        let mut f = base.clone();
        let src = staging_addr(gz.len());
        stage(&mut f, src, &gz);
        let before = f.clone();
        let mut d = e.device(f, 21);
        d.write_command(&trial_command(src, gz.len(), 2, ext));
        let runs = d.boot_until_app(Reset::Soft, 4);
        clean(&e, &d, &runs);
        let last = runs.last().unwrap();
        assert_eq!(last.app.as_ref().unwrap().id, "A", "{case}: {}", last.console);
        assert_eq!(report(last).0, Event::Rejected as u32, "{case}: {}", last.console);
        assert_eq!(report(last).1, Code::ExtImage as u32, "{case}");
        let (erases, programmed) = runs.iter().fold((0, 0), |(a, b), r| (a + r.counters.erases, b + r.counters.programmed));
        assert_eq!((erases, programmed), (0, 0), "{case}: nothing written");
        assert!(d.flash == before, "{case}: flash as it was");
    }
}

#[test]
fn stock_eboot_image_keeps_our_sector0() {
    let e = env();
    // An Arduino image built with another bootloader (miniboot stands in for eboot).
    let foreign = e.fx.image(&e.fx.miniboot().unwrap(), &AppSpec::new("B", 2, FILLER + 5000)).unwrap();
    assert!(foreign[..4096] != e.a[..4096], "the staged image must carry a different sector 0");
    let (d, runs) = update(&e, &foreign, 0, |src| updater_command(src, 0, foreign.len()), &e.flashed(&e.a));
    let last = runs.last().unwrap();
    let app = last.app.as_ref().unwrap();
    assert_eq!(app.id, "B");
    assert_eq!(app.segs, expected_segs(&foreign).unwrap());
    assert!(d.flash[..4096] == e.a[..4096], "sector 0 must stay ours");
    assert!(d.flash[0x1000..foreign.len()] == foreign[0x1000..], "app B byte-exact");
    assert!(!last.console.contains("miniboot"));
}

/// The ELF `cargo xtask build` writes beside bootloader.bin is what the Arduino core's
/// elf2bin.py takes as `eboot.elf` (sections `.text`, `.rodata`, entry set): the sector 0 it
/// makes from it is the one every test here boots.
#[test]
fn bootloader_elf_gives_the_image_the_bench_runs() {
    if std::env::var_os("EBOOT_BOOTLOADER_BIN").is_some() {
        eprintln!("EBOOT_BOOTLOADER_BIN is set: no ELF of that image to compare");
        return;
    }
    let e = env();
    let path = bench::build::workspace_root().join("target/esp8266/bootloader.elf");
    let elf = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    // The board's flash parameters, which elf2bin writes into both images.
    let p = bench::build::flash_params();
    let from_elf = tools::image::bootloader_slot(&elf, &p).unwrap();
    let from_bin = tools::image::bootloader_slot(&e.board.bootloader, &p).unwrap();
    assert!(from_elf == from_bin, "elf2bin's sector 0 from {} differs from the image the bench runs", path.display());
    // That slot (the image, then elf2bin's fill) is sector 0 of the flash the bench boots.
    assert_eq!(from_elf.len(), 4096);
    assert!(e.flashed(&e.a)[..4096] == from_elf[..]);
    let n = e.board.bootloader.len();
    assert!(n <= 4000, "{n} bytes: over the 4,000-byte budget");
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
    let mut f = e.flashed(&e.a);
    let src = staging_addr(gz.len());
    stage(&mut f, src, &gz);
    let s = e.board.scenario(f, updater_command(src, 0, gz.len()), outcome("A", &e.a, "A"), outcome("B", &e.b, "B"));
    assert_sweep("gzip sketch", &s);
}

#[test]
fn power_cut_sweep_filesystem_update() {
    let e = env();
    let mut f = e.flashed(&e.a);
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
    let s = e.board.scenario(f, updater_command(src, FS_START, new_fs.len()), old, new);
    assert_sweep("filesystem", &s);
}

/// Cuts power at every flash operation of the run that starts from `flash`/`rtc` with a
/// soft reset (three cuts per op: before, inside, after), then powers on until an app runs:
/// the first app must be `want`'s, byte-exact, unless its id is in `detour` (an app that may
/// still legitimately run, e.g. a trial boot); then soft resets continue until `want` runs.
/// Returns (ops of the uncut run, cut points).
fn sweep_run(e: &Env, name: &str, flash: &[u8], rtc: &[u8], want: &Outcome, detour: &[(&str, &[u8])]) -> (u32, usize) {
    let mut d = e.device(flash.to_vec(), 500);
    d.rtc = rtc.to_vec();
    let r = d.soft_reset(None);
    let n = r.counters.ops;
    assert!(n > 0, "{name}: the uncut run wrote nothing:\n{}", r.console);
    let mut points = 0;
    for k in 0..n {
        for (v, keep) in [0u32, 65536, 7919 * (k + 1) % 65536].into_iter().enumerate() {
            let cut = Cut { at: k, keep, garbage: if v == 2 { 30000 } else { 0 } };
            let mut d = e.device(flash.to_vec(), 600 + k as u64 * 3 + v as u64);
            d.rtc = rtc.to_vec();
            let r = d.soft_reset(Some(cut));
            assert_eq!(r.end, End::PowerCut, "{name}: cut {cut:?} did not fire:\n{}", r.console);
            points += 1;
            let mut reset = Reset::PowerOn;
            let mut seen = Vec::new();
            loop {
                let runs = d.boot_until_app(reset, 4);
                clean(e, &d, &runs);
                let last = runs.last().unwrap();
                let app = last.app.as_ref().unwrap_or_else(|| panic!("{name}: {cut:?}: no app:\n{}", last.console));
                seen.push(app.id.clone());
                if app.id == want.app_id {
                    check_outcome(&d.flash, Some(app), want, &e.a[..4096]).unwrap_or_else(|err| panic!("{name}: {cut:?}: {err}\n{}", last.console));
                    break;
                }
                let image = detour.iter().find(|(id, _)| *id == app.id).map(|(_, img)| *img);
                let image = image.unwrap_or_else(|| panic!("{name}: {cut:?}: app {} ran; seen {seen:?}\n{}", app.id, last.console));
                assert_eq!(app.segs, expected_segs(image).unwrap(), "{name}: {cut:?}: app {} not intact", app.id);
                assert!(seen.len() < 6, "{name}: {cut:?}: {} never came; seen {seen:?}", want.app_id);
                reset = Reset::Soft;
            }
        }
    }
    eprintln!("{name}: {n} ops, {points} cut points, all ended {}", want.app_id);
    (n, points)
}

#[test]
fn power_cut_sweep_trial_update_ends_rolled_back() {
    // A non-confirming trial update, cut anywhere: B may run (in trial), A must come back.
    let e = env();
    let gz = tools::gzip::gzip_best(&e.b);
    let (mut f, ext) = with_extension(&e, gz.len());
    let src = staging_addr(gz.len());
    stage(&mut f, src, &gz);
    let mut rtc = e.device(f.clone(), 1).rtc;
    for (i, w) in trial_command(src, gz.len(), 2, ext).iter().enumerate() {
        rtc[bench::qemu::RTC_USER_OFF + 4 * i..][..4].copy_from_slice(&w.to_le_bytes());
    }
    let (_, points) = sweep_run(&e, "trial update", &f, &rtc, &outcome("A", &e.a, "A"), &[("B", &e.b)]);
    assert!(points >= 100, "{points} cut points");
}

#[test]
fn power_cut_sweep_rollback() {
    // The boot that rolls back, cut anywhere: A must be the first app to run again.
    let e = env();
    let gz = tools::gzip::gzip_best(&e.b);
    let (base, ext) = with_extension(&e, gz.len());
    let (mut d, _) = update(&e, &gz, 0, |src| trial_command(src, gz.len(), 2, ext), &base);
    for _ in 0..6 {
        let (flash, rtc) = (d.flash.clone(), d.rtc.clone());
        let r = d.soft_reset(None);
        assert_eq!(r.end, End::SoftReset, "{}", r.console);
        if r.app.as_ref().is_some_and(|a| a.id == "A") {
            assert_eq!(report(&r).0, Event::RolledBack as u32);
            let (n, points) = sweep_run(&e, "rollback", &flash, &rtc, &outcome("A", &e.a, "A"), &[]);
            assert_eq!(n, r.counters.ops);
            assert!(points >= 3 * n as usize);
            return;
        }
    }
    panic!("no rollback");
}

#[test]
fn power_cut_sweep_confirmed_trial_finish() {
    // After B confirmed its trial boot, the next boot makes B permanent: cut anywhere in
    // it, B (byte-exact, header written) must be the first app to run.
    let e = env();
    let bc = e.board.app_image(&e.fx, &AppSpec::new("B", 2, FILLER + 5000).confirming()).unwrap();
    let gz = tools::gzip::gzip_best(&bc);
    let (base, ext) = with_extension(&e, gz.len());
    let (d, runs) = update(&e, &gz, 0, |src| trial_command(src, gz.len(), 2, ext), &base);
    assert_eq!(runs.last().unwrap().app.as_ref().unwrap().confirm, Some(0));
    let (_, points) = sweep_run(&e, "confirmed finish", &d.flash, &d.rtc, &outcome("B", &bc, "B"), &[]);
    assert!(points >= 3);
}

#[test]
fn raw_sketch_overlapping_its_source_is_refused() {
    // A raw sketch so big that the Updater's staging area (FS_start − size) overlaps where
    // it must be copied (0x1000..). eboot copies it over its own source; ours refuses it
    // (TooBig, protocol.md §3: not power-safe without a spare sector) before writing.
    let e = env();
    let big = e.board.app_image(&e.fx, &AppSpec::new("R", 3, 482 * 1024)).unwrap();
    let src = staging_addr(big.len());
    assert!(0x1000 + big.len() as u32 > src, "the test needs source and destination to overlap");
    let base = e.flashed(&e.a);
    let (d, runs) = update(&e, &big, 0, |src| updater_command(src, 0, big.len()), &base);
    let last = runs.last().unwrap();
    assert_eq!(report(last).0, Event::Rejected as u32, "{}", last.console);
    assert_eq!(report(last).1, Code::TooBig as u32);
    assert_eq!(runs.iter().map(|r| r.counters.ops).sum::<u32>(), 0, "refused before any write");
    check_outcome(&d.flash, last.app.as_ref(), &outcome("A", &e.a, "A"), &e.a[..4096]).unwrap();
    // The same sketch gzipped fits below its staged copy and installs.
    let gz = tools::gzip::gzip_best(&big);
    let (d, runs) = update(&e, &gz, 0, |src| updater_command(src, 0, gz.len()), &base);
    let last = runs.last().unwrap();
    assert_eq!(report(last).0, Event::Applied as u32, "{}", last.console);
    check_outcome(&d.flash, last.app.as_ref(), &outcome("R", &big, "R"), &e.a[..4096]).unwrap();
}

/// confirm.c mirrors the journal layout in C: its offsets must be journal.rs's.
#[test]
fn confirm_app_follows_the_journal_layout() {
    let c = std::fs::read_to_string(bench::build::workspace_root().join("tests/bench/apps/confirm.c")).unwrap();
    assert!(c.contains(&format!("#define JOURNAL_HEADER {}u", bootloader::journal::HEADER_LEN)), "JOURNAL_HEADER");
    assert_eq!(bootloader::journal::LOG, bootloader::journal::HEADER_LEN + 8, "the log follows the two step words");
    assert!(c.contains("#define JOURNAL_LOG (JOURNAL_HEADER + 8u)"), "JOURNAL_LOG");
    assert!(c.contains(&format!("h[{}]", bootloader::journal::WORDS)), "header words");
}
