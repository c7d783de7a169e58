//! The bench itself: ROM, fault model, harness and test apps, with miniboot (a trivial
//! loader) in sector 0, so these hold whatever state the real bootloader is in.
use bench::app::expected_segs;
use bench::build::flash_params;
use bench::scenario::flashed;
use bench::{build_fixtures, AppSpec, Cut, Device, End, Reset};

fn flashtest_flash() -> (bench::Fixtures, Vec<u8>) {
    let fx = build_fixtures().unwrap();
    let elf = fx.flashtest_elf().unwrap();
    let img = tools::image::arduino_image(&fx.miniboot().unwrap(), &elf, &flash_params()).unwrap();
    (fx, flashed(&img))
}

fn pattern() -> Vec<u8> {
    (0..1024u32).flat_map(|i| 0x0102_0304u32.wrapping_mul(i + 1).to_le_bytes()).collect()
}

#[test]
fn app_boots_and_reports_its_segments() {
    let fx = build_fixtures().unwrap();
    let img = fx.image(&fx.miniboot().unwrap(), &AppSpec::new("A", 1, 20000)).unwrap();
    let mut d = Device::new(&fx.rom, flashed(&img), 7);
    let r = d.power_on(None);
    assert_eq!(r.end, End::SoftReset, "{}", r.console);
    let app = r.app.as_ref().expect("app ran");
    assert_eq!((app.id.as_str(), app.ver, app.done), ("A", 1, true));
    assert_eq!(app.segs, expected_segs(&img).unwrap());
    assert_eq!(app.segs.len(), 5);
    assert_eq!(app.irom, Some(3001));
    assert!(r.console.contains("miniboot"));
    assert!(app.entry_cc > r.counters.jump_cc && r.counters.jump_cc > r.counters.boot_cc);
    assert_eq!((r.counters.ops, r.counters.violations, r.counters.errors), (0, 0, 0));
    // Deterministic instruction counts under -icount shift=0 (CCOUNT's value at reset is
    // not, so only differences are compared).
    let r2 = Device::new(&fx.rom, flashed(&img), 8).power_on(None);
    let (a, b) = (r.boot_instructions().unwrap(), r2.boot_instructions().unwrap());
    assert!(a.abs_diff(b) <= 1 && a > 500, "{a} vs {b}");
    eprintln!("miniboot: {:?} instructions to app entry", r.boot_instructions());
}

#[test]
fn rom_refuses_a_bad_checksum_and_an_empty_chip() {
    let fx = build_fixtures().unwrap();
    let img = fx.image(&fx.miniboot().unwrap(), &AppSpec::new("A", 1, 0)).unwrap();
    let mut f = flashed(&img);
    f[20] ^= 0x40; // inside the bootloader's first segment
    let r = Device::new(&fx.rom, f, 1).power_on(None);
    assert_eq!(r.end, End::RomRefused, "{}", r.console);
    assert!(r.console.contains("checksum mismatch"));
    let r = Device::new(&fx.rom, vec![0xFF; 1 << 20], 1).power_on(None);
    assert_eq!(r.end, End::RomRefused);
    assert!(r.console.contains("no image at flash 0"), "{}", r.console);
}

#[test]
fn flash_model_rules_and_rom_functions() {
    let (fx, f) = flashtest_flash();
    let mut d = Device::new(&fx.rom, f, 3);
    let r = d.power_on(None);
    assert_eq!(r.end, End::SoftReset, "{}", r.console);
    let c = &r.console;
    assert!(c.contains("FT start -42 42 abc 00000abc ok"), "{c}");
    assert!(c.contains("FT div 142857 4 -142857"), "{c}");
    for l in ["FT r0 0", "FT r1 0", "FT setbits 1", "FT misaligned 1", "FT beyond 1", "FT readback 0 0", "FT r2 0", "FT r3 0", "FT done"] {
        assert!(c.contains(l), "missing {l}:\n{c}");
    }
    // Strict rules: the bit-setting write and the misaligned read are violations.
    assert_eq!(r.counters.violations, 2, "{c}");
    assert_eq!(r.counters.errors, 3);
    assert_eq!((r.counters.ops, r.counters.erases), (5, 2)); // the failed write counts as an op
    assert_eq!(r.counters.programmed, 4096 + 4 + 8);
    assert_eq!(&d.flash[0x80000..0x81000], &pattern()[..]);
    assert_eq!(&d.flash[0x81000..0x81008], &[0x78, 0x56, 0x34, 0x12, 0xF0, 0xDE, 0xBC, 0x9A]);
    assert!(d.flash[0x81008..0x82000].iter().all(|&b| b == 0xFF));
}

#[test]
fn power_cut_in_a_program_leaves_a_prefix() {
    let (fx, f) = flashtest_flash();
    let mut d = Device::new(&fx.rom, f, 4);
    let r = d.power_on(Some(Cut { at: 1, keep: 16384, garbage: 0 }));
    assert_eq!(r.end, End::PowerCut, "{}", r.console);
    assert!(!r.console.contains("FT r1"));
    let p = pattern();
    assert_eq!(&d.flash[0x80000..0x80400], &p[..0x400], "first quarter programmed");
    assert!(d.flash[0x80400..0x81000].iter().all(|&b| b == 0xFF), "rest unchanged (erased)");
    assert_eq!(r.counters.programmed, 0x400);
}

