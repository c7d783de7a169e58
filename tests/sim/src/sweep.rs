//! Power-cut sweeps over a scenario: the clean run, every single cut point, every double
//! cut within recovery, and seeded random multi-cut runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::flash::Cut;
use crate::rng::{mix, Rng};
use crate::scenario::{Img, Outcome, Plan, Runner, Scenario, Size, Trial};

#[derive(Clone, Debug)]
pub struct Config {
    pub single: bool,
    pub double: bool,
    pub random: u64,
    pub threads: usize,
    pub seed: u64,
}

/// Failing runs kept per scenario (with reproducers).
const KEEP_FAILURES: usize = 10;

#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Single-cut runs in which the cut happened.
    pub cuts: u64,
    /// Runs in which two cuts happened (exhaustive double sweep).
    pub double: u64,
    /// Random multi-cut runs, and how many of them had at least two cuts happen.
    pub random: u64,
    pub random_multi: u64,
    /// Runs that did not end with a valid app (Halt, invariant broken, boot loop).
    pub bricks: u64,
    /// Boots of an image (app or FS) neither old nor new.
    pub mixed: u64,
    /// Runs in which the bootloader made an unaligned, out-of-range or 0→1 flash access.
    pub flash_errors: u64,
    /// Runs with a power cut at a flash read while tier 1 checked or loaded the extension
    /// image (every such read of the clean run), in which the cut happened.
    pub read_cuts: u64,
    /// How many read cuts were planned (every one must fire).
    pub read_cut_points: u64,
    /// Runs ending with the new image / with the old one (update lost or rolled back).
    pub ended_new: u64,
    pub ended_old: u64,
    /// Flash figures of the clean run.
    pub clean_ops: u64,
    pub clean_erases: u64,
    pub clean_bytes: u64,
    pub clean_boots: u32,
    pub elapsed: Duration,
    pub failures: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Clean,
    Single,
    Read,
    Double,
    Random,
}

impl Counts {
    fn tally(&mut self, sc: &Scenario, plan: &Plan, o: &Outcome, class: Class) {
        match class {
            Class::Clean => {}
            Class::Single => self.cuts += (o.fired > 0) as u64,
            Class::Read => self.read_cuts += (o.fired > 0) as u64,
            Class::Double => self.double += (o.fired >= 2) as u64,
            Class::Random => {
                self.random += 1;
                self.random_multi += (o.fired >= 2) as u64;
            }
        }
        self.mixed += o.mixed as u64;
        self.flash_errors += (o.flash_errors > 0) as u64;
        match o.final_state {
            Some((Img::New, _)) | Some((_, Img::New)) => self.ended_new += 1,
            Some(_) => self.ended_old += 1,
            None => {}
        }
        let why = if let Some(f) = &o.failure {
            self.bricks += 1;
            Some(f.clone())
        } else if o.flash_errors > 0 {
            Some(format!("bad flash access: {:?}", o.stats))
        } else {
            None
        };
        if let (Some(why), true) = (why, self.failures.len() < KEEP_FAILURES) {
            self.failures.push((reproducer(sc, plan), why));
        }
    }

    fn add(&mut self, o: &Counts) {
        self.cuts += o.cuts;
        self.read_cuts += o.read_cuts;
        self.double += o.double;
        self.random += o.random;
        self.random_multi += o.random_multi;
        self.bricks += o.bricks;
        self.mixed += o.mixed;
        self.flash_errors += o.flash_errors;
        self.ended_new += o.ended_new;
        self.ended_old += o.ended_old;
        for f in &o.failures {
            if self.failures.len() < KEEP_FAILURES {
                self.failures.push(f.clone());
            }
        }
    }

    /// The line issue 2 asks for.
    pub fn line(&self, sc: &Scenario) -> String {
        format!(
            "SWEEP scenario={} layout={} cuts={} double={} random={} bricks={} mixed={}",
            sc.name, sc.layout.name, self.cuts, self.double, self.random, self.bricks, self.mixed
        )
    }

    /// Figures that are not part of the SWEEP line.
    pub fn info(&self, sc: &Scenario) -> String {
        format!(
            "INFO scenario={} layout={} staged={} clean_ops={} clean_erases={} clean_bytes={} clean_boots={} handover_read_cuts={} random_multi={} ended_new={} ended_old={} flash_errors={} secs={:.1}",
            sc.name,
            sc.layout.name,
            sc.staged.len(),
            self.clean_ops,
            self.clean_erases,
            self.clean_bytes,
            self.clean_boots,
            self.read_cuts,
            self.random_multi,
            self.ended_new,
            self.ended_old,
            self.flash_errors,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The command line that replays one run verbosely.
pub fn reproducer(sc: &Scenario, plan: &Plan) -> String {
    format!(
        "cargo run --release -p sim --bin sweep -- --replay {} {}{} {}",
        sc.kind.name(),
        sc.layout.name,
        if sc.size == Size::Small { " --small" } else { "" },
        plan.spec()
    )
}

/// Single cut points of a run whose op kinds are known: before each op in `from..to`,
/// inside it, and for erases also the scattered-bytes variant.
fn cut_points(r: &Runner, from: u64, to: u64, seed: u64) -> Vec<Cut> {
    let mut v = Vec::new();
    for k in from..to {
        let s = mix(seed ^ k);
        v.push(Cut::before(k));
        v.push(Cut::inside(k, 0, s));
        if r.flash.op_is_erase(k) {
            v.push(Cut::inside(k, 1, s));
        }
    }
    v
}

/// Runs `work(runner, i, counts)` for i in 0..n on `threads` workers.
fn par(sc: &Scenario, threads: usize, n: usize, work: impl Fn(&mut Runner, usize, &mut Counts) + Sync) -> Counts {
    let next = AtomicUsize::new(0);
    let total = Mutex::new(Counts::default());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut r = Runner::new(sc);
                let mut c = Counts::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    work(&mut r, i, &mut c);
                }
                total.lock().expect("no worker panicked").add(&c);
            });
        }
    });
    total.into_inner().expect("no worker panicked")
}

