//! The boot flow on a plain in-memory flash (no power cuts: the sweeps in tests/sim do
//! those): every kind of update ends in the expected app, and rejections write nothing.

use bootloader::command::{Command, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_CRC, EXT_IMAGE, EXT_TRIAL};
use bootloader::image::{padded_len, Header, Segment, CHECKSUM_SEED};
use bootloader::journal;
use bootloader::report::{Code, Event, Report};
use bootloader::{power_on, Boot, Mem, Platform};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};

struct Ram {
    b: Vec<u8>,
    erases: usize,
    /// Operations left before the power goes (None: no cut).
    budget: Option<usize>,
    dead: bool,
}

impl Ram {
    /// Counts an operation; true if the power is cut during it.
    fn cut(&mut self) -> bool {
        match self.budget.as_mut() {
            Some(0) => {
                self.budget = None;
                self.dead = true;
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
}

#[derive(Debug)]
struct E;
impl NorFlashError for E {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}
impl ErrorType for Ram {
    type Error = E;
}
impl ReadNorFlash for Ram {
    const READ_SIZE: usize = 4;
    fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), E> {
        if self.dead {
            return Err(E);
        }
        let o = off as usize;
        assert!(o % 4 == 0 && buf.len() % 4 == 0, "unaligned read {o:#x}+{}", buf.len());
        buf.copy_from_slice(self.b.get(o..o + buf.len()).ok_or(E)?);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.b.len()
    }
}
impl NorFlash for Ram {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), E> {
        assert!(from % 4096 == 0 && to - from == 4096);
        if self.dead {
            return Err(E);
        }
        if self.cut() {
            // Torn erase: the first half erased, the second half scrambled.
            self.b[from as usize..from as usize + 2048].fill(0xFF);
            for b in &mut self.b[from as usize + 2048..to as usize] {
                *b = b.rotate_left(3) ^ 0x5C;
            }
            return Err(E);
        }
        self.erases += 1;
        self.b[from as usize..to as usize].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, off: u32, data: &[u8]) -> Result<(), E> {
        let o = off as usize;
        assert!(o % 4 == 0 && data.len() % 4 == 0, "unaligned write {o:#x}+{}", data.len());
        if self.dead {
            return Err(E);
        }
        // Torn program: only the first half of the bytes land.
        let n = if self.cut() { data.len() / 2 } else { data.len() };
        for (k, d) in data[..n].iter().enumerate() {
            let old = self.b[o + k];
            assert_eq!(old & d, *d, "program must not set bits at {:#x}", o + k);
            self.b[o + k] = old & d;
        }
        if self.dead {
            return Err(E);
        }
        Ok(())
    }
}

struct Rtc {
    w: [u32; 32],
    cold: bool,
}
impl Platform for Rtc {
    fn rtc(&self) -> &[u32; 32] {
        &self.w
    }
    fn rtc_write(&mut self, i: usize, v: u32) {
        self.w[i] = v;
    }
    fn cold_boot(&self) -> bool {
        self.cold
    }
    fn log(&mut self, _: &[u8]) {}
}

/// An Arduino flash image: 4 KB bootloader slot + app with irom0, IRAM and DRAM segments.
fn arduino_image(seed: u32, irom_len: usize) -> Vec<u8> {
    let mut v = vec![0xAA; 4096];
    v[0] = 0xE9;
    let mut x = seed;
    let mut data = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 7 < 3 { (x >> 16) as u8 } else { (i % 13) as u8 }
            })
            .collect()
    };
    let segs = [(0x4020_1010u32, data(irom_len)), (0x4010_0000, data(2048)), (0x3FFE_8000, data(512))];
    let mut app = Header { segments: 3, flash_mode: 2, size_freq: 0x40, entry: 0x4010_0004 }.to_bytes().to_vec();
    let mut sum = CHECKSUM_SEED;
    for (a, d) in &segs {
        app.extend(Segment { addr: *a, len: d.len() as u32 }.to_bytes());
        app.extend(d);
        sum = d.iter().fold(sum, |s, b| s ^ b);
    }
    let end = padded_len(app.len() as u32) as usize;
    app.resize(end, 0);
    app[end - 1] = sum;
    v.extend(app);
    v
}

