//! Stage with the updater, request, boot the real bootloader core on the simulated flash,
//! read the report: the whole round trip, on the Arduino 1M64 layout.

mod common;

use bootloader::report::{Code, Event};
use common::*;
use sim::gen;
use updater::{report, request, stage_extension, Check, CommandExt, Kind, Stager, UpdaterError};

fn event(d: &Device) -> (u32, u32) {
    let r = report(&d.rtc).expect("boot report");
    (r.event, r.code)
}

#[test]
fn raw_sketch_is_applied() {
    let mut d = Device::new();
    let bin = new_bin(1, 60_000);
    let (cmd, crc) = d.stage(Kind::Sketch, &bin, 1000, Check::Md5(md5(&bin))).unwrap();
    assert_eq!(cmd.src(), LAYOUT.fs_start - gen::roundup4k(bin.len()) as u32, "Arduino's staging address");
    assert_eq!((cmd.dst(), cmd.len()), (0, bin.len() as u32));
    assert_eq!(crc, Some(bootloader::crc::gzip(0, &bin[4096..])));
    request(&mut d.rtc, &cmd).unwrap();
    let b = d.warm_boot();
    d.assert_app(b, &bin[4096..]);
    assert_eq!(event(&d), (Event::Applied as u32, 0));
    assert!(d.fs() == &d.old_fs[..], "FS untouched");
    d.assert_untouched_system();
    // Settled: a power cycle boots the new app, with nothing to do.
    let b = d.cold_boot();
    d.assert_app(b, &bin[4096..]);
    assert_eq!(event(&d), (Event::Nothing as u32, 0));
}

#[test]
fn gzip_sketch_is_applied() {
    let mut d = Device::new();
    let bin = new_bin(2, 90_000);
    let gz = gen::gzip(&bin, Some("sketch.ino.bin"));
    assert!(gz.len() < bin.len());
    let (cmd, crc) = d.stage(Kind::Sketch, &gz, 4095, Check::Sha256(sha256(&gz))).unwrap();
    assert_eq!(crc, None, "a gzip image's output CRC is not known to the updater");
    assert_eq!(cmd.src(), LAYOUT.fs_start - gen::roundup4k(gz.len()) as u32);
    request(&mut d.rtc, &cmd).unwrap();
    let b = d.warm_boot();
    d.assert_app(b, &bin[4096..]);
    assert_eq!(event(&d), (Event::Applied as u32, 0));
    d.assert_untouched_system();
}

#[test]
fn filesystem_raw_and_gzip_are_applied() {
    for gzip in [false, true] {
        let mut d = Device::new();
        let fs = gen::fs_image(7, 40 * 1024);
        let img = if gzip { gen::gzip(&fs, None) } else { fs.clone() };
        let (cmd, crc) = d.stage(Kind::Filesystem, &img, 777, Check::Md5(md5(&img))).unwrap();
        assert_eq!(cmd.dst(), LAYOUT.fs_start);
        assert_eq!(crc.is_some(), !gzip);
        request(&mut d.rtc, &cmd).unwrap();
        let b = d.warm_boot();
        // The app is the old one, byte for byte (0x1000 was borrowed and restored).
        let old = d.old_app.clone();
        d.assert_app(b, &old);
        assert!(d.data()[0x1000..0x1000 + old.len()] == old[..]);
        assert!(d.fs()[..fs.len()] == fs[..], "new FS at fs_start (gzip {gzip})");
        assert_eq!(event(&d), (Event::Applied as u32, 0));
        d.assert_untouched_system();
    }
}

