//! otatool: build, compress, sign, inspect and plan ESP8266 OTA images in one binary.
//! Outputs are byte-compatible with the Arduino core's elf2bin.py and signing.py.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tools::command::{Command, ACTION_LOAD_APP, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_CRC, EXT_IMAGE, EXT_TRIAL};
use tools::image::{FlashFreq, FlashMode, FlashParams, FlashSize};
use tools::output::Outputs;
use tools::{checks, cmdblock, fit, gzip, image, info, layout, read_file, sign, Error, Result};

#[derive(Parser)]
#[command(
    name = "otatool",
    version,
    about = "ESP8266 OTA release tool: image, gzip, sign, inspect, plan",
    after_help = "Exit codes: 0 success, 1 failure (bad input, refused, I/O error), 2 usage error, \
3 the image or update does not fit the flash layout asked about.\n\
Outputs: regular files only, written through symlinks, existing mode kept (new files: 0666 \
minus umask), read-only files refused, all outputs of a run or none; -o - is standard output."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the Arduino flash image (elf2bin.py-compatible): bootloader slot + app at 0x1000.
    Image(ImageArgs),
    /// Identify and explain a flash image, app/bootloader image, gzip, signed file or command block.
    Info(InfoArgs),
    /// gzip a file as small as possible, in the form the bootloader accepts.
    Gzip(GzipArgs),
    /// Make an RSA key pair for update signing.
    Keygen(KeygenArgs),
    /// Sign an update (signing.py's options): writes payload ‖ signature ‖ u32 length.
    Sign(SignArgs),
    /// Check a signed update against a public key, as the device does.
    Verify(VerifyArgs),
    /// Print the public key in the forms firmware embeds (PEM, signing.py header, Rust).
    Pubkey(PubkeyArgs),
    /// Write a 128-byte RTC command block (eboot's legacy form or the extended one).
    Command(CommandArgs),
    /// Arduino flash layouts: sketch limit, FS range, where an update is staged, whether it fits.
    Layout(LayoutArgs),
    /// Drop-in for the Arduino core's tools/elf2bin.py: same options, byte-identical image.
    Elf2bin(tools::dropin::Elf2binArgs),
    /// Drop-in for the Arduino core's tools/signing.py: --mode header|sign, same rules, same bytes.
    Signing(tools::dropin::SigningArgs),
    /// Send an image to a sketch running ArduinoOTA (espota.py's protocol and options).
    Upload(UploadArgs),
    /// Update server for devices polling with ESPhttpUpdate (fleet manifest, staged rollout).
    Serve(ServeArgs),
}

fn parse_num(s: &str) -> std::result::Result<u32, String> {
    let t = s.trim().replace('_', "");
    let (digits, mult) = match t.chars().last() {
        Some('K') | Some('k') => (&t[..t.len() - 1], 1024),
        Some('M') | Some('m') if !t.starts_with("0x") => (&t[..t.len() - 1], 1 << 20),
        _ => (&t[..], 1),
    };
    let v = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(h, 16)
    } else {
        digits.parse::<u64>()
    }
    .map_err(|_| format!("'{s}' is not a number (decimal, 0x hex, or with K/M suffix)"))?;
    u32::try_from(v * mult).map_err(|_| format!("'{s}' does not fit in 32 bits"))
}

#[derive(Args)]
struct Flash {
    /// SPI flash mode: qio, qout, dio, dout.
    #[arg(
        short = 'm',
        long = "flash-mode",
        alias = "flash_mode",
        default_value = "dio"
    )]
    mode: FlashMode,
    /// SPI flash clock in MHz: 20, 26, 40, 80.
    #[arg(
        short = 'f',
        long = "flash-freq",
        alias = "flash_freq",
        default_value = "40"
    )]
    freq: FlashFreq,
    /// Flash chip size: 256K, 512K, 1M, 2M, 4M, 8M, 16M.
    #[arg(
        short = 's',
        long = "flash-size",
        alias = "flash_size",
        default_value = "4M"
    )]
    size: FlashSize,
}