const CAP: usize = 1 << 20;
const FS_START: u32 = 0xEB000;
const FS_END: u32 = 0xFB000;

fn device(old: &[u8]) -> Ram {
    let mut b = vec![0xFF; CAP];
    b[..4096].copy_from_slice(&[0x5A; 4096]); // "our" bootloader, must never change
    b[4096..old.len()].copy_from_slice(&old[4096..]);
    Ram { b, erases: 0, budget: None, dead: false }
}

/// Stages `img` as the Arduino Updater does and returns its source address.
fn stage(f: &mut Ram, img: &[u8]) -> u32 {
    let src = FS_START - ((img.len() as u32 + 4095) & !4095);
    let s = src as usize;
    f.b[s..s + ((img.len() + 4095) & !4095)].fill(0xFF);
    f.b[s..s + img.len()].copy_from_slice(img);
    src
}

fn gz(img: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(img).unwrap();
    e.finish().unwrap()
}

/// One power-on: tier 1, then the extension image when tier 1 chain-loads it.
fn run(f: &mut Ram, rtc: &mut Rtc) -> (Boot, Option<Report>) {
    run_ext(f, rtc).0
}

/// `run`, and the address of the extension image tier 1 chain-loaded, if it did.
fn run_ext(f: &mut Ram, rtc: &mut Rtc) -> ((Boot, Option<Report>), Option<u32>) {
    let mut mem = Box::new(Mem::new());
    let mut ext = None;
    let b = power_on(f, rtc, &mut mem, &mut |a| ext = Some(a.offset));
    ((b, Report::read(rtc)), ext)
}

/// An extension image as tier 1 sees one: an ESP8266 image loading into the extension's
/// IRAM window and DRAM.
fn ext_image() -> Vec<u8> {
    let code: Vec<u8> = (0..6000u32).map(|i| (i * 31 % 253) as u8).collect();
    let segs = [(0x4010_C000u32, code), (0x3FFF_2640, vec![7u8; 24])];
    let mut img = Header { segments: 2, flash_mode: 2, size_freq: 0x40, entry: 0x4010_C010 }.to_bytes().to_vec();
    let mut sum = CHECKSUM_SEED;
    for (a, d) in &segs {
        img.extend(Segment { addr: *a, len: d.len() as u32 }.to_bytes());
        img.extend(d);
        sum = d.iter().fold(sum, |s, b| s ^ b);
    }
    let end = padded_len(img.len() as u32) as usize;
    img.resize(end, 0);
    img[end - 1] = sum;
    img
}

/// Stages the extension image where the updater does (below the journal sector, which is
/// just below the staged update at `src`) and names it in `cmd`.
fn with_ext(f: &mut Ram, src: u32, mut cmd: Command) -> Command {
    let img = ext_image();
    let at = src - 4096 - ((img.len() as u32 + 4095) & !4095);
    f.b[at as usize..at as usize + img.len()].copy_from_slice(&img);
    cmd.ext |= EXT_IMAGE;
    cmd.args[ARG_EXT_ADDR] = at;
    cmd.args[ARG_EXT_CRC] = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&img);
    cmd
}

fn warm(cmd: &Command) -> Rtc {
    Rtc { w: cmd.encode(), cold: false }
}

fn booted(f: &Ram, b: Boot) -> Vec<u8> {
    match b {
        Boot::App(a) => {
            let mut v = a.head_bytes().to_vec();
            v.extend(&f.b[a.offset as usize + 16..(a.offset + a.len) as usize]);
            v
        }
        Boot::Halt(c) => panic!("halted: {c:?}"),
        Boot::Extension(e) => panic!("power_on returned a chain-load: {e:?}"),
    }
}

fn app_of(img: &[u8]) -> &[u8] {
    &img[4096..]
}