/// Reads cut at the end of each tier-1 → extension handover (see `sweep`).
pub const HANDOVER_READS: u64 = 48;

pub fn sweep(sc: &Scenario, cfg: &Config) -> Counts {
    let t0 = Instant::now();
    let seed = cfg.seed ^ mix(sc.name.len() as u64 ^ (sc.layout.size as u64) ^ sc.kind.name().bytes().map(u64::from).sum::<u64>() << 20);
    let mut r = Runner::new(sc);
    let clean = Plan { seed, ..Plan::default() };
    let o = r.run(sc, &clean, false);
    let mut counts = Counts {
        clean_ops: o.ops,
        clean_erases: o.stats.erases,
        clean_bytes: o.stats.bytes_programmed,
        clean_boots: o.boots,
        ..Counts::default()
    };
    counts.tally(sc, &clean, &o, Class::Clean);
    let singles = cut_points(&r, 0, o.ops, seed);
    let resets = o.resets.clone();
    // The extension check and load are the last ~10 reads of each window (before them,
    // tier 1's journal search reads a header per sector of the chip): cut at the last 48.
    let handover: Vec<u64> = o.handover_reads.iter().flat_map(|&(a, b)| b.saturating_sub(HANDOVER_READS).max(a)..b).collect();
    drop(r);

    // Every single cut point, then every reset turned into a power cut.
    let mut plans: Vec<Plan> = singles.iter().map(|c| Plan { cuts: vec![*c], boundary: vec![], reads: vec![], seed: mix(seed ^ c.at) }).collect();
    plans.extend(resets.iter().map(|b| Plan { cuts: vec![], boundary: vec![*b], reads: vec![], seed: mix(seed ^ 0xB0 ^ *b as u64) }));
    if cfg.single {
        let c = par(sc, cfg.threads, plans.len(), |r, i, c| {
            let o = r.run(sc, &plans[i], false);
            c.tally(sc, &plans[i], &o, Class::Single);
        });
        counts.add(&c);
    }

    counts.read_cut_points = if cfg.single { handover.len() as u64 } else { 0 };
    if cfg.single && !handover.is_empty() {
        // A cut at each of the last reads tier 1 makes before the extension image runs (its
        // check and its loading among them), on every power-on of the clean run that
        // chain-loads it.
        let c = par(sc, cfg.threads, handover.len(), |r, i, c| {
            let p = Plan { reads: vec![handover[i]], seed: mix(seed ^ 0x5EAD ^ handover[i]), ..Plan::default() };
            let o = r.run(sc, &p, false);
            c.tally(sc, &p, &o, Class::Read);
        });
        counts.add(&c);
    }

    if cfg.double {
        // For every first cut, every cut point of what follows it (recovery and the rest).
        let c = par(sc, cfg.threads, singles.len(), |r, i, c| {
            let c1 = singles[i];
            let p1 = Plan { cuts: vec![c1], boundary: vec![], reads: vec![], seed: mix(seed ^ c1.at) };
            let o1 = r.run(sc, &p1, false);
            if o1.fired == 0 {
                return;
            }
            let seconds = cut_points(r, c1.at + 1, o1.ops, seed ^ 0xD0 ^ (i as u64) << 32);
            for c2 in seconds {
                let p = Plan { cuts: vec![c1, c2], boundary: vec![], reads: vec![], seed: p1.seed };
                let o = r.run(sc, &p, false);
                c.tally(sc, &p, &o, Class::Double);
            }
        });
        counts.add(&c);
    }

    if cfg.random > 0 {
        let span = counts.clean_ops.max(4);
        let trial = sc.kind.trial != Trial::No;
        let c = par(sc, cfg.threads, cfg.random as usize, |r, i, c| {
            let p = random_plan(mix(seed ^ 0xA11 ^ (i as u64) << 16), span, trial);
            let o = r.run(sc, &p, false);
            c.tally(sc, &p, &o, Class::Random);
        });
        counts.add(&c);
    }
    counts.elapsed = t0.elapsed();
    counts
}

/// 1 to 4 cuts: the first anywhere in the clean run, each next one a random distance after
/// the previous (so most land in recovery); trial scripts may also lose power at resets.
pub fn random_plan(seed: u64, span: u64, trial: bool) -> Plan {
    let mut rng = Rng::new(seed);
    let n = rng.range(1, 5);
    let mut at = rng.below(span + 1);
    let mut cuts = Vec::new();
    for _ in 0..n {
        let s = rng.next_u64();
        cuts.push(match rng.below(3) {
            0 => Cut::before(at),
            v => Cut::inside(at, (v - 1) as u8, s),
        });
        at += 1 + rng.below((span / 2).max(4));
    }
    let mut boundary = Vec::new();
    if trial && rng.chance(1, 3) {
        boundary.push(rng.below(6) as u32);
    }
    Plan { cuts, boundary, reads: vec![], seed: rng.next_u64() }
}
