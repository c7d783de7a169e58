//! `otatool elf2bin` and `otatool signing`: the Arduino core's `tools/elf2bin.py` and
//! `tools/signing.py` command lines, so a core installation (platform.txt) or a PlatformIO
//! build switches to otatool by changing only the program it runs.
//!
//! Same options (long and short), same rules for missing keys, byte-identical outputs.
//! Where the Python tools fail silently, otatool says so and exits 1 (see tools/README.md).

use crate::error::{Error, Result};
use crate::image::{self, FlashParams};
use crate::output::{self, Outputs};
use crate::{checks, gzip, read_file, sign};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// elf2bin.py's arguments.
#[derive(Args, Debug)]
pub struct Elf2binArgs {
    /// Bootloader ELF (the core's bootloaders/eboot/eboot.elf) or an already built image.
    #[arg(short = 'e', long)]
    pub eboot: PathBuf,
    /// Sketch ELF.
    #[arg(short = 'a', long)]
    pub app: PathBuf,
    /// SPI flash mode.
    #[arg(short = 'm', long = "flash_mode", value_parser = ["dout", "dio", "qout", "qio"])]
    pub flash_mode: String,
    /// SPI flash speed in MHz.
    #[arg(short = 'f', long = "flash_freq", value_parser = ["20", "26", "40", "80"])]
    pub flash_freq: String,
    /// SPI flash size.
    #[arg(short = 's', long = "flash_size", value_parser = ["256K", "512K", "1M", "2M", "4M", "8M", "16M"])]
    pub flash_size: String,
    /// Output BIN file.
    #[arg(short = 'o', long)]
    pub out: PathBuf,
    /// Accepted and ignored: elf2bin.py runs the Xtensa objdump/objcopy found here; otatool
    /// reads the ELFs itself.
    #[arg(short = 'p', long)]
    pub path: Option<String>,
    /// PIO: OUT is the gzip and OUT.orig the image; Arduino: OUT and OUT.gz.
    #[arg(short = 'g', long, value_parser = ["PIO", "Arduino"])]
    pub gzip: Option<String>,
}

fn with_path(path: &Path, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{}: {m}", path.display())),
        Error::Refused(m) => Error::Refused(format!("{}: {m}", path.display())),
        e => e,
    }
}

fn suffixed(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `otatool elf2bin`: the flash image elf2bin.py writes, byte for byte.
pub fn elf2bin(a: &Elf2binArgs) -> Result<()> {
    // The value parsers admit only elf2bin's spellings, which these parse.
    let params = FlashParams {
        mode: a.flash_mode.parse().map_err(Error::Invalid)?,
        freq: a.flash_freq.parse().map_err(Error::Invalid)?,
        size: a.flash_size.parse().map_err(Error::Invalid)?,
    };
    // elf2bin.py's progress lines; on stderr when the image itself goes to stdout.
    let say = |m: String| {
        if output::is_stdout(&a.out) {
            eprintln!("{m}")
        } else {
            println!("{m}")
        }
    };
    say(format!(
        "Creating BIN file \"{}\" using \"{}\" and \"{}\"",
        a.out.display(),
        a.eboot.display(),
        a.app.display()
    ));
    let boot = read_file(&a.eboot)?;
    let app = read_file(&a.app)?;
    let img = image::arduino_image(&boot, &app, &params).map_err(|e| match e {
        Error::Invalid(m) if m.starts_with("app: ") => {
            with_path(&a.app, Error::Invalid(m[5..].to_string()))
        }
        e => with_path(&a.eboot, e),
    })?;
    if let Some(w) = checks::crc_words(&app) {
        eprintln!("otatool: warning: {}: {w}", a.app.display());
    }
    let mut outs = Outputs::new();
    match a.gzip.as_deref() {
        None => outs.add(&a.out, img)?,
        Some(mode) => {
            if output::is_stdout(&a.out) {
                return Err(Error::invalid(
                    "-g writes a second file next to OUT, so OUT cannot be -",
                ));
            }
            // otatool's gzip (smaller, no name, no time stamp), not Python's gzip: the
            // Python one embeds the build time, so no two builds were ever identical.
            let gz = gzip::gzip_best(&img);
            say(format!("GZipping firmware {}", a.out.display()));
            say(format!(
                "New FW size {} bytes vs old {} bytes",
                gz.len(),
                img.len()
            ));
            if mode == "PIO" {
                outs.add(&suffixed(&a.out, ".orig"), img)?;
                outs.add(&a.out, gz)?;
            } else {
                outs.add(&a.out, img)?;
                outs.add(&suffixed(&a.out, ".gz"), gz)?;
            }
        }
    }
    outs.commit()
}

/// signing.py's modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SigningMode {
    /// Write the Updater_Signing.h the firmware build includes (the public key, or
    /// `#define ARDUINO_SIGNING 0` when there is none).
    Header,
    /// Sign a built binary (nothing happens when there is no private key).
    Sign,
}