#[test]
fn plain_boot_reports_nothing() {
    let old = arduino_image(1, 60_000);
    let mut f = device(&old);
    let mut rtc = Rtc { w: [0x1234_5678; 32], cold: true };
    let (b, rep) = run(&mut f, &mut rtc);
    assert_eq!(booted(&f, b), app_of(&old));
    assert_eq!(rep.unwrap().event, Event::Nothing as u32);
    assert_eq!(f.erases, 0);
}

#[test]
fn sketch_updates_raw_and_gzip() {
    for gzip in [false, true] {
        let old = arduino_image(1, 60_000);
        let new = arduino_image(2, 90_000);
        let mut f = device(&old);
        let staged = if gzip { gz(&new) } else { new.clone() };
        let src = stage(&mut f, &staged);
        let mut rtc = warm(&Command::copy(src, 0, staged.len() as u32));
        let (b, rep) = run(&mut f, &mut rtc);
        let rep = rep.unwrap();
        assert_eq!((rep.event, rep.code), (Event::Applied as u32, 0), "gzip={gzip}");
        assert_eq!(booted(&f, b), app_of(&new));
        assert!(f.b[..4096].iter().all(|&b| b == 0x5A), "sector 0 kept");
        // Next boot: plain.
        let mut rtc = Rtc { w: rtc.w, cold: false };
        let (b, rep) = run(&mut f, &mut rtc);
        assert_eq!(booted(&f, b), app_of(&new));
        assert_eq!(rep.unwrap().event, Event::Nothing as u32);
    }
}

/// The journal needs a free sector between the new image and the staged one: a raw sketch
/// larger than half the free space has none and is refused (gzip it), leaving flash as it
/// was.
#[test]
fn raw_sketch_overlapping_its_source_is_refused() {
    let old = arduino_image(1, 100_000);
    let new = arduino_image(2, 560_000);
    let mut f = device(&old);
    let src = stage(&mut f, &new);
    assert!((new.len() as u32) > src, "the test needs an overlapping update");
    let before = f.b.clone();
    let mut rtc = warm(&Command::copy(src, 0, new.len() as u32));
    let (b, rep) = run(&mut f, &mut rtc);
    assert_eq!(rep.unwrap().code, Code::TooBig as u32);
    assert!(f.b == before);
    assert_eq!(booted(&f, b), app_of(&old));
}

#[test]
fn filesystem_update() {
    for gzip in [false, true] {
        let old = arduino_image(1, 60_000);
        let mut f = device(&old);
        let fsimg: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8 ^ (i >> 9) as u8).collect();
        let staged = if gzip { gz(&fsimg) } else { fsimg.clone() };
        let src = stage(&mut f, &staged);
        let mut rtc = warm(&Command::copy(src, FS_START, staged.len() as u32));
        let (b, rep) = run(&mut f, &mut rtc);
        assert_eq!(rep.unwrap().code, 0);
        assert_eq!(booted(&f, b), app_of(&old));
        assert_eq!(&f.b[FS_START as usize..FS_START as usize + fsimg.len()], &fsimg[..]);
        assert!(FS_START as usize + fsimg.len() <= FS_END as usize);
    }
}

