//! RTC memory and reset cause: the [`bootloader::Platform`] of the simulator.
//!
//! A power-on (after a cut) leaves RTC memory random, as on the chip; a soft or watchdog
//! reset keeps it.

use bootloader::command::WORDS;
use bootloader::Platform;

use crate::rng::Rng;

/// Bytes of console output kept per boot (enough to diagnose a failing run).
const LOG_CAP: usize = 8192;

pub struct Rtc {
    words: [u32; WORDS],
    cold: bool,
    log: Vec<u8>,
}

impl Rtc {
    /// State after a power-on: garbage words drawn from `rng`.
    pub fn cold(rng: &mut Rng) -> Rtc {
        let mut r = Rtc { words: [0; WORDS], cold: true, log: Vec::new() };
        r.power_on(rng);
        r
    }

    /// Power cut then power on: RTC memory is lost (garbage, not zeros).
    pub fn power_on(&mut self, rng: &mut Rng) {
        for w in &mut self.words {
            *w = rng.next_u32();
        }
        self.cold = true;
        self.log.clear();
    }

    /// Soft reset (software restart, watchdog): RTC memory kept.
    pub fn soft_reset(&mut self) {
        self.cold = false;
        self.log.clear();
    }

    /// What the app (the Arduino Updater) does before its soft reset.
    pub fn write_words(&mut self, w: &[u32; WORDS]) {
        self.words = *w;
    }
    pub fn words(&self) -> &[u32; WORDS] {
        &self.words
    }
    pub fn is_cold(&self) -> bool {
        self.cold
    }
    pub fn log(&self) -> &[u8] {
        &self.log
    }
}

impl Platform for Rtc {
    fn rtc(&self) -> &[u32; 32] {
        &self.words
    }
    fn rtc_write(&mut self, i: usize, v: u32) {
        self.words[i] = v;
    }
    fn cold_boot(&self) -> bool {
        self.cold
    }
    fn log(&mut self, s: &[u8]) {
        let room = LOG_CAP.saturating_sub(self.log.len());
        self.log.extend_from_slice(&s[..s.len().min(room)]);
    }
}
