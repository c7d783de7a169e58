//! One QEMU process per power-on. The bench ROM parks the CPU and prints `#BENCH END ...`
//! when the run is over (power cut, soft reset, exception); the harness then dumps the
//! simulated flash and RTC memory over QMP (`pmemsave`) and quits QEMU.
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::app::AppOutput;

/// Must match rom/bench.h.
pub const FLASH_BASE: u32 = 0x5100_0000;
pub const CFG_BASE: u32 = 0x5300_0000;
pub const CFG_MAGIC: u32 = 0x4843_4E42;
/// RTC memory kept across soft resets: system (0x60001100) and user (0x60001200) blocks.
pub const RTC_BASE: u32 = 0x6000_1100;
pub const RTC_LEN: usize = 0x300;
/// Offset of the user block (eboot command, boot report) inside the RTC dump.
pub const RTC_USER_OFF: usize = 0x100;

/// QEMU's xtensa CCOUNT is virtual time × the core clock (lx106: 40 MHz), and `-icount
/// shift=N` makes one instruction last 2^N ns: at shift=0 CCOUNT advances 0.04 per
/// instruction. shift=5 gives 1.28 ticks per instruction, so tick differences convert
/// back to instruction counts within ±1 (and CCOUNT wraps only after 3.3e9 instructions).
pub const ICOUNT_SHIFT: u32 = 5;

/// Instructions executed while CCOUNT advanced by `ticks`.
pub fn instructions(ticks: u32) -> u64 {
    // ticks = insns × 2^shift × 40 MHz / 1 GHz = insns × 2^shift / 25
    (ticks as u64 * 25 + (1 << (ICOUNT_SHIFT - 1))) >> ICOUNT_SHIFT
}

/// Reset causes, as `rtc_get_reset_reason()` / RTC_STATE1 report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// Power-on: RTC memory holds garbage.
    PowerOn,
    /// Software (or external-pin) reset: RTC memory kept.
    Soft,
}

impl Reset {
    fn code(self) -> u32 {
        match self {
            Reset::PowerOn => 1,
            Reset::Soft => 2,
        }
    }
}

/// A power cut at flash operation `at` (0-based, erases and programs counted together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub at: u32,
    /// x/65536 of the op's bytes that take effect (a prefix): 0 = cut just before it,
    /// 65536 = just after it.
    pub keep: u32,
    /// Erases only: x/65536 of the rest of the sector turned arbitrary after the prefix.
    pub garbage: u32,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The guest asked for a software reset (store to 0x60000700). RTC memory survives.
    SoftReset,
    /// The configured power cut fired.
    PowerCut,
    /// The bench ROM refused to boot the image at flash 0 (a bricked device).
    RomRefused,
    /// A CPU exception (cause).
    Exception(u32),
    /// Explicit park through the bench ROM's park entry (not in the real ROM; test apps).
    Park(u32),
    /// No end within the time limit (hang): QEMU killed.
    Timeout,
    /// QEMU exited on its own (e.g. the board reset register): state lost.
    QemuExit(String),
}

/// What the bench ROM counted during a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Erase + program operations.
    pub ops: u32,
    pub erases: u32,
    pub programmed: u32,
    pub reads: u32,
    pub read_bytes: u32,
    /// ROM calls that returned an error.
    pub errors: u32,
    /// Calls that broke the strict ROM rules (misaligned, programming a 0 bit to 1).
    pub violations: u32,
    /// CCOUNT when the ROM started, when it jumped to the image at 0, and at the end.
    pub boot_cc: u32,
    pub jump_cc: u32,
    pub end_cc: u32,
}

/// One power-on.
#[derive(Clone, Debug)]
pub struct Run {
    pub reset: Reset,
    pub cut: Option<Cut>,
    /// Everything the UART printed.
    pub console: String,
    pub end: End,
    pub counters: Counters,
    /// What a test app printed, if one ran.
    pub app: Option<AppOutput>,
}

