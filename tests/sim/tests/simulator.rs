//! The simulator itself: fault model, cut injection, RTC model, generated images.

use bootloader::Platform;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use sim::flash::{Cut, Flash, FlashError, SECTOR};
use sim::gen;
use sim::rng::Rng;
use sim::rtc::Rtc;
use sim::scenario::{self, Size, LAYOUTS};

fn read(f: &mut Flash, off: u32, len: usize) -> Vec<u8> {
    let mut b = vec![0; len];
    f.read(off, &mut b).unwrap();
    b
}

#[test]
fn erase_sets_sector_to_ff_and_only_that_sector() {
    let mut f = Flash::from_image(&vec![0x12; 3 * SECTOR]);
    f.erase(4096, 8192).unwrap();
    assert!(f.data()[..4096].iter().all(|&b| b == 0x12));
    assert!(f.data()[4096..8192].iter().all(|&b| b == 0xFF));
    assert!(f.data()[8192..].iter().all(|&b| b == 0x12));
    assert_eq!(f.stats().erases, 1);
    assert!(f.touched(4096, 4100) && !f.touched(0, 4096) && !f.touched(8192, 12288));
}

#[test]
fn program_ands_and_refuses_zero_to_one() {
    let mut f = Flash::new(SECTOR);
    f.write(8, &[0xF0, 0x0F, 0xAA, 0x55]).unwrap();
    assert_eq!(read(&mut f, 8, 4), [0xF0, 0x0F, 0xAA, 0x55]);
    // Clearing more bits is fine; identical bytes are fine.
    f.write(8, &[0x30, 0x0F, 0xAA, 0x55]).unwrap();
    assert_eq!(read(&mut f, 8, 4), [0x30, 0x0F, 0xAA, 0x55]);
    // A 1 over a 0 cannot be programmed: error, nothing changes (not even other bytes).
    assert_eq!(f.write(8, &[0x30, 0x0F, 0xAA, 0xFF]), Err(FlashError::NotErased));
    assert_eq!(f.write(8, &[0x00, 0x0F, 0xAA, 0x57]), Err(FlashError::NotErased));
    assert_eq!(read(&mut f, 8, 4), [0x30, 0x0F, 0xAA, 0x55]);
    assert_eq!(f.stats().not_erased, 2);
    assert_eq!(f.stats().programs, 2);
    assert_eq!(f.stats().bytes_programmed, 8);
}

#[test]
fn alignment_and_bounds_are_enforced() {
    let mut f = Flash::new(2 * SECTOR);
    let mut b = [0u8; 4];
    assert_eq!(f.read(2, &mut b), Err(FlashError::NotAligned));
    assert_eq!(f.read(0, &mut b[..3]), Err(FlashError::NotAligned));
    assert_eq!(f.write(1, &[0; 4]), Err(FlashError::NotAligned));
    assert_eq!(f.write(0, &[0; 6]), Err(FlashError::NotAligned));
    assert_eq!(f.read(8192, &mut b), Err(FlashError::OutOfBounds));
    assert_eq!(f.read(8190 & !3, &mut [0; 8]), Err(FlashError::OutOfBounds));
    assert_eq!(f.read(u32::MAX & !3, &mut b), Err(FlashError::OutOfBounds));
    assert_eq!(f.write(8192, &[0; 4]), Err(FlashError::OutOfBounds));
    assert_eq!(f.erase(100, 4096), Err(FlashError::NotAligned));
    assert_eq!(f.erase(4096, 12288), Err(FlashError::OutOfBounds));
    let s = f.stats();
    assert_eq!((s.misaligned, s.out_of_bounds), (5, 5));
    assert!(f.data().iter().all(|&b| b == 0xFF));
    assert!(!f.any_touched());
    // Errors are not mutation attempts: no cut index consumed.
    assert_eq!(f.ops(), 0);
}

#[test]
fn cut_before_op_does_nothing_and_kills_power() {
    let mut f = Flash::from_image(&vec![0; 2 * SECTOR]);
    f.set_cuts(&[Cut::before(1)]);
    f.erase(0, 4096).unwrap(); // op 0
    assert_eq!(f.erase(4096, 8192), Err(FlashError::PowerLost)); // op 1: cut
    assert_eq!(f.fired(), &[Cut::before(1)]);
    assert!(f.data()[4096..].iter().all(|&b| b == 0), "cut-before erase must not act");
    // Power is gone: reads and writes fail without effect, no index consumed.
    let mut b = [0; 4];
    assert_eq!(f.read(0, &mut b), Err(FlashError::PowerLost));
    assert_eq!(f.write(0, &[0; 4]), Err(FlashError::PowerLost));
    assert_eq!(f.erase(4096, 8192), Err(FlashError::PowerLost));
    assert_eq!(f.ops(), 2);
    assert!(f.data()[..4096].iter().all(|&b| b == 0xFF));
    f.power_on();
    f.erase(4096, 8192).unwrap(); // op 2
    assert!(f.data().iter().all(|&b| b == 0xFF));
    assert_eq!(f.ops(), 3);
}

