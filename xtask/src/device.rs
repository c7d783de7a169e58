//! `setup`, `build`, `size`: the device toolchain and the bootloader image.
//!
//! The recipe is design.md's "Toolchain for the device build": Debian's rustc 1.96
//! (LLVM with the Xtensa `esp8266` CPU) builds `core` from source for
//! `linker/esp8266.json` and emits assembly; GNU as for the lx106 assembles it (LLVM's
//! own assembler misplaces Xtensa literal pools), GNU ld links it with our scripts, and
//! the `tools` library turns the ELF into the flash image. Between compiler and
//! assembler, in this order: `rom` gives ROM functions called from many places one shared
//! stub each, `calls` turns calls to our own functions (stubs included) into direct
//! `call0`s, `peephole` shortens stack adjustments and masks, `tails` makes calls that end a
//! function jumps, `saves` moves register saves
//! and restores into two shared routines, `frame` reaches large stack
//! slots with `addmi`, `consts` builds constants loaded once without a literal,
//! `align` drops the entry alignment of functions no `call0` reaches, `branches`
//! turns a branch over a `j` into the opposite branch, and `selects` compares with zero
//! directly, masks with `extui`, and turns a branch over a move into a conditional move.
mod align;
mod branches;
mod calls;
mod consts;
mod frame;
mod peephole;
mod rom;
mod saves;
mod selects;
mod tails;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{root, run};

/// Tier 1's size budget: below the sector and elf2bin's limit, room for later fixes (the
/// bench e2e tests fail above it).
pub const BUDGET: usize = 4000;
/// The bootloader must fit in flash sector 0: every Arduino app starts at 0x1000.
pub const LIMIT: usize = 4096;
/// elf2bin.py refuses a bootloader image that leaves fewer than 8 bytes in the sector.
const ELF2BIN_LIMIT: usize = (LIMIT - 8) / 16 * 16;

/// Debian packages the device build and the bench need, with a file each that shows it
/// is installed (cheaper and clearer than asking dpkg, and also true for a hand install).
const PACKAGES: &[(&str, &str)] = &[
    ("rustc-web", "/usr/bin/rustc"),
    ("cargo-web", "/usr/bin/cargo"),
    ("rust-web-src", "/usr/lib/rustlib/src/rust/library/core/Cargo.toml"),
    ("binutils-xtensa-lx106", "/usr/bin/xtensa-lx106-elf-as"),
    ("gcc-xtensa-lx106", "/usr/bin/xtensa-lx106-elf-gcc"),
    ("qemu-system-misc", "/usr/bin/qemu-system-xtensa"),
    ("gzip", "/bin/gzip"),
    ("openssl", "/usr/bin/openssl"),
    // Only for esptool below; any working `python3 -m pip` will do.
    ("python3-pip", ""),
];

const DEVICE_RUSTC: &str = "/usr/bin/rustc";
const DEVICE_CARGO: &str = "/usr/bin/cargo";
const AS: &str = "xtensa-lx106-elf-as";
const LD: &str = "xtensa-lx106-elf-ld";
const NM: &str = "xtensa-lx106-elf-nm";

fn installed(pkg: &str, file: &str) -> bool {
    if !file.is_empty() {
        return Path::new(file).exists();
    }
    match pkg {
        "python3-pip" => succeeds(Command::new("python3").args(["-m", "pip", "--version"])),
        _ => Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", pkg])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
            .unwrap_or(false),
    }
}

/// Runs a probe quietly; true when it exits 0.
fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

fn missing_packages() -> Vec<&'static str> {
    PACKAGES.iter().filter(|(p, f)| !installed(p, f)).map(|(p, _)| *p).collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `apt-get ARGS` as root (through sudo when we are not root).
fn apt_get(args: &[&str]) -> Result<(), String> {
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    // Never stop to ask (CI has no standard input).
    cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
    run(&mut cmd)
}

/// The esptool release otatool's tests were checked against (a peer, so pinned).
const ESPTOOL: &str = "esptool==5.6.0";

fn esptool_works() -> bool {
    succeeds(Command::new("python3").args(["-m", "esptool", "version"]))
}

