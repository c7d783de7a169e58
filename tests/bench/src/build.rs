//! Builds the bench fixtures: the bench ROM, miniboot (a stand-in loader) and test apps,
//! all C + assembly compiled with xtensa-lx106-elf-gcc, under `target/esp8266/bench/`.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

pub use tools::image::{FlashFreq, FlashMode, FlashParams, FlashSize};

/// Flash parameters of every bench image: the bench flash is 1 MiB (layout 1M64).
pub fn flash_params() -> FlashParams {
    FlashParams { mode: FlashMode::Dio, freq: FlashFreq::F40m, size: FlashSize::S1M }
}

/// The workspace root (this crate lives at tests/bench).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The real bootloader the bench runs, placed on its board (see `board::find_bootloader`).
pub fn real_bootloader() -> Result<crate::board::Board, String> {
    crate::board::find_bootloader(&workspace_root())
}

/// The real extension image (target/esp8266/extension.bin from `cargo xtask build`): what
/// tier 1 chain-loads for trial updates.
pub fn real_extension() -> Result<Vec<u8>, String> {
    let p = workspace_root().join("target/esp8266/extension.bin");
    std::fs::read(&p).map_err(|e| format!("{}: {e} (build it with `cargo xtask build`)", p.display()))
}

/// A test app variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    /// What the app prints as its id (letters and digits only).
    pub id: String,
    pub ver: u32,
    /// Confirms its trial boot.
    pub confirm: bool,
    /// Bytes of code-like filler in .irom0.text (0: none).
    pub filler: u32,
}

impl AppSpec {
    pub fn new(id: &str, ver: u32, filler: u32) -> AppSpec {
        AppSpec { id: id.into(), ver, confirm: false, filler }
    }
    pub fn confirming(mut self) -> AppSpec {
        self.confirm = true;
        self
    }
    fn stem(&self) -> String {
        format!("app-{}-v{}-{}-f{}", self.id, self.ver, if self.confirm { "c" } else { "n" }, self.filler)
    }
}

/// Paths of the built fixtures.
#[derive(Clone, Debug)]
pub struct Fixtures {
    pub dir: PathBuf,
    pub rom: PathBuf,
    pub miniboot_elf: PathBuf,
    src: PathBuf,
}

const CFLAGS: &[&str] = &[
    "-Os",
    "-ffreestanding",
    "-fno-builtin",
    "-nostdlib",
    "-mlongcalls",
    "-mtext-section-literals",
    // Keeps gcc from turning the ROM's memcpy/memset loops into calls to themselves.
    "-fno-tree-loop-distribute-patterns",
    "-Wall",
    "-Werror",
];

