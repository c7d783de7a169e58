//! otatool against its real peers: elf2bin.py's committed output, esptool, openssl, gzip.
//! The peers must be installed (`cargo xtask setup`: pip `esptool`, Debian `openssl`, `gzip`);
//! a missing peer fails the test rather than skipping it.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const OTATOOL: &str = env!("CARGO_BIN_EXE_otatool");


fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}); install it (see cargo xtask setup)"))
}

fn ota(args: &[&str]) -> Output {
    run(OTATOOL, args)
}


/// The command failed with exit code 1 and one `otatool: error:` line naming `want`.
fn fails_with(o: Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "expected failure, stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one error line expected: {err}");
    assert!(err.starts_with("otatool: error: "), "{err}");
    assert!(err.contains(want), "error should mention {want:?}: {err}");
}

/// Nothing but `keep` in `dir`: no output and no temporary file left behind.
fn only_files(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want);
}


const PARAMS: [(&str, &str, &str); 3] = [
    ("dio", "40", "4M"),
    ("qio", "80", "1M"),
    ("dout", "26", "16M"),
];

fn build_image(dir: &Path, mode: &str, freq: &str, size: &str) -> PathBuf {
    let out = dir.join(format!("{mode}-{freq}-{size}.bin"));
    let f = fixtures();
    ok(ota(&[
        "image",
        "--bootloader",
        p(&f.join("boot.elf")),
        "--app",
        p(&f.join("app.elf")),
        "--flash-mode",
        mode,
        "--flash-freq",
        freq,
        "--flash-size",
        size,
        "-o",
        p(&out),
    ]));
    out
}

#[test]
fn image_is_byte_identical_to_elf2bin() {
    let d = tmpdir();
    for (m, f, s) in PARAMS {
        let out = build_image(d.path(), m, f, s);
        let got = std::fs::read(&out).unwrap();
        let want = std::fs::read(fixtures().join(format!("expected-{m}-{f}-{s}.bin"))).unwrap();
        assert_eq!(got.len(), want.len(), "{m} {f} {s}");
        assert!(
            got == want,
            "otatool image differs from elf2bin.py's output for {m} {f} {s}"
        );
    }
}

#[test]
fn library_matches_cli_and_accepts_a_built_bootloader_bin() {
    use tools::image::{arduino_image, image_from_sections, FlashParams, BOOTLOADER_SECTIONS};
    let f = fixtures();
    let boot = std::fs::read(f.join("boot.elf")).unwrap();
    let app = std::fs::read(f.join("app.elf")).unwrap();
    let params = FlashParams::default();
    let want = std::fs::read(f.join("expected-dio-40-4M.bin")).unwrap();
    assert_eq!(arduino_image(&boot, &app, &params).unwrap(), want);
    // The bootloader as an already built image gives the same flash image.
    let boot_bin = image_from_sections(&boot, &BOOTLOADER_SECTIONS, &params).unwrap();
    assert_eq!(arduino_image(&boot_bin, &app, &params).unwrap(), want);
}

/// What esptool's `image-info` says about one image.
#[derive(Debug, PartialEq)]
struct EsptoolView {
    entry: u32,
    segments: Vec<(u32, u32)>, // (load address, length)
    flash_size: String,
    flash_freq: String,
    flash_mode: String,
    checksum_valid: bool,
}

fn esptool_info(file: &Path) -> EsptoolView {
    let out = ok(run(
        "esptool",
        &["--chip", "esp8266", "image-info", p(file)],
    ));
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("esptool output has no {name}: {out}"))
            .trim()
            .to_string()
    };
    let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    let mut segments = Vec::new();
    let mut in_table = false;
    for l in out.lines() {
        if l.starts_with("-------") {
            in_table = true;
            continue;
        }
        if in_table {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 4 || w[0].parse::<u32>().is_err() {
                in_table = false;
                continue;
            }
            segments.push((hex(w[2]), hex(w[1])));
        }
    }
    let checksum = field("Checksum:");
    EsptoolView {
        entry: hex(&field("Entry point:")),
        segments,
        flash_size: field("Flash size:"),
        flash_freq: field("Flash freq:"),
        flash_mode: field("Flash mode:"),
        checksum_valid: checksum.contains("(valid)"),
    }
}

