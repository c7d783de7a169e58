//! Staging on the simulated NOR flash: chunking, refusals, power cuts, hostile input.

mod common;

use bootloader::report::Event;
use common::*;
use sim::flash::Cut;
use sim::gen;
use sim::rng::Rng;
use updater::{report, request, Check, Command, CommandExt, Kind, Layout, Stager, UpdaterError};

#[test]
fn any_chunk_sizes_stage_the_same_bytes() {
    let bin = new_bin(11, 50_001);
    let mut staged: Option<(Command, Vec<u8>)> = None;
    let mixed = [1usize, 3, 4095, 2, 4097, 7, 256, 5];
    for chunk in [1usize, 3, 4, 5, 255, 4095, 4096, 4097, 65536, 0] {
        let mut d = Device::new();
        d.flash.reset_stats();
        let mut st = Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, bin.len() as u32).unwrap();
        if chunk == 0 {
            // Irregular sizes, empty chunks included.
            let (mut off, mut i) = (0, 0);
            while off < bin.len() {
                let n = mixed[i % mixed.len()].min(bin.len() - off);
                st.write(&mut d.flash, &bin[off..off + n]).unwrap();
                st.write(&mut d.flash, &[]).unwrap();
                off += n;
                i += 1;
            }
        } else {
            for c in bin.chunks(chunk) {
                st.write(&mut d.flash, c).unwrap();
            }
        }
        let cmd = st.finish(&mut d.flash, Check::Md5(md5(&bin))).unwrap();
        let src = cmd.src() as usize;
        let end = src + gen::roundup4k(bin.len());
        let region = d.data()[src..end].to_vec();
        assert!(region[..bin.len()] == bin[..], "chunk {chunk}: staged bytes");
        assert!(region[bin.len()..].iter().all(|&b| b == 0xFF), "chunk {chunk}: rest of the last sector erased");
        let s = d.flash.stats();
        assert_eq!(s.erases as usize, (end - src) / 4096, "chunk {chunk}: each sector erased once");
        assert_eq!(s.caller_errors(), 0, "chunk {chunk}: unaligned or 0->1 accesses");
        assert!(!d.flash.touched(0, src as u64) && !d.flash.touched(end as u64, SIZE as u64), "chunk {chunk}: outside staging");
        match &staged {
            None => staged = Some((cmd, region)),
            Some((c, r)) => {
                assert_eq!(*c, cmd, "chunk {chunk}: same command");
                assert!(*r == region, "chunk {chunk}: same staged sectors");
            }
        }
    }
}

#[test]
fn begin_refuses_what_does_not_fit() {
    let mut d = Device::new();
    // Running app: 48 KB at 0x1000 -> ends at 0xD000 rounded.
    let app_end = gen::roundup4k(0x1000 + d.old_app.len()) as u32;
    let fs = LAYOUT.fs_start;
    // Arduino's rule plus the journal sector: largest sketch size that fits is
    // fs_start - app_end - 4096.
    let max = fs - app_end - 4096;
    assert!(Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, max).is_ok());
    assert_eq!(Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, max + 1).err(), Some(UpdaterError::NoSpace));
    assert_eq!(Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, u32::MAX).err(), Some(UpdaterError::NoSpace));
    // Filesystem: no larger than the FS region (64 KB).
    assert!(Stager::begin(&mut d.flash, LAYOUT, Kind::Filesystem, 0x10000).is_ok());
    assert_eq!(Stager::begin(&mut d.flash, LAYOUT, Kind::Filesystem, 0x10001).err(), Some(UpdaterError::FilesystemTooBig));
    // A big FS region whose image would reach the app (+ journal + backup sectors).
    let big = Layout { fs_start: app_end + 0x10000, fs_end: 0xFB000 };
    assert!(Stager::begin(&mut d.flash, big, Kind::Filesystem, 0x10000 - 0x2000).is_ok());
    assert_eq!(Stager::begin(&mut d.flash, big, Kind::Filesystem, 0x10000 - 0x2000 + 1).err(), Some(UpdaterError::NoSpace));
    assert_eq!(Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, 0).err(), Some(UpdaterError::Empty));
    for bad in [
        Layout { fs_start: 0xEB001, fs_end: 0xFB000 },
        Layout { fs_start: 0xEB000, fs_end: 0xFB800 },
        Layout { fs_start: 0xFB000, fs_end: 0xEB000 },
        Layout { fs_start: 0xEB000, fs_end: 0x200000 },
    ] {
        assert_eq!(Stager::begin(&mut d.flash, bad, Kind::Sketch, 100).err(), Some(UpdaterError::BadLayout));
    }
    assert!(!d.flash.any_touched(), "begin never writes");
}

