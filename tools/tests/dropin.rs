//! `otatool elf2bin` and `otatool signing` against the Arduino core's own tools: the
//! outputs elf2bin.py and signing.py wrote (committed in tests/fixtures/), and the
//! platform.local.txt lines tools/README.md tells users to install, run as the IDE runs them.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;





fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn elf2bin_is_byte_identical_with_long_and_short_options() {
    let d = tempfile::tempdir().unwrap();
    let f = fixtures();
    let (boot, app) = (f.join("boot.elf"), f.join("app.elf"));
    for (m, fr, s) in [
        ("dio", "40", "4M"),
        ("qio", "80", "1M"),
        ("dout", "26", "16M"),
    ] {
        let want = read(&f.join(format!("expected-{m}-{fr}-{s}.bin")));
        let out = d.path().join(format!("{m}.bin"));
        ok(ota(&[
            "elf2bin",
            "--eboot",
            p(&boot),
            "--app",
            p(&app),
            "--flash_mode",
            m,
            "--flash_freq",
            fr,
            "--flash_size",
            s,
            "--path",
            "/no/toolchain/here/bin",
            "--out",
            p(&out),
        ]));
        assert!(
            read(&out) == want,
            "elf2bin {m} {fr} {s} (long options) differs from elf2bin.py"
        );
        std::fs::remove_file(&out).unwrap();
        ok(ota(&[
            "elf2bin",
            "-e",
            p(&boot),
            "-a",
            p(&app),
            "-m",
            m,
            "-f",
            fr,
            "-s",
            s,
            "-p",
            "/x",
            "-o",
            p(&out),
        ]));
        assert!(
            read(&out) == want,
            "elf2bin {m} {fr} {s} (short options) differs from elf2bin.py"
        );
    }
    // -g Arduino: OUT and OUT.gz; -g PIO: OUT is the gzip, OUT.orig the image.
    let want = read(&f.join("expected-dio-40-4M.bin"));
    let base = [
        "elf2bin",
        "-e",
        p(&boot),
        "-a",
        p(&app),
        "-m",
        "dio",
        "-f",
        "40",
        "-s",
        "4M",
    ];
    let ard = d.path().join("ard.bin");
    let mut args = base.to_vec();
    args.extend(["-o", p(&ard), "-g", "Arduino"]);
    ok(ota(&args));
    assert!(read(&ard) == want);
    let gz = read(&d.path().join("ard.bin.gz"));
    let back = tools::gzip::inspect(&gz).unwrap();
    assert!(back.data == want && back.trailer_valid);
    let pio = d.path().join("pio.bin");
    let mut args = base.to_vec();
    args.extend(["-o", p(&pio), "-g", "PIO"]);
    ok(ota(&args));
    assert!(read(&d.path().join("pio.bin.orig")) == want);
    assert_eq!(tools::gzip::inspect(&read(&pio)).unwrap().data, want);
    // elf2bin.py's choices only: esptool spellings are refused as usage errors.
    let no = d.path().join("no.bin");
    let mut args = base.to_vec();
    args[10] = "4MB";
    args.extend(["-o", p(&no)]);
    assert_eq!(ota(&args).status.code(), Some(2));
    assert!(!no.exists());
}

#[test]
fn signing_header_mode_matches_signing_py_with_and_without_a_key() {
    let d = tempfile::tempdir().unwrap();
    let s = fixtures().join("signing");
    // With public.key; the build's core/ directory does not exist yet (signing.py makes it).
    let h = d.path().join("build/core/Updater_Signing.h");
    let o = ota(&[
        "signing",
        "--mode",
        "header",
        "--publickey",
        p(&s.join("public.key")),
        "--out",
        p(&h),
    ]);
    ok(o.clone());
    assert_eq!(read(&h), read(&s.join("expected-Updater_Signing.h")));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Enabling binary signing\n"
    );
    // Run again with the same key: the file is left alone (same inode, so the core is
    // not rebuilt), as signing.py leaves it.
    let ino = std::fs::metadata(&h).unwrap().ino();
    ok(ota(&[
        "signing",
        "-m",
        "header",
        "-p",
        p(&s.join("public.key")),
        "-o",
        p(&h),
    ]));
    assert_eq!(std::fs::metadata(&h).unwrap().ino(), ino);
    // Without public.key: signing off, quietly, exit 0; the changed header is rewritten.
    let o = ota(&[
        "signing",
        "--mode",
        "header",
        "--publickey",
        p(&d.path().join("public.key")),
        "--out",
        p(&h),
    ]);
    ok(o.clone());
    assert!(o.stderr.is_empty());
    assert_eq!(read(&h), read(&s.join("expected-Updater_Signing-nokey.h")));
    assert_ne!(std::fs::metadata(&h).unwrap().ino(), ino);
}