/// Installs whatever is missing; says what it installs, and nothing when all is there.
pub fn setup() -> Result<(), String> {
    let missing = missing_packages();
    if !missing.is_empty() {
        println!("setup: installing Debian packages: {}", missing.join(" "));
        apt_get(&["update"])?;
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend(&missing);
        apt_get(&args)?;
        let still = missing_packages();
        if !still.is_empty() {
            return Err(format!("setup: still missing after apt-get install: {}", still.join(" ")));
        }
    }
    if !esptool_works() {
        // The tools tests use esptool as a peer implementation of the image format.
        println!("setup: installing esptool (pip)");
        let pip = |extra: &[&str]| {
            let mut c = Command::new("python3");
            c.args(["-m", "pip", "install", "--quiet"]).args(extra).arg(ESPTOOL);
            run(&mut c)
        };
        // Debian's own python3 refuses pip installs outside a venv (PEP 668) unless told.
        pip(&[]).or_else(|_| pip(&["--break-system-packages"]))?;
        if !esptool_works() {
            return Err("setup: `python3 -m esptool version` still fails after pip install".into());
        }
    }
    if missing.is_empty() {
        println!("setup: everything needed is installed");
    }
    Ok(())
}

/// Runs `setup` when a tool the device build needs is missing.
fn ensure_toolchain() -> Result<(), String> {
    if missing_packages().is_empty() {
        Ok(())
    } else {
        setup()
    }
}

/// Where the device build puts everything (its own cargo target dir inside).
pub fn out_dir() -> PathBuf {
    root().join("target").join("esp8266")
}

/// The two builds of the bootloader crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Tier 1: the sector-0 image (at most `LIMIT` bytes).
    Tier1,
    /// The extension image (feature `ext`): every feature, linked at 0x4010C000, staged by
    /// the updater and chain-loaded by tier 1.
    Extension,
}

impl Variant {
    /// File stem of everything this build writes in `out_dir()`.
    pub fn stem(self) -> &'static str {
        match self {
            Variant::Tier1 => "bootloader",
            Variant::Extension => "extension",
        }
    }
    fn features(self) -> &'static str {
        match self {
            Variant::Tier1 => "device",
            Variant::Extension => "device,ext",
        }
    }
    fn script(self) -> PathBuf {
        root().join("linker").join(format!("{}.ld", self.stem()))
    }
}

pub fn bin_path() -> PathBuf {
    out_dir().join("bootloader.bin")
}

/// The extension image `cargo xtask build` writes.
pub fn ext_bin_path() -> PathBuf {
    out_dir().join("extension.bin")
}

/// The copy of the extension image the `updater` crate embeds (and stages).
pub fn embedded_ext_path() -> PathBuf {
    root().join("updater/extension.bin")
}

/// Profile settings for the device only, given on the command line so the workspace's
/// host `release` profile stays as it is. opt-level "z": with LLVM_ARGS and direct calls
/// it gives the smaller image (7744 vs 7952 bytes on the same core; without them "s" was
/// smaller, 8672 vs 8688), so re-measure both when the pipeline changes.
const PROFILE: &[&str] = &[
    "profile.release.opt-level=\"z\"",
    "profile.release.lto=\"fat\"",
    "profile.release.codegen-units=1",
    "profile.release.panic=\"abort\"",
    "profile.release.debug=false",
    "profile.release.incremental=false",
    "profile.release.overflow-checks=false",
    "profile.release.debug-assertions=false",
];

/// LLVM code generation options for the device, all measured on the image (design.md has
/// the figures). Both stop LLVM keeping addresses loaded from the literal pool in registers
/// across a function (hoisted out of loops, shared between calls), which costs spills and
/// hides the calls from `calls::direct_calls`; correctness does not depend on them.
const LLVM_ARGS: &[&str] = &["-disable-machine-licm", "-disable-machine-cse"];

/// GNU as options. `--no-target-align`: do not widen instructions to align branch targets
/// (a fetch-speed trade, the bytes matter more here; LOOP alignment, which is mandatory,
/// is kept anyway). `--no-longcalls`: a `call0` that cannot reach is a link error, never
/// silently a longer sequence.
const AS_FLAGS: &[&str] = &["--no-target-align", "--no-longcalls"];

/// Environment of the host cargo that would leak into the device build and break it.
const HOST_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTUP_TOOLCHAIN",
    "CARGO",
    "RUSTC",
    "RUSTDOC",
];