#[test]
fn expected_crc_is_checked_by_the_bootloader() {
    // Right CRC (sketch: from offset 4096; FS: whole image): applied.
    let mut d = Device::new();
    let bin = new_bin(3, 30_000);
    let (cmd, crc) = d.stage(Kind::Sketch, &bin, 4096, Check::None).unwrap();
    request(&mut d.rtc, &stage_extension(&mut d.flash, cmd.expect_crc(crc.unwrap())).unwrap()).unwrap();
    assert_eq!(d.rtc.0.words()[0], 0xEB00_100A, "EXT_CRC and EXT_IMAGE in the magic");
    let b = d.warm_boot();
    d.assert_app(b, &bin[4096..]);
    assert_eq!(event(&d), (Event::Applied as u32, 0));

    let mut d = Device::new();
    let fs = gen::fs_image(8, 20 * 1024);
    let (cmd, crc) = d.stage(Kind::Filesystem, &fs, 3, Check::None).unwrap();
    request(&mut d.rtc, &stage_extension(&mut d.flash, cmd.expect_crc(crc.unwrap())).unwrap()).unwrap();
    d.warm_boot();
    assert_eq!(event(&d), (Event::Applied as u32, 0));
    assert!(d.fs()[..fs.len()] == fs[..]);

    // Wrong CRC: refused, old app intact.
    let mut d = Device::new();
    let (cmd, crc) = d.stage(Kind::Sketch, &bin, 4096, Check::None).unwrap();
    request(&mut d.rtc, &stage_extension(&mut d.flash, cmd.expect_crc(crc.unwrap() ^ 1)).unwrap()).unwrap();
    let b = d.warm_boot();
    let old = d.old_app.clone();
    d.assert_app(b, &old);
    assert_eq!(event(&d), (Event::Rejected as u32, Code::CrcMismatch as u32));
}

#[test]
fn trial_confirmed_becomes_permanent() {
    let mut d = Device::new();
    let bin = new_bin(4, 40_000);
    let (cmd, _) = d.stage(Kind::Sketch, &bin, 1024, Check::Md5(md5(&bin))).unwrap();
    // Not a trial boot yet: nothing to confirm.
    assert_eq!(updater::confirm(&mut d.flash, &d.rtc), Err(UpdaterError::NotInTrial));
    // The sector-0 bootloader needs the extension image for a trial.
    assert_eq!(request(&mut d.rtc, &cmd.trial(2)), Err(UpdaterError::NeedsExtension));
    request(&mut d.rtc, &stage_extension(&mut d.flash, cmd.trial(2)).unwrap()).unwrap();
    let b = d.warm_boot();
    assert_eq!(d.ext_boots, 1, "the update ran in the extension image");
    d.assert_app(b, &bin[4096..]);
    let r = report(&d.rtc).unwrap();
    // Two boots allowed, this one counted.
    assert_eq!((r.event, r.trial_left), (Event::Trial as u32, 1));
    assert!(d.data()[0x1000..0x1010].iter().all(|&b| b == 0xFF), "header stays erased in trial");
    // Staging anything now would overwrite the journal, the backup and the extension image.
    for kind in [Kind::Sketch, Kind::Filesystem] {
        assert_eq!(Stager::begin(&mut d.flash, LAYOUT, kind, 10_000).err(), Some(UpdaterError::TrialPending));
    }
    updater::confirm(&mut d.flash, &d.rtc).unwrap();
    updater::confirm(&mut d.flash, &d.rtc).unwrap(); // idempotent
    // Confirmed, but the trial ends only on the next boot.
    assert_eq!(Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, 10_000).err(), Some(UpdaterError::TrialPending));
    let b = d.warm_boot();
    assert_eq!(d.ext_boots, 2, "the boot after confirm runs in the extension image");
    d.assert_app(b, &bin[4096..]);
    assert_eq!(report(&d.rtc).unwrap().event, Event::Resumed as u32, "the boot after confirm writes the header");
    assert!(d.data()[0x1000..0x1000 + bin.len() - 4096] == bin[4096..], "header programmed");
    assert_eq!(updater::confirm(&mut d.flash, &d.rtc), Err(UpdaterError::NotInTrial));
    for _ in 0..3 {
        let b = d.cold_boot();
        d.assert_app(b, &bin[4096..]);
        assert_eq!(event(&d), (Event::Nothing as u32, 0));
    }
    // And a new update can be staged again.
    assert!(Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, 10_000).is_ok());
}

