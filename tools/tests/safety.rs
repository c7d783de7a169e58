//! otatool as a new user meets it: outputs that are links, pipes, devices, read-only or
//! shared files, runs that fail halfway, keys given in the wrong place, and input the
//! bootloader or the Updater would refuse. Every refusal must leave the user's files as
//! they were.

mod common;
use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};





/// Runs otatool under a given umask (through sh, so the test process keeps its own).
fn ota_umask(umask: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(OTATOOL)
        .args(args)
        .output()
        .expect("run sh")
}


/// Exit code `code`, one `otatool: error:` line mentioning `want`, and no temporary name.
fn fails(o: Output, code: i32, want: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("otatool: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "one error line expected: {err}");
    assert!(err.contains(want), "error should mention {want:?}: {err}");
    assert!(
        !err.contains(".otatool-"),
        "temporary file name leaked: {err}"
    );
    err
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn input(dir: &Path) -> PathBuf {
    let f = dir.join("in.bin");
    std::fs::write(&f, b"firmware bytes ".repeat(100)).unwrap();
    f
}

#[test]
fn symlink_output_is_written_through_the_link() {
    let d = tempfile::tempdir().unwrap();
    let inp = input(d.path());
    let real = d.path().join("real.gz");
    std::fs::write(&real, b"old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let sub = d.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let link = sub.join("link.gz");
    // A relative link, resolved against the link's own directory.
    std::os::unix::fs::symlink("../real.gz", &link).unwrap();
    ok(ota(&["gzip", p(&inp), "-o", p(&link)]));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let gz = std::fs::read(&real).unwrap();
    assert_eq!(&gz[..2], &[0x1F, 0x8B]);
    assert_eq!(mode(&real), 0o640, "the replaced file keeps its mode");
    assert_eq!(names(&sub), vec!["link.gz"]);
    // A dangling link creates its target.
    let dangling = d.path().join("dangling");
    std::os::unix::fs::symlink("made-by-link", &dangling).unwrap();
    ok(ota(&["gzip", p(&inp), "-o", p(&dangling)]));
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(d.path().join("made-by-link")).unwrap(), gz);
}

#[test]
fn fifo_directory_and_device_outputs_are_refused_and_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let inp = input(d.path());
    let fifo = d.path().join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let dir = d.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep"), b"k").unwrap();
    let dev = Path::new("/dev/null");
    let dev_before = std::fs::metadata(dev).unwrap();
    // The node the issue saw replaced when run as root.
    let full = Path::new("/dev/full");
    let full_before = std::fs::metadata(full).unwrap();
    for (target, what) in [
        (&fifo, "FIFO"),
        (&dir, "directory"),
        (&dev.to_path_buf(), "device"),
        (&full.to_path_buf(), "device"),
    ] {
        fails(ota(&["gzip", p(&inp), "-o", p(target)]), 1, what);
        fails(
            ota(&[
                "command",
                "--src",
                "0x100000",
                "--len",
                "4096",
                "-o",
                p(target),
            ]),
            1,
            what,
        );
    }
    // A link to a FIFO is refused as the FIFO.
    let link = d.path().join("to-fifo");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    fails(ota(&["gzip", p(&inp), "-o", p(&link)]), 1, "FIFO");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(names(&dir), vec!["keep"]);
    let dev_after = std::fs::metadata(dev).unwrap();
    assert!(dev_after.file_type().is_char_device());
    assert_eq!(
        (dev_after.rdev(), dev_after.ino(), dev_after.mode()),
        (dev_before.rdev(), dev_before.ino(), dev_before.mode())
    );
    let full_after = std::fs::metadata(full).unwrap();
    assert!(full_after.file_type().is_char_device());
    assert_eq!(
        (full_after.rdev(), full_after.ino()),
        (full_before.rdev(), full_before.ino())
    );
    assert_eq!(names(d.path()), vec!["dir", "fifo", "in.bin", "to-fifo"]);
}

/// otatool refuses to replace a read-only file, as root too (root's permission bypass
/// would otherwise replace it silently): the file keeps its contents and mode.
#[test]
fn read_only_output_is_refused_and_keeps_contents_and_mode() {
    let d = tempfile::tempdir().unwrap();
    let inp = input(d.path());
    let ro = d.path().join("ro.gz");
    std::fs::write(&ro, b"precious").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    fails(ota(&["gzip", p(&inp), "-o", p(&ro)]), 1, "read-only");
    assert_eq!(std::fs::read(&ro).unwrap(), b"precious");
    assert_eq!(mode(&ro), 0o444);
    assert_eq!(names(d.path()), vec!["in.bin", "ro.gz"]);
}

#[test]
fn replaced_files_keep_their_mode_and_new_files_follow_the_umask() {
    let d = tempfile::tempdir().unwrap();
    let inp = input(d.path());
    for m in [0o644, 0o600, 0o664] {
        let f = d.path().join(format!("out-{m:o}"));
        std::fs::write(&f, b"old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(m)).unwrap();
        ok(ota_umask("077", &["gzip", p(&inp), "-o", p(&f)]));
        assert_ne!(std::fs::read(&f).unwrap(), b"old");
        assert_eq!(mode(&f), m, "replaced file keeps {m:o}");
    }
    for (umask, want) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
        let f = d.path().join(format!("new-{umask}"));
        ok(ota_umask(umask, &["gzip", p(&inp), "-o", p(&f)]));
        assert_eq!(mode(&f), want, "new file under umask {umask}");
    }
    // A private key is owner-only whatever the umask; its public half follows the umask.
    let key = d.path().join("private.key");
    let public = d.path().join("public.key");
    ok(ota_umask(
        "022",
        &[
            "keygen",
            "--bits",
            "1024",
            "-o",
            p(&key),
            "--pubout",
            p(&public),
        ],
    ));
    assert_eq!((mode(&key), mode(&public)), (0o600, 0o644));
}

#[test]
fn a_failing_multi_output_run_leaves_no_output() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    let inp = input(dp);
    let key = dp.join("k.pem");
    ok(ota(&["keygen", "--bits", "1024", "-o", p(&key)]));
    let missing = dp.join("missing-dir");
    // sign: the legacy output's directory is missing, so the signed file is not written.
    let signed = dp.join("s.signed");
    fails(
        ota(&[
            "sign",
            "--privatekey",
            p(&key),
            "--bin",
            p(&inp),
            "--out",
            p(&signed),
            "--legacy",
            p(&missing.join("l")),
        ]),
        1,
        "missing-dir",
    );
    // keygen: the public key's directory is missing, so no private key is left behind.
    let k2 = dp.join("k2.pem");
    fails(
        ota(&[
            "keygen",
            "--bits",
            "1024",
            "-o",
            p(&k2),
            "--pubout",
            p(&missing.join("x")),
        ]),
        1,
        "does not exist",
    );
    // image --gzip: OUT.gz is a directory, so OUT is not written either.
    let out = dp.join("img.bin");
    std::fs::create_dir(dp.join("img.bin.gz")).unwrap();
    let f = fixtures();
    fails(
        ota(&[
            "image",
            "--bootloader",
            p(&f.join("boot.elf")),
            "--app",
            p(&f.join("app.elf")),
            "-o",
            p(&out),
            "--gzip",
        ]),
        1,
        "directory",
    );
    // An existing output stays as it was when a later output of the run fails.
    std::fs::write(&signed, b"previous").unwrap();
    fails(
        ota(&[
            "sign",
            "--privatekey",
            p(&key),
            "--bin",
            p(&inp),
            "--out",
            p(&signed),
            "--legacy",
            p(&dp.join("img.bin.gz")),
        ]),
        1,
        "directory",
    );
    assert_eq!(std::fs::read(&signed).unwrap(), b"previous");
    // The same file for two outputs.
    fails(
        ota(&[
            "sign",
            "--privatekey",
            p(&key),
            "--bin",
            p(&inp),
            "--out",
            p(&dp.join("same")),
            "--legacy",
            p(&dp.join("./same")),
        ]),
        1,
        "two outputs",
    );
    assert_eq!(names(dp), vec!["img.bin.gz", "in.bin", "k.pem", "s.signed"]);
}