/// Compiles the crate to one assembly file (fat LTO: the whole program, `core` included).
fn compile_asm(asm: &Path, variant: Variant) -> Result<(), String> {
    let root = root();
    let cargo_dir = out_dir().join("cargo");
    let mut cmd = Command::new(DEVICE_CARGO);
    for v in HOST_ENV {
        cmd.env_remove(v);
    }
    cmd.env("RUSTC", DEVICE_RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &cargo_dir)
        .args(["rustc", "--release", "--quiet", "-p", "bootloader", "--bin", "bootloader"])
        .args(["--features", variant.features(), "-Zbuild-std=core", "-Zjson-target-spec"])
        .arg("--target")
        .arg(root.join("linker/esp8266.json"));
    for p in PROFILE {
        cmd.args(["--config", p]);
    }
    // -Zno-link: the object LLVM writes is the broken one; only the assembly is used.
    cmd.arg("--").arg(format!("--emit=asm={}", asm.display())).arg("-Zno-link");
    for a in LLVM_ARGS {
        cmd.arg(format!("-Cllvm-args={a}"));
    }
    run(&mut cmd)?;
    if !asm.exists() {
        // Cargo found nothing to rebuild, but the assembly was deleted: forget the
        // bootloader's fingerprints and compile again.
        let fp = cargo_dir.join("esp8266/release/.fingerprint");
        if let Ok(dir) = std::fs::read_dir(&fp) {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with("bootloader-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        run(&mut cmd)?;
    }
    if !asm.exists() {
        return Err(format!("the device build wrote no {}", asm.display()));
    }
    Ok(())
}

/// What a device build produced.
pub struct Built {
    /// The linked ELF: bootloader.elf, or oversize.elf when the code overflowed its
    /// 4 KiB IRAM window (linked with a larger window only to measure it).
    pub elf: PathBuf,
    /// The flash image made from `elf`.
    pub image: Vec<u8>,
    /// Calls made direct (`call0`), and calls left through a register.
    pub direct_calls: usize,
    pub other_calls: usize,
    /// `peephole` rewrites: stack adjustments, masks made `extui`, masks dropped, saves
    /// dropped; functions ending in `tails`' jumps, functions using `saves`' shared routines; then `frame`'s stack slots reached with `addmi` and `consts`' literals
    /// built by two instructions, `align`'s function entries left unaligned, `branches`'
    /// jumps gone, and `selects`' compares with zero, masks and conditional moves.
    pub peephole: [usize; 13],
    /// ROM functions called through one shared stub (`rom`).
    pub stubbed: Vec<String>,
}

impl Built {
    pub fn fits(&self) -> bool {
        self.image.len() <= LIMIT
    }
}

fn link(script: &Path, elf: &Path, objs: &[&Path]) -> Result<(), String> {
    let mut cmd = Command::new(LD);
    // Both scripts INCLUDE the shared sections.ld, found through -L (given first: ld reads
    // a script where it meets -T).
    cmd.arg("-L")
        .arg(root().join("linker"))
        .arg("-T")
        .arg(script)
        .arg("-T")
        .arg(root().join("linker/rom.ld"))
        // No libc, no libgcc: every external symbol must be a ROM address from rom.ld.
        .args(["-nostdlib", "--gc-sections", "--orphan-handling=error", "--no-undefined"])
        // The reservation for the core's RAM, sized by the type itself.
        .arg(format!("--defsym=BOOT_MEM_SIZE={}", std::mem::size_of::<bootloader::Mem>()))
        .arg("-Map")
        .arg(elf.with_extension("map"))
        .arg("-o")
        .arg(elf)
        .args(objs);
    run(&mut cmd)
}

/// The linker script with a 64 KiB IRAM window, to measure code that does not fit.
fn measuring_script() -> Result<PathBuf, String> {
    let real = root().join("linker/bootloader.ld");
    let text = std::fs::read_to_string(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    let window = "ORIGIN = 0x4010F000, LENGTH = 0x1000";
    let check = "ASSERT(SIZEOF(.text) <= 0x1000";
    if !text.contains(window) || !text.contains(check) {
        return Err(format!("{}: no `{window}` / `{check}` to widen for measuring", real.display()));
    }
    let text = text
        .replace(window, "ORIGIN = 0x4010F000, LENGTH = 0x10000")
        .replace(check, "ASSERT(SIZEOF(.text) <= 0x10000");
    std::fs::create_dir_all(out_dir()).map_err(|e| format!("{}: {e}", out_dir().display()))?;
    let path = out_dir().join("measure.ld");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Compiles, assembles, links and converts. An image over the limit is still returned
/// (with its ELF) so `size` can show where the bytes go; bootloader.bin is written only
/// for an image that fits.
pub fn build_measured() -> Result<Built, String> {
    build_variant(Variant::Tier1)
}

/// Compiles, assembles, links and converts one variant (see `build_measured`).
pub fn build_variant(variant: Variant) -> Result<Built, String> {
    ensure_toolchain()?;
    let root = root();
    let out = out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let stem = variant.stem();
    let asm = out.join(format!("{stem}.s"));
    compile_asm(&asm, variant)?;

    // Our functions, the compiler's and those of the hand-written assembly (entry.S,
    // inflate.S: the device's inflater, leaf.S: CRC, region rule, image walker), are the
    // targets `call0` may reach.
    let entry_s = root.join("bootloader/src/device/entry.S");
    let inflate_s = root.join("bootloader/src/device/inflate.S");
    let leaf_s = root.join("bootloader/src/device/leaf.S");
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let (text, entry_text) = (read(&asm)?, read(&entry_s)? + &read(&inflate_s)? + &read(&leaf_s)?);
    // Shared stubs for ROM functions called from many places; `calls` then reaches them.
    let rom = rom::rom_functions(&read(&root.join("linker/rom.ld"))?)?;
    let (text, stubbed) = rom::stubs(&text, &rom).map_err(|e| format!("{}: {e}", asm.display()))?;
    let mut local = calls::functions(&text);
    local.extend(calls::functions(&entry_text));
    let rewritten = calls::direct_calls(&text, &local).map_err(|e| format!("{}: {e}", asm.display()))?;
    let shrunk = peephole::shrink(&rewritten.text).map_err(|e| format!("{}: {e}", asm.display()))?;
    let (tailed, tails) = tails::tail_calls(&shrunk.text).map_err(|e| format!("{}: {e}", asm.display()))?;
    let (shared, saved) = saves::share(&tailed).map_err(|e| format!("{}: {e}", asm.display()))?;
    let (framed, slots) = frame::slots(&shared).map_err(|e| format!("{}: {e}", asm.display()))?;
    let (inlined, consts) = consts::inline(&framed).map_err(|e| format!("{}: {e}", asm.display()))?;
    let (unaligned_text, unaligned) = align::unalign(&inlined, &entry_text).map_err(|e| format!("{}: {e}", asm.display()))?;
    let (inverted_text, inverted) = branches::invert(&unaligned_text).map_err(|e| format!("{}: {e}", asm.display()))?;
    let (text, zero_compares, reg_masks, cmoves) = selects::selects(&inverted_text).map_err(|e| format!("{}: {e}", asm.display()))?;
    let direct_s = out.join(format!("{stem}.direct.s"));
    std::fs::write(&direct_s, &text).map_err(|e| format!("{}: {e}", direct_s.display()))?;

    let main_o = out.join(format!("{stem}.o"));
    let entry_o = out.join(format!("{stem}-entry.o"));
    run(Command::new(AS).args(AS_FLAGS).arg("-o").arg(&main_o).arg(&direct_s))?;
    run(Command::new(AS).args(AS_FLAGS).arg("-o").arg(&entry_o).arg(&entry_s))?;
    let inflate_o = out.join("inflate.o");
    run(Command::new(AS).args(AS_FLAGS).arg("-o").arg(&inflate_o).arg(&inflate_s))?;
    let leaf_o = out.join("leaf.o");
    run(Command::new(AS).args(AS_FLAGS).arg("-o").arg(&leaf_o).arg(&leaf_s))?;
    let objs = [entry_o.as_path(), main_o.as_path(), inflate_o.as_path(), leaf_o.as_path()];

    let bin = out.join(format!("{stem}.bin"));
    // Never leave an older image behind to be flashed by mistake.
    let _ = std::fs::remove_file(&bin);
    let mut elf = out.join(format!("{stem}.elf"));
    let _ = std::fs::remove_file(&elf);
    let linked = link(&variant.script(), &elf, &objs);
    if let (Err(e), Variant::Tier1) = (&linked, variant) {
        // Overflowing the IRAM window is the one failure worth measuring.
        elf = out.join("oversize.elf");
        link(&measuring_script()?, &elf, &objs).map_err(|_| e.clone())?;
        eprintln!("build: .text does not fit its 4 KiB IRAM window; measured in {}", elf.display());
    } else {
        linked?;
    }

    let elf_bytes = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    // Tier 1 as elf2bin.py makes it from the ELF (the core's eboot.elf): its sections in
    // elf2bin's order, so bootloader.bin (what the bench runs, and `esptool write_flash 0x0`)
    // is the very image an Arduino build puts in sector 0. The extension image is loaded
    // by tier 1, which takes any segment order.
    let params = tools::image::FlashParams::default();
    let image = match variant {
        Variant::Tier1 => tools::image::image_from_sections(&elf_bytes, &tools::image::BOOTLOADER_SECTIONS, &params),
        Variant::Extension => tools::image::image_from_elf(&elf_bytes, &params),
    }
    .map_err(|e| format!("{}: {e}", elf.display()))?;
    let built = Built {
        elf,
        image,
        direct_calls: rewritten.direct,
        other_calls: rewritten.kept,
        peephole: [shrunk.stack, shrunk.masks, shrunk.loads, shrunk.saves, tails, saved, slots, consts, unaligned, inverted, zero_compares, reg_masks, cmoves],
        stubbed,
    };
    // The extension image has no size limit but its IRAM window (checked by the link).
    if built.fits() || variant == Variant::Extension {
        tools::write_atomic(&bin, &built.image).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644));
    }
    Ok(built)
}

/// Builds the extension image (target/esp8266/extension.bin) and says whether the copy the
/// updater embeds is this one.
pub fn build_extension() -> Result<Built, String> {
    let built = build_variant(Variant::Extension)?;
    let embedded = std::fs::read(embedded_ext_path()).unwrap_or_default();
    if embedded != built.image {
        eprintln!(
            "build: {} differs from the extension image just built; the updater stages the embedded copy: \
             cp {} {}",
            embedded_ext_path().display(),
            ext_bin_path().display(),
            embedded_ext_path().display()
        );
    }
    Ok(built)
}

fn over_limit(len: usize) -> String {
    format!(
        "bootloader image is {len} bytes, {} over the {LIMIT}-byte limit (see `cargo xtask size`)",
        len - LIMIT
    )
}

/// Builds target/esp8266/bootloader.elf and bootloader.bin (tier 1), and extension.elf and
/// extension.bin; returns tier 1's .bin path. Fails when tier 1 exceeds 4096 bytes (the
/// extension image is built first, so it exists either way).
pub fn build() -> Result<PathBuf, String> {
    let ext = build_extension()?;
    println!("build: {} ({} bytes, extension image)", ext_bin_path().display(), ext.image.len());
    let built = build_measured()?;
    if !built.fits() {
        return Err(over_limit(built.image.len()));
    }
    let bin = bin_path();
    println!("build: {} ({} bytes of {LIMIT})", bin.display(), built.image.len());
    Ok(bin)
}

/// One symbol of the ELF, for the per-function table.
struct Sym {
    size: u32,
    kind: char,
    name: String,
}

fn symbols(elf: &Path) -> Result<Vec<Sym>, String> {
    let out = Command::new(NM)
        .args(["--size-sort", "--reverse-sort", "-S", "-C"])
        .arg(elf)
        .output()
        .map_err(|e| format!("{NM}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{NM} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(parse_nm(&String::from_utf8_lossy(&out.stdout)))
}

/// Lines of `nm -S`: "<addr> <size> <kind> <name>"; demangled names contain spaces.
fn parse_nm(text: &str) -> Vec<Sym> {
    let mut syms = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_, size, kind, name) = (parts.next(), parts.next(), parts.next(), parts.next());
        if let (Some(size), Some(kind), Some(name)) = (size, kind, name) {
            if let Ok(size) = u32::from_str_radix(size, 16) {
                let kind = kind.chars().next().unwrap_or('?');
                syms.push(Sym { size, kind, name: name.to_string() });
            }
        }
    }
    syms
}

/// Memory by load address. Not `bootloader::image::Region`: that one says where an *app*
/// may load, and the bootloader's own IRAM window (0x4010F000) is outside it on purpose.
fn memory_name(addr: u32) -> &'static str {
    match addr {
        0x3FFE_8000..=0x3FFF_FFFF => "DRAM",
        0x4010_0000..=0x4010_FFFF => "IRAM",
        0x6000_0000..=0x6000_1FFF => "RTC",
        _ => "other",
    }
}

/// `cargo xtask size`: the image size against the limit, then where the bytes go.
pub fn size() -> Result<(), String> {
    let ext = build_extension()?;
    let built = build_measured()?;
    let image = &built.image;
    println!("bootloader image: {} bytes (limit {LIMIT})", image.len());
    let n = image.len() as i64;
    println!("headroom: {} bytes to the {BUDGET}-byte budget, {} to the {LIMIT}-byte sector", BUDGET as i64 - n, LIMIT as i64 - n);
    println!("extension image: {} bytes (IRAM window 12288 bytes; staged beside the update)", ext.image.len());

    let parsed = tools::image::parse_image(image).map_err(|e| e.to_string())?;
    let data: u32 = parsed.segments.iter().map(|s| s.len).sum();
    println!();
    println!("segments:");
    for (i, s) in parsed.segments.iter().enumerate() {
        println!("  {i}  0x{:08x}  {:>5} bytes  {}", s.addr, s.len, memory_name(s.addr));
    }
    println!(
        "     headers, padding, checksum: {} bytes ({} segments)",
        image.len() as u32 - data,
        parsed.segments.len()
    );
    println!(
        "     calls: {} direct (call0), {} through a register (ROM, function pointers)",
        built.direct_calls, built.other_calls
    );
    let [stack, masks, loads, saves, tails, shared, slots, consts, unaligned, inverted, zero_compares, reg_masks, cmoves] = built.peephole;
    println!(
        "     peephole: {stack} stack adjustments, {masks} masks as extui, {loads} masks of loads \
         dropped, {saves} saves in functions that never return dropped, {tails} functions ending in \
         tail calls, {shared} functions saving \
         through the shared save/restore routines, {slots} stack slots by \
         addmi, {consts} constants built without a literal, {unaligned} entries reached only \
         through a register left unaligned, {inverted} branches over a jump inverted, {zero_compares} compares with a zeroed register made beqz/bnez, \
         {reg_masks} masks in a register made extui or dropped, \
         {cmoves} branches over a move made conditional moves, {} ROM functions called through a shared stub ({})",
        built.stubbed.len(),
        built.stubbed.join(", ")
    );
    if image.len() > ELF2BIN_LIMIT && image.len() <= LIMIT {
        println!("  note: over {ELF2BIN_LIMIT} bytes, Arduino's elf2bin.py would refuse this bootloader");
    }

    let syms = symbols(&built.elf)?;
    println!();
    println!("functions and data (largest first):");
    for s in syms.iter().filter(|s| s.size > 0) {
        let what = match s.kind.to_ascii_lowercase() {
            't' => "code",
            'r' | 'd' => "data",
            'b' => "ram",
            _ => "",
        };
        println!("  {:>5}  {:<4}  {}", s.size, what, s.name);
    }
    // Literal pools (constants and call targets that l32r loads) have no symbols: show
    // what they and alignment take so the table adds up to the IRAM segment.
    let iram: u32 = parsed
        .segments
        .iter()
        .filter(|s| memory_name(s.addr) == "IRAM")
        .map(|s| s.len)
        .sum();
    let code: u32 = syms.iter().filter(|s| s.kind.eq_ignore_ascii_case(&'t')).map(|s| s.size).sum();
    println!("  {:>5}  lit   literal pools and alignment in IRAM", iram.saturating_sub(code));

    // The budget by feature, so the next change can see what it costs.
    let asm_syms: Vec<String> = symbols(&out_dir().join("inflate.o"))?.into_iter().map(|s| s.name).collect();
    let mut budget: Vec<(&str, u32)> = FEATURES.iter().map(|(f, _)| (*f, 0)).collect();
    for sym in syms.iter().filter(|s| s.kind.eq_ignore_ascii_case(&'t')) {
        // The inflater's symbols but those named for a feature (its CRC, shared with Rust).
        let f = match feature_of(&sym.name) {
            "other" if asm_syms.contains(&sym.name) => INFLATER,
            f => f,
        };
        if let Some(b) = budget.iter_mut().find(|(name, _)| *name == f) {
            b.1 += sym.size;
        }
    }
    budget.push(("literal pools and alignment (IRAM)", iram.saturating_sub(code)));
    budget.push(("DRAM data", data - iram));
    budget.push(("image headers, padding, checksum", image.len() as u32 - data));
    println!();
    println!("budget by feature (by symbol: code the compiler inlined counts where it was inlined):");
    for (f, n) in &budget {
        println!("  {n:>5}  {f}");
    }
    let total: u32 = budget.iter().map(|(_, n)| n).sum();
    println!("  {total:>5}  total");
    if built.fits() {
        Ok(())
    } else {
        Err(over_limit(image.len()))
    }
}

const INFLATER: &str = "gzip inflater (device/inflate.S)";

/// Features of tier 1, each with the symbol-name fragments of its functions; the first
/// feature whose fragment a symbol contains takes it.
const FEATURES: &[(&str, &[&str])] = &[
    (INFLATER, &[]),
    ("copy engine: read/inflate loop, sector compare/erase/program/read-back, dry-run sink and image walker", &["copy::", "loader::Walker", "eboot_walker"]),
    ("boot flow: command checks, dry-run setup, journal header and steps, report (inlined into the entry)", &["eboot_rs_main", "boot::", "report::"]),
    ("app check and loader: segment table walk, region rules", &["loader::walk", "loader::app", "image::", "eboot_segment_region"]),
    ("extension image check (chain-load)", &["loader::extension"]),
    ("journal: search, load, steps, log", &["journal::"]),
    ("CRC-32 routines", &["crc::", "eboot_crc"]),
    ("flash wrappers, ROM call stubs, halt, jump", &["flash::", "eboot_rs_rom_", "device::", "jump_to_app"]),
    ("other", &[""]),
];

fn feature_of(name: &str) -> &'static str {
    FEATURES
        .iter()
        .find(|(_, frags)| frags.iter().any(|f| name.contains(f)))
        .map(|(f, _)| *f)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nm_lines_with_demangled_names() {
        let text = "4010f7a4 00000f7c t bootloader::copy::produce::<Flash as X>\n\
                    3ffe8000 B BOOT_MEM\n\
                    4010f028 00000003 T jump_to_app\n";
        let syms = parse_nm(text);
        assert_eq!(syms.len(), 2, "lines without a size are not symbols with a size");
        assert_eq!(syms[0].size, 0xf7c);
        assert_eq!(syms[0].kind, 't');
        assert_eq!(syms[0].name, "bootloader::copy::produce::<Flash as X>");
        assert_eq!((syms[1].size, syms[1].kind, syms[1].name.as_str()), (3, 'T', "jump_to_app"));
    }

    #[test]
    fn features_take_every_symbol() {
        assert_eq!(feature_of("<bootloader::copy::Sink>::chunk::<X>"), FEATURES[1].0);
        assert_eq!(feature_of("eboot_rs_main"), FEATURES[2].0);
        assert_eq!(feature_of("bootloader::loader::extension::<X>"), "extension image check (chain-load)");
        assert_eq!(feature_of("bootloader::loader::walk::<X>"), FEATURES[3].0);
        assert_eq!(feature_of("eboot_walker_feed"), FEATURES[1].0);
        assert_eq!(feature_of("eboot_segment_region"), FEATURES[3].0);
        assert_eq!(feature_of("eboot_crc32"), "CRC-32 routines");
        assert_eq!(feature_of("eboot_crc_mpeg2"), "CRC-32 routines");
        assert_eq!(feature_of("something_new"), "other");
    }

    #[test]
    fn memory_names_cover_the_bootloader_window() {
        assert_eq!(memory_name(0x4010_F000), "IRAM");
        assert_eq!(memory_name(0x3FFF_2000), "DRAM");
        assert_eq!(memory_name(0x4020_1010), "other");
    }

    #[test]
    fn measuring_script_only_widens_the_iram_window() {
        let real = std::fs::read_to_string(root().join("linker/bootloader.ld")).unwrap();
        let wide = std::fs::read_to_string(measuring_script().unwrap()).unwrap();
        assert!(wide.contains("ORIGIN = 0x4010F000, LENGTH = 0x10000"));
        assert!(!wide.contains("LENGTH = 0x1000\n"));
        // Everything else is the real script, line for line.
        let differ = real.lines().zip(wide.lines()).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 2);
        assert_eq!(real.lines().count(), wide.lines().count());
    }
}
