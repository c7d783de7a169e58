//! `cargo xtask <command>`: build orchestration for eboot-rs.
use std::process::ExitCode;

mod bench;
mod demo;
mod device;
mod sweep;
mod util;

const USAGE: &str = "usage: cargo xtask <setup|build|size|test|sweep|bench|demo>

  setup   install the Debian packages the device build and the bench need
  build   build the bootloader for the ESP8266 (target/esp8266/bootloader.bin)
  size    print the bootloader image size (limit 4096) with a breakdown
  test    run every test (host tests, sweeps, bench end-to-end)
  sweep   power-cut sweep on the host simulator (release build)
  bench   instruction counts and flash figures on the QEMU bench
  demo    the main job: build, stage a gzip update, cut power, recover, boot";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let r = match cmd {
        "setup" => device::setup(),
        "build" => device::build().map(|_| ()),
        "size" => device::size(),
        "sweep" => sweep::sweep(&rest),
        "bench" => bench::bench(&rest),
        "demo" => demo::demo(&rest),
        "test" => test(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every test: installs what is missing, builds the device image and the bench fixtures,
/// runs every workspace test (host unit/integration tests, the simulator's reduced sweeps,
/// otatool against its peers, the QEMU bench end to end), then the power-cut sweep with
/// fewer random runs than `cargo xtask sweep`.
fn test() -> Result<(), String> {
    device::setup()?;
    bench::prepare()?;
    util::cargo(&["test", "--workspace", "--release"])?;
    sweep::sweep(&["--quick"])?;
    Ok(())
}