#[test]
fn dash_writes_a_single_stream_to_standard_output() {
    let d = tempfile::tempdir().unwrap();
    let inp = input(d.path());
    let file = d.path().join("f.gz");
    ok(ota(&["gzip", p(&inp), "-o", p(&file)]));
    let o = ota(&["gzip", p(&inp), "-o", "-"]);
    assert!(o.status.success());
    assert_eq!(o.stdout, std::fs::read(&file).unwrap());
    // Status text went to stderr, not into the stream.
    assert!(String::from_utf8_lossy(&o.stderr).contains("bytes"));
    let block = ota(&["command", "--src", "0x100000", "--len", "4096", "-o", "-"]);
    assert!(block.status.success());
    assert_eq!(block.stdout.len(), 128);
    assert_eq!(names(d.path()), vec!["f.gz", "in.bin"]);
}

#[test]
fn keygen_does_not_replace_an_existing_key_without_force() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("private.key");
    std::fs::write(&key, b"the key devices trust").unwrap();
    fails(
        ota(&["keygen", "--bits", "1024", "-o", p(&key)]),
        1,
        "--force",
    );
    assert_eq!(std::fs::read(&key).unwrap(), b"the key devices trust");
    ok(ota(&["keygen", "--bits", "1024", "-o", p(&key), "--force"]));
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("BEGIN PRIVATE KEY"));
}