#[test]
fn trial_unconfirmed_rolls_back() {
    let mut d = Device::new();
    let bin = new_bin(5, 40_000);
    let (cmd, _) = d.stage(Kind::Sketch, &bin, 1024, Check::None).unwrap();
    request(&mut d.rtc, &stage_extension(&mut d.flash, cmd.trial(1)).unwrap()).unwrap();
    let b = d.warm_boot();
    d.assert_app(b, &bin[4096..]);
    assert_eq!(report(&d.rtc).unwrap().event, Event::Trial as u32);
    // The new app never confirms and resets.
    let b = d.warm_boot();
    let old = d.old_app.clone();
    d.assert_app(b, &old);
    assert!(d.data()[0x1000..0x1000 + old.len()] == old[..]);
    assert_eq!(report(&d.rtc).unwrap().event, Event::RolledBack as u32);
    assert_eq!(updater::confirm(&mut d.flash, &d.rtc), Err(UpdaterError::NotInTrial));
    assert_eq!(d.ext_boots, 2, "the trial boot and the rollback ran in the extension image");
    // Rolled back: the trial has ended and a new update may be staged.
    assert!(Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, 10_000).is_ok());
}

#[test]
fn wrong_digest_is_refused_and_no_command_written() {
    let bin = new_bin(6, 30_000);
    let mut bad_md5 = md5(&bin);
    bad_md5[15] ^= 1;
    let mut bad_sha = sha256(&bin);
    bad_sha[0] ^= 0x80;
    for (check, err) in [(Check::Md5(bad_md5), UpdaterError::Md5Mismatch), (Check::Sha256(bad_sha), UpdaterError::Sha256Mismatch)] {
        let mut d = Device::new();
        let before = *d.rtc.0.words();
        assert_eq!(d.stage(Kind::Sketch, &bin, 500, check).err(), Some(err));
        assert_eq!(*d.rtc.0.words(), before, "RTC untouched");
        let b = d.warm_boot();
        let old = d.old_app.clone();
        d.assert_app(b, &old);
        assert_eq!(event(&d), (Event::Nothing as u32, 0));
    }
}

#[test]
fn largest_raw_sketch_begin_accepts_is_applied_and_one_sector_more_is_refused_by_both() {
    // 2·roundup4K(size) + 4096 ≤ FS_start: on 1M64 the limit is 0x75000 bytes.
    let limit = ((LAYOUT.fs_start as usize - 4096) / 2) & !0xFFF;
    assert_eq!(limit, 0x75000);
    let mut bin = new_bin(9, limit - 4096 - 64);
    assert!(bin.len() <= limit && bin.len() > limit - 4096, "generated {:#x}", bin.len());
    let mut d = Device::new();
    let (cmd, _) = d.stage(Kind::Sketch, &bin, 8192, Check::None).unwrap();
    request(&mut d.rtc, &cmd).unwrap();
    let b = d.warm_boot();
    d.assert_app(b, &bin[4096..]);
    assert_eq!(event(&d), (Event::Applied as u32, 0));

    // One sector more (trailing bytes after the image, as a bigger file would have):
    // begin accepts the size, the first byte shows it is raw and too big...
    bin.resize(limit + 1, 0);
    let mut d = Device::new();
    let mut st = Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, bin.len() as u32).unwrap();
    assert_eq!(st.write(&mut d.flash, &bin[..100]), Err(UpdaterError::OutputTooBig));
    assert!(!d.flash.any_touched(), "refused before any flash was touched");
    // ... and the bootloader refuses the same staging too.
    let src = LAYOUT.fs_start as usize - gen::roundup4k(bin.len());
    d.flash.data_mut()[src..src + bin.len()].copy_from_slice(&bin);
    request(&mut d.rtc, &updater::Command::copy(src as u32, 0, bin.len() as u32)).unwrap();
    let b = d.warm_boot();
    let old = d.old_app.clone();
    d.assert_app(b, &old);
    let (ev, code) = event(&d);
    assert_eq!(ev, Event::Rejected as u32);
    assert!(code == Code::TooBig as u32 || code == Code::NoSpace as u32, "code {code}");
}