impl Flash {
    fn params(&self) -> FlashParams {
        FlashParams {
            mode: self.mode,
            freq: self.freq,
            size: self.size,
        }
    }
}

#[derive(Args)]
struct ImageArgs {
    /// Bootloader: an ELF (sections .text, .rodata as elf2bin takes them) or a built image .bin.
    #[arg(short = 'e', long, alias = "eboot")]
    bootloader: PathBuf,
    /// App (sketch) ELF with .irom0.text, .text, .text1, .data, .rodata.
    #[arg(short = 'a', long)]
    app: PathBuf,
    #[command(flatten)]
    flash: Flash,
    /// Output image (serial flash at 0x0, and the OTA update image); `-` for standard output.
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Also write OUT.gz (the smallest gzip; what elf2bin's `-g Arduino` does).
    #[arg(long)]
    gzip: bool,
    /// Refuse an image that does not fit this flash layout (e.g. 4M2M, 1M64).
    #[arg(long)]
    layout: Option<String>,
}

#[derive(Args)]
struct InfoArgs {
    /// The file to explain: flash or app image, bootloader image, gzip, signed file, command block.
    file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Say where the file is staged as an OTA update on this flash layout and whether it
    /// fits (exit code 3 when it does not).
    #[arg(long)]
    layout: Option<String>,
    /// Size of the sketch running on the device, for --layout's fit check.
    #[arg(long, value_parser = parse_num, requires = "layout")]
    current: Option<u32>,
    /// Verify a signed file's signature with this public (or private) key.
    #[arg(long, alias = "publickey")]
    pubkey: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Compressor {
    /// The smaller of zopfli and flate2 (default).
    Best,
    /// zopfli only (smallest in practice, ~4 s per MB).
    Zopfli,
    /// flate2 at its best level only (fast, ~0.5 % larger than gzip -9).
    Flate2,
}

#[derive(Args)]
struct GzipArgs {
    /// File to compress (usually the flash image from `otatool image`).
    input: PathBuf,
    /// gzip output (`-` for standard output).
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Which compressor to use.
    #[arg(long, value_enum, default_value = "best")]
    compressor: Compressor,
}

#[derive(Args)]
struct KeygenArgs {
    /// Private key output (PKCS#8 PEM, created 0600).
    #[arg(short = 'o', long, alias = "privatekey")]
    out: PathBuf,
    /// Also write the public key (SPKI PEM) here.
    #[arg(long, alias = "publickey")]
    pubout: Option<PathBuf>,
    /// RSA modulus size in bits (the Arduino examples use 2048; 1024..=8192).
    #[arg(long, default_value_t = 2048)]
    bits: usize,
    /// Replace existing key files (the old private key is lost).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct SignArgs {
    /// Accepted for signing.py compatibility; only `sign` is meaningful here.
    #[arg(short = 'm', long, hide = true)]
    mode: Option<String>,
    /// Private key (PEM or DER; PKCS#8 or PKCS#1, as openssl genrsa writes).
    #[arg(short = 's', long)]
    privatekey: PathBuf,
    /// File to sign (a .bin or a .bin.gz: sign after gzip).
    #[arg(short = 'b', long)]
    bin: PathBuf,
    /// Signed output (payload ‖ signature ‖ u32 LE length); `-` for standard output.
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Also write a legacy-signed file (for devices with core ≤ 2.5.2).
    #[arg(short = 'l', long)]
    legacy: Option<PathBuf>,
    /// Refuse to sign unless the private key matches this public key (the one in the firmware).
    #[arg(short = 'p', long)]
    publickey: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    /// Public key (or private key) to check against.
    #[arg(short = 'p', long, alias = "pubkey")]
    publickey: PathBuf,
    /// Signed file.
    #[arg(short = 'b', long)]
    bin: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyFormat {
    /// SPKI PEM ("PUBLIC KEY").
    Pem,
    /// signing.py's Updater_Signing.h (the key file bytes as a PROGMEM array).
    Header,
    /// Rust constants (modulus, exponent, SPKI DER) for the updater crate.
    Rust,
}

#[derive(Args)]
struct PubkeyArgs {
    /// Private key to take the public half of.
    #[arg(
        short = 's',
        long,
        conflicts_with = "publickey",
        required_unless_present = "publickey"
    )]
    privatekey: Option<PathBuf>,
    /// Public key file (for --format header its exact bytes are embedded, as signing.py
    /// does; given a private key, only the public key derived from it is written).
    #[arg(short = 'p', long)]
    publickey: Option<PathBuf>,
    /// Output form.
    #[arg(long, value_enum, default_value = "pem")]
    format: KeyFormat,
    /// Output file (default, or `-`: standard output).
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Action {
    /// COPY_RAW: copy (or inflate) len bytes from src to dst (what the Updater writes).
    Copy,
    /// LOAD_APP: just boot.
    Load,
}

#[derive(Clone, Copy, ValueEnum)]
enum BlockFormat {
    /// The 128 bytes as they sit in RTC memory.
    Bin,
    /// The same bytes as one line of hex (for `xxd -r -p` and test scripts).
    Hex,
}

#[derive(Args)]
struct CommandArgs {
    /// What the bootloader is asked to do.
    #[arg(long, value_enum, default_value = "copy")]
    action: Action,
    /// Staging offset (args[0]).
    #[arg(long, value_parser = parse_num, default_value = "0")]
    src: u32,
    /// Destination offset (args[1]); 0 for a sketch.
    #[arg(long, value_parser = parse_num, default_value = "0")]
    dst: u32,
    /// Payload length (args[2]).
    #[arg(long, value_parser = parse_num, default_value = "0")]
    len: u32,
    /// Extended: trial boot with rollback.
    #[arg(long)]
    trial: bool,
    /// Extended (with --trial): unconfirmed boots before rollback (args[4]).
    #[arg(long, value_parser = parse_num, requires = "trial")]
    boots: Option<u32>,
    /// Extended: expected CRC-32 (gzip's) of the copied output (args[5]).
    #[arg(long, value_parser = parse_num)]
    crc: Option<u32>,
    /// Extended: the extension image that carries out --trial/--crc (extension.bin from
    /// `cargo xtask build`): named in args[6] (address) and args[7] (its CRC-32).
    #[arg(long)]
    extension: Option<PathBuf>,
    /// Where that extension image is staged (args[6]); default: where the updater stages
    /// it, just below the journal sector, which is just below --src.
    #[arg(long, value_parser = parse_num, requires = "extension")]
    extension_at: Option<u32>,
    /// Output form: the 128 raw bytes, or one line of hex.
    #[arg(long, value_enum, default_value = "bin")]
    format: BlockFormat,
    /// Write a copy command the bootloader refuses (length 0, source or destination not
    /// 4 KiB aligned, --trial/--crc without --extension): for bench tests of that refusal.
    #[arg(long)]
    force: bool,
    /// Output file (`-` for standard output; hex goes there without -o).
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("update").args(["size", "image"])))]
struct LayoutArgs {
    /// Layout name (e.g. 4M2M, 1M64, 1M); without it, list all.
    name: Option<String>,
    /// Size of an uncompressed update in bytes (or K/M suffix): where it is staged, whether it fits.
    #[arg(long, value_parser = parse_update_size, requires = "name")]
    size: Option<u32>,
    /// Take the update from this file (image, gzip, signed): staged by its size as sent,
    /// checked as a sketch by its inflated size.
    #[arg(long, requires = "name")]
    image: Option<PathBuf>,
    /// Size of the sketch running on the device (ESP.getSketchSize()). Without it, the
    /// largest running sketch that leaves room for the update is reported instead.
    #[arg(long, value_parser = parse_num, requires = "update")]
    current: Option<u32>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// An update size: as [`parse_num`], but never 0 (`Updater::begin(0)` fails).
fn parse_update_size(s: &str) -> std::result::Result<u32, String> {
    match parse_num(s)? {
        0 => Err("an update of 0 bytes is refused by the Updater (Updater::begin(0) fails)".into()),
        n => Ok(n),
    }
}

fn main() -> ExitCode {
    // Like other Unix filters: a closed pipe (`otatool layout | head`) ends the process
    // quietly instead of making println! panic.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otatool: error: {e}");
            match e {
                Error::DoesNotFit(_) => ExitCode::from(tools::error::EXIT_DOES_NOT_FIT),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Image(a) => cmd_image(a),
        Cmd::Info(a) => cmd_info(a),
        Cmd::Gzip(a) => cmd_gzip(a),
        Cmd::Keygen(a) => cmd_keygen(a),
        Cmd::Sign(a) => cmd_sign(a),
        Cmd::Verify(a) => cmd_verify(a),
        Cmd::Pubkey(a) => cmd_pubkey(a),
        Cmd::Command(a) => cmd_command(a),
        Cmd::Layout(a) => cmd_layout(a),
        Cmd::Elf2bin(a) => tools::dropin::elf2bin(&a),
        Cmd::Signing(a) => tools::dropin::signing(&a),
        Cmd::Upload(a) => cmd_upload(a),
        Cmd::Serve(a) => tools::ota::serve::run(tools::ota::serve::Config {
            dir: a.dir,
            manifest: a.manifest,
            listen: a.listen,
            log: a.log,
        }),
    }
}

fn with_path(path: &Path, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{}: {m}", path.display())),
        Error::Refused(m) => Error::Refused(format!("{}: {m}", path.display())),
        Error::DoesNotFit(m) => Error::DoesNotFit(format!("{}: {m}", path.display())),
        io => io,
    }
}