/// Builds (when sources changed) the ROM and miniboot; apps are built on demand by
/// [`Fixtures::app_elf`]. Safe to call from several threads and processes.
pub fn build_fixtures() -> Result<Fixtures, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let dir = workspace_root().join("target/esp8266/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fx = Fixtures { rom: dir.join("rom.elf"), miniboot_elf: dir.join("miniboot.elf"), dir, src };
    let rom = fx.src.join("rom");
    fx.gcc(
        &fx.rom,
        &[rom.join("start.S"), rom.join("rom.c"), rom.join("bench.h"), rom.join("rom.ld")],
        &[],
    )?;
    let apps = fx.src.join("apps");
    fx.gcc(
        &fx.miniboot_elf,
        &[apps.join("miniboot_start.S"), apps.join("miniboot.c"), apps.join("miniboot.ld")],
        &[],
    )?;
    Ok(fx)
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Fixtures {
    /// Compiles `inputs` (.S/.c; .h are dependencies; .ld is the linker script) into `out`
    /// unless `out` is newer than all of them. Builds to a unique name, then renames, so
    /// concurrent builders never see half-written files.
    fn gcc(&self, out: &Path, inputs: &[PathBuf], extra: &[String]) -> Result<(), String> {
        let deps: Vec<&PathBuf> = inputs.iter().collect();
        if let Some(t) = mtime(out) {
            if deps.iter().all(|d| mtime(d).is_some_and(|m| m <= t)) {
                return Ok(());
            }
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let tmp = out.with_extension(format!("tmp{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let mut cmd = Command::new("xtensa-lx106-elf-gcc");
        cmd.args(CFLAGS).arg(format!("-I{}", self.src.join("rom").display())).args(extra);
        for i in inputs {
            match i.extension().and_then(|e| e.to_str()) {
                Some("ld") => {
                    cmd.arg("-T").arg(i);
                }
                Some("h") => {}
                _ => {
                    cmd.arg(i);
                }
            }
        }
        cmd.arg("-o").arg(&tmp);
        let o = cmd.output().map_err(|e| {
            format!("xtensa-lx106-elf-gcc: {e} (install the toolchain: `cargo xtask setup`)")
        })?;
        if !o.status.success() {
            return Err(format!("building {}: {}", out.display(), String::from_utf8_lossy(&o.stderr)));
        }
        std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))
    }

    /// The ELF of an app variant (built on first use).
    pub fn app_elf(&self, spec: &AppSpec) -> Result<Vec<u8>, String> {
        assert!(spec.id.chars().all(|c| c.is_ascii_alphanumeric()), "app id {:?}", spec.id);
        let out = self.dir.join(format!("{}.elf", spec.stem()));
        let apps = self.src.join("apps");
        let mut inputs = vec![
            apps.join("app_start.S"),
            apps.join("app.c"),
            apps.join("app.ld"),
            self.src.join("rom/bench.h"),
        ];
        let mut extra = vec![format!("-DAPP_ID=\"{}\"", spec.id), format!("-DAPP_VER={}", spec.ver)];
        if spec.confirm {
            inputs.push(apps.join("confirm.c"));
            extra.push("-DCONFIRM=1".into());
        }
        if spec.filler > 0 {
            let f = self.dir.join(format!("{}.filler", spec.stem()));
            if !f.exists() {
                let seed = spec.ver as u64 * 0x9E37_79B9 + spec.id.bytes().map(u64::from).sum::<u64>();
                write_atomic(&f, &code_like_filler(spec.filler as usize, seed))?;
            }
            extra.push(format!("-DFILLER_FILE=\"{}\"", f.display()));
        }
        self.gcc(&out, &inputs, &extra)?;
        std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))
    }

    /// An Arduino flash image (bootloader slot + app at 0x1000 + whole-image CRC), made by
    /// the tools library exactly as `otatool image` / elf2bin make it.
    pub fn image(&self, bootloader: &[u8], app: &AppSpec) -> Result<Vec<u8>, String> {
        let elf = self.app_elf(app)?;
        tools::image::arduino_image(bootloader, &elf, &flash_params()).map_err(|e| e.to_string())
    }

    /// The flash-model exercise app (apps/flashtest.c), as an ELF.
    pub fn flashtest_elf(&self) -> Result<Vec<u8>, String> {
        let out = self.dir.join("flashtest.elf");
        let apps = self.src.join("apps");
        let inputs = [apps.join("app_start.S"), apps.join("flashtest.c"), apps.join("app.ld"), self.src.join("rom/bench.h")];
        self.gcc(&out, &inputs, &[])?;
        std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))
    }

    /// The assembly inflater's QEMU harness (inflate/: start.S, harness.c, link.ld) linked
    /// with the device's `bootloader/src/device/inflate.S`, as an ELF path.
    pub fn inflate_harness(&self) -> Result<PathBuf, String> {
        let out = self.dir.join("inflate-harness.elf");
        let dir = self.src.join("inflate");
        let asm = workspace_root().join("bootloader/src/device/inflate.S");
        self.gcc(&out, &[dir.join("start.S"), dir.join("harness.c"), asm, dir.join("link.ld")], &[])?;
        Ok(out)
    }

    /// The leaf routines' QEMU harness (leaf/: harness.c, check.S, with inflate/'s start-up
    /// and link script) linked with the device's `leaf.S` and `inflate.S` (its CRC-32), as
    /// an ELF path.
    pub fn leaf_harness(&self) -> Result<PathBuf, String> {
        let out = self.dir.join("leaf-harness.elf");
        let (inflate, leaf) = (self.src.join("inflate"), self.src.join("leaf"));
        let dev = workspace_root().join("bootloader/src/device");
        let inputs = [inflate.join("start.S"), leaf.join("harness.c"), leaf.join("check.S"), dev.join("leaf.S"), dev.join("inflate.S"), inflate.join("link.ld")];
        self.gcc(&out, &inputs, &[])?;
        Ok(out)
    }

    /// miniboot's ELF bytes (a bootloader that only boots the app at 0x1000).
    pub fn miniboot(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.miniboot_elf).map_err(|e| format!("{}: {e}", self.miniboot_elf.display()))
    }
}

fn write_atomic(p: &Path, data: &[u8]) -> Result<(), String> {
    // Unique per call: tests build the same fixture from several threads at once.
    static N: AtomicU32 = AtomicU32::new(0);
    let tmp = p.with_extension(format!("tmp{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&tmp, data).and_then(|_| std::fs::rename(&tmp, p)).map_err(|e| format!("{}: {e}", p.display()))
}

/// Bytes shaped like lx106 code (2- and 3-byte instructions, few registers, small
/// immediates), so the filler compresses about as well as real firmware does instead of
/// being incompressible noise or trivially compressible zeros.
pub fn code_like_filler(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    const REGS: [u8; 8] = [2, 3, 4, 5, 2, 3, 12, 13];
    let mut out = Vec::with_capacity(len + 3);
    while out.len() < len {
        let r = rnd();
        let t = REGS[(r & 7) as usize];
        let s_ = REGS[((r >> 3) & 7) as usize];
        let imm = ((r >> 6) & 0xF) as u8;
        match (r >> 10) % 8 {
            0 | 1 => out.extend_from_slice(&[(t << 4) | 0x8, (imm << 4) | s_]), // l32i.n
            2 => out.extend_from_slice(&[(t << 4) | 0x9, (imm << 4) | s_]),     // s32i.n
            3 => out.extend_from_slice(&[0x0D, (t << 4) | s_]),                 // mov.n
            4 => out.extend_from_slice(&[(t << 4) | 0x2, 0xC0 | s_, imm * 4]), // addi
            5 => out.extend_from_slice(&[(t << 4) | 0x1, (r >> 16) as u8, 0xFF]), // l32r
            6 => out.extend_from_slice(&[0x05, (r >> 16) as u8, ((r >> 24) as u8) & 0x3]), // call0
            _ => out.extend_from_slice(&[(t << 4) | 0x2, 0x20 | s_, imm]),     // l32i
        }
    }
    out.truncate(len);
    out
}
