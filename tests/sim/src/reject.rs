//! The corruption test: staged images and commands that must be refused before any write
//! to the destination, with a result code, and the old app still booting byte-exact.
//!
//! Every mutant is built to be *certainly* invalid (a flip inside the gzip stream is caught
//! by CRC-32/ISIZE; a flip in raw segment data by the image's XOR checksum; a segment
//! table or command that breaks a rule the bootloader documents), so "accepted" always
//! means a bootloader bug, never a lucky mutant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bootloader::command::{Command, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_CRC, EXT_IMAGE, EXT_KNOWN, EXT_SECTOR0, EXT_TRIAL, WORDS};
use bootloader::image::APP_OFFSET;
use bootloader::report::{Event, Report};
use bootloader::{power_on, Boot, Mem};
use crc::{Crc, CRC_32_ISO_HDLC};

use crate::flash::Flash;
use crate::gen::{self, roundup4k, AppSpec};
use crate::rng::Rng;
use crate::rtc::Rtc;
use crate::scenario::{self, Kind, Scenario, Size, Target, Trial, L1M64, L4M1M};

/// A device state plus a command that must be refused.
pub struct Mutant {
    pub class: &'static str,
    /// Index into the base scenarios.
    pub base: usize,
    /// Bytes written at `at` over the base flash (then 0xFF to the sector end), as the
    /// Updater stages them.
    pub staged: Vec<u8>,
    pub at: usize,
    pub cmd: [u32; WORDS],
    /// Destination range that must see no erase or program.
    pub dest: (u64, u64),
    /// An extension image (bytes, address) staged too, as the updater does.
    pub ext: Option<(Vec<u8>, usize)>,
}

