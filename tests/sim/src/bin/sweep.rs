//! The power-cut sweep and the corruption test on the host simulator.
//!
//! `sweep` (full): every scenario on both layouts at realistic sizes with every single cut
//! and random multi-cut runs; the same scenarios on small images with every double cut as
//! well; then the reject test. One `SWEEP` line per scenario, one `REJECT` line.
//! `sweep --replay <kind> <layout> [--small] <cuts> --seed <n>` replays one run verbosely.

use std::process::ExitCode;
use std::time::Instant;

use sim::flash::Cut;
use sim::reject;
use sim::scenario::{self, Plan, Runner, Size, LAYOUTS};
use sim::sweep::{self, Config};

const USAGE: &str = "usage: sweep [--quick] [--random N] [--threads N] [--seed N] [--only SUBSTR]
             [--no-full] [--no-small] [--no-double] [--no-reject] [--reject-scale N]
       sweep --replay KIND LAYOUT [--small] CUTS --seed N
  --random N   random multi-cut runs in total, split over all scenarios (default 12000)
  --quick      small images only, fewer random runs (what `cargo test` runs)
  CUTS         comma list: bN (cut before op N), iN.V.S (inside op N, variant V, seed S),
               rN (power cut instead of the app's reset after boot N), or -";

struct Opts {
    random: u64,
    threads: usize,
    seed: u64,
    only: Option<String>,
    full: bool,
    small: bool,
    double: bool,
    reject: bool,
    reject_scale: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--replay") {
        return replay(&args[1..]);
    }
    let mut o = Opts {
        random: 12_000,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(2),
        seed: 0x5EED_2024,
        only: None,
        full: true,
        small: true,
        double: true,
        reject: true,
        reject_scale: 1,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Option<u64> {
            let v = it.next().and_then(|v| v.parse().ok());
            if v.is_none() {
                eprintln!("{name} needs a number\n{USAGE}");
            }
            v
        };
        match a.as_str() {
            "--quick" => {
                o.full = false;
                o.random = 1600;
            }
            "--random" => match num("--random") {
                Some(n) => o.random = n,
                None => return ExitCode::from(2),
            },
            "--threads" => match num("--threads") {
                Some(n) => o.threads = n as usize,
                None => return ExitCode::from(2),
            },
            "--seed" => match num("--seed") {
                Some(n) => o.seed = n,
                None => return ExitCode::from(2),
            },
            "--reject-scale" => match num("--reject-scale") {
                Some(n) => o.reject_scale = n as usize,
                None => return ExitCode::from(2),
            },
            "--only" => o.only = it.next().cloned(),
            "--no-full" => o.full = false,
            "--no-small" => o.small = false,
            "--no-double" => o.double = false,
            "--no-reject" => o.reject = false,
            _ => {
                eprintln!("unknown argument {a}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    run(&o)
}

fn run(o: &Opts) -> ExitCode {
    let t0 = Instant::now();
    let mut sizes = Vec::new();
    if o.full {
        sizes.push(Size::Full);
    }
    if o.small {
        sizes.push(Size::Small);
    }
    let mut jobs = Vec::new();
    for &size in &sizes {
        for l in LAYOUTS {
            for k in scenario::kinds() {
                jobs.push((l, k, size));
            }
        }
    }
    jobs.retain(|(l, k, s)| {
        let name = format!("{}{} {}", k.name(), if *s == Size::Small { "-small" } else { "" }, l.name);
        o.only.as_ref().is_none_or(|f| name.contains(f.as_str()))
    });
    let per = if jobs.is_empty() { 0 } else { o.random.div_ceil(jobs.len() as u64) };
    let mut bad = false;
    let (mut bricks, mut mixed, mut cuts, mut double, mut random) = (0, 0, 0, 0, 0);
    for (l, k, size) in jobs {
        let sc = scenario::build(l, k, size);
        let cfg = Config { single: true, double: o.double && size == Size::Small, random: per, threads: o.threads, seed: o.seed };
        let c = sweep::sweep(&sc, &cfg);
        println!("{}", c.line(&sc));
        println!("{}", c.info(&sc));
        for (repro, why) in &c.failures {
            println!("FAIL {}/{}: {why}\n     reproduce: {repro}", sc.name, sc.layout.name);
        }
        bad |= c.bricks > 0 || c.mixed > 0 || c.flash_errors > 0 || c.cuts == 0;
        bricks += c.bricks;
        mixed += c.mixed;
        cuts += c.cuts;
        double += c.double;
        random += c.random;
    }
    println!("TOTAL cuts={cuts} double={double} random={random} bricks={bricks} mixed={mixed} secs={:.1}", t0.elapsed().as_secs_f64());
    if o.reject {
        let t = Instant::now();
        let r = reject::run(o.seed, o.reject_scale, o.threads);
        println!("{}", r.line());
        println!("{} secs={:.1}", r.info(), t.elapsed().as_secs_f64());
        for f in &r.failures {
            println!("FAIL reject {f}");
        }
        bad |= !r.ok() || r.mutants < 1000 * o.reject_scale as u64;
    }
    if bad {
        println!("sweep: FAILED");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn replay(args: &[String]) -> ExitCode {
    let mut small = false;
    let mut seed = 0;
    let mut pos = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--small" => small = true,
            "--seed" => seed = it.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            _ => pos.push(a.clone()),
        }
    }
    let [kind, layout, spec] = &pos[..] else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let Some(k) = scenario::kinds().into_iter().find(|k| &k.name() == kind) else {
        eprintln!("unknown scenario {kind}");
        return ExitCode::from(2);
    };
    let Some(l) = LAYOUTS.into_iter().find(|l| l.name == layout) else {
        eprintln!("unknown layout {layout}");
        return ExitCode::from(2);
    };
    let mut plan = Plan { seed, ..Plan::default() };
    for p in spec.split(',').filter(|p| *p != "-") {
        if let Some(b) = p.strip_prefix('r') {
            plan.boundary.push(b.parse().unwrap_or(0));
        } else if let Some(r) = p.strip_prefix('R') {
            plan.reads.push(r.parse().unwrap_or(0));
        } else if let Some(c) = Cut::parse(p) {
            plan.cuts.push(c);
        } else {
            eprintln!("bad cut {p}");
            return ExitCode::from(2);
        }
    }
    let sc = scenario::build(l, k, if small { Size::Small } else { Size::Full });
    let mut r = Runner::new(&sc);
    let o = r.run(&sc, &plan, true);
    print!("{}", o.log);
    println!(
        "fired={} boots={} ops={} final={:?} mixed={} flash_errors={} stats={:?}",
        o.fired, o.boots, o.ops, o.final_state, o.mixed, o.flash_errors, o.stats
    );
    match o.failure {
        Some(f) => {
            println!("BRICK: {f}");
            ExitCode::FAILURE
        }
        None => {
            println!("ok");
            ExitCode::SUCCESS
        }
    }
}