fn cmd_image(a: ImageArgs) -> Result<()> {
    let params = a.flash.params();
    let boot = read_file(&a.bootloader)?;
    let app = read_file(&a.app)?;
    let layout = a.layout.as_deref().map(layout::find).transpose()?;
    let img = image::arduino_image(&boot, &app, &params).map_err(|e| match e {
        Error::Invalid(m) if m.starts_with("app: ") => {
            with_path(&a.app, Error::Invalid(m[5..].to_string()))
        }
        e => with_path(&a.bootloader, e),
    })?;
    if let Some(l) = &layout {
        if let Some(w) = checks::flash_size_vs_layout(params.size, l) {
            warn(&w);
        }
        l.check_sketch(img.len() as u32)?;
    }
    if let Some(w) = checks::crc_words(&app) {
        warn(&format!("{}: {w}", a.app.display()));
    }
    let mut outs = Outputs::new();
    let mut said = vec![format!("{}: {} bytes", a.out.display(), img.len())];
    let gz_path = a.gzip.then(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".gz");
        PathBuf::from(p)
    });
    if gz_path.is_some() && tools::output::is_stdout(&a.out) {
        return Err(Error::invalid(
            "--gzip writes OUT.gz next to OUT, so -o - cannot be used with it",
        ));
    }
    // Both paths are checked before the (slow) compression.
    tools::output::check_path(&a.out)?;
    if let Some(p) = &gz_path {
        tools::output::check_path(p)?;
    }
    let gz = gz_path.as_ref().map(|_| gzip::gzip_best(&img));
    outs.add(&a.out, img)?;
    if let (Some(p), Some(gz)) = (gz_path, gz) {
        said.push(format!("{}: {} bytes", p.display(), gz.len()));
        outs.add(&p, gz)?;
    }
    let to_stderr = outs.uses_stdout();
    outs.commit()?;
    say(to_stderr, &said.join("\n"));
    Ok(())
}

