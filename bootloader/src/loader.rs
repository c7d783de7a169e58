//! The app image at 0x1000: validation (header, segment table, checksum) and the list of
//! segments the device layer copies into RAM before jumping.
//!
//! Unlike eboot, nothing is started without a full check: a torn sector at 0x1000 or a
//! half-written image is never mistaken for an app.

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use crate::copy::crc_flash;
use crate::flash::{self, SECTOR};
#[cfg(not(target_arch = "xtensa"))]
use crate::image::CHECKSUM_SEED;
use crate::image::{padded_len, segment_region, Region, Segment, APP_OFFSET, EXT_IRAM_END, IRAM_END, MAGIC, MAX_SEGMENTS};
use crate::report::Code;

/// A bootable app: where it is and the 16 bytes that start it (image header + first
/// segment header). Normally those bytes are in flash at `offset`; during a trial boot they
/// come from the journal, because the app's first 16 bytes stay erased until it confirms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct App {
    pub offset: u32,
    /// The first 16 bytes as little-endian words.
    pub head: [u32; 4],
    /// Image length (header to checksum byte included).
    pub len: u32,
}

impl App {
    /// The entry point (image header bytes 4..8).
    pub fn entry(&self) -> u32 {
        self.head[1]
    }

    /// The first 16 bytes.
    pub fn head_bytes(&self) -> [u8; 16] {
        let mut b = [0; 16];
        for (c, w) in b.chunks_exact_mut(4).zip(self.head) {
            c.copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// Checks an image fed to it in chunks: header, segment table (count, regions, sizes,
/// alignment) and XOR checksum. Used on the staged stream during the dry run; the boot-time
/// check ([`walk`]) applies the same header and segment rules ([`segment_region`]).
///
/// The image is read a word at a time: headers start word aligned (segment lengths are
/// multiples of 4, checked), and so does the word that ends with the checksum byte (at
/// `padded_len - 1`). Chunks are whole words except the stream's last, whose partial word
/// can never hold the checksum byte (the last byte of a word), so it cannot change the
/// verdict and is dropped. Image and segment headers are both 8 bytes: `next` is where the
/// next one (or, after the last segment, the checksum word) starts; everything between is
/// segment data.
///
/// `repr(C)`: on the device `feed` is lx106 assembly (device/leaf.S) working on this
/// struct by field offsets; `word` is its specification (tests/bench/tests/leaf_asm.rs
/// compares the two on QEMU).
#[repr(C)]
pub struct Walker {
    off: u32,
    /// `DONE` once the walker has seen everything it needs (valid or not).
    next: u32,
    /// Segment headers still to come.
    left: u32,
    /// The first word of the header being read.
    first: u32,
    /// XOR of the data words (and padding) so far.
    sum: u32,
    /// XOR of image words 16..24 of an Arduino layout (first segment irom0, at least 8
    /// bytes): elf2bin computes the checksum with them zero and only then stores its
    /// whole-image CRC there (`__crc_len`, `__crc_val`). Stays 0 for any other layout.
    crc_words: u32,
    /// Nonzero: an Arduino layout (a word for the assembly's sake).
    arduino: u32,
    /// The image length once the checksum matched, else 0.
    len: u32,
    pub entry: u32,
    /// The image's first 16 bytes as words (all seen when `valid`): the app header the update
    /// programs last.
    pub head: [u32; 4],
}

#[cfg(not(target_arch = "xtensa"))]
/// `next` of a walker that has finished: far beyond any flash offset, so every later word
/// is taken for segment data and changes nothing that matters.
const DONE: u32 = 1 << 31;

/// XOR of a word's four bytes (in its low byte, the rest garbage).
#[cfg(not(target_arch = "xtensa"))]
fn fold(x: u32) -> u32 {
    let x = x ^ (x >> 16);
    x ^ (x >> 8)
}

impl Walker {
    pub const fn new() -> Walker {
        Walker { off: 0, next: 0, left: 0, first: 0, sum: 0, crc_words: 0, arduino: 0, len: 0, entry: 0, head: [0; 4] }
    }

    /// On the device `data` must be word aligned (every caller's buffer is: `Mem` and the
    /// inflater's window sectors): the assembly loads whole words.
    #[cfg(target_arch = "xtensa")]
    #[inline(always)]
    pub fn feed(&mut self, data: &[u8]) {
        extern "C" {
            fn eboot_walker_feed(w: *mut Walker, data: *const u8, len: usize);
        }
        // SAFETY: reads `data`, writes `self` only (a repr(C) Walker).
        unsafe { eboot_walker_feed(self, data.as_ptr(), data.len()) }
    }

    #[cfg(not(target_arch = "xtensa"))]
    pub fn feed(&mut self, data: &[u8]) {
        for w in data.as_chunks::<4>().0 {
            self.word(u32::from_le_bytes(*w));
        }
    }

    #[cfg(not(target_arch = "xtensa"))]
    #[inline(never)]
    fn word(&mut self, w: u32) {
        let o = self.off;
        self.off = o.wrapping_add(4);
        if o < 16 {
            self.head[(o / 4) as usize & 3] = w;
        }
        let i = o.wrapping_sub(self.next);
        if i >= 8 {
            self.sum ^= w;
            if self.arduino != 0 && o.wrapping_sub(16) < 8 {
                self.crc_words ^= w;
            }
            return;
        }
        if i == 0 {
            if self.left == 0 && o >= 8 {
                // Padding, then the checksum byte: the XOR of everything, checksum
                // included, is the seed (with or without the CRC words).
                // `fold` is linear: the test with the CRC words is `a == fold(crc_words)`.
                let a = (fold(self.sum ^ w) ^ CHECKSUM_SEED as u32) & 0xFF;
                if a == 0 || a == fold(self.crc_words) & 0xFF {
                    self.len = o + 4;
                }
                self.next = DONE;
                return;
            }
            self.first = w;
            return;
        }
        let (addr, len) = (self.first, w);
        if o == 4 {
            // The image header: entry where a segment header has its length.
            let left = (addr >> 8) & 0xFF;
            self.left = left;
            self.entry = len;
            self.next = if addr & 0xFF == MAGIC as u32 && left.wrapping_sub(1) < MAX_SEGMENTS as u32 { 8 } else { DONE };
            return;
        }
        let r = segment_region(addr, len, IRAM_END);
        if r == Region::Invalid {
            self.next = DONE;
            return;
        }
        if o == 12 && r == Region::Flash && len >= 8 {
            self.arduino = 1;
        }
        self.left -= 1;
        self.next = o + 4 + len;
        if self.left == 0 {
            self.next = padded_len(self.next) - 4;
        }
    }

    /// The image is complete and valid; returns its length.
    pub fn valid(&self) -> Option<u32> {
        if self.len != 0 {
            Some(self.len)
        } else {
            None
        }
    }
}

impl Default for Walker {
    fn default() -> Self {
        Self::new()
    }
}

/// Walks the segment table of `app` (at `app.offset`, its first 16 bytes `app.head`:
/// normally flash's own; a trial boot's come from the journal), checking each segment as
/// the [`Walker`] does, and calls `f(segment, flash offset of its data)` for every segment
/// the bootloader copies into RAM; `f` returns false to stop (error). Returns the image
/// length (`App::len`).
///
/// This is the boot-time check: the dry run already verified the whole image (checksum
/// included) before it was installed, and an update clears the magic at 0x1000 before it
/// touches that sector, so a torn sector never passes for an app.
pub fn walk<F: ReadNorFlash>(flash: &mut F, app: &App, f: &mut dyn FnMut(Segment, u32) -> bool) -> Result<u32, Code> {
    let (offset, head) = (app.offset, &app.head);
    // The app at 0x1000 loads below the extension's IRAM; anything else the bootloader
    // loads is the extension image, which may use IRAM up to tier 1's window.
    let iram_end = if offset == APP_OFFSET { IRAM_END } else { EXT_IRAM_END };
    let h0 = head[0];
    let mut n = (h0 >> 8) & 0xFF;
    if h0 & 0xFF != MAGIC as u32 || n.wrapping_sub(1) >= MAX_SEGMENTS as u32 {
        return Err(Code::NoApp);
    }
    let mut pos = offset + 8;
    // The first segment header is in `head` (a trial's comes from the journal); the
    // others are read from flash.
    let mut hb = [head[2], head[3]];
    loop {
        let s = Segment { addr: hb[0], len: hb[1] };
        let r = segment_region(s.addr, s.len, iram_end);
        if r == Region::Invalid {
            return Err(Code::NoApp);
        }
        pos += 8;
        if r.loaded() && !f(s, pos) {
            return Err(Code::ReadFail);
        }
        pos += s.len;
        n -= 1;
        if n == 0 {
            break;
        }
        flash::read_words(flash, pos, &mut hb)?;
    }
    Ok(padded_len(pos - offset))
}

/// Checks the app whose first 16 bytes `app.head` already holds (`app.offset` set) and
/// completes `app.len`.
pub fn check_head<F: ReadNorFlash>(flash: &mut F, app: &mut App) -> Result<(), Code> {
    app.len = walk(flash, app, &mut |_, _| true)?;
    Ok(())
}

/// Fills `app` with the app at `offset` (flash's own first 16 bytes) if its header and
/// segment table are sound. On the device the `App` is written in place, in the caller's
/// slot (no `Result<App, _>` copied through memory); on an error `app` holds garbage.
pub fn check<F: ReadNorFlash>(flash: &mut F, offset: u32, app: &mut App) -> Result<(), Code> {
    app.offset = offset;
    flash::read_words(flash, offset, &mut app.head)?;
    check_head(flash, app)
}

/// The app at `offset`, if its header and segment table are sound ([`check`]).
pub fn app<F: ReadNorFlash>(flash: &mut F, offset: u32) -> Result<App, Code> {
    let mut a = App { offset, head: [0; 4], len: 0 };
    check(flash, offset, &mut a).map(|()| a)
}

/// The extension image at `addr`, checked as tier 1 checks it before chain-loading it: not
/// at 0x1000 or sector 0 (so it is never taken for the app), a sound header and segment
/// table (IRAM in the extension's window), and CRC-32 `crc` over the image's bytes.
/// `buf` is scratch for the CRC. Fills `ext` (garbage on an error, like [`check`]).
pub fn extension<F: NorFlash>(flash: &mut F, buf: &mut [u8; SECTOR as usize], addr: u32, crc: u32, ext: &mut App) -> Result<(), Code> {
    if addr < 2 * SECTOR || !addr.is_multiple_of(SECTOR) || check(flash, addr, ext).is_err() || crc_flash(flash, buf, addr, addr + ext.len) != Ok(crc) {
        return Err(Code::ExtImage);
    }
    Ok(())
}

/// Calls `f(segment, flash offset of its data)` for every segment the bootloader must
/// copy into RAM (IRAM, DRAM, RTC), in image order. `f` returns false to stop (error).
pub fn for_each_load<F: ReadNorFlash>(
    flash: &mut F,
    app: &App,
    mut f: impl FnMut(Segment, u32) -> bool,
) -> Result<(), Code> {
    walk(flash, app, &mut f).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Header;

    /// A minimal valid image: header, two segments, checksum.
    fn image(segs: &[(u32, &[u8])]) -> [u8; 64] {
        let mut v = [0u8; 64];
        v[..8].copy_from_slice(&Header { segments: segs.len() as u8, flash_mode: 2, size_freq: 0x20, entry: 0x4010_0004 }.to_bytes());
        let mut p = 8;
        let mut sum = CHECKSUM_SEED;
        for (a, d) in segs {
            v[p..p + 8].copy_from_slice(&Segment { addr: *a, len: d.len() as u32 }.to_bytes());
            p += 8;
            v[p..p + d.len()].copy_from_slice(d);
            sum ^= d.iter().fold(0, |s, b| s ^ b);
            p += d.len();
        }
        let end = padded_len(p as u32) as usize;
        v[end - 1] = sum;
        v
    }

    #[test]
    fn walker_accepts_valid_and_rejects_flips() {
        let img = image(&[(0x4010_0000, &[1, 2, 3, 4]), (0x3FFE_8000, &[5, 6, 7, 8, 9, 10, 11, 12])]);
        let mut w = Walker::new();
        w.feed(&img);
        assert_eq!(w.valid(), Some(48));
        // Any single bit flip in segment data, the checksum, the segment count or a
        // segment length is caught. (Flash mode/size, entry and load addresses are outside
        // the format's checksum; the Updater even patches byte 2.)
        let covered = [1usize, 12, 13, 14, 15, 16, 17, 18, 19, 28, 29, 30, 31, 32, 33, 34, 35, 47];
        for i in covered {
            for bit in 0..8 {
                let mut bad = img;
                bad[i] ^= 1 << bit;
                let mut w = Walker::new();
                w.feed(&bad);
                assert_eq!(w.valid(), None, "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn walker_refuses_bad_regions_and_alignment() {
        for (a, d) in [(0x4000_0000u32, &[0u8; 4][..]), (0x4010_F000, &[0; 4]), (0x4010_0001, &[0; 4]), (0x4010_0000, &[0; 3])] {
            let img = image(&[(a, d)]);
            let mut w = Walker::new();
            w.feed(&img);
            assert_eq!(w.valid(), None, "{a:x}");
        }
    }

    #[test]
    fn arduino_stale_checksum_accepted() {
        let mut img = image(&[(0x4020_1010, &[0; 8]), (0x4010_0000, &[1, 2, 3, 4])]);
        img[16..24].copy_from_slice(&[0x30, 0, 0, 0, 0xAA, 0xBB, 0xCC, 0xDD]);
        let mut w = Walker::new();
        w.feed(&img);
        assert!(w.valid().is_some());
    }

    /// The byte-at-a-time walker the word walker replaced (kept as the reference).
    struct ByteWalker {
        off: u32,
        next: u32,
        /// Segment headers still to come.
        left: u8,
        hdr: [u8; 8],
        sum: u8,
        /// XOR of image bytes 16..24: elf2bin computes the checksum with them zero and only
        /// then stores its whole-image CRC there (`__crc_len`, `__crc_val`).
        crc_words: u8,
        /// Not an Arduino layout (first segment not irom0): no CRC words to discount.
        plain: bool,
        done: bool,
        ok: bool,
        entry: u32,
    }

    impl ByteWalker {
        const fn new() -> ByteWalker {
            ByteWalker { off: 0, next: 0, left: 0, hdr: [0; 8], sum: CHECKSUM_SEED, crc_words: 0, plain: false, done: false, ok: false, entry: 0 }
        }

        pub fn feed(&mut self, data: &[u8]) {
            for &b in data {
                self.byte(b);
            }
        }

        fn byte(&mut self, b: u8) {
            let o = self.off;
            self.off = o.wrapping_add(1);
            if self.done {
                return;
            }
            let i = o.wrapping_sub(self.next);
            if i >= 8 {
                self.sum ^= b;
                if o.wrapping_sub(16) < 8 {
                    self.crc_words ^= b;
                }
                return;
            }
            if self.left == 0 && o >= 8 {
                self.done = true;
                self.ok = b == self.sum || (!self.plain && b == self.sum ^ self.crc_words);
                return;
            }
            self.hdr[(i & 7) as usize] = b;
            if i != 7 {
                return;
            }
            let s = Segment::parse(&self.hdr);
            if o == 7 {
                // The image header: entry where a segment header has its length.
                self.left = self.hdr[1];
                self.entry = s.len;
                self.done = self.hdr[0] != MAGIC || self.left == 0 || self.left > MAX_SEGMENTS;
                self.next = 8;
                return;
            }
            let r = segment_region(s.addr, s.len, IRAM_END);
            if r == Region::Invalid {
                self.done = true;
                return;
            }
            if o == 15 {
                self.plain = r != Region::Flash || s.len < 8;
            }
            self.left -= 1;
            self.next = o + 1 + s.len;
            if self.left == 0 {
                self.next = padded_len(self.next) - 1;
            }
        }

        /// The image is complete and valid; returns its length.
        pub fn valid(&self) -> Option<u32> {
            if self.ok {
                Some(self.next + 1)
            } else {
                None
            }
        }

    }


    /// The word walker agrees with the byte walker on random images, random corruptions
    /// and any split of the stream into whole-word chunks plus a partial last one.
    #[test]
    fn walker_equals_byte_walker() {
        let mut x = 7u32;
        let mut rnd = |n: u32| {
            x = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
            (x >> 8) % n
        };
        let addrs = [0x4020_1010u32, 0x4010_0000, 0x3FFE_8000, 0x6000_1000, 0x4010_B000, 0x4000_0000, 0x4020_0000];
        let (mut valid, mut arduino) = (0, 0);
        for _ in 0..20000 {
            let n = 1 + rnd(4) as usize;
            let mut segs = std::vec::Vec::new();
            for _ in 0..n {
                let a = addrs[rnd(addrs.len() as u32) as usize] + 4 * rnd(4);
                let len = [0usize, 4, 8, 12, 20, 3][rnd(6) as usize];
                segs.push((a, (0..len).map(|_| rnd(256) as u8).collect::<std::vec::Vec<u8>>()));
            }
            let mut v = std::vec::Vec::new();
            v.extend_from_slice(&Header { segments: n as u8, flash_mode: 2, size_freq: 0x20, entry: 0x4010_0004 }.to_bytes());
            let mut sum = CHECKSUM_SEED;
            for (a, d) in &segs {
                v.extend_from_slice(&Segment { addr: *a, len: d.len() as u32 }.to_bytes());
                v.extend_from_slice(d);
                sum ^= d.iter().fold(0, |s, b| s ^ b);
            }
            v.resize(padded_len(v.len() as u32) as usize, 0);
            *v.last_mut().unwrap() = sum;
            for _ in 0..rnd(4) {
                let k = rnd(v.len() as u32) as usize;
                v[k] ^= 1 << rnd(8);
            }
            if rnd(4) == 0 {
                v[16..24].copy_from_slice(&[rnd(256) as u8; 8]);
            }
            for _ in 0..rnd(24) {
                v.push(rnd(256) as u8);
            }
            let mut b = ByteWalker::new();
            b.feed(&v);
            let mut w = Walker::new();
            let mut rest = &v[..];
            while !rest.is_empty() {
                let k = (4 * (1 + rnd(6) as usize)).min(rest.len());
                w.feed(&rest[..k]);
                rest = &rest[k..];
                if k % 4 != 0 {
                    break;
                }
            }
            assert_eq!(w.valid(), b.valid(), "{v:02x?}");
            if b.valid().is_some() {
                assert_eq!(w.entry, b.entry);
                assert_eq!(w.head.iter().flat_map(|h| h.to_le_bytes()).collect::<std::vec::Vec<u8>>(), v[..16]);
                valid += 1;
                arduino += (v[16..24].iter().fold(0, |s, b| s ^ b) != 0 && !b.plain) as u32;
            }
        }
        assert!(valid > 1000 && arduino > 50, "{valid} {arduino}");
    }
}
