//! Update scenarios on the Arduino flash layouts, and the run model: a script of power-ons
//! with the app's behaviour in between, checked after every boot.

use bootloader::command::{Command, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_IMAGE, EXT_TRIAL, WORDS};
use bootloader::image::APP_OFFSET;
use bootloader::loader::{for_each_load, App};
use bootloader::report::{Event, Report};
use bootloader::{Boot, Mem};

use crate::flash::{Cut, Flash, Stats};
use crate::gen::{self, roundup4k, AppSpec};
use crate::rng::Rng;
use crate::rtc::Rtc;

/// An Arduino flash layout (esp8266-compat.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub name: &'static str,
    pub size: usize,
    pub fs_start: usize,
    pub fs_end: usize,
    /// Header flash size code.
    pub size_code: u8,
}

impl Layout {
    /// EEPROM, RF calibration and SDK config: the last 5 sectors, never ours to touch.
    pub fn eeprom(&self) -> usize {
        self.size - 0x5000
    }
}

pub const L1M64: Layout =
    Layout { name: "1M64", size: 0x10_0000, fs_start: 0xEB000, fs_end: 0xFB000, size_code: 2 };
pub const L4M1M: Layout =
    Layout { name: "4M1M", size: 0x40_0000, fs_start: 0x30_0000, fs_end: 0x3F_A000, size_code: 4 };
pub const LAYOUTS: [Layout; 2] = [L1M64, L4M1M];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Sketch,
    Fs,
}

/// What the new app does in a trial scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trial {
    No,
    /// Never confirms: resets until the bootloader rolls back.
    Rollback,
    /// Confirms on its first trial boot.
    Confirm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub target: Target,
    pub gzip: bool,
    pub trial: Trial,
}

impl Kind {
    pub fn name(&self) -> String {
        let t = match self.target {
            Target::Sketch => "sketch",
            Target::Fs => "fs",
        };
        let z = if self.gzip { "gzip" } else { "raw" };
        match self.trial {
            Trial::No => format!("{t}-{z}"),
            Trial::Rollback => format!("{t}-{z}-trial-rollback"),
            Trial::Confirm => format!("{t}-{z}-trial-confirm"),
        }
    }
}

/// The 8 scenarios of issue 2.
pub fn kinds() -> Vec<Kind> {
    let mut v = Vec::new();
    for target in [Target::Sketch, Target::Fs] {
        for gzip in [false, true] {
            v.push(Kind { target, gzip, trial: Trial::No });
        }
    }
    for gzip in [false, true] {
        for trial in [Trial::Rollback, Trial::Confirm] {
            v.push(Kind { target: Target::Sketch, gzip, trial });
        }
    }
    v
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Realistic: ~300 KB sketch on 4M, ~250 KB on 1M; FS 320 KB / 48 KB.
    Full,
    /// 32 KB sketch, 16 KB FS: for exhaustive double cuts and the test suite.
    Small,
}

