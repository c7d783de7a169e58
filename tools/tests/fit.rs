//! `layout --image` and `info --layout` are one computation: staged by the size as sent,
//! checked as a sketch by the inflated size, exit code 3 when it does not fit.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use tools::image::{build_image, FlashParams};

const EXIT_DOES_NOT_FIT: i32 = 3;



fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// An app image of about `len` bytes whose flash segment compresses very well.
fn app_image(dir: &Path, name: &str, len: usize) -> PathBuf {
    let data: Vec<u8> = (0..len).map(|i| (i / 4096) as u8).collect();
    let img = build_image(
        &FlashParams::default(),
        0x4010_0004,
        &[
            (0x4020_1010, &data),
            (0x4010_0000, &[0x36, 0x41, 0x00, 0x1d]),
        ],
    )
    .unwrap();
    let f = dir.join(name);
    std::fs::write(&f, img).unwrap();
    f
}

fn gzip(dir: &Path, input: &Path) -> PathBuf {
    let out = dir.join(format!(
        "{}.gz",
        input.file_name().unwrap().to_str().unwrap()
    ));
    let o = ota(&["gzip", "--compressor", "flate2", p(input), "-o", p(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn layout_and_info_agree_on_a_gzip_whose_inflated_size_does_not_fit() {
    let d = tempfile::tempdir().unwrap();
    let big = app_image(d.path(), "big.bin", 1_200_000);
    let gz = gzip(d.path(), &big);
    let gz_len = std::fs::metadata(&gz).unwrap().len() as u32;
    assert!(
        gz_len < 100_000,
        "test image should compress well: {gz_len}"
    );
    let inflated = std::fs::metadata(&big).unwrap().len() as u32;

    let lay = ota(&["layout", "4M2M", "--image", p(&gz), "--json"]);
    let inf = ota(&["info", p(&gz), "--layout", "4M2M", "--json"]);
    for o in [&lay, &inf] {
        assert_eq!(
            o.status.code(),
            Some(EXIT_DOES_NOT_FIT),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("does not fit layout 4M2M") && err.contains("installed image is"),
            "{err}"
        );
    }
    let (lf, inf_fit) = (json(&lay)["fit"].clone(), json(&inf)["fit"].clone());
    assert_eq!(lf, inf_fit, "layout and info must agree");
    // Staged by the compressed size (Updater::begin gets the bytes sent) ...
    let staging = 0x200000 - gz_len.div_ceil(4096) * 4096;
    assert_eq!(lf["staging"], staging);
    assert_eq!(lf["transferred"], gz_len);
    // ... judged as a sketch by the inflated one.
    assert_eq!(lf["installed"], inflated);
    assert_eq!(lf["sketch_fits"], false);
    assert_eq!(lf["fits"], false);

    // Text forms say the same and name the staging address.
    let lay_t = ota(&["layout", "4M2M", "--image", p(&gz)]);
    let inf_t = ota(&["info", p(&gz), "--layout", "4M2M"]);
    let want = format!("staged at 0x{staging:06X}");
    for o in [&lay_t, &inf_t] {
        assert_eq!(o.status.code(), Some(EXIT_DOES_NOT_FIT));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&want) && out.contains("DOES NOT FIT"), "{out}");
    }
}

#[test]
fn a_fitting_gzip_fits_in_both_and_current_is_checked_when_given() {
    let d = tempfile::tempdir().unwrap();
    let img = app_image(d.path(), "small.bin", 700_000);
    let gz = gzip(d.path(), &img);
    let gz_len = std::fs::metadata(&gz).unwrap().len() as u32;
    let staging = 0x200000 - gz_len.div_ceil(4096) * 4096;
    for args in [
        vec!["layout", "4M2M", "--image", p(&gz), "--json"],
        vec!["info", p(&gz), "--layout", "4M2M", "--json"],
    ] {
        let o = ota(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let f = &json(&o)["fit"];
        assert_eq!(f["fits"], true);
        assert_eq!(f["staging"], staging);
        assert_eq!(f["current"], Value::Null);
        assert_eq!(f["updater_accepts"], Value::Null);
    }
    // On 1M64 (FS at 0xEB000) the same update next to a 960,000-byte sketch: the Updater refuses.
    for args in [
        vec!["layout", "1M64", "--image", p(&gz), "--current", "960000"],
        vec!["info", p(&gz), "--layout", "1M64", "--current", "960000"],
    ] {
        let o = ota(&args);
        assert_eq!(o.status.code(), Some(EXIT_DOES_NOT_FIT));
        assert!(String::from_utf8_lossy(&o.stderr).contains("UPDATE_ERROR_SPACE"));
    }
}

#[test]
fn info_says_a_gzip_with_trailing_data_or_members_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let img = app_image(d.path(), "a.bin", 20_000);
    let gz = std::fs::read(gzip(d.path(), &img)).unwrap();
    let two = d.path().join("two.gz");
    std::fs::write(&two, [gz.clone(), gz.clone()].concat()).unwrap();
    let junk = d.path().join("junk.gz");
    std::fs::write(&junk, [gz.clone(), b"trailing junk".to_vec()].concat()).unwrap();
    for (f, what) in [(&two, "another gzip member"), (&junk, "not gzip")] {
        let o = ota(&["info", p(f)]);
        assert!(o.status.success());
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("REFUSED by the bootloader") && out.contains(what),
            "{out}"
        );
        assert!(!out.contains(", trailer valid"), "{out}");
        let j = json(&ota(&["info", "--json", p(f)]));
        assert_eq!(j["bootloader_accepts"], false);
        assert_eq!(j["more_members"], what == "another gzip member");
    }
    let single = d.path().join("one.gz");
    std::fs::write(&single, &gz).unwrap();
    let j = json(&ota(&["info", "--json", p(&single)]));
    assert_eq!(j["bootloader_accepts"], true);
    assert!(String::from_utf8_lossy(&ota(&["info", p(&single)]).stdout).contains(", trailer valid"));
}