#[test]
fn signing_header_mode_refuses_a_private_key() {
    let d = tempfile::tempdir().unwrap();
    let s = fixtures().join("signing");
    let h = d.path().join("Updater_Signing.h");
    let o = ota(&[
        "signing",
        "--mode",
        "header",
        "--publickey",
        p(&s.join("private.key")),
        "--out",
        p(&h),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("PRIVATE key") && err.contains("private.key"),
        "{err}"
    );
    assert!(names(d.path()).is_empty());
}

#[test]
fn signing_sign_mode_matches_signing_py_and_skips_without_a_key() {
    let d = tempfile::tempdir().unwrap();
    let s = fixtures().join("signing");
    let bin = fixtures().join("expected-dio-40-4M.bin");
    let (signed, legacy) = (
        d.path().join("x.bin.signed"),
        d.path().join("x.bin.legacy_sig"),
    );
    let o = ota(&[
        "signing",
        "--mode",
        "sign",
        "--privatekey",
        p(&s.join("private.key")),
        "--bin",
        p(&bin),
        "--out",
        p(&signed),
        "--legacy",
        p(&legacy),
    ]);
    ok(o.clone());
    assert!(
        read(&signed) == read(&s.join("expected-dio-40-4M.bin.signed")),
        "signed file differs from signing.py's"
    );
    assert!(
        read(&legacy) == read(&s.join("expected-dio-40-4M.bin.legacy_sig")),
        "legacy file differs from signing.py's"
    );
    std::fs::remove_file(&legacy).unwrap();
    // Short options, no --legacy.
    ok(ota(&[
        "signing",
        "-m",
        "sign",
        "-s",
        p(&s.join("private.key")),
        "-b",
        p(&bin),
        "-o",
        p(&signed),
    ]));
    assert!(read(&signed) == read(&s.join("expected-dio-40-4M.bin.signed")));
    std::fs::remove_file(&signed).unwrap();
    // No private.key: nothing signed, nothing said, exit 0.
    let o = ota(&[
        "signing",
        "--mode",
        "sign",
        "--privatekey",
        p(&d.path().join("private.key")),
        "--bin",
        p(&bin),
        "--out",
        p(&signed),
        "--legacy",
        p(&legacy),
    ]);
    ok(o.clone());
    assert!(o.stderr.is_empty() && o.stdout.is_empty());
    assert!(names(d.path()).is_empty());
    // signing.py's argument rules: a mode is required and must be header or sign.
    assert_eq!(
        ota(&["signing", "--mode", "verify", "--out", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        ota(&["signing", "--mode", "sign", "--out", "x"])
            .status
            .code(),
        Some(2)
    );
}

/// Splits a platform.txt recipe the way the IDE does for these lines: words separated by
/// spaces, double quotes grouping.
fn split_recipe(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// The `recipe.*` lines of the platform.local.txt block in tools/README.md.
fn readme_recipes() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    readme
        .lines()
        .filter(|l| l.starts_with("recipe."))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn the_platform_local_txt_lines_of_the_readme_build_a_signed_sketch() {
    let recipes = readme_recipes();
    let keys: Vec<&str> = recipes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "recipe.hooks.sketch.prebuild.pattern",
            "recipe.objcopy.hex.1.pattern",
            "recipe.objcopy.hex.2.pattern"
        ]
    );
    let d = tempfile::tempdir().unwrap();
    let f = fixtures();
    let s = f.join("signing");
    let sketch = d.path().join("Blink");
    let build = d.path().join("build");
    std::fs::create_dir_all(&sketch).unwrap();
    std::fs::create_dir_all(&build).unwrap();
    std::fs::copy(f.join("app.elf"), build.join("Blink.ino.elf")).unwrap();
    let run_all = || {
        for (key, pattern) in &recipes {
            let line = pattern
                .replace("{otatool.path}", OTATOOL)
                .replace("{build.source.path}", p(&sketch))
                .replace("{build.path}", p(&build))
                .replace("{build.project_name}", "Blink.ino")
                .replace("{runtime.tools.eboot}", p(&f.join("boot.elf")))
                .replace("{build.flash_mode}", "dio")
                .replace("{build.flash_freq}", "40")
                .replace("{build.flash_size}", "4M")
                .replace("{runtime.tools.xtensa-lx106-elf-gcc.path}", "/no/toolchain");
            assert!(
                !line.contains('{'),
                "unsubstituted property in {key}: {line}"
            );
            let words = split_recipe(&line);
            assert_eq!(words[0], OTATOOL);
            let o = Command::new(&words[0]).args(&words[1..]).output().unwrap();
            ok(o.clone());
        }
    };
    // A sketch without keys: signing off, unsigned image only.
    run_all();
    assert_eq!(
        read(&build.join("core/Updater_Signing.h")),
        read(&s.join("expected-Updater_Signing-nokey.h"))
    );
    assert_eq!(
        read(&build.join("Blink.ino.bin")),
        read(&f.join("expected-dio-40-4M.bin"))
    );
    assert!(!build.join("Blink.ino.bin.signed").exists());
    // The same sketch with its key pair: header, image and both signed files as the core's tools make them.
    std::fs::copy(s.join("public.key"), sketch.join("public.key")).unwrap();
    std::fs::copy(s.join("private.key"), sketch.join("private.key")).unwrap();
    run_all();
    assert_eq!(
        read(&build.join("core/Updater_Signing.h")),
        read(&s.join("expected-Updater_Signing.h"))
    );
    assert_eq!(
        read(&build.join("Blink.ino.bin")),
        read(&f.join("expected-dio-40-4M.bin"))
    );
    assert_eq!(
        read(&build.join("Blink.ino.bin.signed")),
        read(&s.join("expected-dio-40-4M.bin.signed"))
    );
    assert_eq!(
        read(&build.join("Blink.ino.bin.legacy_sig")),
        read(&s.join("expected-dio-40-4M.bin.legacy_sig"))
    );
}