/// A scenario ready to run: the device flash just before the Updater's soft reset.
pub struct Scenario {
    pub name: String,
    pub layout: Layout,
    pub kind: Kind,
    pub size: Size,
    /// Whole chip: our sector 0, old app, leftovers, staged image, old FS, config sectors.
    pub base: Vec<u8>,
    /// The command words the Updater writes (uninitialised args are garbage).
    pub cmd: [u32; WORDS],
    pub src: usize,
    pub staged: Vec<u8>,
    /// App images as they sit at 0x1000.
    pub old_app: Vec<u8>,
    pub new_app: Vec<u8>,
    /// Old FS = the whole FS region; new FS (FS scenarios) = the image copied to FS_start.
    pub old_fs: Vec<u8>,
    pub new_fs: Vec<u8>,
    /// Trial scenarios: the extension image the command names, and where it is staged.
    pub ext: Option<(usize, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Img {
    Old,
    New,
}

/// Builds the staged payload and device flash of one scenario.
pub fn build(layout: Layout, kind: Kind, size: Size) -> Scenario {
    let seed = (layout.size as u64) << 8 ^ (size == Size::Small) as u64;
    let (old_len, new_len, fs_len) = match (size, layout.name) {
        (Size::Full, "4M1M") => (280_000, 300_000, 320 * 1024),
        (Size::Full, _) => (236_000, 250_000, 48 * 1024),
        (Size::Small, _) => (28_000, 32_000, 16 * 1024),
    };
    let old_app = gen::app_image(&AppSpec { seed: seed ^ 0x01D, size: old_len, size_code: layout.size_code });
    let new_bin = gen::arduino_bin(
        &gen::app_image(&AppSpec { seed: seed ^ 0x4E7, size: new_len, size_code: layout.size_code }),
        layout.size_code,
    );
    let new_app = new_bin[APP_OFFSET as usize..].to_vec();
    let old_fs = gen::fs_image(seed ^ 0xF5, layout.fs_end - layout.fs_start);
    let new_fs = if kind.target == Target::Fs { gen::fs_image(seed ^ 0xF6, fs_len) } else { Vec::new() };

    let payload = match kind.target {
        Target::Sketch => new_bin.clone(),
        Target::Fs => new_fs.clone(),
    };
    let staged = if kind.gzip {
        gen::gzip(&payload, (kind.target == Target::Sketch).then_some("sketch.ino.bin"))
    } else {
        payload
    };
    let src = layout.fs_start - roundup4k(staged.len());
    let dst = match kind.target {
        Target::Sketch => 0,
        Target::Fs => layout.fs_start,
    };

    let mut rng = Rng::new(seed ^ kind.name().len() as u64 ^ 0x5EED);
    let mut base = vec![0xFF; layout.size];
    base[..4096].copy_from_slice(&our_sector0());
    let a = APP_OFFSET as usize;
    base[a..a + old_app.len()].copy_from_slice(&old_app);
    // Free space holds leftovers of earlier updates (code-like), some sectors erased: the
    // bootloader must not take stale bytes for state.
    let mut s = roundup4k(a + old_app.len());
    while s < src {
        if !rng.chance(1, 3) {
            base[s..s + 4096].copy_from_slice(&gen::code(&mut rng, 4096));
        }
        s += 4096;
    }
    base[src..src + staged.len()].copy_from_slice(&staged);
    base[layout.fs_start..layout.fs_end].copy_from_slice(&old_fs);
    let cfg = gen::files(&mut rng, layout.size - layout.eeprom());
    base[layout.eeprom()..].copy_from_slice(&cfg);

    let mut cmd = Command::copy(src as u32, dst as u32, staged.len() as u32);
    // The stock Updater leaves args[3..] as stack garbage (CRC-covered).
    for w in &mut cmd.args[3..] {
        *w = rng.next_u32();
    }
    let mut ext = None;
    if kind.trial != Trial::No {
        // What the updater does: the extension image goes just below the journal sector
        // (which is just below the staged update), and the command names it.
        let img = gen::ext_image();
        let at = src - 4096 - roundup4k(img.len());
        base[at..at + roundup4k(img.len())].fill(0xFF);
        base[at..at + img.len()].copy_from_slice(&img);
        cmd.ext = EXT_TRIAL | EXT_IMAGE;
        cmd.args[3] = 0; // backup: bootloader picks free space
        cmd.args[4] = 0; // default number of unconfirmed boots
        cmd.args[ARG_EXT_ADDR] = at as u32;
        cmd.args[ARG_EXT_CRC] = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&img);
        ext = Some((at, img));
    }
    let suffix = if size == Size::Small { "-small" } else { "" };
    Scenario {
        name: format!("{}{}", kind.name(), suffix),
        layout,
        kind,
        size,
        base,
        cmd: cmd.encode(),
        src,
        staged,
        old_app,
        new_app,
        old_fs,
        new_fs,
        ext,
    }
}

/// "Our bootloader" in sector 0: fixed bytes that must never change.
pub fn our_sector0() -> Vec<u8> {
    let mut s = gen::stock_eboot(2);
    s[3408 + 40..].fill(0xFF);
    s[16..32].copy_from_slice(b"eboot-rs sector0");
    s
}

/// Power cuts for one run: flash cuts by mutation index, and "reset boundary" cuts: after
/// boot number `b` where the app would soft-reset, the power fails instead (cold boot).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub cuts: Vec<Cut>,
    pub boundary: Vec<u32>,
    /// Power cuts at flash reads, by read index.
    pub reads: Vec<u64>,
    pub seed: u64,
}

