//! Reduced power-cut sweep against the real bootloader core: every single cut point on the
//! small images of all 8 scenarios and both layouts, every double cut for the gzip sketch,
//! and seeded random multi-cut runs. (`cargo xtask sweep` runs the full-size sweep.)

use sim::scenario::{self, Kind, Size, Target, Trial, LAYOUTS};
use sim::sweep::{self, Config, Counts};

fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(2)
}

fn assert_clean(c: &Counts, what: &str) {
    let fails: Vec<String> = c.failures.iter().map(|(r, w)| format!("{w}\n  {r}")).collect();
    assert_eq!(c.bricks, 0, "{what}: bricks\n{}", fails.join("\n"));
    assert_eq!(c.mixed, 0, "{what}: mixed images booted\n{}", fails.join("\n"));
    assert_eq!(c.flash_errors, 0, "{what}: bad flash accesses\n{}", fails.join("\n"));
}

#[test]
fn every_single_cut_on_small_images_and_random_cuts() {
    let mut random_total = 0;
    for l in LAYOUTS {
        for k in scenario::kinds() {
            let sc = scenario::build(l, k, Size::Small);
            let cfg = Config { single: true, double: false, random: 40, threads: threads(), seed: 7 };
            let c = sweep::sweep(&sc, &cfg);
            println!("{}\n{}", c.line(&sc), c.info(&sc));
            assert_clean(&c, &format!("{} {}", sc.name, l.name));
            // The clean run did work, and every op got a cut before it and one inside it
            // (erases two inside): all of those must have fired.
            assert!(c.clean_ops > 0 && c.clean_erases > 0);
            assert!(c.cuts >= 2 * c.clean_ops + c.clean_erases, "{}: cuts {} for {} ops", sc.name, c.cuts, c.clean_ops);
            assert_eq!(c.random, 40);
            assert!(c.random_multi > 0, "random runs with two or more cuts that fired");
            // Trial updates run in the extension image: a cut at each of the last reads tier 1
            // makes before it runs, its check and loading among them, on every power-on that
            // chain-loads it (the update's boot, each trial boot, the finish or rollback: at
            // least two), every one fired.
            if k.trial == Trial::No {
                assert_eq!(c.read_cut_points, 0);
            } else {
                assert!(c.read_cut_points >= 20, "{}: {} handover read cut points", sc.name, c.read_cut_points);
                assert_eq!(c.read_cuts, c.read_cut_points, "{}: every handover read cut fired", sc.name);
            }
            // Cuts early in the update may lose it (old app), later ones must finish it;
            // both outcomes must occur, and a plain update without cuts ends new.
            if k.trial == Trial::Rollback {
                assert_eq!(c.ended_new, 0);
            } else {
                assert!(c.ended_new > 0 && c.ended_old > 0, "{}: new {} old {}", sc.name, c.ended_new, c.ended_old);
            }
            random_total += c.random;
        }
    }
    assert_eq!(random_total, 640);
}

#[test]
fn every_double_cut_gzip_sketch_small() {
    let k = Kind { target: Target::Sketch, gzip: true, trial: Trial::No };
    let sc = scenario::build(scenario::L1M64, k, Size::Small);
    let cfg = Config { single: false, double: true, random: 0, threads: threads(), seed: 11 };
    let c = sweep::sweep(&sc, &cfg);
    println!("{}\n{}", c.line(&sc), c.info(&sc));
    assert_clean(&c, "double");
    // Every first cut is followed by at least its recovery's cut points.
    assert!(c.double > (2 * c.clean_ops) * 10, "double cuts that fired: {}", c.double);
}

#[test]
fn trial_confirm_survives_double_cuts() {
    let k = Kind { target: Target::Sketch, gzip: true, trial: Trial::Confirm };
    let sc = scenario::build(scenario::L1M64, k, Size::Small);
    let cfg = Config { single: false, double: true, random: 0, threads: threads(), seed: 13 };
    let c = sweep::sweep(&sc, &cfg);
    println!("{}\n{}", c.line(&sc), c.info(&sc));
    assert_clean(&c, "double trial-confirm");
    assert!(c.double > 1000);
}
