//! Bench scenarios: a 1 MiB board with the Arduino 1M64 layout, updates staged the way the
//! stock `Updater` stages them, outcome checks, and the power-cut sweep.
use bootloader::command::Command;

use crate::app::{expected_segs, AppOutput};
use crate::qemu::{Cut, Device, End, Reset, Run};

pub const CHIP: usize = 1 << 20;
/// 1M64 layout (esp8266-compat.md §4).
pub const FS_START: u32 = 0xEB000;
pub const FS_END: u32 = 0xFB000;

pub fn roundup4k(n: usize) -> u32 {
    ((n + 0xFFF) & !0xFFF) as u32
}

/// Where `Updater::begin` stages an update of `len` bytes: FS_start − roundup4K(len).
pub fn staging_addr(len: usize) -> u32 {
    FS_START - roundup4k(len)
}

/// Where the updater stages the extension image for an update staged at `src`: just below
/// the journal sector, which is just below the staged update.
pub fn ext_addr(src: u32, ext_len: usize) -> u32 {
    src - 4096 - roundup4k(ext_len)
}

/// Stages the extension image `ext` for an update of `len` staged bytes, as the updater
/// does; returns (address, CRC-32) for the command.
pub fn stage_ext(flash: &mut [u8], len: usize, ext: &[u8]) -> (u32, u32) {
    let at = ext_addr(staging_addr(len), ext.len());
    stage(flash, at, ext);
    (at, crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(ext))
}

/// A blank 1 MiB chip with `image` (an Arduino image: bootloader + app) flashed at 0.
pub fn flashed(image: &[u8]) -> Vec<u8> {
    let mut f = vec![0xFF; CHIP];
    f[..image.len()].copy_from_slice(image);
    f
}

/// Writes `data` at `addr` as the Updater would (erase sectors, program).
pub fn stage(flash: &mut [u8], addr: u32, data: &[u8]) {
    let a = addr as usize;
    let end = a + roundup4k(data.len()) as usize;
    flash[a..end].fill(0xFF);
    flash[a..a + data.len()].copy_from_slice(data);
}

/// The command block exactly as the stock Updater writes it: COPY_RAW src → dst, len.
pub fn updater_command(src: u32, dst: u32, len: usize) -> [u32; 32] {
    Command::copy(src, dst, len as u32).encode()
}

/// What a finished boot sequence may legitimately show.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: &'static str,
    /// The Arduino image whose app (0x1000..) must be in flash byte for byte.
    pub image: Vec<u8>,
    pub app_id: String,
    /// A region (filesystem) that must hold exactly these bytes.
    pub region: Option<(u32, Vec<u8>)>,
}

/// Checks that the last run booted `o`'s app, byte-exact, with `sector0` intact.
pub fn check_outcome(flash: &[u8], app: Option<&AppOutput>, o: &Outcome, sector0: &[u8]) -> Result<(), String> {
    let a = app.ok_or("no app ran")?;
    if !a.done {
        return Err(format!("app {} did not finish", a.id));
    }
    if a.id != o.app_id {
        return Err(format!("app {} ran, expected {}", a.id, o.app_id));
    }
    let want = expected_segs(&o.image)?;
    if a.segs != want {
        return Err(format!("app {} segment sums {:x?}, image has {:x?}", a.id, a.segs, want));
    }
    if a.irom != Some(3000 + a.ver) {
        return Err(format!("irom probe returned {:?}", a.irom));
    }
    let n = o.image.len();
    if flash[0x1000..n] != o.image[0x1000..] {
        let first = (0x1000..n).find(|&i| flash[i] != o.image[i]).unwrap_or(0);
        return Err(format!("flash differs from image {} at {first:#x}", o.name));
    }
    if let Some((addr, data)) = &o.region {
        let a = *addr as usize;
        if flash[a..a + data.len()] != data[..] {
            return Err(format!("region {addr:#x} is not the {} content", o.name));
        }
    }
    if &flash[..4096] != sector0 {
        return Err("sector 0 (the bootloader) changed".into());
    }
    Ok(())
}

/// An update to sweep: the board before (old app, staged update), the command, and the
/// two acceptable outcomes.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub flash: Vec<u8>,
    pub command: [u32; 32],
    pub old: Outcome,
    pub new: Outcome,
}

/// One cut point's result.
#[derive(Clone, Debug)]
pub struct PointResult {
    pub cut: Cut,
    pub nested: Option<Cut>,
    /// Which outcome (old/new) or the error.
    pub result: Result<&'static str, String>,
    pub runs: usize,
}

#[derive(Clone, Debug, Default)]
pub struct SweepResult {
    /// Erase/program operations of the uninterrupted update.
    pub ops: u32,
    pub points: Vec<PointResult>,
}

impl Scenario {
    /// A device for this scenario's board (bootloader at flash 0).
    pub fn device(&self, rom: &std::path::Path, flash: Vec<u8>, seed: u64) -> Device {
        Device::new(rom, flash, seed)
    }
}