#[test]
fn cut_inside_erase_prefix_mode() {
    for seed in 0..50 {
        let mut f = Flash::from_image(&vec![0x5A; SECTOR]);
        f.set_cuts(&[Cut::inside(0, 0, seed)]);
        assert_eq!(f.erase(0, 4096), Err(FlashError::PowerLost));
        let d = f.data();
        let n = d.iter().take_while(|&&b| b == 0xFF).count();
        assert!(n > 0 && n < SECTOR, "partial: {n}");
        assert!(d[n..].iter().all(|&b| b == 0x5A), "rest old");
        assert_eq!(f.stats().erases, 0, "a cut erase is not a completed erase");
        assert!(f.touched(0, 4096));
    }
}

#[test]
fn cut_inside_erase_scatter_mode() {
    let mut f = Flash::from_image(&vec![0x5A; SECTOR]);
    f.set_cuts(&[Cut::inside(0, 1, 7)]);
    assert_eq!(f.erase(0, 4096), Err(FlashError::PowerLost));
    let d = f.data();
    let ff = d.iter().filter(|&&b| b == 0xFF).count();
    let old = d.iter().filter(|&&b| b == 0x5A).count();
    let other = SECTOR - ff - old;
    // Roughly a third each: all three kinds present.
    assert!(ff > 1000 && old > 1000 && other > 1000, "{ff} {old} {other}");
    // Seeded: the same cut gives the same bytes.
    let mut g = Flash::from_image(&vec![0x5A; SECTOR]);
    g.set_cuts(&[Cut::inside(0, 1, 7)]);
    let _ = g.erase(0, 4096);
    assert_eq!(f.data(), g.data());
}

#[test]
fn cut_inside_multi_sector_erase_stops_there() {
    let mut f = Flash::from_image(&vec![0; 3 * SECTOR]);
    f.set_cuts(&[Cut::before(1)]);
    assert_eq!(f.erase(0, 3 * 4096), Err(FlashError::PowerLost));
    assert!(f.data()[..4096].iter().all(|&b| b == 0xFF));
    assert!(f.data()[4096..].iter().all(|&b| b == 0));
}

#[test]
fn cut_inside_program_leaves_byte_prefix() {
    let mut lens = std::collections::HashSet::new();
    for seed in 0..200 {
        let mut f = Flash::new(SECTOR);
        let data: Vec<u8> = (0..256u32).map(|i| (i * 7) as u8 & 0x7F).collect();
        f.set_cuts(&[Cut::inside(0, 0, seed)]);
        assert_eq!(f.write(64, &data), Err(FlashError::PowerLost));
        let d = &f.data()[64..64 + 256];
        let n = d.iter().zip(&data).take_while(|(a, b)| a == b).count();
        assert!(n < 256, "never the whole program");
        assert!(d[n..].iter().all(|&b| b == 0xFF), "rest unchanged");
        assert!(f.data()[..64].iter().chain(&f.data()[320..]).all(|&b| b == 0xFF));
        assert_eq!(f.stats().programs, 0);
        lens.insert(n);
    }
    // Byte granularity: prefixes that end inside a word happen.
    assert!(lens.iter().any(|n| n % 4 != 0));
    assert!(lens.len() > 50);
}

#[test]
fn ops_are_counted_across_power_ons_and_double_cuts_fire() {
    let mut f = Flash::new(4 * SECTOR);
    f.set_cuts(&[Cut::before(2), Cut::inside(4, 0, 3)]);
    let mut fired = 0;
    for _boot in 0..4 {
        f.power_on();
        for s in 0..4u32 {
            if f.erase(s * 4096, s * 4096 + 4096).is_err() {
                fired += 1;
                break;
            }
        }
    }
    assert_eq!(fired, 2);
    assert_eq!(f.fired().len(), 2);
    assert_eq!(f.pending(), 0);
    // 3 attempts in boot 0 (cut on the 3rd), 2 in boot 1 (cut on index 4), 4 + 4 after.
    assert_eq!(f.ops(), 3 + 2 + 4 + 4);
}

#[test]
fn reset_to_clears_everything() {
    let base = vec![0x33; 2 * SECTOR];
    let mut f = Flash::from_image(&base);
    f.set_cuts(&[Cut::before(0)]);
    let _ = f.erase(0, 4096);
    f.reset_to(&base);
    assert!(f.powered() && f.fired().is_empty() && f.ops() == 0 && !f.any_touched());
    f.write(0, &[0x11; 4]).unwrap();
    assert_eq!(&f.data()[..4], &[0x11; 4]);
}