#[test]
fn power_cut_in_an_erase_leaves_old_and_arbitrary_bytes() {
    let (fx, mut f) = flashtest_flash();
    f[0x80000..0x81000].fill(0x00);
    let mut d = Device::new(&fx.rom, f, 5);
    let r = d.power_on(Some(Cut { at: 0, keep: 32768, garbage: 32768 }));
    assert_eq!(r.end, End::PowerCut, "{}", r.console);
    assert!(d.flash[0x80000..0x80800].iter().all(|&b| b == 0xFF), "erased prefix");
    let junk = &d.flash[0x80800..0x80C00];
    assert!(junk.iter().any(|&b| b != 0 && b != 0xFF), "arbitrary bytes");
    assert!(d.flash[0x80C00..0x81000].iter().all(|&b| b == 0), "old tail");
    assert_eq!(r.counters.erases, 0, "a cut erase is not a completed erase");
}

#[test]
fn rtc_survives_soft_reset_only() {
    let fx = build_fixtures().unwrap();
    let img = fx.image(&fx.miniboot().unwrap(), &AppSpec::new("A", 1, 0)).unwrap();
    let mut d = Device::new(&fx.rom, flashed(&img), 9);
    let mut words = [0u32; 32];
    for (i, w) in words.iter_mut().enumerate() {
        *w = 0xC0DE_0000 + i as u32;
    }
    d.write_command(&words);
    let r = d.soft_reset(None);
    assert_eq!(r.reset, Reset::Soft);
    // The app saw the block, and it is still there after the run.
    assert_eq!(r.app.unwrap().report, (0..6).map(|i| 0xC0DE_0000 + i).collect::<Vec<u32>>());
    assert_eq!(d.rtc_word(31), 0xC0DE_001F);
    let r = d.power_on(None);
    assert_eq!(r.end, End::SoftReset);
    assert_ne!(d.rtc_word(0), 0xC0DE_0000, "power-on must not keep RTC memory");
    assert!((0..32).any(|i| d.rtc_word(i) != 0), "garbage, not zeros");
}

/// An ESP8266 image with one segment of `len` bytes at `addr` whose entry is the bench
/// ROM's park routine (not in the real ROM): once loaded, the run ends as `park`.
fn park_image(addr: u32, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
    let mut img = vec![0xE9, 1, 0, 0];
    img.extend_from_slice(&0x4000_F000u32.to_le_bytes());
    img.extend_from_slice(&addr.to_le_bytes());
    img.extend_from_slice(&(len as u32).to_le_bytes());
    img.extend_from_slice(&data);
    let sum = data.iter().fold(0xEFu8, |s, b| s ^ b);
    while img.len() % 16 != 15 {
        img.push(0);
    }
    img.push(sum);
    img
}

/// An image whose code runs past real IRAM (0x40110000) is refused at flash 0; one that
/// ends exactly there loads.
#[test]
fn rom_refuses_code_past_real_iram() {
    let fx = build_fixtures().unwrap();
    let img = park_image(0x4011_0000, 8);
    let r = Device::new(&fx.rom, flashed(&img), 12).power_on(None);
    assert_eq!(r.end, End::RomRefused, "{}", r.console);
    assert!(r.console.contains("segment outside IRAM/DRAM"), "{}", r.console);

    let img = park_image(0x4010_FFF8, 8);
    let r = Device::new(&fx.rom, flashed(&img), 13).power_on(None);
    assert!(matches!(r.end, End::Park(_)), "{:?}\n{}", r.end, r.console);
    assert!(r.console.contains("load 4010fff8 len 8"), "{}", r.console);
}

/// The ROM boots any valid image at flash 0, one of exactly 4096 bytes too. `Board` takes
/// only what elf2bin accepts (at most 4,080 bytes), at flash 0 of a 1 MiB chip, with app
/// images carrying a valid whole-image CRC; it refuses 4096 and 4112 bytes.
#[test]
fn board_takes_only_a_flashable_image() {
    use bench::board::Board;
    let fx = build_fixtures().unwrap();

    // The ROM model itself: a 4096-byte image at flash 0 boots.
    let full = park_image(0x3FFF_0000, 4064);
    assert_eq!(full.len(), 4096);
    let r = Device::new(&fx.rom, flashed(&full), 14).power_on(None);
    assert!(matches!(r.end, End::Park(_)), "{:?}\n{}", r.end, r.console);
    assert!(r.console.contains("load 3fff0000 len 4064"), "{}", r.console);

    let bl = park_image(0x3FFF_0000, 4048);
    assert_eq!(bl.len(), 4080);
    let board = Board::new(bl.clone(), std::path::Path::new("test")).unwrap();
    let app = board.app_image(&fx, &AppSpec::new("A", 1, 0)).unwrap();
    assert!(tools::image::arduino_crc(&app).unwrap().valid);
    // The same app bytes as with any other sector 0, apart from the CRC words at 0x1010.
    let other = fx.image(&fx.miniboot().unwrap(), &AppSpec::new("A", 1, 0)).unwrap();
    assert_eq!((&app[0x1000..0x1010], &app[0x1018..]), (&other[0x1000..0x1010], &other[0x1018..]));
    assert_eq!(app[4..4080], bl[4..], "the image itself at flash 0 (bytes 2, 3: flash mode, size)");
    assert!(app[4080..4096].iter().all(|&b| b == tools::image::SLOT_FILL));
    assert_eq!(board.sector0(), &app[..4096]);
    let f = board.flashed(&app);
    assert_eq!(f.len(), 1 << 20);
    let r = board.device(&fx.rom, f, 15).power_on(None);
    assert!(matches!(r.end, End::Park(_)), "{:?}\n{}", r.end, r.console);
    assert!(r.console.contains("load 3fff0000 len 4048"), "{}", r.console);

    for (len, why) in [(4064, "elf2bin.py would refuse it"), (4080, "over the 4096-byte flash sector 0")] {
        let e = Board::new(park_image(0x3FFF_0000, len), std::path::Path::new("test")).unwrap_err();
        assert!(e.contains(why), "{len}: {e}");
    }
}