#[test]
fn gzip_whose_output_does_not_fit_is_refused_at_finish() {
    // ~1 MB of zeros compresses to ~1 KB: fine to stage, but its output would reach the
    // staged copy (sketch) or overflow the FS region (filesystem).
    let mut big = vec![0u8; 1_000_000];
    big[0] = 0xE9;
    let gz = gen::gzip(&big, None);
    let mut d = Device::new();
    assert_eq!(d.stage(Kind::Sketch, &gz, 100, Check::None).err(), Some(UpdaterError::OutputTooBig));
    let fs = gen::gzip(&vec![0x55u8; 0x10001], None);
    assert_eq!(d.stage(Kind::Filesystem, &fs, 100, Check::None).err(), Some(UpdaterError::FilesystemTooBig));
    // A sketch gzip whose output is no more than the bootloader slot holds no app.
    let tiny = gen::gzip(&[0xE9; 4096], None);
    assert_eq!(d.stage(Kind::Sketch, &tiny, 100, Check::None).err(), Some(UpdaterError::BadImage));
}

#[test]
fn write_and_finish_misuse_is_refused() {
    let bin = new_bin(12, 20_000);
    let mut d = Device::new();
    let mut st = Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, bin.len() as u32).unwrap();
    assert_eq!(st.write(&mut d.flash, &[0x42]), Err(UpdaterError::BadMagic), "sketch must start E9 or 1F");
    assert_eq!(st.written(), 0);
    st.write(&mut d.flash, &bin[..bin.len() - 10]).unwrap();
    assert_eq!(st.finish(&mut d.flash, Check::None), Err(UpdaterError::Incomplete));
    assert_eq!(st.write(&mut d.flash, &bin[bin.len() - 10..]).map(|_| ()), Ok(()));
    assert_eq!(st.write(&mut d.flash, &[0]), Err(UpdaterError::Overflow));
    let cmd = st.finish(&mut d.flash, Check::None).unwrap();
    assert_eq!(st.finish(&mut d.flash, Check::None), Ok(cmd), "finish again: same command");
    assert_eq!(st.write(&mut d.flash, &[0]), Err(UpdaterError::Overflow));

    // A raw sketch whose app header at 4096 is not an image.
    let mut broken = bin.clone();
    broken[4096] = 0;
    let mut d = Device::new();
    assert_eq!(d.stage(Kind::Sketch, &broken, 4096, Check::None).err(), Some(UpdaterError::BadImage));
    // A header asking for a 4 MB chip on this 1 MB one.
    let mut big_chip = bin.clone();
    big_chip[3] = 0x40;
    let mut d = Device::new();
    assert_eq!(d.stage(Kind::Sketch, &big_chip, 4096, Check::None).err(), Some(UpdaterError::FlashSizeMismatch));
}

