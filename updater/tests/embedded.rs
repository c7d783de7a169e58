//! The extension image the updater embeds (and stages for trial and expected-CRC updates)
//! must be the one `cargo xtask build` makes from this source tree: a stale copy would be
//! chain-loaded by tier 1 in place of the current flow.

#[test]
fn embedded_extension_image_is_the_built_one() {
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/esp8266/extension.bin");
    let bytes = std::fs::read(&built).unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask build` first", built.display()));
    assert!(
        bytes == updater::EXTENSION,
        "updater/extension.bin ({} bytes) differs from the build's {} ({} bytes): copy it over and commit it",
        updater::EXTENSION.len(),
        built.display(),
        bytes.len()
    );
    // It is an ESP8266 image loading into the extension's IRAM window.
    let img = bootloader::image::Header::parse(updater::EXTENSION).expect("an image header");
    assert!((bootloader::image::IRAM_END..bootloader::image::EXT_IRAM_END).contains(&img.entry), "entry {:#x}", img.entry);
}