impl Run {
    /// Instructions from the bootloader's first instruction to the app's first one (±1).
    pub fn boot_instructions(&self) -> Option<u64> {
        let app = self.app.as_ref()?;
        Some(instructions(app.entry_cc.wrapping_sub(self.counters.jump_cc)))
    }
    /// Instructions from reset (the ROM's first instruction) to the app's first one (±1).
    pub fn reset_to_app_instructions(&self) -> Option<u64> {
        let app = self.app.as_ref()?;
        Some(instructions(app.entry_cc.wrapping_sub(self.counters.boot_cc)))
    }
    /// Instructions of the whole run, from reset to the end (±1).
    pub fn run_instructions(&self) -> u64 {
        instructions(self.counters.end_cc.wrapping_sub(self.counters.boot_cc))
    }
    /// The console without the ROM's own lines (what a user would see from our code).
    pub fn guest_output(&self) -> String {
        self.console.lines().filter(|l| !l.starts_with("#BENCH")).collect::<Vec<_>>().join("\n")
    }
}

/// A simulated board: flash and RTC memory, carried from power-on to power-on.
pub struct Device {
    pub rom: PathBuf,
    pub flash: Vec<u8>,
    /// 0x60001100..0x60001400.
    pub rtc: Vec<u8>,
    pub timeout: Duration,
    pub trace: bool,
    rng: u64,
}

static RUN_ID: AtomicU32 = AtomicU32::new(0);