#[test]
fn request_refuses_commands_the_bootloader_would_refuse() {
    let mut d = Device::new();
    let before = *d.rtc.0.words();
    let fs_cmd = Command::copy(0xE0000, LAYOUT.fs_start, 1000);
    assert_eq!(request(&mut d.rtc, &fs_cmd.trial(0)), Err(UpdaterError::TrialOnFilesystem));
    let mut c = Command::copy(0xE0000, 0, 1000);
    c.ext = bootloader::command::EXT_SECTOR0;
    assert_eq!(request(&mut d.rtc, &c), Err(UpdaterError::UnsupportedExtension));
    let mut c = Command::copy(0xE0000, 0, 1000);
    c.action = bootloader::command::ACTION_LOAD_APP;
    assert_eq!(request(&mut d.rtc, &c), Err(UpdaterError::BadAction));
    // Extensions without the extension image that carries them out.
    for c in [Command::copy(0xE0000, 0, 1000).trial(7), Command::copy(0xE0000, 0, 1000).expect_crc(1)] {
        assert_eq!(request(&mut d.rtc, &c), Err(UpdaterError::NeedsExtension));
    }
    assert_eq!(*d.rtc.0.words(), before, "nothing written");
    // A good one is written as the bootloader's encoder says, with our options.
    let c = updater::stage_extension(&mut d.flash, Command::copy(0xE0000, 0, 1000).trial(7).expect_crc(0x1234_5678)).unwrap();
    request(&mut d.rtc, &c).unwrap();
    assert_eq!(*d.rtc.0.words(), c.encode());
    let w = d.rtc.0.words();
    let ext_at = 0xE0000 - 4096 - (updater::EXTENSION.len() as u32).next_multiple_of(4096);
    assert_eq!((w[0], w[2 + 4], w[2 + 5], w[2 + 6]), (0xEB00_100B, 7, 0x1234_5678, ext_at));
    assert_eq!(w[2 + 7], bootloader::crc::gzip(0, updater::EXTENSION));
    assert!(d.data()[ext_at as usize..ext_at as usize + updater::EXTENSION.len()] == *updater::EXTENSION, "staged");
}

#[test]
fn report_needs_magic_and_crc() {
    let mut d = Device::new();
    assert_eq!(report(&d.rtc).map(|r| r.event), Some(Event::Nothing as u32));
    let mut w = *d.rtc.0.words();
    w[1] ^= 1; // event changed, CRC not
    d.rtc.0.write_words(&w);
    assert_eq!(report(&d.rtc), None);
    assert_eq!(updater::confirm(&mut d.flash, &d.rtc), Err(UpdaterError::NoReport));
    // A command block (not yet carried out) is no report either.
    request(&mut d.rtc, &Command::copy(0xE0000, 0, 1000)).unwrap();
    assert_eq!(report(&d.rtc), None);
}

#[test]
fn power_cut_while_staging_leaves_the_old_app_booting() {
    let bin = new_bin(13, 20_000);
    // Mutation indices staging uses (erases + programs), counted on an uncut run.
    let ops = {
        let mut d = Device::new();
        let start = d.flash.ops();
        d.stage(Kind::Sketch, &bin, 1000, Check::None).unwrap();
        d.flash.ops() - start
    };
    assert!(ops > 20);
    let mut rng = Rng::new(0xC07);
    for k in 0..ops {
        for inside in [false, true] {
            let mut d = Device::new();
            let at = d.flash.ops() + k;
            let cut = if inside { Cut::inside(at, rng.below(2) as u8, rng.next_u64()) } else { Cut::before(at) };
            d.flash.set_cuts(&[cut]);
            let r = d.stage(Kind::Sketch, &bin, 1000, Check::None);
            assert_eq!(d.flash.fired().len(), 1, "cut {} fired", cut.spec());
            assert!(
                matches!(r, Err(UpdaterError::FlashErase | UpdaterError::FlashWrite)),
                "cut {}: {r:?}",
                cut.spec()
            );
            let b = d.cold_boot();
            let old = d.old_app.clone();
            d.assert_app(b, &old);
            assert!(d.data()[0x1000..0x1000 + old.len()] == old[..]);
            assert_eq!(report(&d.rtc).map(|r| r.event), Some(Event::Nothing as u32));
            assert!(d.fs() == &d.old_fs[..]);
            d.assert_untouched_system();
            // The update can simply be sent again.
            if k % 8 == 0 {
                let (cmd, _) = d.stage(Kind::Sketch, &bin, 1000, Check::Md5(md5(&bin))).unwrap();
                request(&mut d.rtc, &cmd).unwrap();
                let b = d.warm_boot();
                d.assert_app(b, &bin[4096..]);
                assert_eq!(report(&d.rtc).map(|r| r.event), Some(Event::Applied as u32));
            }
        }
    }
}

