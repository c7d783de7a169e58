//! A simulated ESP8266 on the Arduino 1M64 layout (FS 0xEB000..0xFB000) with eboot-rs in
//! sector 0 and a valid old app at 0x1000, booted by the real bootloader core.
#![allow(dead_code)]

use bootloader::{Boot, Mem};
use md5::{Digest, Md5};
use sha2::Sha256;
use sim::flash::Flash;
use sim::gen::{self, AppSpec};
use sim::rng::Rng;
use updater::{Check, Command, Kind, Layout, Stager};

pub const LAYOUT: Layout = Layout { fs_start: 0xEB000, fs_end: 0xFB000 };
pub const SIZE: usize = 0x10_0000;
pub const EEPROM: usize = SIZE - 0x5000;
const SIZE_CODE: u8 = 2;

/// The sim's RTC (a `bootloader::Platform`) seen through the updater's `Rtc` trait.
pub struct SimRtc(pub sim::rtc::Rtc);

impl updater::Rtc for SimRtc {
    fn read(&self, i: usize) -> u32 {
        self.0.words()[i]
    }
    fn write(&mut self, i: usize, v: u32) {
        let mut w = *self.0.words();
        w[i] = v;
        self.0.write_words(&w);
    }
}

pub struct Device {
    pub flash: Flash,
    pub rtc: SimRtc,
    mem: Box<Mem>,
    rng: Rng,
    pub base: Vec<u8>,
    pub old_app: Vec<u8>,
    pub old_fs: Vec<u8>,
    /// Power-ons on which tier 1 chain-loaded the extension image.
    pub ext_boots: u32,
}

/// A whole Arduino `.bin` (bootloader slot + app) of about `size` bytes.
pub fn new_bin(seed: u64, size: usize) -> Vec<u8> {
    gen::arduino_bin(&gen::app_image(&AppSpec { seed, size, size_code: SIZE_CODE }), SIZE_CODE)
}

pub fn md5(d: &[u8]) -> [u8; 16] {
    Md5::digest(d).into()
}

pub fn sha256(d: &[u8]) -> [u8; 32] {
    Sha256::digest(d).into()
}

impl Device {
    pub fn new() -> Device {
        let old_app = gen::app_image(&AppSpec { seed: 0x01D, size: 48_000, size_code: SIZE_CODE });
        let old_fs = gen::fs_image(0xF5, (LAYOUT.fs_end - LAYOUT.fs_start) as usize);
        let mut base = vec![0xFF; SIZE];
        base[..4096].copy_from_slice(&sim::scenario::our_sector0());
        base[0x1000..0x1000 + old_app.len()].copy_from_slice(&old_app);
        // Leftovers of earlier updates in the free space: staging must erase before it writes.
        let mut rng = Rng::new(0x5EED);
        let mut s = gen::roundup4k(0x1000 + old_app.len()) + 0x3000;
        while s < LAYOUT.fs_start as usize {
            if rng.chance(1, 2) {
                base[s..s + 4096].copy_from_slice(&gen::code(&mut rng, 4096));
            }
            s += 4096;
        }
        base[LAYOUT.fs_start as usize..LAYOUT.fs_end as usize].copy_from_slice(&old_fs);
        base[EEPROM..].copy_from_slice(&gen::files(&mut rng, SIZE - EEPROM));
        let rtc = SimRtc(sim::rtc::Rtc::cold(&mut rng));
        let mut d = Device { flash: Flash::from_image(&base), rtc, mem: Box::new(Mem::new()), rng, base, old_app, old_fs, ext_boots: 0 };
        // The running app was booted once: RTC holds a report ("nothing").
        assert!(matches!(d.cold_boot(), Boot::App(_)));
        d
    }

    /// Soft reset (what the app does after `request`): RTC memory kept.
    pub fn warm_boot(&mut self) -> Boot {
        self.rtc.0.soft_reset();
        self.flash.power_on();
        self.power_on()
    }

    /// Tier 1, then the extension image when tier 1 chain-loads it, which must be the
    /// updater's embedded `EXTENSION`, byte-exact where the command named it.
    fn power_on(&mut self) -> Boot {
        let mut chained = None;
        let b = bootloader::power_on(&mut self.flash, &mut self.rtc.0, &mut self.mem, &mut |e| chained = Some(*e));
        if let Some(e) = chained {
            let at = e.offset as usize;
            assert_eq!(e.len as usize, updater::EXTENSION.len(), "tier 1 chain-loaded something else");
            assert!(self.flash.data()[at..at + e.len as usize] == *updater::EXTENSION, "extension image changed");
            self.ext_boots += 1;
        }
        b
    }

    /// Power cut and power on: RTC memory is garbage.
    pub fn cold_boot(&mut self) -> Boot {
        self.rtc.0.power_on(&mut self.rng);
        self.flash.power_on();
        self.power_on()
    }

    /// Stages `img` in chunks of `chunk` bytes.
    pub fn stage(&mut self, kind: Kind, img: &[u8], chunk: usize, check: Check) -> updater::Result<(Command, Option<u32>)> {
        let mut st = Stager::begin(&mut self.flash, LAYOUT, kind, img.len() as u32)?;
        for c in img.chunks(chunk) {
            st.write(&mut self.flash, c)?;
        }
        let cmd = st.finish(&mut self.flash, check)?;
        Ok((cmd, st.output_crc()))
    }

    pub fn data(&self) -> &[u8] {
        self.flash.data()
    }

    /// The app at 0x1000 is exactly `app` (`head` = the 16 bytes the bootloader started
    /// it with, which come from the journal during a trial).
    pub fn assert_app(&self, boot: Boot, app: &[u8]) {
        let Boot::App(a) = boot else { panic!("no app booted: {boot:?}") };
        assert_eq!(a.offset, 0x1000);
        assert_eq!(a.head_bytes()[..], app[..16], "booted header");
        assert!(self.data()[0x1010..0x1000 + app.len()] == app[16..], "app bytes at 0x1010");
    }

    /// Sector 0 and the EEPROM/RF/SDK sectors are as they were.
    pub fn assert_untouched_system(&self) {
        assert!(self.data()[..4096] == self.base[..4096], "sector 0 changed");
        assert!(self.data()[EEPROM..] == self.base[EEPROM..], "config sectors changed");
    }

    pub fn fs(&self) -> &[u8] {
        &self.data()[LAYOUT.fs_start as usize..LAYOUT.fs_end as usize]
    }
}