impl Plan {
    pub fn spec(&self) -> String {
        let mut v: Vec<String> = self.cuts.iter().map(Cut::spec).collect();
        v.extend(self.boundary.iter().map(|b| format!("r{b}")));
        v.extend(self.reads.iter().map(|r| format!("R{r}")));
        format!("{} --seed {}", if v.is_empty() { "-".into() } else { v.join(",") }, self.seed)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Flash cuts that fired, plus boundary cuts that happened.
    pub fired: usize,
    pub boots: u32,
    /// Mutation indices used (the index space for cuts of this run).
    pub ops: u64,
    /// Final (app, fs) after the script, if it completed.
    pub final_state: Option<(Img, Img)>,
    /// Why the run counts as a brick.
    pub failure: Option<String>,
    /// Boots that started an image that was neither old nor new (app or FS).
    pub mixed: u32,
    /// Out-of-range, unaligned or 0→1 flash accesses by the bootloader.
    pub flash_errors: u64,
    /// Report event of every completed boot, in order.
    pub events: Vec<u32>,
    /// Power-ons on which tier 1 chain-loaded the extension image.
    pub ext_boots: u32,
    /// For each of them, the read indices from tier 1's start to the end of loading the
    /// extension image: where a read cut falls while tier 1 checks or loads it.
    pub handover_reads: Vec<(u64, u64)>,
    /// Boots after which the app soft-reset (boundary cut candidates).
    pub resets: Vec<u32>,
    /// Flash figures of the whole run.
    pub stats: Stats,
    pub log: String,
}

impl Outcome {
    pub fn brick(&self) -> bool {
        self.failure.is_some()
    }
}

/// One machine: flash and bootloader RAM, reused across runs.
pub struct Runner {
    pub flash: Flash,
    mem: Box<Mem>,
}

enum Next {
    /// The app runs on: the script is complete.
    Done,
    /// The app soft-resets (trial app that did not, or did, confirm).
    Reset,
}

impl Runner {
    pub fn new(sc: &Scenario) -> Runner {
        Runner { flash: Flash::from_image(&sc.base), mem: Box::new(Mem::new()) }
    }

    /// Runs the scenario's script under `plan`; the result says whether every boot was
    /// sound. `verbose` keeps the bootloader's console output of every boot.
    pub fn run(&mut self, sc: &Scenario, plan: &Plan, verbose: bool) -> Outcome {
        let mut o = Outcome::default();
        let r = self.script(sc, plan, verbose, &mut o);
        if let Err(e) = r {
            o.failure = Some(e);
        }
        o.fired += self.flash.fired().len() + self.flash.fired_reads();
        o.ops = self.flash.ops();
        o.stats = self.flash.stats();
        o.flash_errors = o.stats.caller_errors();
        o
    }