impl SweepResult {
    pub fn bricks(&self) -> Vec<&PointResult> {
        self.points.iter().filter(|p| p.result.is_err()).collect()
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x
}

/// The uninterrupted update: warm boot with the command, until the app runs. Returns the
/// runs (the first one is the update).
pub fn reference(rom: &std::path::Path, s: &Scenario) -> (Vec<Run>, Device) {
    let mut d = s.device(rom, s.flash.clone(), 1);
    d.write_command(&s.command);
    let runs = d.boot_until_app(Reset::Soft, 6);
    (runs, d)
}

/// Power-cut sweep: for every flash operation of the update (or `max_ops` of them evenly
/// spread), several partial effects each (at least `min_points` cuts); after the cut, power-ons until an app runs;
/// then the outcome must be the old or the new one, byte-exact. Every `nested_every`-th
/// point also cuts the first recovery run (at an op it really reaches). Runs on `threads`.
/// At least `min_points` cut points in all: more variants per op when the update is short.
pub fn sweep(rom: &std::path::Path, s: &Scenario, min_points: u32, max_ops: u32, nested_every: u32, threads: usize) -> Result<SweepResult, String> {
    let (runs, _) = reference(rom, s);
    let first = runs.first().ok_or("no run")?;
    if first.end != End::SoftReset {
        return Err(format!("reference update did not finish: {:?}\n{}", first.end, first.console));
    }
    let n = first.counters.ops;
    if n == 0 {
        return Err("the update did no flash operations".into());
    }
    let ks: Vec<u32> = if n <= max_ops { (0..n).collect() } else { (0..max_ops).map(|i| (i as u64 * n as u64 / max_ops as u64) as u32).collect() };
    let variants = min_points.div_ceil(ks.len() as u32).clamp(2, 8);
    let mut cuts = Vec::new();
    for &k in &ks {
        for v in 0..variants {
            let h = mix(((k as u64) << 8) ^ v as u64 ^ 0x5EED);
            let keep = match v {
                0 => (h % 65537) as u32,        // somewhere inside the op
                1 => 0,                          // just before it
                2 => 65536,                      // just after it
                _ => (h % 65537) as u32,
            };
            let garbage = if h & 0x10000 != 0 { ((h >> 20) % 65537) as u32 } else { 0 };
            cuts.push(Cut { at: k, keep, garbage });
        }
    }
    let sector0 = s.flash[..4096].to_vec();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&cut) = cuts.get(i) else { break };
                let nested = nested_every > 0 && i as u32 % nested_every == nested_every - 1;
                let r = cut_point(rom, s, &sector0, cut, nested, i as u64);
                results.lock().expect("lock").push((i, r));
            });
        }
    });
    let mut points: Vec<(usize, PointResult)> = results.into_inner().expect("lock");
    points.sort_by_key(|(i, _)| *i);
    Ok(SweepResult { ops: n, points: points.into_iter().map(|(_, p)| p).collect() })
}

fn cut_point(rom: &std::path::Path, s: &Scenario, sector0: &[u8], cut: Cut, nested: bool, seed: u64) -> PointResult {
    let mut d = s.device(rom, s.flash.clone(), seed + 100);
    d.write_command(&s.command);
    let r = d.soft_reset(Some(cut));
    let mut pr = PointResult { cut, nested: None, result: Ok(""), runs: 1 };
    if r.end != End::PowerCut {
        pr.result = Err(format!("cut at op {} did not fire: {:?}", cut.at, r.end));
        return pr;
    }
    if nested {
        // Learn how many ops the recovery does, then cut it in the middle.
        let mut probe = s.device(rom, d.flash.clone(), seed + 200);
        let pr0 = probe.power_on(None);
        if pr0.counters.ops > 0 {
            let c2 = Cut { at: pr0.counters.ops / 2, keep: (mix(seed) % 65537) as u32, garbage: 0 };
            let r2 = d.power_on(Some(c2));
            pr.runs += 1;
            pr.nested = Some(c2);
            if r2.end != End::PowerCut {
                pr.result = Err(format!("nested cut at op {} did not fire: {:?}", c2.at, r2.end));
                return pr;
            }
        }
    }
    let runs = d.boot_until_app(Reset::PowerOn, 6);
    pr.runs += runs.len();
    let last = runs.last().expect("a run");
    let bad: Vec<_> = runs.iter().filter(|r| r.counters.violations > 0).collect();
    pr.result = if !bad.is_empty() {
        Err(format!("ROM rule violation:\n{}", bad[0].console))
    } else if let Err(e) = crate::board::check_boot_area(&d.flash, sector0) {
        Err(e)
    } else {
        match (check_outcome(&d.flash, last.app.as_ref(), &s.new, sector0), check_outcome(&d.flash, last.app.as_ref(), &s.old, sector0)) {
            (Ok(()), _) => Ok("new"),
            (_, Ok(())) => Ok("old"),
            (Err(a), Err(b)) => Err(format!("neither new ({a}) nor old ({b}); last run {:?}:\n{}", last.end, last.console)),
        }
    };
    pr
}