fn openssl(args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (cargo xtask setup)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The bytes of a signing.py-style header.
fn header_bytes(h: &str) -> Vec<u8> {
    h.lines()
        .filter_map(|l| l.trim().trim_end_matches(',').strip_prefix("0x"))
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect()
}

#[test]
fn pubkey_from_a_private_key_emits_only_the_public_key() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("private.key");
    let public = d.path().join("public.key");
    ok(ota(&[
        "keygen",
        "--bits",
        "1024",
        "-o",
        p(&key),
        "--pubout",
        p(&public),
    ]));
    let want_pem = std::fs::read(&public).unwrap();
    // The private key given where the public one belongs, for every format.
    for (fmt, flag) in [
        ("header", "--publickey"),
        ("pem", "--publickey"),
        ("header", "--privatekey"),
    ] {
        let o = ota(&["pubkey", flag, p(&key), "--format", fmt]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8(o.stdout).unwrap();
        let text = if fmt == "header" {
            assert!(out.contains("#define ARDUINO_SIGNING 1"));
            String::from_utf8(header_bytes(&out)).unwrap()
        } else {
            out
        };
        assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{text}");
        assert!(!text.contains("PRIVATE"), "{text}");
        assert_eq!(text.as_bytes(), &want_pem[..], "{fmt} {flag}");
        if flag == "--publickey" {
            assert!(String::from_utf8_lossy(&o.stderr).contains("PRIVATE key"));
        }
    }
    // Written to a file, the header holds no private material either.
    let h = d.path().join("Updater_Signing.h");
    ok(ota(&[
        "pubkey",
        "--publickey",
        p(&key),
        "--format",
        "header",
        "-o",
        p(&h),
    ]));
    let embedded = header_bytes(&std::fs::read_to_string(&h).unwrap());
    assert_eq!(embedded, want_pem);
}

#[test]
fn ec_and_ed25519_keys_are_refused_with_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    let ec8 = dp.join("ec8.pem");
    let ec_trad = dp.join("ec-trad.pem");
    let ed = dp.join("ed.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        p(&ec8),
    ]);
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        p(&ec_trad),
    ]);
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", p(&ed)]);
    let ec_pub = dp.join("ec-pub.pem");
    let ed_pub = dp.join("ed-pub.pem");
    let ec_der = dp.join("ec.der");
    openssl(&["pkey", "-in", p(&ec8), "-pubout", "-out", p(&ec_pub)]);
    openssl(&["pkey", "-in", p(&ed), "-pubout", "-out", p(&ed_pub)]);
    openssl(&[
        "pkey",
        "-in",
        p(&ec8),
        "-outform",
        "DER",
        "-out",
        p(&ec_der),
    ]);
    let inp = input(dp);
    let before = names(dp);
    for (key, kind) in [
        (&ec8, "EC"),
        (&ec_trad, "EC"),
        (&ed, "Ed25519"),
        (&ec_der, "EC"),
    ] {
        let err = fails(
            ota(&[
                "sign",
                "--privatekey",
                p(key),
                "--bin",
                p(&inp),
                "--out",
                p(&dp.join("o")),
            ]),
            1,
            &format!("{kind} key"),
        );
        assert!(
            err.contains("RSA keys only") && err.contains(p(key)),
            "{err}"
        );
    }
    for (key, kind) in [(&ec_pub, "EC"), (&ed_pub, "Ed25519")] {
        fails(
            ota(&["pubkey", "--publickey", p(key), "--format", "header"]),
            1,
            &format!("{kind} key"),
        );
        fails(
            ota(&["verify", "--publickey", p(key), "--bin", p(&inp)]),
            1,
            "RSA keys only",
        );
    }
    assert_eq!(names(dp), before);
}