#[test]
fn cut_spec_roundtrip() {
    for c in [Cut::before(17), Cut::inside(3, 1, 99), Cut::inside(0, 0, 0)] {
        assert_eq!(Cut::parse(&c.spec()), Some(c));
    }
    assert_eq!(Cut::parse("x1"), None);
}

#[test]
fn rtc_garbage_on_power_on_kept_on_soft_reset() {
    let mut rng = Rng::new(1);
    let mut r = Rtc::cold(&mut rng);
    assert!(r.cold_boot());
    let garbage = *r.words();
    assert!(garbage.iter().filter(|&&w| w != 0).count() > 28, "garbage, not zeros");
    r.rtc_write(3, 0xDEAD_BEEF);
    r.soft_reset();
    assert!(!r.cold_boot());
    assert_eq!(r.rtc_read(3), 0xDEAD_BEEF);
    assert_eq!(r.rtc_read(5), garbage[5]);
    r.power_on(&mut rng);
    assert!(r.cold_boot());
    assert_ne!(*r.words(), garbage);
    assert_ne!(r.rtc_read(3), 0xDEAD_BEEF);
}

#[test]
fn generated_code_compresses_like_code() {
    let mut rng = Rng::new(5);
    let c = gen::code(&mut rng, 200_000);
    let z = gen::gzip(&c, None);
    let ratio = z.len() as f64 / c.len() as f64;
    assert!((0.40..=0.60).contains(&ratio), "code gzip ratio {ratio}");
    let zeros = c.iter().filter(|&&b| b == 0).count();
    assert!(zeros < c.len() / 10);
}

#[test]
fn app_images_are_valid_esp8266_images() {
    for l in LAYOUTS {
        let sc = scenario::build(l, scenario::kinds()[1], Size::Full);
        for img in [&sc.old_app, &sc.new_app] {
            assert_eq!(img[0], 0xE9);
            assert_eq!(img.len() % 16, 0);
            let segs = gen::segments(img).expect("parsable");
            assert_eq!(segs.len(), 5);
            assert_eq!(segs[0].0.addr, 0x4020_1010);
            assert_eq!(segs[1].0.addr, 0x4010_0000);
            let end = segs[4].1 + segs[4].0.len as usize;
            assert_eq!(img.len(), ((end + 16) & !15));
        }
        // Realistic sizes and compression.
        let want = if l.name == "4M1M" { 300_000 } else { 250_000 };
        assert!(sc.new_app.len().abs_diff(want) < 1000, "{}", sc.new_app.len());
        let ratio = sc.staged.len() as f64 / (sc.new_app.len() + 4096) as f64;
        assert!((0.40..=0.60).contains(&ratio), "{} ratio {ratio}", l.name);
        // Staged where the Updater puts it, and the command says so.
        assert_eq!(sc.src, l.fs_start - gen::roundup4k(sc.staged.len()));
        let cmd = bootloader::command::Command::decode(&sc.cmd).unwrap();
        assert_eq!((cmd.src(), cmd.dst(), cmd.len()), (sc.src as u32, 0, sc.staged.len() as u32));
        assert_eq!(&sc.base[sc.src..sc.src + sc.staged.len()], &sc.staged[..]);
        assert_eq!(&sc.base[0x1000..0x1000 + sc.old_app.len()], &sc.old_app[..]);
        assert_ne!(sc.old_app[..16], sc.new_app[..16]);
    }
}

#[test]
fn arduino_bin_carries_stock_eboot_and_whole_file_crc() {
    let app = gen::app_image(&gen::AppSpec { seed: 1, size: 20_000, size_code: 2 });
    let bin = gen::arduino_bin(&app, 2);
    assert_eq!(bin[0], 0xE9);
    assert_eq!(bin[0x1000], 0xE9);
    assert!(bin[0xF00..0x1000].iter().all(|&b| b == 0xAA));
    let len = u32::from_le_bytes(bin[0x1010..0x1014].try_into().unwrap());
    let crc = u32::from_le_bytes(bin[0x1014..0x1018].try_into().unwrap());
    assert_eq!(len as usize, bin.len());
    let mut z = bin.clone();
    z[0x1010..0x1018].fill(0);
    assert_eq!(bootloader::command::CRC32_MPEG2.checksum(&z), crc);
}

#[test]
fn fs_scenarios_stage_fs_images() {
    for l in LAYOUTS {
        let sc = scenario::build(l, scenario::kinds()[3], Size::Small);
        assert_eq!(sc.kind.target, scenario::Target::Fs);
        let cmd = bootloader::command::Command::decode(&sc.cmd).unwrap();
        assert_eq!(cmd.dst() as usize, l.fs_start);
        assert_eq!(sc.old_fs.len(), l.fs_end - l.fs_start);
        assert_ne!(sc.new_fs[..], sc.old_fs[..sc.new_fs.len()]);
        let mut d = flate2::read::GzDecoder::new(&sc.staged[..]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut out).unwrap();
        assert_eq!(out, sc.new_fs);
    }
}