#[test]
fn a_stager_that_hit_a_flash_error_stays_refused() {
    let bin = new_bin(14, 20_000);
    let mut d = Device::new();
    let mut st = Stager::begin(&mut d.flash, LAYOUT, Kind::Sketch, bin.len() as u32).unwrap();
    st.write(&mut d.flash, &bin[..5000]).unwrap();
    d.flash.set_cuts(&[Cut::before(d.flash.ops())]);
    let r = st.write(&mut d.flash, &bin[5000..9000]);
    assert_eq!(d.flash.fired().len(), 1);
    assert!(matches!(r, Err(UpdaterError::FlashWrite | UpdaterError::FlashErase)), "{r:?}");
    d.flash.power_on();
    assert_eq!(st.write(&mut d.flash, &bin[9000..]), Err(UpdaterError::Aborted));
    assert_eq!(st.finish(&mut d.flash, Check::None), Err(UpdaterError::Aborted));
}

#[test]
fn hostile_input_never_panics_nor_writes_outside_the_staging_area() {
    let mut rng = Rng::new(0xBAD);
    let mut d = Device::new();
    let base = d.flash.data().to_vec();
    let (mut begun, mut finished) = (0, 0);
    for i in 0..300 {
        d.flash.reset_to(&base);
        let layout = match rng.below(4) {
            0 => Layout { fs_start: rng.next_u32(), fs_end: rng.next_u32() },
            1 => Layout { fs_start: (rng.below(0x101) as u32) << 12, fs_end: (rng.below(0x101) as u32) << 12 },
            _ => LAYOUT,
        };
        let kind = if rng.chance(1, 2) { Kind::Sketch } else { Kind::Filesystem };
        let size = match rng.below(4) {
            0 => rng.next_u32(),
            1 => rng.below(16) as u32,
            _ => rng.range(1, 200_000) as u32,
        };
        let Ok(mut st) = Stager::begin(&mut d.flash, layout, kind, size) else {
            assert!(!d.flash.any_touched(), "run {i}: refused begin wrote");
            continue;
        };
        begun += 1;
        let (src, end) = (st.address() as u64, st.address() as u64 + (size as u64).next_multiple_of(4096));
        assert!(end <= layout.fs_start as u64 && src >= 0x1000 + d.old_app.len() as u64, "run {i}");
        let mut left = size as usize + rng.below(3) as usize; // sometimes too many bytes
        let mut first = true;
        while left > 0 {
            let n = (rng.below(9000) as usize).min(left);
            let mut c = vec![0; n];
            rng.fill(&mut c);
            if first && !c.is_empty() && rng.chance(2, 3) {
                c[0] = if rng.chance(1, 2) { 0xE9 } else { 0x1F };
            }
            first = false;
            left -= n;
            if st.write(&mut d.flash, &c).is_err() {
                break;
            }
        }
        let check = match rng.below(4) {
            0 | 1 => Check::None,
            2 => Check::Md5([0; 16]),
            _ => Check::Sha256([0; 32]),
        };
        let r = st.finish(&mut d.flash, check);
        if let Ok(cmd) = r {
            finished += 1;
            assert_eq!((cmd.src() as u64, cmd.len()), (src, size), "run {i}");
        }
        assert!(!d.flash.touched(0, src) && !d.flash.touched(end, SIZE as u64), "run {i}: wrote outside staging");
        assert_eq!(d.flash.stats().caller_errors(), 0, "run {i}");
    }
    // The generator reaches every stage, not just the refusals.
    assert!(begun > 100 && finished > 5, "begun {begun}, finished {finished}");
}