#[test]
fn commands_the_bootloader_refuses_are_refused_unless_forced() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cmd.bin");
    for (args, want) in [
        (vec!["--src", "0x100000", "--len", "0"], "--len is 0"),
        (vec!["--src", "0x100000"], "--len is 0"),
        (
            vec!["--src", "0x100010", "--len", "4096"],
            "--src 0x100010 is not 4 KiB aligned",
        ),
        (
            vec!["--src", "0x100000", "--dst", "0x800", "--len", "4096"],
            "--dst 0x800 is not 4 KiB aligned",
        ),
    ] {
        let mut full = vec!["command", "-o", p(&out)];
        full.extend(&args);
        fails(ota(&full), 1, want);
        assert!(!out.exists());
        // --force (bench use) writes it, with the values asked for.
        full.push("--force");
        ok(ota(&full));
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 128);
        std::fs::remove_file(&out).unwrap();
    }
    ok(ota(&[
        "command",
        "--src",
        "0x100000",
        "--len",
        "1",
        "-o",
        p(&out),
    ]));
}

#[test]
fn layout_refuses_size_zero_and_sizes_without_a_layout() {
    for (args, want) in [
        (
            vec!["layout", "4M2M", "--size", "0"],
            "refused by the Updater",
        ),
        (vec!["layout", "--size", "1000"], "<NAME>"),
        (vec!["layout", "--image", "x.bin"], "<NAME>"),
        (vec!["layout", "4M2M", "--current", "1000"], "--size"),
        (vec!["info", "x.bin", "--current", "1000"], "--layout"),
    ] {
        let o = ota(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn image_warns_when_flash_size_and_layout_disagree() {
    let d = tempfile::tempdir().unwrap();
    let f = fixtures();
    let out = d.path().join("x.bin");
    let (boot, app) = (f.join("boot.elf"), f.join("app.elf"));
    let base = [
        "image",
        "--bootloader",
        p(&boot),
        "--app",
        p(&app),
        "-o",
        p(&out),
    ];
    let mut args = base.to_vec();
    args.extend(["-s", "1M", "--layout", "4M2M"]);
    let o = ota(&args);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: flash size 1M")
            && err.contains("layout 4M2M, which is for 4M flash"),
        "{err}"
    );
    let mut args = base.to_vec();
    args.extend(["-s", "4M", "--layout", "4M2M"]);
    let o = ota(&args);
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The fixture app ELF as an old core would have built it: no `__crc_len`/`__crc_val`
/// symbols, and (when `code`) real bytes instead of the zero words at 0x40201010.
fn old_core_elf(dir: &Path, code: bool) -> PathBuf {
    let mut elf = std::fs::read(fixtures().join("app.elf")).unwrap();
    for (from, to) in [
        (&b"__crc_len\0"[..], &b"__old_len\0"[..]),
        (b"__crc_val\0", b"__old_val\0"),
    ] {
        let at = elf
            .windows(from.len())
            .position(|w| w == from)
            .expect("symbol name in strtab");
        elf[at..at + to.len()].copy_from_slice(to);
    }
    if code {
        let parsed = tools::image::parse_elf(&elf).unwrap();
        let irom = parsed
            .sections
            .iter()
            .find(|s| s.name == ".irom0.text")
            .unwrap();
        assert_eq!(irom.addr, 0x4020_1010);
        let off = irom.data.unwrap().as_ptr() as usize - elf.as_ptr() as usize;
        drop(parsed);
        elf[off..off + 8].copy_from_slice(&[0x12, 0xC1, 0xF0, 0x09, 0x01, 0xC9, 0x11, 0x0D]);
    }
    let f = dir.join(if code { "old-code.elf" } else { "old.elf" });
    std::fs::write(&f, elf).unwrap();
    f
}

#[test]
fn an_elf_without_crc_words_is_warned_about_and_explained_by_info() {
    let d = tempfile::tempdir().unwrap();
    let f = fixtures();
    let boot = f.join("boot.elf");
    // Symbols gone, words still zero: same bytes as elf2bin, plus a warning.
    let old = old_core_elf(d.path(), false);
    let out = d.path().join("old.bin");
    let o = ota(&[
        "image",
        "--bootloader",
        p(&boot),
        "--app",
        p(&old),
        "-o",
        p(&out),
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning:") && err.contains("no __crc_len/__crc_val"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(f.join("expected-dio-40-4M.bin")).unwrap()
    );
    // Real code at 0x40201010: overwritten, and info says why the checksum is wrong.
    let old = old_core_elf(d.path(), true);
    let o = ota(&[
        "image",
        "--bootloader",
        p(&boot),
        "--app",
        p(&old),
        "-o",
        p(&out),
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no __crc_len/__crc_val"));
    let text = ok(ota(&["info", p(&out)]));
    assert!(
        text.contains("checksum") && text.contains("INVALID"),
        "{text}"
    );
    assert!(text.contains("had no __crc_len/__crc_val"), "{text}");
    // The fixture itself gets no warning.
    let o = ota(&[
        "image",
        "--bootloader",
        p(&boot),
        "--app",
        p(&f.join("app.elf")),
        "-o",
        p(&out),
    ]);
    assert!(o.status.success() && o.stderr.is_empty());
}

#[test]
fn messages_name_the_file_and_say_what_is_wrong() {
    let d = tempfile::tempdir().unwrap();
    let f = fixtures();
    let app = std::fs::read(f.join("app.elf")).unwrap();
    let out = d.path().join("o.bin");
    let boot = f.join("boot.elf");
    for cut in [30, 3000, app.len() - 100] {
        let t = d.path().join(format!("cut{cut}.elf"));
        std::fs::write(&t, &app[..cut]).unwrap();
        let err = fails(
            ota(&[
                "image",
                "--bootloader",
                p(&boot),
                "--app",
                p(&t),
                "-o",
                p(&out),
            ]),
            1,
            "ELF is truncated",
        );
        assert!(err.contains(&format!("cut{cut}.elf")), "{err}");
        assert!(!err.contains("Invalid ELF"), "{err}");
    }
    fails(
        ota(&["info", p(&f.join("app.elf"))]),
        1,
        "this is an ELF file",
    );
    // A bootloader image one block too big for sector 0: the limit is 4080 bytes.
    let big = tools::image::build_image(
        &tools::image::FlashParams::default(),
        0x4010_F000,
        &[(0x4010_F000, &[0u8; 4072])],
    )
    .unwrap();
    assert_eq!(big.len(), 4096);
    let big_bin = d.path().join("big-boot.bin");
    std::fs::write(&big_bin, big).unwrap();
    fails(
        ota(&[
            "image",
            "--bootloader",
            p(&big_bin),
            "--app",
            p(&f.join("app.elf")),
            "-o",
            p(&out),
        ]),
        1,
        "at most 4080",
    );
    assert!(!out.exists());
}

#[test]
fn every_help_entry_says_what_it_does_and_exit_codes_are_documented() {
    let top = ok(ota(&["--help"]));
    assert!(
        top.contains("Exit codes: 0 success, 1 failure") && top.contains("3 the image"),
        "{top}"
    );
    for sub in [
        "image", "info", "gzip", "keygen", "sign", "verify", "pubkey", "command", "layout",
        "elf2bin", "signing",
    ] {
        let h = ok(ota(&[sub, "-h"]));
        let mut entries = 0;
        for line in h.lines() {
            let t = line.trim_start();
            if !(line.starts_with("  ")
                && (t.starts_with('-') || t.starts_with('<') || t.starts_with('[')))
            {
                continue;
            }
            entries += 1;
            // "  -o, --out <OUT>   Output ..." : something after the flag column.
            let described = t.split("  ").filter(|s| !s.trim().is_empty()).count() >= 2;
            assert!(described, "{sub}: help entry without text: {line:?}");
        }
        assert!(entries >= 2, "{sub}: {h}");
    }
}