/// The same view from `otatool info --json`'s image object. esptool pads every segment's
/// data to 4 bytes when it reads it, so its lengths are ours rounded up to 4.
fn otatool_view(img: &Value) -> EsptoolView {
    let n = |v: &Value| v.as_u64().unwrap() as u32;
    EsptoolView {
        entry: n(&img["entry"]),
        segments: img["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (n(&s["addr"]), n(&s["len"]).div_ceil(4) * 4))
            .collect(),
        flash_size: format!("{}B", img["flash_size"].as_str().unwrap()),
        flash_freq: img["flash_freq"].as_str().unwrap().to_string(),
        flash_mode: img["flash_mode"].as_str().unwrap().to_uppercase(),
        checksum_valid: img["checksum_valid"].as_bool().unwrap(),
    }
}

fn info_json(file: &Path) -> Value {
    serde_json::from_str(&ok(ota(&["info", "--json", p(file)]))).unwrap()
}

#[test]
fn esptool_parses_every_image_and_agrees_with_info() {
    let d = tmpdir();
    for (m, f, s) in PARAMS {
        let full = build_image(d.path(), m, f, s);
        let info = info_json(&full);
        assert_eq!(info["kind"], "flash_image");
        // esptool reads the image at 0x0: the bootloader slot.
        let boot = esptool_info(&full);
        assert_eq!(
            boot,
            otatool_view(&info["bootloader"]),
            "bootloader {m} {f} {s}"
        );
        assert!(boot.checksum_valid);
        // The app image, as esptool sees it at 0x1000.
        let bytes = std::fs::read(&full).unwrap();
        let app_file = d.path().join("app-only.bin");
        std::fs::write(&app_file, &bytes[0x1000..]).unwrap();
        let app = esptool_info(&app_file);
        assert_eq!(app, otatool_view(&info["app"]), "app {m} {f} {s}");
        assert_eq!(app.segments.len(), 5);
        // elf2bin's stale app checksum, reproduced and explained.
        assert!(
            !app.checksum_valid,
            "elf2bin's app checksum is stale once the CRC is written"
        );
        assert!(info["app"]["checksum_note"]
            .as_str()
            .unwrap()
            .contains("stale"));
        assert_eq!(info["crc"]["valid"], true);
        assert_eq!(
            info["crc"]["stored_len"].as_u64().unwrap() as usize,
            bytes.len()
        );
    }
}

#[test]
fn esptool_parses_image_from_elf() {
    use tools::image::{image_from_elf, FlashParams};
    let d = tmpdir();
    for name in ["boot.elf", "app.elf"] {
        let elf = std::fs::read(fixtures().join(name)).unwrap();
        let img = image_from_elf(&elf, &FlashParams::default()).unwrap();
        let file = d.path().join(format!("{name}.bin"));
        std::fs::write(&file, &img).unwrap();
        let view = esptool_info(&file);
        assert_eq!(view, otatool_view(&info_json(&file)["image"]), "{name}");
        assert!(view.checksum_valid, "{name}");
        // Ascending addresses; .bss (NOBITS) left out.
        let addrs: Vec<u32> = view.segments.iter().map(|s| s.0).collect();
        let mut sorted = addrs.clone();
        sorted.sort();
        assert_eq!(addrs, sorted);
        assert!(
            !addrs.contains(&0x3FFE_8018),
            "NOBITS .bss must not be a segment"
        );
    }
}

fn openssl(args: &[&str]) -> Output {
    run("openssl", args)
}

fn split_signed(signed: &[u8]) -> (&[u8], &[u8]) {
    let n = signed.len();
    let len = u32::from_le_bytes(signed[n - 4..].try_into().unwrap()) as usize;
    (&signed[..n - 4 - len], &signed[n - 4 - len..n - 4])
}

#[test]
fn openssl_accepts_signatures_and_otatool_accepts_openssl_keys() {
    let d = tmpdir();
    let dp = d.path();
    let image = build_image(dp, "dio", "40", "4M");
    let gz = dp.join("image.bin.gz");
    ok(ota(&["gzip", p(&image), "-o", p(&gz)]));
    // openssl's default (PKCS#8) key, the traditional PKCS#1 form, and our own keygen.
    let k8 = dp.join("k8.pem");
    let k1 = dp.join("k1.pem");
    let kown = dp.join("own.pem");
    ok(openssl(&["genrsa", "-out", p(&k8), "2048"]));
    ok(openssl(&["genrsa", "-traditional", "-out", p(&k1), "2048"]));
    assert!(std::fs::read_to_string(&k1)
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    ok(ota(&["keygen", "-o", p(&kown)]));
    for (i, key) in [&k8, &k1, &kown].into_iter().enumerate() {
        let public = dp.join(format!("pub{i}.pem"));
        ok(openssl(&[
            "rsa",
            "-in",
            p(key),
            "-pubout",
            "-out",
            p(&public),
        ]));
        for payload_file in [&image, &gz] {
            let signed = dp.join(format!("s{i}.signed"));
            let legacy = dp.join(format!("s{i}.legacy"));
            ok(ota(&[
                "sign",
                "--privatekey",
                p(key),
                "--bin",
                p(payload_file),
                "--out",
                p(&signed),
                "--legacy",
                p(&legacy),
            ]));
            let payload = std::fs::read(payload_file).unwrap();
            let bytes = std::fs::read(&signed).unwrap();
            let (pl, sig) = split_signed(&bytes);
            assert_eq!(pl, &payload[..]);
            assert_eq!(sig.len(), 256);
            let sig_file = dp.join("sig");
            let pl_file = dp.join("payload");
            std::fs::write(&sig_file, sig).unwrap();
            std::fs::write(&pl_file, pl).unwrap();
            let v = ok(openssl(&[
                "dgst",
                "-sha256",
                "-verify",
                p(&public),
                "-signature",
                p(&sig_file),
                p(&pl_file),
            ]));
            assert!(v.contains("Verified OK"), "{v}");
            // PKCS#1 v1.5 is deterministic: the same bytes openssl would have made.
            let theirs = openssl(&["dgst", "-sha256", "-sign", p(key), p(&pl_file)]);
            assert_eq!(ok_bytes(theirs), sig);
            // Legacy: the signature recovers the bare SHA-256 digest.
            let lbytes = std::fs::read(&legacy).unwrap();
            let (lpl, lsig) = split_signed(&lbytes);
            assert_eq!(lpl, &payload[..]);
            std::fs::write(&sig_file, lsig).unwrap();
            let rec = ok_bytes(openssl(&[
                "pkeyutl",
                "-verifyrecover",
                "-pubin",
                "-inkey",
                p(&public),
                "-in",
                p(&sig_file),
            ]));
            let digest = ok_bytes(openssl(&["dgst", "-sha256", "-binary", p(&pl_file)]));
            assert_eq!(rec, digest);
            // otatool verify agrees on both, and info names the scheme.
            assert!(ok(ota(&[
                "verify",
                "--publickey",
                p(&public),
                "--bin",
                p(&signed)
            ]))
            .contains("sha256"));
            assert!(ok(ota(&[
                "verify",
                "--publickey",
                p(&public),
                "--bin",
                p(&legacy)
            ]))
            .contains("legacy"));
            let info: Value = serde_json::from_str(&ok(ota(&[
                "info",
                "--json",
                "--pubkey",
                p(&public),
                p(&signed),
            ])))
            .unwrap();
            assert_eq!(info["kind"], "signed");
            assert_eq!(info["signature_len"], 256);
            assert_eq!(
                info["contents"]["kind"],
                if payload_file == &gz {
                    "gzip"
                } else {
                    "flash_image"
                }
            );
        }
    }
}

fn ok_bytes(o: Output) -> Vec<u8> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn pubkey_header_is_signing_py_form() {
    let d = tmpdir();
    let key = d.path().join("k.pem");
    let public = d.path().join("public.key");
    ok(ota(&["keygen", "-o", p(&key), "--pubout", p(&public)]));
    let header = ok(ota(&[
        "pubkey",
        "--publickey",
        p(&public),
        "--format",
        "header",
    ]));
    let pem = std::fs::read(&public).unwrap();
    assert!(header.starts_with("#include <pgmspace.h>\n#define ARDUINO_SIGNING 1\nstatic const char signing_pubkey[] PROGMEM = {\n"));
    assert!(header.ends_with("\n};\n"));
    let bytes: Vec<u8> = header
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').strip_prefix("0x"))
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(bytes, pem);
    let rust = ok(ota(&[
        "pubkey",
        "--privatekey",
        p(&key),
        "--format",
        "rust",
    ]));
    assert!(rust.contains("pub const SIGNING_KEY_N: [u8; 256]"));
    assert!(rust.contains("pub const SIGNING_KEY_E: [u8; 3] = [\n    0x01, 0x00, 0x01,\n];"));
}

fn gzip9_len(file: &Path) -> usize {
    ok_bytes(run("gzip", &["-9", "-c", p(file)])).len()
}

fn check_gzip(dir: &Path, input: &Path) -> (usize, usize) {
    let out = dir.join("out.gz");
    ok(ota(&["gzip", p(input), "-o", p(&out)]));
    let back = ok_bytes(run("gzip", &["-d", "-c", p(&out)]));
    assert!(
        back == std::fs::read(input).unwrap(),
        "gzip -d does not give back {}",
        input.display()
    );
    let ours = std::fs::metadata(&out).unwrap().len() as usize;
    let theirs = gzip9_len(input);
    assert!(
        ours <= theirs,
        "{}: otatool gzip {ours} > gzip -9 {theirs}",
        input.display()
    );
    (ours, theirs)
}

#[test]
fn gzip_roundtrips_with_system_gzip_and_beats_gzip9() {
    let d = tmpdir();
    let image = build_image(d.path(), "dio", "40", "4M");
    check_gzip(d.path(), &image);
    // A large real binary that the project's toolchain installs anyway (1.6 MB).
    let big = Path::new("/usr/bin/xtensa-lx106-elf-ld");
    assert!(
        big.exists(),
        "binutils-xtensa-lx106 is needed (cargo xtask setup)"
    );
    let (ours, theirs) = check_gzip(d.path(), big);
    eprintln!(
        "GZIP {} ratio_vs_gzip9={:.3}",
        big.display(),
        ours as f64 / theirs as f64
    );
    // And what info makes of a gzip'd flash image.
    let gz = d.path().join("img.gz");
    ok(ota(&["gzip", p(&image), "-o", p(&gz)]));
    let info = info_json(&gz);
    assert_eq!(info["kind"], "gzip");
    assert_eq!(info["trailer_valid"], true);
    assert_eq!(
        info["isize"].as_u64().unwrap(),
        std::fs::metadata(&image).unwrap().len()
    );
    assert_eq!(info["contents"]["kind"], "flash_image");
}

#[test]
fn command_block_roundtrips_through_info() {
    let d = tmpdir();
    let bin = d.path().join("cmd.bin");
    ok(ota(&[
        "command",
        "--src",
        "0x100000",
        "--dst",
        "0",
        "--len",
        "0x50000",
        "-o",
        p(&bin),
    ]));
    let b = std::fs::read(&bin).unwrap();
    assert_eq!(b.len(), 128);
    assert_eq!(&b[..8], &[0x00, 0x10, 0x00, 0xEB, 1, 0, 0, 0]);
    assert_eq!(&b[124..], &0x0A5D_70E6u32.to_le_bytes()); // esp8266-compat.md §1 test vector
    let info = info_json(&bin);
    assert_eq!(info["kind"], "command");
    assert_eq!(info["valid"], true);
    assert_eq!(info["src"], 0x100000);
    // Extensions need the extension image that carries them out.
    fails_with(
        ota(&["command", "--trial", "--src", "0x80000", "--len", "1000"]),
        "--extension",
    );
    let ext = d.path().join("extension.bin");
    std::fs::write(&ext, updater_extension()).unwrap();
    let hex = ok(ota(&[
        "command",
        "--trial",
        "--crc",
        "0xDEADBEEF",
        "--src",
        "0x80000",
        "--len",
        "1000",
        "--extension",
        p(&ext),
        "--format",
        "hex",
    ]));
    assert_eq!(hex.trim().len(), 256);
    let hex_file = d.path().join("cmd.hex");
    std::fs::write(&hex_file, &hex).unwrap();
    let info = info_json(&hex_file);
    assert_eq!(info["magic"], 0xEB00_100Bu32);
    assert_eq!(info["extensions"], serde_json::json!(["trial", "crc", "extension"]));
    assert_eq!(info["args"][5], 0xDEAD_BEEFu32);
    // Staged where the updater puts it: below the journal sector below --src.
    let at = 0x80000 - 4096 - (updater_extension().len() as u64).next_multiple_of(4096);
    assert_eq!(info["args"][6], at);
    assert_eq!(info["args"][7], bootloader::crc::gzip(0, &updater_extension()));
    // Something that is not an extension image is refused.
    fails_with(
        ota(&["command", "--trial", "--src", "0x80000", "--len", "1000", "--extension", p(&bin)]),
        p(&bin),
    );
}

/// The extension image the updater embeds (what `cargo xtask build` makes).
fn updater_extension() -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../updater/extension.bin")).unwrap()
}

#[test]
fn info_recognises_the_extension_image() {
    let d = tempfile::tempdir().unwrap();
    let ext = d.path().join("extension.bin");
    std::fs::write(&ext, updater_extension()).unwrap();
    let out = ok(ota(&["info", p(&ext)]));
    assert!(out.contains("ESP8266 extension image"), "{out}");
    assert!(out.contains(&format!("CRC-32 0x{:08X}", bootloader::crc::gzip(0, &updater_extension()))), "{out}");
}

#[test]
fn layout_reports_staging_and_refuses_what_does_not_fit() {
    let v: Value =
        serde_json::from_str(&ok(ota(&["layout", "4M2M", "--size", "300000", "--json"]))).unwrap();
    assert_eq!(v["layout"]["fs_start"], 0x200000);
    assert_eq!(v["fit"]["staging"], 0x200000 - 303104);
    assert_eq!(v["fit"]["fits"], true);
    // Does not fit: exit code 3, one error line.
    let o = ota(&["layout", "1M64", "--size", "500K"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not fit layout 1M64"));
    let o = ota(&["layout", "4M2M", "--size", "1100000", "--current", "1000"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("more than the 1048576 a sketch may have"));
    fails_with(ota(&["layout", "3M"]), "unknown layout");
}

#[test]
fn errors_are_one_line_nonzero_and_leave_no_output() {
    let d = tmpdir();
    let dp = d.path();
    let f = fixtures();
    let app = std::fs::read(f.join("app.elf")).unwrap();
    let trunc = dp.join("trunc.elf");
    std::fs::write(&trunc, &app[..app.len() / 2]).unwrap();
    let garbage = dp.join("garbage.bin");
    std::fs::write(
        &garbage,
        b"this is not an image at all, just text\n".repeat(10),
    )
    .unwrap();
    let out = dp.join("out.bin");
    let boot = f.join("boot.elf");
    let keep = ["trunc.elf", "garbage.bin"];

    // Truncated ELF.
    fails_with(
        ota(&[
            "image",
            "--bootloader",
            p(&boot),
            "--app",
            p(&trunc),
            "-o",
            p(&out),
        ]),
        "trunc.elf",
    );
    only_files(dp, &keep);
    // Wrong magic: a bootloader that is neither ELF nor image; info on garbage.
    fails_with(
        ota(&[
            "image",
            "--bootloader",
            p(&garbage),
            "--app",
            p(&f.join("app.elf")),
            "-o",
            p(&out),
        ]),
        "magic",
    );
    fails_with(ota(&["info", p(&garbage)]), "no known magic");
    // Unreadable file.
    fails_with(
        ota(&[
            "image",
            "--bootloader",
            p(&boot),
            "--app",
            p(&dp.join("missing.elf")),
            "-o",
            p(&out),
        ]),
        "missing.elf",
    );
    fails_with(
        ota(&["gzip", p(&dp.join("missing")), "-o", p(&out)]),
        "No such file",
    );
    only_files(dp, &keep);
    // Too big for a layout: the fixture app is tiny, so use an app ELF of the wrong kind
    // (the bootloader ELF lacks .irom0.text) and a flash image against the smallest layout.
    fails_with(
        ota(&[
            "image",
            "--bootloader",
            p(&boot),
            "--app",
            p(&boot),
            "-o",
            p(&out),
        ]),
        "no section .irom0.text",
    );
    let big = dp.join("big.bin");
    std::fs::write(&big, vec![0xFFu8; 600_000]).unwrap();
    fails_with(
        ota(&["layout", "512K", "--image", p(&big)]),
        "not an update image",
    );
    std::fs::remove_file(&big).unwrap();
    only_files(dp, &keep);

    // Key mismatch: sign with one key while checking against another; verify with the wrong key.
    let k1 = dp.join("k1.pem");
    let k2 = dp.join("k2.pem");
    let pub2 = dp.join("pub2.pem");
    ok(ota(&["keygen", "-o", p(&k1)]));
    ok(ota(&["keygen", "-o", p(&k2), "--pubout", p(&pub2)]));
    let signed = dp.join("s.signed");
    fails_with(
        ota(&[
            "sign",
            "--privatekey",
            p(&k1),
            "--bin",
            p(&garbage),
            "--out",
            p(&signed),
            "--publickey",
            p(&pub2),
        ]),
        "does not match",
    );
    let keep = ["trunc.elf", "garbage.bin", "k1.pem", "k2.pem", "pub2.pem"];
    only_files(dp, &keep);
    ok(ota(&[
        "sign",
        "--privatekey",
        p(&k1),
        "--bin",
        p(&garbage),
        "--out",
        p(&signed),
    ]));
    fails_with(
        ota(&["verify", "--publickey", p(&pub2), "--bin", p(&signed)]),
        "does not verify",
    );
    fails_with(
        ota(&["info", "--pubkey", p(&pub2), p(&signed)]),
        "no known magic",
    );
    // A public key where a private one is needed.
    fails_with(
        ota(&[
            "sign",
            "--privatekey",
            p(&pub2),
            "--bin",
            p(&garbage),
            "--out",
            p(&out),
        ]),
        "public key",
    );
    assert!(!out.exists());

    // A failing command never replaces an existing output with a partial one.
    std::fs::write(&out, b"previous").unwrap();
    fails_with(
        ota(&[
            "image",
            "--bootloader",
            p(&boot),
            "--app",
            p(&trunc),
            "-o",
            p(&out),
        ]),
        "trunc.elf",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}