#[derive(Clone, Debug, Default)]
pub struct RejectCounts {
    pub mutants: u64,
    /// Refused with event Rejected and a nonzero code.
    pub refused: u64,
    /// Mutants with an erase or program in the destination range.
    pub wrote_destination: u64,
    /// Mutants with any erase or program at all (a refusal should write nothing).
    pub wrote_anywhere: u64,
    /// Mutants after which the old app did not boot byte-exact.
    pub old_app_lost: u64,
    /// Mutants during which the bootloader made an unaligned/out-of-range/0→1 access.
    pub flash_errors: u64,
    pub classes: Vec<(&'static str, u64)>,
    pub failures: Vec<String>,
}

impl RejectCounts {
    pub fn line(&self) -> String {
        format!("REJECT mutants={} wrote_destination={}", self.mutants, self.wrote_destination)
    }
    pub fn info(&self) -> String {
        let classes: Vec<String> = self.classes.iter().map(|(c, n)| format!("{c}:{n}")).collect();
        format!(
            "INFO reject refused={} not_refused={} wrote_anywhere={} old_app_lost={} flash_errors={} classes={}",
            self.refused,
            self.mutants - self.refused,
            self.wrote_anywhere,
            self.old_app_lost,
            self.flash_errors,
            classes.join(",")
        )
    }
    pub fn ok(&self) -> bool {
        self.refused == self.mutants && self.wrote_destination == 0 && self.old_app_lost == 0
    }
}

const ISO_HDLC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// The scenarios whose device state the mutants start from.
pub fn bases() -> Vec<Scenario> {
    let k = |target, gzip| Kind { target, gzip, trial: Trial::No };
    vec![
        scenario::build(L1M64, k(Target::Sketch, true), Size::Full),
        scenario::build(L4M1M, k(Target::Sketch, true), Size::Full),
        scenario::build(L1M64, k(Target::Sketch, false), Size::Full),
        scenario::build(L1M64, k(Target::Fs, true), Size::Full),
        scenario::build(L1M64, k(Target::Fs, false), Size::Full),
        scenario::build(L4M1M, k(Target::Sketch, true), Size::Small),
    ]
}

fn cmd_words(src: usize, dst: usize, len: usize, rng: &mut Rng) -> Command {
    let mut c = Command::copy(src as u32, dst as u32, len as u32);
    for w in &mut c.args[3..] {
        *w = rng.next_u32();
    }
    c
}

/// Gzip header length of a member written by `gen::gzip` (fixed part + file name).
fn gz_header_len(gz: &[u8]) -> usize {
    if gz[3] & 0x08 != 0 {
        10 + gz[10..].iter().position(|&b| b == 0).expect("name terminated") + 1
    } else {
        10
    }
}

/// Byte ranges of segment data in an app image, minus elf2bin's CRC words (which the
/// format's checksum does not cover).
fn covered_bytes(app: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    for (s, off) in gen::segments(app).expect("valid") {
        v.extend((off..off + s.len as usize).filter(|i| !(16..24).contains(i)));
    }
    v
}

/// All mutants, deterministic for a seed. `scale` multiplies the random classes.
pub fn mutants(bases: &[Scenario], seed: u64, scale: usize) -> Vec<Mutant> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::new();
    for (bi, b) in bases.iter().enumerate() {
        let l = b.layout;
        let dst = if b.kind.target == Target::Sketch { 0 } else { l.fs_start };
        let out_len = match b.kind.target {
            Target::Sketch => b.new_app.len() + APP_OFFSET as usize,
            Target::Fs => b.new_fs.len(),
        };
        // For a sketch the destination is the app region (old and new extent).
        let dest = (dst as u64, (dst + roundup4k(out_len.max(APP_OFFSET as usize + b.old_app.len()))) as u64);
        let staged_at = |len: usize| l.fs_start - roundup4k(len);
        let push = |v: &mut Vec<Mutant>, class, staged: Vec<u8>, at: usize, cmd: Command, dest| {
            v.push(Mutant { class, base: bi, staged, at, cmd: cmd.encode(), dest, ext: None });
        };
        let st = &b.staged;
        let n = st.len();
        if b.size == Size::Small {
            // In-place overrun: the full new gzip staged low, right after the small old
            // app, so inflated output would reach compressed input not yet read.
            let big = gen::gzip(&gen::arduino_bin(&gen::app_image(&AppSpec { seed: 9, size: 300_000, size_code: l.size_code }), l.size_code), None);
            for src in [0x10000usize, 0x18000, 0x20000] {
                let c = cmd_words(src, 0, big.len(), &mut rng);
                push(&mut v, "inplace-overrun", big.clone(), src, c, (0, 0x10000));
            }
            continue;
        }

        if b.kind.gzip {
            let h = gz_header_len(st);
            // Bit flips in the deflate data: caught by the data checks or CRC-32/ISIZE.
            for _ in 0..(if bi == 0 { 250 } else { 110 }) * scale {
                let mut m = st.clone();
                // A flip in the padding bits after the final block's end code changes
                // nothing (every decoder ignores them): pick again until a reference
                // decoder sees a different stream.
                loop {
                    m.copy_from_slice(st);
                    let i = rng.range(h as u64, (n - 8) as u64) as usize;
                    m[i] ^= 1 << rng.below(8);
                    if !same_output(st, &m) {
                        break;
                    }
                }
                push(&mut v, "gzip-data-flip", m, staged_at(n), cmd_words(staged_at(n), dst, n, &mut rng), dest);
            }
            // Every trailer byte, a random bit each, twice.
            for i in n - 8..n {
                for _ in 0..2 * scale {
                    let mut m = st.clone();
                    m[i] ^= 1 << rng.below(8);
                    push(&mut v, "gzip-trailer-flip", m, staged_at(n), cmd_words(staged_at(n), dst, n, &mut rng), dest);
                }
            }
            // Header: magic, method, reserved flags, flags that change the layout.
            let edits: &[(usize, u8, bool)] = &[
                (0, 0x1E, false), (0, 0x00, false), (1, 0x8A, false), (1, 0x0B, false),
                (2, 0x07, false), (2, 0x09, false), (2, 0x00, false),
                (3, 0x20, true), (3, 0x40, true), (3, 0x80, true), (3, 0x02, true), (3, 0x08, true),
            ];
            for &(i, x, xor) in edits {
                if i < 2 && b.kind.target == Target::Fs {
                    // Without the gzip magic an FS image is a valid raw image (eboot's rule).
                    continue;
                }
                let mut m = st.clone();
                if xor { m[i] ^= x } else { m[i] = x }
                push(&mut v, "gzip-header", m, staged_at(n), cmd_words(staged_at(n), dst, n, &mut rng), dest);
            }
            // Truncated downloads (staged shorter, where the Updater would put them).
            let cuts: Vec<usize> = (1..=8).chain((0..20 * scale).map(|_| rng.range(9, n as u64 - 1) as usize)).collect();
            for k in cuts {
                let len = n - k;
                let at = staged_at(len);
                push(&mut v, "truncated", st[..len].to_vec(), at, cmd_words(at, dst, len, &mut rng), dest);
            }
            // Length in the command longer than the stream (trailing erased bytes).
            for k in [1usize, 2, 3, 4, 8, 100, 4096] {
                let at = staged_at(n + k);
                push(&mut v, "len-too-long", st.clone(), at, cmd_words(at, dst, n + k, &mut rng), dest);
            }
        }

        if b.kind.target == Target::Sketch {
            // Bad ESP8266 image inside a well-formed container (raw, or a valid gzip).
            let bin = {
                let mut f = gen::stock_eboot(l.size_code);
                f.extend_from_slice(&b.new_app);
                f
            };
            let a = APP_OFFSET as usize;
            let segs = gen::segments(&b.new_app).expect("valid");
            let mut bad_images: Vec<(&'static str, Vec<u8>)> = Vec::new();
            let covered = covered_bytes(&b.new_app);
            for _ in 0..(if b.kind.gzip { 12 } else { 60 }) * scale {
                let mut m = bin.clone();
                m[a + covered[rng.below(covered.len() as u64) as usize]] ^= 1 << rng.below(8);
                bad_images.push(("image-data-flip", m));
            }
            let mut hdr = |class, f: &dyn Fn(&mut Vec<u8>)| {
                let mut m = bin.clone();
                f(&mut m);
                bad_images.push((class, m));
            };
            for x in [0x00u8, 0xE8, 0xEA, 0xFF, 0x1F] {
                hdr("image-magic", &|m| m[a] = x);
            }
            for x in [0u8, 17, 32, 200, 255, 9, 12, 16] {
                hdr("image-segment-count", &|m| m[a + 1] = x);
            }
            for (_, off) in segs.iter() {
                let h = a + off - 8;
                for bad_addr in [0x4000_0000u32, 0x4010_C000, 0x4010_F000, 0x2000_0000, 0x5000_0000] {
                    hdr("segment-address", &|m| m[h..h + 4].copy_from_slice(&bad_addr.to_le_bytes()));
                }
                hdr("segment-unaligned", &|m| m[h] |= 1);
                for bad_len in [0xFFFF_FFF0u32, 0x8000_0000, 0x0100_0000] {
                    hdr("segment-length", &|m| m[h + 4..h + 8].copy_from_slice(&bad_len.to_le_bytes()));
                }
                // Table runs off the end of the image.
                let grow = b.new_app.len() as u32 + 4096;
                hdr("segment-length", &|m| {
                    let old = u32::from_le_bytes(m[h + 4..h + 8].try_into().expect("4"));
                    m[h + 4..h + 8].copy_from_slice(&(old + grow).to_le_bytes());
                });
            }
            for (class, img) in bad_images {
                let staged = if b.kind.gzip { gen::gzip_fast(&img) } else { img };
                let len = staged.len();
                let at = staged_at(len);
                push(&mut v, class, staged, at, cmd_words(at, 0, len, &mut rng), dest);
            }
            if !b.kind.gzip {
                // Raw image cut short inside its segments.
                let end = a + segs[4].1 + segs[4].0.len as usize;
                for _ in 0..30 * scale {
                    let len = rng.range(a as u64 + 1, end as u64) as usize;
                    let at = staged_at(len);
                    push(&mut v, "raw-truncated", bin[..len].to_vec(), at, cmd_words(at, 0, len, &mut rng), dest);
                }
            }
            // Sector-0 install asked for, but the image's sector 0 is not a bootloader.
            for f in [0u8, 0x55] {
                let mut m = bin.clone();
                m[0] = f;
                let staged = if b.kind.gzip { gen::gzip_fast(&m) } else { m };
                let len = staged.len();
                let at = staged_at(len);
                let mut c = cmd_words(at, 0, len, &mut rng);
                c.ext = EXT_SECTOR0;
                push(&mut v, "bad-sector0", staged, at, c, (0, dest.1));
            }
        }

        // Command-level cases on a valid staged image.
        let src = b.src;
        let chip = l.size;
        let mut cmds: Vec<(&'static str, Command, (u64, u64))> = Vec::new();
        for d in [4usize, 0x100, 0x800] {
            cmds.push(("src-misaligned", cmd_words(src + d, dst, n, &mut rng), dest));
            cmds.push(("dst-misaligned", cmd_words(src, dst + d, n, &mut rng), (dst as u64, dest.1 + 4096)));
        }
        cmds.push(("len-zero", cmd_words(src, dst, 0, &mut rng), dest));
        for s in [chip, chip + 0x1000, 0xFFFF_F000, 0x8000_0000, chip - 0x1000] {
            cmds.push(("src-beyond-chip", cmd_words(s, dst, n, &mut rng), dest));
        }
        for big in [0xFFFF_FFFFusize, 0x8000_0000, chip + 1, chip - src + 4] {
            cmds.push(("len-beyond-chip", cmd_words(src, dst, big, &mut rng), dest));
        }
        for d in [chip, 0xFFFF_F000, chip - 0x1000] {
            // Ends beyond the chip: writing would wrap or fail halfway.
            cmds.push(("dst-beyond-chip", cmd_words(src, d, n.max(0x2000), &mut rng), (d.min(chip) as u64, chip as u64)));
        }
        cmds.push(("src-equals-dst", cmd_words(dst.max(APP_OFFSET as usize), dst.max(APP_OFFSET as usize), n, &mut rng), dest));
        for action in [0u32, 2, 3, 0x8000_0000] {
            let mut c = cmd_words(src, dst, n, &mut rng);
            c.action = action;
            cmds.push(("bad-action", c, dest));
        }
        for bit in [0x010u32, 0x100, 0x800] {
            assert_eq!(bit & EXT_KNOWN, 0);
            let mut c = cmd_words(src, dst, n, &mut rng);
            c.ext = bit;
            cmds.push(("unknown-extension", c, dest));
        }
        // Expected CRC that matches neither the whole output nor the app part.
        let payload = if b.kind.target == Target::Sketch {
            let mut f = gen::stock_eboot(l.size_code);
            f.extend_from_slice(&b.new_app);
            f
        } else {
            b.new_fs.clone()
        };
        let good = [ISO_HDLC.checksum(&payload), ISO_HDLC.checksum(&payload[payload.len().min(4096)..])];
        for (class, c, d) in cmds {
            // The valid image stays staged where the base put it.
            push(&mut v, class, st.clone(), src, c, d);
        }

        // Extended commands. The extension image goes where the updater stages it: just
        // below the journal sector, which is just below the staged update.
        let ext = gen::ext_image();
        let ext_at = src - 4096 - roundup4k(ext.len());
        let ext_crc = ISO_HDLC.checksum(&ext);
        let named = |c: &mut Command, flags: u32| {
            c.ext = flags | EXT_IMAGE;
            c.args[ARG_EXT_ADDR] = ext_at as u32;
            c.args[ARG_EXT_CRC] = ext_crc;
        };
        let sketch = b.kind.target == Target::Sketch;
        let trial = if sketch { EXT_TRIAL } else { 0 };
        let mut with_ext: Vec<(&'static str, Command, Vec<u8>)> = Vec::new();
        // The expected-CRC extension, carried out by the extension image: a CRC that
        // matches neither the whole output nor the app part.
        for bit in [0u32, 7, 31] {
            let mut c = cmd_words(src, dst, n, &mut rng);
            named(&mut c, EXT_CRC | trial);
            c.args[5] = good[0] ^ (1 << bit);
            if !good.contains(&c.args[5]) {
                with_ext.push(("crc-mismatch-ext", c, ext.clone()));
            }
        }
        // Tier 1 refuses what it cannot carry out without an extension image.
        for flags in [EXT_TRIAL, EXT_CRC, EXT_TRIAL | EXT_CRC] {
            let mut c = cmd_words(src, dst, n, &mut rng);
            c.ext = flags;
            cmds_push(&mut v, bi, "needs-extension", st.clone(), src, c, dest);
        }
        // The named extension image is missing: erased flash, or leftovers of old updates.
        for fill in [0xFFu8, 0x00] {
            let mut c = cmd_words(src, dst, n, &mut rng);
            named(&mut c, trial | EXT_CRC);
            c.args[5] = good[0];
            with_ext.push(("ext-missing", c, vec![fill; ext.len()]));
        }
        // A corrupted extension image: flips in its code, its segment table or header,
        // or its last byte; each is caught by its CRC (the table ones by the walk, too).
        for _ in 0..(4 * scale).max(4) {
            let mut img = ext.clone();
            let i = rng.below(img.len() as u64) as usize;
            img[i] ^= 1 << rng.below(8);
            let mut c = cmd_words(src, dst, n, &mut rng);
            named(&mut c, trial | EXT_CRC);
            c.args[5] = good[0];
            with_ext.push(("ext-corrupt", c, img));
        }
        // A sound image, but the command names it wrongly: CRC, address off by a word, a
        // truncated copy.
        {
            let mut c = cmd_words(src, dst, n, &mut rng);
            named(&mut c, trial);
            c.args[ARG_EXT_CRC] ^= 0x8000_0000;
            with_ext.push(("ext-crc-wrong", c, ext.clone()));
            let mut c = cmd_words(src, dst, n, &mut rng);
            named(&mut c, trial);
            c.args[ARG_EXT_ADDR] += 4;
            with_ext.push(("ext-misnamed", c, ext.clone()));
            let mut c = cmd_words(src, dst, n, &mut rng);
            named(&mut c, trial);
            with_ext.push(("ext-truncated", c, ext[..ext.len() / 2].to_vec()));
        }
        for (class, c, img) in with_ext {
            v.push(Mutant { class, base: bi, staged: st.clone(), at: src, cmd: c.encode(), dest, ext: Some((img, ext_at)) });
        }
        if b.kind.target == Target::Fs {
            // Source just below the destination: writing FS_start destroys unread source.
            let at = l.fs_start - 0x1000;
            push(&mut v, "src-dst-overlap", st.clone(), at, cmd_words(at, l.fs_start, n, &mut rng), (l.fs_start as u64, (l.fs_start + roundup4k(n)) as u64));
            // Output beyond the chip end (FS image bigger than everything after FS_start).
            let huge = gen::gzip_fast(&gen::fs_image(3, chip - l.fs_start + 0x10000));
            let at = l.fs_start - roundup4k(huge.len());
            let c = cmd_words(at, l.fs_start, huge.len(), &mut rng);
            push(&mut v, "too-big", huge, at, c, (l.fs_start as u64, chip as u64));
        } else if b.kind.gzip && l == L1M64 {
            // A sketch bigger than the space below the filesystem.
            let bin = gen::arduino_bin(&gen::app_image(&AppSpec { seed: 77, size: l.fs_start, size_code: l.size_code }), l.size_code);
            let gz = gen::gzip_fast(&bin);
            let at = staged_at(gz.len());
            let c = cmd_words(at, 0, gz.len(), &mut rng);
            push(&mut v, "too-big", gz, at, c, (0, at as u64));
        }
    }
    v
}

/// Whether gzip `b` decodes (by flate2, a reference decoder) to exactly what `a` does.
fn same_output(a: &[u8], b: &[u8]) -> bool {
    use std::io::Read;
    let decode = |x: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(x).read_to_end(&mut out).ok().map(|_| out)
    };
    matches!((decode(a), decode(b)), (Some(x), Some(y)) if x == y)
}

fn cmds_push(v: &mut Vec<Mutant>, base: usize, class: &'static str, staged: Vec<u8>, at: usize, cmd: Command, dest: (u64, u64)) {
    v.push(Mutant { class, base, staged, at, cmd: cmd.encode(), dest, ext: None });
}

/// Runs one mutant: one warm boot with the command. Returns (refused, wrote dest, wrote
/// anywhere, old app boots, flash errors, description).
fn run_one(flash: &mut Flash, mem: &mut Mem, bases: &[Scenario], m: &Mutant, seed: u64) -> (bool, bool, bool, bool, bool, String) {
    let b = &bases[m.base];
    flash.reset_to(&b.base);
    {
        let d = flash.data_mut();
        // Undo the base's staging, then stage this mutant as the Updater would.
        let s0 = b.src;
        d[s0..s0 + roundup4k(b.staged.len())].fill(0xFF);
        let end = (m.at + roundup4k(m.staged.len())).min(d.len());
        d[m.at..end].fill(0xFF);
        let n = m.staged.len().min(end - m.at);
        d[m.at..m.at + n].copy_from_slice(&m.staged[..n]);
        if let Some((img, at)) = &m.ext {
            d[*at..at + roundup4k(img.len())].fill(0xFF);
            d[*at..at + img.len()].copy_from_slice(img);
        }
    }
    let mut rng = Rng::new(seed);
    let mut rtc = Rtc::cold(&mut rng);
    rtc.write_words(&m.cmd);
    rtc.soft_reset();
    let r = power_on(flash, &mut rtc, mem, &mut |_| {});
    let rep = Report::read(&rtc);
    let refused = matches!(rep, Some(Report { event, code, .. }) if event == Event::Rejected as u32 && code != 0);
    let wrote_dest = flash.touched(m.dest.0, m.dest.1);
    let wrote_any = flash.any_touched();
    let a = APP_OFFSET as usize;
    // The old app boots byte-exact from an untouched app region and sector 0.
    let old_ok = match r {
        Boot::App(app) => {
            app.offset == APP_OFFSET
                && app.head_bytes()[..] == b.old_app[..16]
                && flash.data()[a..a + b.old_app.len()] == b.old_app[..]
                && flash.data()[..4096] == scenario::our_sector0()[..]
        }
        Boot::Halt(_) | Boot::Extension(_) => false,
    };
    let errs = flash.stats().caller_errors() > 0;
    let desc = format!("{} on {}/{} (staged starts {:02x?}, cmd {:x?}): boot {:?}, report {:?}", m.class, b.name, b.layout.name, &m.staged[..4.min(m.staged.len())], &m.cmd[..5], r, rep);
    (refused, wrote_dest, wrote_any, old_ok, errs, desc)
}

pub fn run(seed: u64, scale: usize, threads: usize) -> RejectCounts {
    let bases = bases();
    let ms = mutants(&bases, seed, scale);
    let next = AtomicUsize::new(0);
    let total = Mutex::new(RejectCounts::default());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut flashes: Vec<Option<Flash>> = bases.iter().map(|_| None).collect();
                let mut mem = Box::new(Mem::new());
                let mut c = RejectCounts::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ms.len() {
                        break;
                    }
                    let m = &ms[i];
                    let f = flashes[m.base].get_or_insert_with(|| Flash::from_image(&bases[m.base].base));
                    let (refused, wd, wa, old_ok, errs, desc) = run_one(f, &mut mem, &bases, m, seed ^ i as u64);
                    c.mutants += 1;
                    c.refused += refused as u64;
                    c.wrote_destination += wd as u64;
                    c.wrote_anywhere += wa as u64;
                    c.old_app_lost += !old_ok as u64;
                    c.flash_errors += errs as u64;
                    if !(refused && !wd && old_ok) && c.failures.len() < 20 {
                        c.failures.push(format!("mutant {i}: {desc}{}", if wd { " [wrote destination]" } else { "" }));
                    }
                }
                let mut t = total.lock().expect("no worker panicked");
                t.mutants += c.mutants;
                t.refused += c.refused;
                t.wrote_destination += c.wrote_destination;
                t.wrote_anywhere += c.wrote_anywhere;
                t.old_app_lost += c.old_app_lost;
                t.flash_errors += c.flash_errors;
                t.failures.extend(c.failures);
            });
        }
    });
    let mut t = total.into_inner().expect("no worker panicked");
    let mut classes: Vec<(&'static str, u64)> = Vec::new();
    for m in &ms {
        match classes.iter_mut().find(|(c, _)| *c == m.class) {
            Some(e) => e.1 += 1,
            None => classes.push((m.class, 1)),
        }
    }
    t.classes = classes;
    t.failures.sort();
    t
}