    fn script(&mut self, sc: &Scenario, plan: &Plan, verbose: bool, o: &mut Outcome) -> Result<(), String> {
        if self.flash.size() != sc.base.len() {
            self.flash = Flash::from_image(&sc.base);
        }
        self.flash.reset_to(&sc.base);
        self.flash.set_cuts(&plan.cuts);
        self.flash.set_read_cuts(&plan.reads);
        let mut rng = Rng::new(plan.seed ^ 0x27C);
        // The Updater wrote the command, then ESP.restart(): a soft reset.
        let mut rtc = Rtc::cold(&mut rng);
        rtc.write_words(&sc.cmd);
        rtc.soft_reset();

        let max_boots = 16 + 3 * (plan.cuts.len() + plan.boundary.len()) as u32;
        let mut done: Option<(Img, Img)> = None;
        for n in 0..max_boots {
            self.flash.power_on();
            let cold = rtc.is_cold();
            // Tier 1, then — when it chain-loads the extension image — what the device does:
            // load the image's segments (flash reads, which a cut may interrupt), and run
            // the extension's flow. The image must be the one staged, byte-exact.
            let r0 = self.flash.reads();
            let mut r = bootloader::boot::<_, _, { bootloader::TIER1 }>(&mut self.flash, &mut rtc, &mut self.mem);
            if let Boot::Extension(e) = r {
                let f = self.flash.data();
                let ok = match &sc.ext {
                    Some((at, img)) => e.offset as usize == *at && e.len as usize == img.len() && f[*at..*at + img.len()] == img[..],
                    None => false,
                };
                if !ok {
                    return Err(format!("boot {n}: tier 1 chain-loaded {e:x?}, not the staged extension image"));
                }
                // The segment table walk reads flash too; then each segment is read.
                let mut segs = Vec::new();
                let mut loaded = for_each_load(&mut self.flash, &e, |seg, off| {
                    segs.push((seg.len as usize, off));
                    true
                })
                .is_ok();
                for (len, off) in segs {
                    let mut ram = vec![0; len];
                    loaded &= embedded_storage::nor_flash::ReadNorFlash::read(&mut self.flash, off, &mut ram).is_ok();
                }
                o.handover_reads.push((r0, self.flash.reads()));
                o.ext_boots += 1;
                if loaded && self.flash.powered() {
                    r = bootloader::boot::<_, _, { bootloader::EXTENSION }>(&mut self.flash, &mut rtc, &mut self.mem);
                }
            }
            o.boots += 1;
            if verbose {
                o.log += &format!(
                    "boot {n} ({}) ops={} -> {r:?}\n  {}\n",
                    if cold { "cold" } else { "warm" },
                    self.flash.ops(),
                    String::from_utf8_lossy(rtc.log()).trim_end().replace('\n', "\n  ")
                );
            }
            if !self.flash.powered() {
                // The power failed inside this boot: whatever it returned never happened.
                rtc.power_on(&mut rng);
                continue;
            }
            let app = match r {
                Boot::App(a) => a,
                Boot::Halt(c) => return Err(format!("boot {n}: Halt({c:?}) without a cut")),
                Boot::Extension(e) => return Err(format!("boot {n}: power_on returned a chain-load {e:x?}")),
            };
            let state = self.check_boot(sc, &app).map_err(|e| {
                o.mixed += e.1 as u32;
                format!("boot {n}: {}", e.0)
            })?;
            let rep = Report::read(&rtc).ok_or_else(|| format!("boot {n}: no boot report"))?;
            o.events.push(rep.event);
            if verbose {
                o.log += &format!("  booted {state:?}, report {rep:?}\n");
            }
            if let Some(fin) = done {
                // The extra cold boot after the script: the device must stay where it was.
                if state != fin {
                    return Err(format!("boot {n}: settled at {fin:?}, then booted {state:?}"));
                }
                return self.check_final(sc, plan, o, fin);
            }
            let next = match sc.kind.trial {
                Trial::No => Next::Done,
                Trial::Rollback if state.0 == Img::New => Next::Reset,
                Trial::Rollback => Next::Done,
                Trial::Confirm if state.0 == Img::New && rep.event == Event::Trial as u32 => {
                    // What the app does through `updater`: the core's confirm helper.
                    let r = bootloader::journal::confirm(&mut self.flash, rep.journal);
                    if !self.flash.powered() {
                        rtc.power_on(&mut rng);
                        continue;
                    }
                    r.map_err(|c| format!("boot {n}: confirm failed: {c:?}"))?;
                    Next::Reset
                }
                Trial::Confirm => Next::Done,
            };
            match next {
                Next::Done => {
                    done = Some(state);
                    // Settle: power off and on once more.
                    rtc.power_on(&mut rng);
                }
                Next::Reset => {
                    o.resets.push(n);
                    if plan.boundary.contains(&n) {
                        o.fired += 1;
                        rtc.power_on(&mut rng);
                    } else {
                        rtc.soft_reset();
                    }
                }
            }
        }
        Err(format!("no stable app after {max_boots} power-ons (boot loop)"))
    }

