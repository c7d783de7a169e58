//! The harness must catch what it claims to catch: a mixed app, a half-copied FS, a
//! changed sector 0, a head that does not match flash.

use bootloader::image::APP_OFFSET;
use bootloader::loader::App;
use sim::scenario::{self, Img, Kind, Runner, Size, Target, Trial, L1M64};

fn app_of(img: &[u8]) -> App {
    let head = std::array::from_fn(|i| u32::from_le_bytes(img[i * 4..i * 4 + 4].try_into().unwrap()));
    App { offset: APP_OFFSET, head, len: img.len() as u32 }
}

#[test]
fn invariant_checker_classifies_and_catches_mixes() {
    let k = Kind { target: Target::Fs, gzip: false, trial: Trial::No };
    let mut sc = scenario::build(L1M64, k, Size::Small);
    // Give the FS scenario a new app too, so app mixes can be built on it.
    let k2 = Kind { target: Target::Sketch, gzip: false, trial: Trial::No };
    sc.new_app = scenario::build(L1M64, k2, Size::Small).new_app;
    let mut r = Runner::new(&sc);
    let a = APP_OFFSET as usize;
    let old = app_of(&sc.old_app);
    assert_eq!(r.check_boot(&sc, &old).unwrap(), (Img::Old, Img::Old));

    // New FS fully copied: (Old, New).
    let fs = sc.layout.fs_start;
    r.flash.data_mut()[fs..fs + sc.new_fs.len()].copy_from_slice(&sc.new_fs);
    assert_eq!(r.check_boot(&sc, &old).unwrap(), (Img::Old, Img::New));
    // Half-copied FS: caught as a mix.
    r.flash.reset_to(&sc.base);
    let half = sc.new_fs.len() / 2;
    r.flash.data_mut()[fs..fs + half].copy_from_slice(&sc.new_fs[..half]);
    let e = r.check_boot(&sc, &old).unwrap_err();
    assert!(e.1 && e.0.contains("filesystem"), "{e:?}");

    // Half the new app over the old one: neither.
    r.flash.reset_to(&sc.base);
    let n = sc.new_app.len() / 2;
    r.flash.data_mut()[a..a + n].copy_from_slice(&sc.new_app[..n]);
    let e = r.check_boot(&sc, &app_of(&sc.new_app)).unwrap_err();
    assert!(e.1 && e.0.contains("neither"), "{e:?}");
    // One byte off at the very end of the old app: neither.
    r.flash.reset_to(&sc.base);
    r.flash.data_mut()[a + sc.old_app.len() - 1] ^= 1;
    assert!(r.check_boot(&sc, &old).unwrap_err().1);

    // Trial layout: head from the journal, flash head erased: accepted. Flash head neither
    // erased nor equal to the head: refused.
    r.flash.reset_to(&sc.base);
    r.flash.data_mut()[a..a + 16].fill(0xFF);
    assert_eq!(r.check_boot(&sc, &old).unwrap().0, Img::Old);
    r.flash.data_mut()[a] = 0xE9;
    assert!(r.check_boot(&sc, &old).is_err());

    // Sector 0 and the config sectors are guarded.
    r.flash.reset_to(&sc.base);
    r.flash.data_mut()[100] ^= 0x80;
    assert!(r.check_boot(&sc, &old).unwrap_err().0.contains("sector 0"));
    r.flash.reset_to(&sc.base);
    let last = r.flash.size() - 1;
    r.flash.data_mut()[last] ^= 1;
    assert!(r.check_boot(&sc, &old).unwrap_err().0.contains("EEPROM"));
}
