//! `demo`: the whole story on the bench: an app runs, a gzip update is staged the way the
//! stock Arduino Updater stages it, power is cut in the middle of the copy, power comes
//! back, the update completes and the new app boots. Then a trial update through the
//! extension image, from an app that never confirms: tier 1 chain-loads the extension
//! image, which boots the new app in trial and, after its unconfirmed boots, rolls back.
use bench::scenario::{check_outcome, stage, stage_ext, staging_addr, updater_command};
use bench::{build_fixtures, AppSpec, Cut, End, Reset, Run};
use bootloader::command::{Command, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_IMAGE, EXT_TRIAL};
use bootloader::report::Event;

use crate::bench::{outcome, sequence_instructions};

fn show(n: usize, what: &str, runs: &[Run]) {
    println!("\n── power-on {n}: {what}");
    for r in runs {
        for l in r.guest_output().lines().filter(|l| !l.trim().is_empty() && !l.starts_with("APP seg")) {
            println!("   │ {l}");
        }
        let c = &r.counters;
        println!(
            "   └ {:?} reset, ended by {:?}: {} erases, {} bytes programmed, {} instructions",
            r.reset, r.end, c.erases, c.programmed, r.run_instructions()
        );
    }
}

pub fn demo(_args: &[&str]) -> Result<(), String> {
    let board = crate::bench::board()?;
    // The path printed for flashing, absolute whatever the current directory.
    let bin = std::path::absolute(&board.source).map_err(|e| format!("{}: {e}", board.source.display()))?;
    let fx = build_fixtures()?;
    let old = board.app_image(&fx, &AppSpec::new("OLD", 1, 96 * 1024))?;
    let new = board.app_image(&fx, &AppSpec::new("NEW", 2, 100 * 1024))?;
    let gz = tools::gzip::gzip_best(&new);
    println!("eboot-rs demo on the QEMU lx106 bench ({} MiB flash, layout 1M64)", bench::scenario::CHIP >> 20);
    println!("  bootloader {} bytes at 0x0; app OLD {} bytes at 0x1000", board.bootloader.len(), old.len() - 4096);
    println!("  update: app NEW, {} bytes, gzip {} bytes", new.len(), gz.len());

    let mut d = board.device(&fx.rom, board.flashed(&old), 42);
    let r1 = d.boot_until_app(Reset::PowerOn, 3);
    show(1, "OLD app installed, no command", &r1);

    // The sketch stages the update and writes eboot's command, then ESP.restart().
    let src = staging_addr(gz.len());
    let mut staged = d.flash.clone();
    stage(&mut staged, src, &gz);
    d.flash = staged.clone();
    let cmd = updater_command(src, 0, gz.len());
    println!("\n   Update.end(): gzip staged at {src:#x}, command COPY_RAW {src:#x} -> 0x0, {} bytes; restart", gz.len());

    // How many flash operations the whole update takes, to cut power halfway through.
    let mut probe = board.device(&fx.rom, staged, 43);
    probe.write_command(&cmd);
    let total = probe.soft_reset(None).counters.ops;
    let cut = Cut { at: total / 2, keep: 20000, garbage: 0 };
    d.write_command(&cmd);
    let r2 = d.soft_reset(Some(cut));
    show(2, &format!("soft reset with the command; power cut at flash operation {} of {total}", cut.at), std::slice::from_ref(&r2));
    if r2.end != End::PowerCut {
        return Err(format!("the power cut did not fire: {:?}", r2.end));
    }
    println!("   (RTC memory is lost with the power: the command block is garbage now)");

    let r3 = d.boot_until_app(Reset::PowerOn, 6);
    show(3, "power back on", &r3);
    let last = r3.last().ok_or("no run")?;
    check_outcome(&d.flash, last.app.as_ref(), &outcome("NEW", &new, "NEW"), &old[..4096])?;
    board.check_boot_area(&d.flash)?;

    // Act 2: NEW stages a trial update to BAD (an app that never confirms) with the
    // extension image, as the updater crate does, and restarts.
    let bad = board.app_image(&fx, &AppSpec::new("BAD", 3, 100 * 1024))?;
    let gz2 = tools::gzip::gzip_best(&bad);
    let ext = bench::build::real_extension()?;
    let mut f = d.flash.clone();
    let (ext_at, ext_crc) = stage_ext(&mut f, gz2.len(), &ext);
    let src2 = staging_addr(gz2.len());
    stage(&mut f, src2, &gz2);
    d.flash = f;
    let mut c = Command::copy(src2, 0, gz2.len() as u32);
    c.ext = EXT_TRIAL | EXT_IMAGE;
    c.args[4] = 2;
    c.args[ARG_EXT_ADDR] = ext_at;
    c.args[ARG_EXT_CRC] = ext_crc;
    d.write_command(&c.encode());
    println!(
        "\n   NEW stages a trial update to BAD (never confirms): gzip at {src2:#x}, extension image ({} bytes) at {ext_at:#x}; \
         command COPY_RAW + TRIAL (2 boots) + IMAGE; restart",
        ext.len()
    );
    let mut n = 4;
    let mut rolled_back = false;
    let mut reset = Reset::Soft;
    while n < 10 && !rolled_back {
        let runs = d.boot_until_app(reset, 4);
        let app = runs.last().and_then(|r| r.app.as_ref()).ok_or("no app ran")?;
        let event = app.report.get(1).copied().unwrap_or(u32::MAX);
        let what = match (app.id.as_str(), event) {
            ("BAD", e) if e == Event::Trial as u32 => "tier 1 checks the extension image and chain-loads it; BAD boots in trial, does not confirm, resets",
            ("NEW", e) if e == Event::RolledBack as u32 => "BAD never confirmed: the extension image restores NEW",
            _ => "unexpected",
        };
        show(n, what, &runs);
        if what == "unexpected" {
            return Err(format!("power-on {n}: app {} with report event {event}", app.id));
        }
        rolled_back = app.id == "NEW";
        reset = Reset::Soft;
        n += 1;
    }
    if !rolled_back {
        return Err("no rollback to NEW".into());
    }
    let last = d.boot_until_app(Reset::PowerOn, 2);
    check_outcome(&d.flash, last.last().and_then(|r| r.app.as_ref()), &outcome("NEW", &new, "NEW"), &old[..4096])?;
    board.check_boot_area(&d.flash)?;

    println!("\nSummary");
    println!("  power-on 1: OLD booted after {} instructions", sequence_instructions(&r1).unwrap_or(0));
    println!("  power-on 2: update started, power lost after {} of {total} flash operations", cut.at);
    println!(
        "  power-on 3: update resumed and finished; NEW booted after {} instructions; flash holds NEW byte for byte",
        sequence_instructions(&r3).unwrap_or(0)
    );
    println!(
        "  power-ons 4-{}: trial update through the extension image; BAD ran in trial, never confirmed, NEW restored byte for byte",
        n - 1
    );
    println!("\nA whole Arduino image (bootloader + sketch) built with otatool:");
    println!("  otatool image -e {} -a sketch.elf -o sketch.bin && esptool.py --chip esp8266 write_flash 0x0 sketch.bin", bin.display());
    println!("\nflash it: esptool.py --chip esp8266 write_flash 0x0 {}", bin.display());
    Ok(())
}