#[test]
fn trial_confirm_and_rollback() {
    for confirm in [true, false] {
        let old = arduino_image(1, 60_000);
        let new = arduino_image(2, 70_000);
        let mut f = device(&old);
        let staged = gz(&new);
        let src = stage(&mut f, &staged);
        let mut cmd = Command::copy(src, 0, staged.len() as u32);
        cmd.ext = EXT_TRIAL;
        let cmd = with_ext(&mut f, src, cmd);
        let mut rtc = warm(&cmd);
        let ((b, rep), ext) = run_ext(&mut f, &mut rtc);
        assert_eq!(ext, Some(cmd.args[ARG_EXT_ADDR]), "tier 1 chain-loaded the named extension image");
        let rep = rep.unwrap();
        assert_eq!(rep.event, Event::Trial as u32);
        assert_eq!(rep.trial_left, 2);
        assert_eq!(booted(&f, b), app_of(&new));
        if confirm {
            journal::confirm(&mut f, rep.journal).unwrap();
            let (b, rep) = run(&mut f, &mut Rtc { w: [0; 32], cold: true });
            assert_eq!(booted(&f, b), app_of(&new));
            assert_eq!(rep.unwrap().event, Event::Resumed as u32);
            let (b, rep) = run(&mut f, &mut Rtc { w: [0; 32], cold: true });
            assert_eq!(booted(&f, b), app_of(&new));
            assert_eq!(rep.unwrap().event, Event::Nothing as u32);
        } else {
            for left in [1, 0] {
                let ((b, rep), ext) = run_ext(&mut f, &mut Rtc { w: [0; 32], cold: true });
                assert_eq!(ext, Some(cmd.args[ARG_EXT_ADDR]), "every trial boot runs in the extension image");
                assert_eq!(booted(&f, b), app_of(&new));
                assert_eq!(rep.unwrap().trial_left, left);
            }
            let (b, rep) = run(&mut f, &mut Rtc { w: [0; 32], cold: true });
            assert_eq!(rep.unwrap().event, Event::RolledBack as u32);
            assert_eq!(booted(&f, b), app_of(&old));
            let (b, rep) = run(&mut f, &mut Rtc { w: [0; 32], cold: true });
            assert_eq!(rep.unwrap().event, Event::Nothing as u32);
            assert_eq!(booted(&f, b), app_of(&old));
        }
    }
}

fn trial(src: u32, len: u32) -> Command {
    let mut c = Command::copy(src, 0, len);
    c.ext = EXT_TRIAL;
    c
}

#[test]
fn rejections_write_nothing() {
    let old = arduino_image(1, 60_000);
    let new = arduino_image(2, 90_000);
    let staged = gz(&new);
    let cases: Vec<(Box<dyn Fn(&mut Ram, u32) -> Command>, Code)> = vec![
        (Box::new(|_, s| Command::copy(s + 4, 0, staged.len() as u32)), Code::Misaligned),
        (Box::new(|_, s| Command::copy(s, 0, 0)), Code::Empty),
        (Box::new(|_, s| Command::copy(s, 0, CAP as u32)), Code::OutOfRange),
        (Box::new(|_, s| Command::copy(s, 0, staged.len() as u32 - 1)), Code::GzipTrailer),
        (Box::new(|f, s| { f.b[s as usize + 500] ^= 0x10; Command::copy(s, 0, staged.len() as u32) }), Code::GzipData),
        (Box::new(|f, s| { let mut c = Command::copy(s, 0, staged.len() as u32); c.ext = EXT_CRC; c.args[5] = 1; with_ext(f, s, c) }), Code::CrcMismatch),
        // Tier 1 cannot carry out an extension itself.
        (Box::new(|_, s| { let mut c = Command::copy(s, 0, staged.len() as u32); c.ext = EXT_TRIAL; c }), Code::NeedsExtension),
        (Box::new(|_, s| { let mut c = Command::copy(s, 0, staged.len() as u32); c.ext = EXT_CRC; c }), Code::NeedsExtension),
        // Unknown extension flags (0x004: sector-0 install, reserved).
        (Box::new(|f, s| { let mut c = Command::copy(s, 0, staged.len() as u32); c.ext = 0x004; with_ext(f, s, c) }), Code::BadExtension),
        // A missing, corrupt, misplaced or wrongly named extension image.
        (Box::new(|_, s| { let mut c = Command::copy(s, 0, staged.len() as u32); c.ext = EXT_TRIAL | EXT_IMAGE; c.args[ARG_EXT_ADDR] = s - 0x8000; c }), Code::ExtImage),
        (Box::new(|f, s| { let c = with_ext(f, s, trial(s, staged.len() as u32)); f.b[c.args[ARG_EXT_ADDR] as usize + 100] ^= 1; c }), Code::ExtImage),
        (Box::new(|f, s| { let mut c = with_ext(f, s, trial(s, staged.len() as u32)); c.args[ARG_EXT_CRC] ^= 1; c }), Code::ExtImage),
        (Box::new(|f, s| { let mut c = with_ext(f, s, trial(s, staged.len() as u32)); c.args[ARG_EXT_ADDR] += 4; c }), Code::ExtImage),
        (Box::new(|f, s| { let mut c = with_ext(f, s, trial(s, staged.len() as u32)); c.args[ARG_EXT_ADDR] = 0x1000; c }), Code::ExtImage),
        // Sound, but where the trial's backup of the old app goes: refused by the
        // extension before its journal.
        (Box::new(|f, s| {
            let c = with_ext(f, s, trial(s, staged.len() as u32));
            let img = ext_image();
            let at = 0x20000u32;
            f.b[at as usize..at as usize + img.len()].copy_from_slice(&img);
            Command { args: { let mut a = c.args; a[ARG_EXT_ADDR] = at; a }, ..c }
        }), Code::ExtImage),
        (Box::new(|_, _| Command::copy(0x2000, 0, staged.len() as u32)), Code::Overlap),
        (Box::new(|_, s| Command::copy(s, 0x3000, staged.len() as u32)), Code::Overlap),
        // A filesystem image reaching the EEPROM/RF/SDK sectors at the end of the chip.
        (Box::new(|_, s| Command::copy(s, FS_END - 0x10000, staged.len() as u32)), Code::TooBig),
    ];
    for (k, (make, code)) in cases.iter().enumerate() {
        let mut f = device(&old);
        let src = stage(&mut f, &staged);
        let cmd = make(&mut f, src);
        let before = f.b.clone();
        let mut rtc = warm(&cmd);
        let (b, rep) = run(&mut f, &mut rtc);
        let rep = rep.unwrap();
        assert_eq!((rep.event, rep.code), (Event::Rejected as u32, *code as u32), "case {k}");
        assert_eq!(f.erases, 0, "case {k}");
        assert!(f.b == before, "case {k} wrote flash");
        assert_eq!(booted(&f, b), app_of(&old));
    }
}