/// signing.py's arguments.
#[derive(Args, Debug)]
pub struct SigningArgs {
    /// header or sign.
    #[arg(short = 'm', long, value_enum)]
    pub mode: SigningMode,
    /// Unsigned binary (sign mode).
    #[arg(short = 'b', long, required_if_eq("mode", "sign"))]
    pub bin: Option<PathBuf>,
    /// Output file: the header (header mode) or the signed binary (sign mode).
    #[arg(short = 'o', long)]
    pub out: PathBuf,
    /// Legacy-signed output for devices with core 2.5.2 or older (sign mode).
    #[arg(short = 'l', long)]
    pub legacy: Option<PathBuf>,
    /// Public key file (header mode); a missing file means signing is off.
    #[arg(short = 'p', long, required_if_eq("mode", "header"))]
    pub publickey: Option<PathBuf>,
    /// Private key file (sign mode); a missing file means nothing is signed.
    #[arg(short = 's', long, required_if_eq("mode", "sign"))]
    pub privatekey: Option<PathBuf>,
}

/// `otatool signing`: signing.py's header and sign modes.
pub fn signing(a: &SigningArgs) -> Result<()> {
    match a.mode {
        SigningMode::Header => header(a),
        SigningMode::Sign => sign_mode(a),
    }
}

/// What `--mode header` writes for the key file at `path`.
pub fn header_text(path: &Path) -> Result<String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        // signing.py's rule: no public.key in the sketch, no signing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok("#define ARDUINO_SIGNING 0\n".to_string())
        }
        // Anything else (unreadable, a directory) would silently build unsigned firmware.
        Err(e) => return Err(Error::io(path, e)),
    };
    if sign::is_private_key(&bytes) {
        return Err(Error::refused(format!(
            "{} holds a PRIVATE key; the header is compiled into every firmware, so it is not embedded. \
             Put the public key there (otatool pubkey --privatekey {} -o public.key) and keep the private key elsewhere",
            path.display(),
            path.display()
        )));
    }
    sign::read_public_key(&bytes).map_err(|e| with_path(path, e))?;
    Ok(sign::arduino_header(&bytes))
}

fn header(a: &SigningArgs) -> Result<()> {
    let key = a
        .publickey
        .as_deref()
        .ok_or_else(|| Error::invalid("--mode header needs --publickey"))?;
    let text = header_text(key)?;
    if text.contains("ARDUINO_SIGNING 1") {
        eprintln!("Enabling binary signing");
    }
    if !output::is_stdout(&a.out) {
        // As signing.py: the build's core/ directory may not exist yet.
        if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        // Unchanged: leave the file (and its time stamp) alone, so the core is not rebuilt.
        if std::fs::read(&a.out).is_ok_and(|old| old == text.as_bytes()) {
            return Ok(());
        }
    }
    let mut outs = Outputs::new();
    outs.add(&a.out, text.into_bytes())?;
    outs.commit()
}

fn sign_mode(a: &SigningArgs) -> Result<()> {
    let (Some(key_path), Some(bin)) = (a.privatekey.as_deref(), a.bin.as_deref()) else {
        return Err(Error::invalid("--mode sign needs --privatekey and --bin"));
    };
    // signing.py's rule: no private.key in the sketch, nothing to sign, quietly.
    if !key_path.is_file() {
        return Ok(());
    }
    let key = sign::read_private_key(&read_file(key_path)?).map_err(|e| with_path(key_path, e))?;
    let payload = read_file(bin)?;
    let mut outs = Outputs::new();
    outs.add(
        &a.out,
        sign::sign(&payload, &key, sign::Scheme::Pkcs1Sha256)?,
    )?;
    if let Some(l) = &a.legacy {
        outs.add(l, sign::sign(&payload, &key, sign::Scheme::Legacy)?)?;
    }
    outs.commit()?;
    eprintln!("Signed binary: {}", a.out.display());
    if let Some(l) = &a.legacy {
        eprintln!("Legacy signed binary: {}", l.display());
    }
    Ok(())
}