fn cmd_info(a: InfoArgs) -> Result<()> {
    let data = read_file(&a.file)?;
    let layout = a.layout.as_deref().map(layout::find).transpose()?;
    let key = match &a.pubkey {
        Some(p) => Some(sign::read_public_key(&read_file(p)?).map_err(|e| with_path(p, e))?),
        None => None,
    };
    let opts = info::Options {
        public_key: key.as_ref(),
    };
    let report = info::inspect(&data, &opts).map_err(|e| with_path(&a.file, e))?;
    // The same computation as `layout --image`, on the same bytes.
    let plan = layout.as_ref().map(|l| {
        fit::sizes_of(&data)
            .map(|sz| fit::fit(l, &sz, a.current))
            .map_err(|e| with_path(&a.file, Error::invalid(format!("--layout {}: {e}", l.name))))
    });
    let fitted = plan.as_ref().and_then(|p| p.as_ref().ok());
    if a.json {
        let mut v = serde_json::to_value(&report).expect("report serialises");
        if let (Some(f), Some(obj)) = (fitted, v.as_object_mut()) {
            obj.insert(
                "fit".into(),
                serde_json::to_value(f).expect("fit serialises"),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("report serialises")
        );
    } else {
        print!("{}", info::render(&report));
        if let Some(f) = fitted {
            print!("{}", f.render());
        }
    }
    match plan {
        Some(Ok(f)) => f.check().map_err(|e| with_path(&a.file, e)),
        Some(Err(e)) => Err(e),
        None => Ok(()),
    }
}

fn cmd_gzip(a: GzipArgs) -> Result<()> {
    let data = read_file(&a.input)?;
    // Checked before compressing: zopfli takes seconds per megabyte.
    tools::output::check_path(&a.out)?;
    let gz = match a.compressor {
        Compressor::Best => gzip::gzip_best(&data),
        Compressor::Zopfli => gzip::gzip_zopfli(&data),
        Compressor::Flate2 => gzip::gzip_flate2(&data),
    };
    let msg = format!(
        "{}: {} -> {} bytes ({:.3})",
        a.out.display(),
        data.len(),
        gz.len(),
        gz.len() as f64 / data.len().max(1) as f64
    );
    let mut outs = Outputs::new();
    outs.add(&a.out, gz)?;
    let to_stderr = outs.uses_stdout();
    outs.commit()?;
    say(to_stderr, &msg);
    Ok(())
}

fn cmd_keygen(a: KeygenArgs) -> Result<()> {
    // A new key pair over an existing private key would lose the key every device in
    // the field trusts, so that takes --force.
    for p in std::iter::once(&a.out).chain(a.pubout.as_ref()) {
        if !a.force && !tools::output::is_stdout(p) && p.exists() {
            return Err(Error::refused(format!(
                "{} exists; otatool keygen does not replace a key (devices trust the old one). Remove it or give --force",
                p.display()
            )));
        }
    }
    let key = sign::keygen(a.bits)?;
    let mut outs = Outputs::new();
    // Owner-only permissions for the private key where the OS has them.
    outs.add_private(&a.out, sign::private_pem(&key).into_bytes())?;
    if let Some(p) = &a.pubout {
        outs.add(p, sign::public_pem(&key.to_public_key()).into_bytes())?;
    }
    outs.commit()?;
    eprintln!("{}: RSA-{} private key", a.out.display(), a.bits);
    Ok(())
}

fn cmd_sign(a: SignArgs) -> Result<()> {
    if let Some(m) = &a.mode {
        if m != "sign" {
            return Err(Error::invalid(format!(
                "--mode {m}: `otatool sign` only signs; for signing.py's header mode use `otatool signing --mode header` (or `otatool pubkey --format header`)"
            )));
        }
    }
    let key = sign::read_private_key(&read_file(&a.privatekey)?)
        .map_err(|e| with_path(&a.privatekey, e))?;
    if let Some(p) = &a.publickey {
        let public = sign::read_public_key(&read_file(p)?).map_err(|e| with_path(p, e))?;
        sign::check_pair(&key, &public).map_err(|_| {
            Error::refused(format!(
                "{} does not match public key {}",
                a.privatekey.display(),
                p.display()
            ))
        })?;
    }
    let payload = read_file(&a.bin)?;
    // Build every output before writing any, so a failure leaves none behind.
    let signed = sign::sign(&payload, &key, sign::Scheme::Pkcs1Sha256)?;
    let legacy = match &a.legacy {
        Some(_) => Some(sign::sign(&payload, &key, sign::Scheme::Legacy)?),
        None => None,
    };
    let mut outs = Outputs::new();
    outs.add(&a.out, signed)?;
    if let (Some(p), Some(l)) = (&a.legacy, legacy) {
        outs.add(p, l)?;
    }
    outs.commit()?;
    eprintln!("Signed binary: {}", a.out.display());
    if let Some(p) = &a.legacy {
        eprintln!("Legacy signed binary: {}", p.display());
    }
    Ok(())
}

fn cmd_verify(a: VerifyArgs) -> Result<()> {
    let key =
        sign::read_public_key(&read_file(&a.publickey)?).map_err(|e| with_path(&a.publickey, e))?;
    let data = read_file(&a.bin)?;
    let scheme = sign::verify(&data, &key).map_err(|e| with_path(&a.bin, e))?;
    println!("{}: signature OK ({})", a.bin.display(), scheme.name());
    Ok(())
}

fn cmd_pubkey(a: PubkeyArgs) -> Result<()> {
    // `file_bytes` is what --format header embeds: the public key file as given (what
    // signing.py embeds), or the derived SPKI PEM; never private key material.
    let (key, file_bytes) = match (&a.privatekey, &a.publickey) {
        (Some(p), _) => {
            let k = sign::read_private_key(&read_file(p)?)
                .map_err(|e| with_path(p, e))?
                .to_public_key();
            let pem = sign::public_pem(&k).into_bytes();
            (k, pem)
        }
        (None, Some(p)) => {
            let bytes = read_file(p)?;
            let (k, was_private) = sign::read_key(&bytes).map_err(|e| with_path(p, e))?;
            if was_private {
                eprintln!(
                    "otatool: note: {} holds a PRIVATE key; writing only the public key derived from it",
                    p.display()
                );
                let pem = sign::public_pem(&k).into_bytes();
                (k, pem)
            } else {
                (k, bytes)
            }
        }
        (None, None) => return Err(Error::invalid("give --privatekey or --publickey")),
    };
    let text = match a.format {
        KeyFormat::Pem => sign::public_pem(&key),
        KeyFormat::Header => sign::arduino_header(&file_bytes),
        KeyFormat::Rust => sign::rust_source(&key),
    };
    let mut outs = Outputs::new();
    outs.add(
        a.out.as_deref().unwrap_or(Path::new("-")),
        text.into_bytes(),
    )?;
    outs.commit()
}

fn cmd_command(a: CommandArgs) -> Result<()> {
    if matches!(a.action, Action::Copy) && !a.force {
        checks::copy_command(a.src, a.dst, a.len)?;
    }
    let mut cmd = Command::copy(a.src, a.dst, a.len);
    if let Action::Load = a.action {
        cmd.action = ACTION_LOAD_APP;
    }
    if a.trial {
        cmd.ext |= EXT_TRIAL;
        cmd.args[4] = a.boots.unwrap_or(0);
    }
    if let Some(c) = a.crc {
        cmd.ext |= EXT_CRC;
        cmd.args[5] = c;
    }
    if let Some(p) = &a.extension {
        let img = read_file(p)?;
        let parsed = image::parse_image(&img).map_err(|e| with_path(p, e))?;
        if !info::is_extension(&parsed) {
            return Err(Error::invalid(format!(
                "{}: not an eboot-rs extension image (it must load into IRAM 0x4010C000..0x4010F000 and enter there)",
                p.display()
            )));
        }
        let body = &img[..parsed.len];
        let at = match a.extension_at {
            Some(at) => at,
            None => a
                .src
                .checked_sub(4096 + (body.len() as u32).next_multiple_of(4096))
                .ok_or_else(|| Error::invalid("--src too low to stage the extension image below its journal sector"))?,
        };
        if at % 4096 != 0 || at < 0x2000 {
            return Err(Error::invalid(format!("--extension-at 0x{at:X}: must be a sector start above 0x2000")));
        }
        cmd.ext |= EXT_IMAGE;
        cmd.args[ARG_EXT_ADDR] = at;
        cmd.args[ARG_EXT_CRC] = bootloader::crc::gzip(0, body);
    } else if cmd.ext != 0 && !a.force {
        return Err(Error::invalid(
            "--trial and --crc are carried out by the extension image: name it with --extension \
             (the sector-0 bootloader refuses them without one, code NeedsExtension)",
        ));
    }
    let block = cmdblock::encode(&cmd);
    let (bytes, out) = match (a.format, &a.out) {
        (BlockFormat::Bin, Some(p)) => (block.to_vec(), p.as_path()),
        (BlockFormat::Hex, p) => (
            cmdblock::to_hex(&block).into_bytes(),
            p.as_deref().unwrap_or(Path::new("-")),
        ),
        (BlockFormat::Bin, None) => {
            return Err(Error::invalid(
                "binary output needs -o FILE (or -o - for standard output, or --format hex)",
            ))
        }
    };
    let mut outs = Outputs::new();
    outs.add(out, bytes)?;
    outs.commit()
}

fn warn(msg: &str) {
    eprintln!("otatool: warning: {msg}");
}

/// Status text: on standard output, unless an output goes there.
fn say(to_stderr: bool, msg: &str) {
    if to_stderr {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
}

fn cmd_layout(a: LayoutArgs) -> Result<()> {
    let Some(name) = &a.name else {
        let all = layout::all();
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&all).expect("layouts serialise")
            );
            return Ok(());
        }
        println!(
            "{:<8} {:>10} {:>10} {:>10} {:>6} {:>10} {:>10} {:>10}",
            "layout", "FS start", "FS end", "FS bytes", "block", "EEPROM", "max sketch", "OTA ~"
        );
        for l in all {
            println!(
                "{:<8} {:>#10x} {:>#10x} {:>10} {:>6} {:>#10x} {:>10} {:>10}",
                l.name,
                l.fs_start,
                l.fs_end,
                l.fs_end - l.fs_start,
                l.fs_block,
                l.eeprom,
                l.max_sketch,
                l.max_ota
            );
        }
        return Ok(());
    };
    let l = layout::find(name)?;
    let sizes = match (&a.image, a.size) {
        (Some(p), _) => {
            let sz = fit::sizes_of(&read_file(p)?).map_err(|e| with_path(p, e))?;
            if sz.gzip_trailing > 0 {
                eprintln!(
                    "otatool: warning: {}: {} bytes after the gzip member; the bootloader refuses this file (see otatool info)",
                    p.display(),
                    sz.gzip_trailing
                );
            }
            Some(sz)
        }
        (None, Some(n)) => Some(fit::UpdateSizes {
            transferred: n,
            installed: n,
            gzip: false,
            signed: false,
            gzip_trailing: 0,
        }),
        (None, None) => None,
    };
    let plan = sizes.as_ref().map(|sz| fit::fit(&l, sz, a.current));
    if a.json {
        let v = serde_json::json!({ "layout": l, "fit": plan });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("layout serialises")
        );
    } else {
        println!(
            "layout {} ({} flash)",
            l.name,
            FlashSize::from_bytes(l.flash_size).map_or(l.flash_size.to_string(), |s| s.to_string())
        );
        println!(
            "  sketch:   0x000000..0x{:06X}  max sketch {} bytes, max image {} bytes",
            l.sketch_end(),
            l.max_sketch,
            l.sketch_end()
        );
        println!("  OTA staging: from the running sketch's end up to FS start 0x{:06X}  (menu OTA:~{} KB)", l.fs_start, l.max_ota / 1024);
        if l.fs_block == 0 {
            println!(
                "  FS:       none (FS_start = FS_end = 0x{:06X})",
                l.fs_start
            );
        } else {
            println!(
                "  FS:       0x{:06X}..0x{:06X}  {} bytes, block {}",
                l.fs_start,
                l.fs_end,
                l.fs_end - l.fs_start,
                l.fs_block
            );
        }
        println!(
            "  EEPROM 0x{:06X}, RF cal 0x{:06X}, SDK config 0x{:06X}..0x{:06X}",
            l.eeprom, l.rf_cal, l.sdk_config, l.flash_size
        );
        if let Some(p) = &plan {
            print!("{}", p.render());
        }
    }
    match plan {
        Some(p) => p.check(),
        None => Ok(()),
    }
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("image").required(true).args(["file", "file_opt"])))]
#[command(
    after_help = "Exit codes: 0 device reported OK; 1 local problem (file, socket); 2 usage; 3 no answer or no connection back; 4 password missing or wrong; 5 device refused or reported an error; 6 transfer broke."
)]
struct UploadArgs {
    /// Image to send as it is (.bin, .gz, signed). If FILE.signed exists it is sent instead, as espota.py does.
    file: Option<PathBuf>,
    /// The image (espota.py's spelling).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file_opt: Option<PathBuf>,
    /// Device IP address or host name.
    #[arg(short = 'i', long)]
    ip: String,
    /// Device's ArduinoOTA UDP port.
    #[arg(short = 'p', long, default_value_t = 8266)]
    port: u16,
    /// Password set with ArduinoOTA.setPassword (empty: none).
    #[arg(short = 'a', long, value_name = "PASSWORD")]
    auth: Option<String>,
    /// Filesystem image (U_FS) instead of a sketch.
    #[arg(short = 's', long = "fs", alias = "spiffs")]
    fs: bool,
    /// Local address the device connects back to (default: all interfaces).
    #[arg(short = 'I', long = "host-ip", alias = "host_ip")]
    host_ip: Option<std::net::IpAddr>,
    /// Local TCP port the device connects back to (default: any free port).
    #[arg(
        short = 'P',
        long = "host-port",
        alias = "host_port",
        default_value_t = 0
    )]
    host_port: u16,
    /// Seconds to wait for each answer of the device (the final result: 6 times this).
    #[arg(short = 't', long, default_value_t = 10.0)]
    timeout: f64,
    /// Accepted for espota.py compatibility: progress is always shown.
    #[arg(short = 'r', long)]
    progress: bool,
    /// Show each protocol step.
    #[arg(short = 'd', long)]
    debug: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Directory holding the images.
    #[arg(long)]
    dir: PathBuf,
    /// Fleet manifest (TOML): images per MAC, group and default, versions, rollout.
    /// Without it the request's path names the file.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Address to listen on; give 0.0.0.0:8266 to serve devices on the network.
    #[arg(long, default_value = "127.0.0.1:8266")]
    listen: std::net::SocketAddr,
    /// Append the check-in log (one JSON line per request) here instead of standard output.
    #[arg(long)]
    log: Option<PathBuf>,
}

fn cmd_upload(a: UploadArgs) -> Result<()> {
    use tools::ota::upload;
    if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 3600.0) {
        return Err(Error::invalid(
            "--timeout must be between 0 and 3600 seconds",
        ));
    }
    let opts = upload::Options {
        file: a.file.or(a.file_opt).expect("clap requires one"),
        ip: a.ip,
        port: a.port,
        auth: a.auth.filter(|p| !p.is_empty()),
        fs: a.fs,
        host_ip: a.host_ip,
        host_port: a.host_port,
        timeout: std::time::Duration::from_secs_f64(a.timeout),
        progress: upload::Progress::Auto,
        debug: a.debug,
    };
    match upload::upload(&opts) {
        Ok(s) => {
            println!(
                "{}: {} bytes (MD5 {}) sent to {}, device reported OK",
                s.file.display(),
                s.size,
                s.md5,
                s.device
            );
            Ok(())
        }
        Err(e) => {
            // Each class of failure has its own exit code (tools/README.md).
            eprintln!("otatool: error: {e}");
            std::process::exit(i32::from(e.kind.exit_code()));
        }
    }
}
