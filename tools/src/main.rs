//! otatool: build, compress, sign, inspect and plan ESP8266 OTA images in one binary.
//! Outputs are byte-compatible with the Arduino core's elf2bin.py and signing.py.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tools::command::{Command, ACTION_LOAD_APP, EXT_CRC, EXT_TRIAL};
use tools::image::{FlashFreq, FlashMode, FlashParams, FlashSize};
use tools::{cmdblock, gzip, image, info, layout, read_file, sign, write_atomic, Error, Result};

#[derive(Parser)]
#[command(
    name = "otatool",
    version,
    about = "ESP8266 OTA release tool: image, gzip, sign, inspect, plan"
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
    /// Output image (serial flash at 0x0, and the OTA update image).
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
    file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Say whether the file fits this flash layout as an OTA update.
    #[arg(long)]
    layout: Option<String>,
    /// Verify a signed file's signature with this public (or private) key.
    #[arg(long, alias = "publickey")]
    pubkey: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Compressor {
    /// The smaller of zopfli and flate2 (default).
    Best,
    Zopfli,
    Flate2,
}

#[derive(Args)]
struct GzipArgs {
    input: PathBuf,
    #[arg(short = 'o', long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "best")]
    compressor: Compressor,
}

#[derive(Args)]
struct KeygenArgs {
    /// Private key output (PKCS#8 PEM).
    #[arg(short = 'o', long, alias = "privatekey")]
    out: PathBuf,
    /// Also write the public key (SPKI PEM) here.
    #[arg(long, alias = "publickey")]
    pubout: Option<PathBuf>,
    #[arg(long, default_value_t = 2048)]
    bits: usize,
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
    /// Signed output (payload ‖ signature ‖ u32 LE length).
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
    /// Public key file (for --format header its exact bytes are embedded, as signing.py does).
    #[arg(short = 'p', long)]
    publickey: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "pem")]
    format: KeyFormat,
    /// Output file (default: standard output).
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
    Bin,
    Hex,
}

#[derive(Args)]
struct CommandArgs {
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
    #[arg(long, value_enum, default_value = "bin")]
    format: BlockFormat,
    /// Output file (hex goes to standard output without it).
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct LayoutArgs {
    /// Layout name (e.g. 4M2M, 1M64, 1M); without it, list all.
    name: Option<String>,
    /// Update size in bytes (or K/M suffix).
    #[arg(long, value_parser = parse_num, conflicts_with = "image")]
    size: Option<u32>,
    /// Take the update size from this file.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Size of the sketch running on the device (default: same as the update).
    #[arg(long, value_parser = parse_num)]
    current: Option<u32>,
    #[arg(long)]
    json: bool,
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
            ExitCode::FAILURE
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
        l.check_sketch(img.len() as u32)?;
    }
    let gz = a.gzip.then(|| gzip::gzip_best(&img));
    write_atomic(&a.out, &img)?;
    println!("{}: {} bytes", a.out.display(), img.len());
    if let Some(gz) = gz {
        let mut p = a.out.clone().into_os_string();
        p.push(".gz");
        let p = PathBuf::from(p);
        write_atomic(&p, &gz)?;
        println!("{}: {} bytes", p.display(), gz.len());
    }
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
        layout: layout.as_ref(),
        public_key: key.as_ref(),
    };
    let report = info::inspect(&data, &opts).map_err(|e| with_path(&a.file, e))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", info::render(&report));
    }
    Ok(())
}

fn cmd_gzip(a: GzipArgs) -> Result<()> {
    let data = read_file(&a.input)?;
    let gz = match a.compressor {
        Compressor::Best => gzip::gzip_best(&data),
        Compressor::Zopfli => gzip::gzip_zopfli(&data),
        Compressor::Flate2 => gzip::gzip_flate2(&data),
    };
    write_atomic(&a.out, &gz)?;
    println!(
        "{}: {} -> {} bytes ({:.3})",
        a.out.display(),
        data.len(),
        gz.len(),
        gz.len() as f64 / data.len().max(1) as f64
    );
    Ok(())
}

fn cmd_keygen(a: KeygenArgs) -> Result<()> {
    let key = sign::keygen(a.bits)?;
    // The private key is written with owner-only permissions where the OS has them.
    write_atomic(&a.out, sign::private_pem(&key).as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&a.out, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(&a.out, e))?;
    }
    if let Some(p) = &a.pubout {
        write_atomic(p, sign::public_pem(&key.to_public_key()).as_bytes())?;
    }
    println!("{}: RSA-{} private key", a.out.display(), a.bits);
    Ok(())
}

fn cmd_sign(a: SignArgs) -> Result<()> {
    if let Some(m) = &a.mode {
        if m != "sign" {
            return Err(Error::invalid(format!(
                "--mode {m}: use `otatool pubkey --format header` for header mode"
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
    write_atomic(&a.out, &signed)?;
    eprintln!("Signed binary: {}", a.out.display());
    if let (Some(p), Some(l)) = (&a.legacy, legacy) {
        write_atomic(p, &l)?;
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
            (
                sign::read_public_key(&bytes).map_err(|e| with_path(p, e))?,
                bytes,
            )
        }
        (None, None) => return Err(Error::invalid("give --privatekey or --publickey")),
    };
    let text = match a.format {
        KeyFormat::Pem => sign::public_pem(&key),
        KeyFormat::Header => sign::arduino_header(&file_bytes),
        KeyFormat::Rust => sign::rust_source(&key),
    };
    match &a.out {
        Some(p) => write_atomic(p, text.as_bytes()),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn cmd_command(a: CommandArgs) -> Result<()> {
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
    let block = cmdblock::encode(&cmd);
    match (a.format, &a.out) {
        (BlockFormat::Bin, Some(p)) => write_atomic(p, &block),
        (BlockFormat::Hex, Some(p)) => write_atomic(p, cmdblock::to_hex(&block).as_bytes()),
        (BlockFormat::Hex, None) => {
            print!("{}", cmdblock::to_hex(&block));
            Ok(())
        }
        (BlockFormat::Bin, None) => Err(Error::invalid(
            "binary output needs -o FILE (or use --format hex)",
        )),
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
    let size = match (&a.image, a.size) {
        (Some(p), _) => Some(
            u32::try_from(read_file(p)?.len())
                .map_err(|_| Error::invalid("file larger than 4 GiB"))?,
        ),
        (None, s) => s,
    };
    let plan = size.map(|s| l.plan(s, a.current.unwrap_or(s)));
    if a.json {
        let v = serde_json::json!({ "layout": l, "plan": plan });
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
            let staging = p.staging.map_or("none".to_string(), |s| {
                format!("0x{s:06X}..0x{:06X}", p.staging_end)
            });
            println!("  update of {} bytes: staged at {staging} (FS_start - roundup4K(size)); running sketch {} bytes", p.update_size, p.current_sketch);
            println!(
                "  OTA: {}; as a sketch: {}",
                if p.ota_fits { "fits" } else { "does NOT fit" },
                if p.sketch_fits { "fits" } else { "too big" }
            );
        }
    }
    if let Some(s) = size {
        l.check_ota(s, a.current.unwrap_or(s))?;
    }
    Ok(())
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