/// Cuts the power inside every erase and program of a gzip sketch update and of a
/// filesystem update, then powers on (RTC garbage) until an app starts: it is always the
/// old or the new one, byte-exact, and the filesystem is never half copied when it starts.
#[test]
fn every_single_cut_ends_old_or_new() {
    for fs in [false, true] {
        let old = arduino_image(1, 30_000);
        let new = arduino_image(2, 40_000);
        let fsimg: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8 ^ (i >> 9) as u8).collect();
        let staged = gz(if fs { &fsimg } else { &new });
        let dst = if fs { FS_START } else { 0 };
        let mut base = device(&old);
        let src = stage(&mut base, &staged);
        let cmd = Command::copy(src, dst, staged.len() as u32);
        // Count the operations of an uninterrupted update.
        let mut f = Ram { budget: Some(usize::MAX), ..Ram { b: base.b.clone(), erases: 0, budget: None, dead: false } };
        run(&mut f, &mut warm(&cmd));
        let ops = usize::MAX - f.budget.unwrap();
        assert!(ops > 10, "update did {ops} operations");
        let old_fs = base.b[FS_START as usize..FS_END as usize].to_vec();
        let mut fired = 0;
        for k in 0..ops {
            let mut f = Ram { b: base.b.clone(), erases: 0, budget: Some(k), dead: false };
            run(&mut f, &mut warm(&cmd));
            fired += f.dead as usize;
            f.dead = false;
            let (b, _) = run(&mut f, &mut Rtc { w: [0xA5A5_A5A5; 32], cold: true });
            let app = booted(&f, b);
            let fs_now = &f.b[FS_START as usize..FS_END as usize];
            if fs {
                assert_eq!(app, app_of(&old), "cut {k}");
                assert!(fs_now == &old_fs[..] || fs_now[..fsimg.len()] == fsimg[..], "cut {k}: mixed filesystem");
            } else {
                assert!(app == app_of(&old) || app == app_of(&new), "cut {k}: mixed app");
            }
        }
        assert_eq!(fired, ops, "every cut fired");
    }
}