impl Device {
    /// A board with this flash content (its size is the chip size) and garbage RTC memory.
    pub fn new(rom: &Path, flash: Vec<u8>, seed: u64) -> Device {
        assert!(flash.len() <= 16 << 20 && flash.len().is_multiple_of(4096));
        let secs = std::env::var("BENCH_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
        let mut d = Device {
            rom: rom.to_path_buf(),
            flash,
            rtc: vec![0; RTC_LEN],
            timeout: Duration::from_secs(secs),
            trace: false,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        };
        d.garbage_rtc();
        d
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// RTC memory after a power cut: garbage, not zeros (design.md, fault model).
    fn garbage_rtc(&mut self) {
        for i in 0..RTC_LEN {
            self.rtc[i] = self.next() as u8;
        }
    }

    /// Word `i` of the user RTC block (0x60001200 + 4i).
    pub fn rtc_word(&self, i: usize) -> u32 {
        let o = RTC_USER_OFF + 4 * i;
        u32::from_le_bytes(self.rtc[o..o + 4].try_into().expect("4 bytes"))
    }

    /// Writes the eboot command block, as `eboot_command_write` does before the reset.
    pub fn write_command(&mut self, words: &[u32; 32]) {
        for (i, w) in words.iter().enumerate() {
            let o = RTC_USER_OFF + 4 * i;
            self.rtc[o..o + 4].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Power-on (RTC garbage), optionally with a power cut.
    pub fn power_on(&mut self, cut: Option<Cut>) -> Run {
        self.garbage_rtc();
        self.run(Reset::PowerOn, cut)
    }

    /// Soft reset (RTC kept), optionally with a power cut.
    pub fn soft_reset(&mut self, cut: Option<Cut>) -> Run {
        self.run(Reset::Soft, cut)
    }

    /// Boots until an app has run (it ends in a soft reset after printing `APP done`), at
    /// most `max` runs. The first run uses `first`; later ones follow how the previous run
    /// ended: a soft reset keeps RTC memory, anything else is a power-on.
    pub fn boot_until_app(&mut self, first: Reset, max: usize) -> Vec<Run> {
        let mut runs = Vec::new();
        let mut reset = first;
        for _ in 0..max {
            let r = match reset {
                Reset::PowerOn => self.power_on(None),
                Reset::Soft => self.soft_reset(None),
            };
            let done = r.app.as_ref().is_some_and(|a| a.done);
            reset = if r.end == End::SoftReset { Reset::Soft } else { Reset::PowerOn };
            let stop = done || !matches!(r.end, End::SoftReset);
            runs.push(r);
            if stop {
                break;
            }
        }
        runs
    }

    /// One QEMU process: flash and RTC in, run, flash and RTC out.
    pub fn run(&mut self, reset: Reset, cut: Option<Cut>) -> Run {
        let dir = std::env::temp_dir().join(format!(
            "ebench-{}-{}",
            std::process::id(),
            RUN_ID.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let r = self.run_in(&dir, reset, cut);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    fn run_in(&mut self, dir: &Path, reset: Reset, cut: Option<Cut>) -> Run {
        let (flash_in, rtc_in, cfg_in) = (dir.join("flash.bin"), dir.join("rtc.bin"), dir.join("cfg.bin"));
        let (flash_out, rtc_out, sock) = (dir.join("flash.out"), dir.join("rtc.out"), dir.join("qmp.sock"));
        let seed = self.next() as u32;
        let c = cut.unwrap_or(Cut { at: u32::MAX, keep: 0, garbage: 0 });
        let cfg = [
            CFG_MAGIC,
            self.flash.len() as u32,
            reset.code(),
            c.at,
            c.keep,
            c.garbage,
            seed,
            self.trace as u32,
        ];
        let cfg: Vec<u8> = cfg.iter().flat_map(|w| w.to_le_bytes()).collect();
        std::fs::write(&flash_in, &self.flash).expect("write flash");
        std::fs::write(&rtc_in, &self.rtc).expect("write rtc");
        std::fs::write(&cfg_in, &cfg).expect("write cfg");

        let loader = |f: &Path, a: u32| format!("loader,file={},addr={a:#x},force-raw=on", f.display());
        let mut child = Command::new("qemu-system-xtensa")
            .args(["-M", "lx60-nommu", "-cpu", "lx106", "-display", "none", "-monitor", "none"])
            .args(["-serial", "stdio", "-no-reboot", "-icount"])
            .arg(format!("shift={ICOUNT_SHIFT}"))
            .arg("-kernel")
            .arg(&self.rom)
            .args(["-device", &loader(&flash_in, FLASH_BASE)])
            .args(["-device", &loader(&rtc_in, RTC_BASE)])
            .args(["-device", &loader(&cfg_in, CFG_BASE)])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-xtensa (install it: `cargo xtask setup`)");

        // Console reader: bytes to the main thread until EOF.
        let mut out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });

        let deadline = Instant::now() + self.timeout;
        let mut console = Vec::new();
        let mut end_line: Option<String> = None;
        let mut eof = false;
        while end_line.is_none() && !eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(chunk) => {
                    console.extend_from_slice(&chunk);
                    end_line = find_end(&console);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => eof = true,
            }
        }

        let (end, counters) = if let Some(line) = &end_line {
            match qmp_dump(&sock, &[(FLASH_BASE, self.flash.len(), &flash_out), (RTC_BASE, RTC_LEN, &rtc_out)]) {
                Ok(()) => {
                    self.flash = std::fs::read(&flash_out).expect("flash dump");
                    let rtc = std::fs::read(&rtc_out).expect("rtc dump");
                    self.rtc.copy_from_slice(&rtc);
                    parse_end(line)
                }
                Err(e) => (End::QemuExit(format!("QMP failed after the run ended: {e}")), Counters::default()),
            }
        } else if eof {
            let st = child.wait().map(|s| s.to_string()).unwrap_or_default();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            (End::QemuExit(format!("{st} {err}")), Counters::default())
        } else {
            (End::Timeout, Counters::default())
        };
        stop(&mut child);
        let _ = reader.join();
        while let Ok(chunk) = rx.try_recv() {
            console.extend_from_slice(&chunk);
        }
        let console = String::from_utf8_lossy(&console).replace('\r', "");
        let app = AppOutput::parse(&console);
        Run { reset, cut, console, end, counters, app }
    }
}

/// Kills QEMU if it has not exited within a moment (after `quit`).
fn stop(child: &mut Child) {
    let t = Instant::now() + Duration::from_secs(5);
    while Instant::now() < t {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn find_end(console: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(console);
    let i = s.find("#BENCH END ")?;
    let rest = &s[i..];
    let n = rest.find('\n')?;
    Some(rest[..n].trim_end().to_string())
}

fn parse_end(line: &str) -> (End, Counters) {
    let kv = |k: &str| -> u32 {
        line.split_whitespace()
            .find_map(|t| t.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok().or_else(|| u32::from_str_radix(v, 16).ok()))
            .unwrap_or(0)
    };
    let reason = line.split_whitespace().find_map(|t| t.strip_prefix("reason=")).unwrap_or("");
    let info = line
        .split_whitespace()
        .find_map(|t| t.strip_prefix("info="))
        .and_then(|v| u32::from_str_radix(v, 16).ok())
        .unwrap_or(0);
    let end = match reason {
        "soft_reset" => End::SoftReset,
        "power_cut" => End::PowerCut,
        "rom_refused" => End::RomRefused,
        "exception" => End::Exception(info),
        "park" => End::Park(info),
        other => End::QemuExit(format!("unknown end {other:?}")),
    };
    let c = Counters {
        ops: kv("ops"),
        erases: kv("erases"),
        programmed: kv("programmed"),
        reads: kv("reads"),
        read_bytes: kv("read_bytes"),
        errors: kv("errors"),
        violations: kv("violations"),
        boot_cc: kv("boot_cc"),
        jump_cc: kv("jump_cc"),
        end_cc: kv("end_cc"),
    };
    (end, c)
}

/// QMP: `pmemsave` each (address, length, file), then `quit`.
fn qmp_dump(sock: &Path, dumps: &[(u32, usize, &PathBuf)]) -> Result<(), String> {
    let s = UnixStream::connect(sock).map_err(|e| format!("connect {}: {e}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| format!("QMP greeting: {e}"))?;
    let mut cmd = |c: String| -> Result<(), String> {
        w.write_all(c.as_bytes()).and_then(|_| w.write_all(b"\n")).map_err(|e| e.to_string())?;
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| format!("QMP {c}: {e}"))? == 0 {
                return Err(format!("QMP closed during {c}"));
            }
            if line.contains("\"return\"") {
                return Ok(());
            }
            if line.contains("\"error\"") {
                return Err(format!("QMP {c}: {line}"));
            }
            // Asynchronous events: skip.
        }
    };
    cmd(r#"{"execute":"qmp_capabilities"}"#.into())?;
    for (addr, len, file) in dumps {
        cmd(format!(
            r#"{{"execute":"pmemsave","arguments":{{"val":{addr},"size":{len},"filename":"{}"}}}}"#,
            file.display()
        ))?;
    }
    let _ = cmd(r#"{"execute":"quit"}"#.into());
    Ok(())
}

/// One run of a QEMU test harness (tests/bench/inflate, tests/bench/leaf): each of `inputs`
/// loaded raw at its address, under coreutils `timeout` so that a routine that loops
/// forever fails the test instead of hanging it. Returns the hex fields of every `R ` line,
/// once the harness printed its `D` (done) line.
pub fn run_harness(elf: &Path, inputs: &[(u32, &[u8])], timeout_secs: u32) -> Result<Vec<Vec<u32>>, String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = elf.with_extension(format!("d{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new("timeout");
    cmd.arg(timeout_secs.to_string())
        .args(["qemu-system-xtensa", "-M", "lx60-nommu", "-cpu", "lx106", "-display", "none", "-monitor", "none"])
        .args(["-serial", "stdio", "-no-reboot", "-kernel"])
        .arg(elf);
    for (k, (addr, data)) in inputs.iter().enumerate() {
        let f = dir.join(format!("{k}.bin"));
        std::fs::write(&f, data).map_err(|e| format!("{}: {e}", f.display()))?;
        cmd.arg("-device").arg(format!("loader,file={},addr={addr:#x},force-raw=on", f.display()));
    }
    let out = cmd.output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| format!("timeout, qemu-system-xtensa: {e} (cargo xtask setup)"))?;
    let console = String::from_utf8_lossy(&out.stdout);
    if !console.lines().any(|l| l == "D") {
        let tail: String = console.chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(format!("harness did not finish: ...{tail}"));
    }
    console
        .lines()
        .filter_map(|l| l.strip_prefix("R "))
        .map(|l| l.split(' ').map(|h| u32::from_str_radix(h, 16).map_err(|e| format!("result line {l:?}: {e}"))).collect())
        .collect()
}