    /// The invariant after a boot that starts an app: the image (head + flash) is
    /// byte-exact the old or the new app, the FS is the old or the new one, sector 0 and the
    /// config sectors are untouched, and the loader loads exactly the image's segments.
    /// Err((why, mixed)).
    pub fn check_boot(&mut self, sc: &Scenario, app: &App) -> Result<(Img, Img), (String, bool)> {
        let f = self.flash.data();
        if app.offset != APP_OFFSET {
            return Err((format!("app at {:#x}", app.offset), true));
        }
        if f[..4096] != our_sector0()[..] {
            return Err(("sector 0 changed".into(), true));
        }
        let eep = sc.layout.eeprom();
        if f[eep..] != sc.base[eep..] {
            return Err(("EEPROM/RF/SDK sectors changed".into(), true));
        }
        if let Some((at, img)) = &sc.ext {
            if f[*at..*at + img.len()] != img[..] {
                return Err(("the staged extension image changed".into(), true));
            }
        }
        let a = APP_OFFSET as usize;
        let stored = &f[a..a + 16];
        let head = app.head_bytes();
        if stored != head && stored.iter().any(|&b| b != 0xFF) {
            return Err(("head differs from flash, which is not erased".into(), true));
        }
        let is = |img: &[u8]| head[..] == img[..16] && f[a + 16..a + img.len()] == img[16..];
        let ai = if is(&sc.new_app) {
            Img::New
        } else if is(&sc.old_app) {
            Img::Old
        } else {
            return Err(("booted app is neither old nor new".into(), true));
        };
        let fs = &f[sc.layout.fs_start..sc.layout.fs_end];
        let fi = if !sc.new_fs.is_empty() && fs[..sc.new_fs.len()] == sc.new_fs[..] {
            Img::New
        } else if fs == &sc.old_fs[..] {
            Img::Old
        } else {
            return Err(("filesystem is neither old nor new".into(), true));
        };
        if sc.kind.target == Target::Fs && ai != Img::Old {
            return Err(("FS update changed the app".into(), true));
        }
        // What the loader would copy to RAM must be that image's loadable segments.
        let img = if ai == Img::New { &sc.new_app } else { &sc.old_app };
        let want: Vec<(u32, u32, u32)> = gen::segments(img)
            .ok_or(("test image unparsable".to_string(), false))?
            .into_iter()
            .filter(|(s, _)| bootloader::image::Region::of(s.addr).loaded())
            .map(|(s, off)| (s.addr, s.len, APP_OFFSET + off as u32))
            .collect();
        let mut got = Vec::new();
        for_each_load(&mut self.flash, app, |s, off| {
            got.push((s.addr, s.len, off));
            true
        })
        .map_err(|c| (format!("loader refused the booted app: {c:?}"), false))?;
        if got != want {
            return Err((format!("loader segments {got:x?}, image has {want:x?}"), false));
        }
        Ok((ai, fi))
    }

    fn check_final(&mut self, sc: &Scenario, plan: &Plan, o: &mut Outcome, fin: (Img, Img)) -> Result<(), String> {
        o.final_state = Some(fin);
        let img = if fin.0 == Img::New { &sc.new_app } else { &sc.old_app };
        let a = APP_OFFSET as usize;
        if self.flash.data()[a..a + 16] != img[..16] {
            return Err(format!("script ended with the app head not in flash ({fin:?})"));
        }
        let expected = match (sc.kind.target, sc.kind.trial) {
            (Target::Fs, _) => (Img::Old, Img::New),
            (_, Trial::Rollback) => (Img::Old, Img::Old),
            _ => (Img::New, Img::Old),
        };
        let cut = !self.flash.fired().is_empty() || self.flash.fired_reads() > 0 || o.fired > 0;
        if !cut && fin != expected {
            return Err(format!("no cut, yet ended at {fin:?}, expected {expected:?}"));
        }
        if sc.kind.trial == Trial::Rollback && fin.0 != Img::Old {
            return Err("an unconfirmed trial app stayed".into());
        }
        if plan.cuts.is_empty() && plan.boundary.is_empty() && plan.reads.is_empty() {
            // The clean run also shows the report protocol.
            let want_first = match sc.kind.trial {
                Trial::No => Event::Applied,
                _ => Event::Trial,
            } as u32;
            if o.events.first() != Some(&want_first) {
                return Err(format!("clean run: first report event {:?}, expected {want_first}", o.events.first()));
            }
            if sc.kind.trial == Trial::Rollback && !o.events.contains(&(Event::RolledBack as u32)) {
                return Err(format!("clean run: no RolledBack event in {:?}", o.events));
            }
            // Every boot of a trial update runs in the extension image until the journal
            // is done: the update, each trial boot, the confirmation or the rollback.
            if sc.kind.trial != Trial::No && o.ext_boots < 2 {
                return Err(format!("clean run: the extension image ran on {} boots", o.ext_boots));
            }
        }
        Ok(())
    }
}

