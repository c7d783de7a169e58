//! Staging an image in the free flash below the filesystem, as the Arduino `Updater` does.

use embedded_storage::nor_flash::NorFlash;
use md5::{Digest, Md5};
use sha2::Sha256;

use bootloader::command::{Command, ARG_EXT_ADDR, ARG_EXT_CRC, EXT_IMAGE};
use bootloader::flash::{as_bytes, SECTOR};
use bootloader::image::{self, APP_OFFSET};
use bootloader::loader;
use bootloader::journal;
use bootloader::report::Code;

use crate::{Result, UpdaterError};

/// The extension image the sector-0 bootloader chain-loads to carry out a trial update or an
/// expected CRC: `cargo xtask build`'s target/esp8266/extension.bin, embedded (a test
/// checks it is the one the build makes).
pub const EXTENSION: &[u8] = include_bytes!("../extension.bin");

/// Stages [`EXTENSION`] where the bootloader expects it for `cmd` (an update staged by a
/// [`Stager`]): just below the journal sector, which is just below the staged update. Reads
/// it back, and returns `cmd` naming it (`EXT_IMAGE`, its address and CRC). Call it after
/// `finish` and before [`request`](crate::request), for any command with extensions.
///
/// The bootloader checks the rest before writing anything: that the image is intact, and
/// that it lies above the new sketch and the trial's backup of the old one (else code
/// `ExtImage`).
pub fn stage_extension<F: NorFlash>(flash: &mut F, mut cmd: Command) -> Result<Command> {
    let len = EXTENSION.len() as u32;
    let at = cmd.src().checked_sub(SECTOR + len.next_multiple_of(SECTOR)).ok_or(UpdaterError::ExtensionSpace)?;
    let app = loader::app(flash, APP_OFFSET).map_err(|_| UpdaterError::UpdateInProgress)?;
    if at < (APP_OFFSET + app.len).next_multiple_of(SECTOR) || !cmd.src().is_multiple_of(SECTOR) {
        return Err(UpdaterError::ExtensionSpace);
    }
    let mut s = at;
    while s < at + len {
        flash.erase(s, s + SECTOR).map_err(|_| UpdaterError::FlashErase)?;
        s += SECTOR;
    }
    let mut buf = [0u32; CHUNK_WORDS];
    for (i, chunk) in EXTENSION.chunks(CHUNK_WORDS * 4).enumerate() {
        let b = as_bytes(&mut buf);
        b.fill(0xFF);
        b[..chunk.len()].copy_from_slice(chunk);
        let n = chunk.len().next_multiple_of(4);
        let addr = at + (i * CHUNK_WORDS * 4) as u32;
        flash.write(addr, &b[..n]).map_err(|_| UpdaterError::FlashWrite)?;
        b.fill(0);
        flash.read(addr, &mut b[..n]).map_err(|_| UpdaterError::FlashRead)?;
        if b[..chunk.len()] != *chunk {
            return Err(UpdaterError::ExtensionSpace);
        }
    }
    cmd.ext |= EXT_IMAGE;
    cmd.args[ARG_EXT_ADDR] = at;
    cmd.args[ARG_EXT_CRC] = bootloader::crc::gzip(0, EXTENSION);
    Ok(cmd)
}

/// Where the filesystem is: flash offsets (the linker's `_FS_start − 0x40200000`,
/// `_FS_end − 0x40200000`). With no filesystem both are the end of the sketch area
/// (e.g. 0xFB000 on the Arduino 1M layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub fs_start: u32,
    pub fs_end: u32,
}

/// What the image replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The sketch: a whole Arduino `.bin` (bootloader slot + app, from offset 0), raw or
    /// gzip. The bootloader installs it from offset 4096 at 0x1000; its sector 0 is never
    /// installed, so the updater does not patch the flash mode byte as Arduino's does.
    Sketch,
    /// A filesystem image (raw or gzip), installed at `fs_start`.
    Filesystem,
}

/// The digest `finish` checks the staged bytes against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Only that the flash holds what was written.
    None,
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

/// Bytes moved per flash call: one SPI page, in a word-aligned stack buffer (the ESP8266
/// ROM moves words from aligned RAM, whatever the caller's chunk alignment).
const CHUNK_WORDS: usize = 64;

/// An image being staged. Create with [`Stager::begin`], feed with [`Stager::write`],
/// end with [`Stager::finish`].
pub struct Stager {
    kind: Kind,
    layout: Layout,
    /// Staging address (sector aligned).
    src: u32,
    size: u32,
    /// Bytes accepted by `write`.
    written: u32,
    /// Bytes programmed (a multiple of 4); the rest of `written` waits in `tail`.
    programmed: u32,
    tail: [u8; 4],
    tail_len: usize,
    /// Flash from `src` up to here has been erased by this staging.
    erased_to: u32,
    md5: Md5,
    sha: Sha256,
    failed: bool,
    output_crc: Option<u32>,
}

impl Stager {
    /// Starts staging a `size`-byte image of `kind`.
    ///
    /// The staging address is `fs_start − roundup4K(size)`, as Arduino's `Updater::begin`
    /// computes it (for a filesystem too: atomic filesystem updates). The fit rules:
    /// Arduino's (`roundup4K(running sketch) + roundup4K(size) ≤ fs_start`; a filesystem
    /// image no larger than the filesystem), plus the sector eboot-rs needs for its journal
    /// just below the staged image (a filesystem update one more, for its backup of
    /// 0x1000). The running sketch's size is read from its image header at 0x1000 (what
    /// `ESP.getSketchSize()` returns, and the figure the bootloader checks against); if
    /// 0x1000 holds no valid header an update is still in progress and nothing is staged.
    ///
    /// A trial update needs room for a copy of the running sketch as well; the bootloader
    /// refuses it (code `NoSpace`) otherwise.
    pub fn begin<F: NorFlash>(flash: &mut F, layout: Layout, kind: Kind, size: u32) -> Result<Stager> {
        let cap = flash.capacity() as u64;
        let Layout { fs_start, fs_end } = layout;
        if size == 0 {
            return Err(UpdaterError::Empty);
        }
        if fs_start % SECTOR != 0 || fs_end % SECTOR != 0 || fs_start > fs_end || fs_end as u64 > cap {
            return Err(UpdaterError::BadLayout);
        }
        // A trial keeps 0x1000's header erased until it ends, so the journal says which.
        let app = loader::app(flash, APP_OFFSET).map_err(|c| match c {
            Code::ReadFail => UpdaterError::FlashRead,
            _ if journal::trial_pending(flash) => UpdaterError::TrialPending,
            _ => UpdaterError::UpdateInProgress,
        })?;
        // u64: a size near u32::MAX must not wrap.
        let app_end = (APP_OFFSET as u64 + app.len as u64).next_multiple_of(SECTOR as u64);
        let rounded = (size as u64).next_multiple_of(SECTOR as u64);
        if kind == Kind::Filesystem && fs_start as u64 + rounded > fs_end as u64 {
            return Err(UpdaterError::FilesystemTooBig);
        }
        // Arduino: `updateStartAddress = end > rounded ? end - rounded : 0`, then the
        // start must not be below the running sketch.
        let src = (fs_start as u64).saturating_sub(rounded);
        let reserved = match kind {
            Kind::Sketch => SECTOR as u64,
            Kind::Filesystem => 2 * SECTOR as u64,
        };
        if src < app_end + reserved {
            return Err(UpdaterError::NoSpace);
        }
        Ok(Stager {
            kind,
            layout,
            src: src as u32,
            size,
            written: 0,
            programmed: 0,
            tail: [0xFF; 4],
            tail_len: 0,
            erased_to: src as u32,
            md5: Md5::new(),
            sha: Sha256::new(),
            failed: false,
            output_crc: None,
        })
    }

    /// Where the image is staged (a flash offset, sector aligned).
    pub fn address(&self) -> u32 {
        self.src
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u32 {
        self.written
    }

    /// The next bytes of the image; chunks may have any length.
    ///
    /// A sketch's first byte must be 0xE9 or 0x1F (raw or gzip image), and a raw sketch
    /// must fit below its own staged copy: both are refused here, before any flash is
    /// touched, rather than after the whole download.
    pub fn write<F: NorFlash>(&mut self, flash: &mut F, data: &[u8]) -> Result<()> {
        if self.failed {
            return Err(UpdaterError::Aborted);
        }
        if data.len() as u64 > (self.size - self.written) as u64 {
            return Err(UpdaterError::Overflow);
        }
        let Some(&first) = data.first() else { return Ok(()) };
        if self.written == 0 && self.kind == Kind::Sketch {
            match first {
                image::MAGIC => self.output_fits(self.size)?,
                0x1F => {}
                _ => return Err(UpdaterError::BadMagic),
            }
        }
        self.md5.update(data);
        self.sha.update(data);
        self.written += data.len() as u32;
        let r = self.program(flash, data);
        self.failed = r.is_err();
        r
    }

    /// Checks the staged image and returns the command that installs it.
    ///
    /// Every staged byte is read back from flash and hashed again: the digests computed
    /// while writing only describe what was received, not what the flash holds. The read
    /// back must match them ([`UpdaterError::ReadBack`] otherwise) and `expected`. Then the
    /// image is checked the way Arduino's `Updater::end` does (magic; a raw sketch's flash
    /// size no bigger than the chip) and, for eboot-rs, that a raw sketch has an app header
    /// at 4096 and that a gzip image's output (its ISIZE) fits. Nothing is written to RTC
    /// memory: pass the command to [`request`](crate::request).
    pub fn finish<F: NorFlash>(&mut self, flash: &mut F, expected: Check) -> Result<Command> {
        if self.failed {
            return Err(UpdaterError::Aborted);
        }
        if self.written != self.size {
            return Err(UpdaterError::Incomplete);
        }
        if self.tail_len != 0 {
            // The rest of the word stays erased (0xFF), as beyond the image.
            let w = [u32::from_le_bytes(self.tail)];
            let r = self.put(flash, &w);
            self.failed = r.is_err();
            r?;
            self.tail = [0xFF; 4];
            self.tail_len = 0;
        }
        let rb = self.read_back(flash, expected)?;
        match expected {
            Check::Sha256(d) => {
                if rb.sha256 != self.sha.clone().finalize()[..] {
                    return Err(UpdaterError::ReadBack);
                }
                if rb.sha256 != d {
                    return Err(UpdaterError::Sha256Mismatch);
                }
            }
            Check::Md5(_) | Check::None => {
                if rb.md5 != self.md5.clone().finalize()[..] {
                    return Err(UpdaterError::ReadBack);
                }
                if matches!(expected, Check::Md5(d) if d != rb.md5) {
                    return Err(UpdaterError::Md5Mismatch);
                }
            }
        }
        let gzip = rb.head[0] == 0x1F && rb.head[1] == 0x8B && self.size >= 2;
        if gzip {
            let out = u32::from_le_bytes(rb.last);
            match self.kind {
                Kind::Sketch if out <= SECTOR => return Err(UpdaterError::BadImage),
                Kind::Sketch => self.output_fits(out)?,
                Kind::Filesystem => {
                    if self.layout.fs_start as u64 + round_up64(out) > self.layout.fs_end as u64 {
                        return Err(UpdaterError::FilesystemTooBig);
                    }
                }
            }
        } else if self.kind == Kind::Sketch {
            if rb.head[0] != image::MAGIC {
                return Err(UpdaterError::BadMagic);
            }
            // Arduino's check: an unknown size code passes (magicFlashChipSize gives 0).
            if image::flash_size_from_code(rb.head[3] >> 4).is_some_and(|s| s as u64 > flash.capacity() as u64) {
                return Err(UpdaterError::FlashSizeMismatch);
            }
            let app_fits = self.size as u64 >= SECTOR as u64 + image::HEADER_LEN as u64;
            if !app_fits || image::Header::parse(&rb.app_head).is_none() {
                return Err(UpdaterError::BadImage);
            }
        }
        self.output_crc = (!gzip).then_some(rb.crc);
        let dst = match self.kind {
            Kind::Sketch => 0,
            Kind::Filesystem => self.layout.fs_start,
        };
        Ok(Command::copy(self.src, dst, self.size))
    }

    /// After a successful [`finish`](Self::finish) of a raw image: the CRC-32 (ISO-HDLC)
    /// of the bytes the bootloader will write — the whole image for a filesystem, the image
    /// from offset 4096 for a sketch — for [`CommandExt::expect_crc`](crate::CommandExt).
    /// `None` for a gzip image (its output is the inflated bytes) or before `finish`.
    pub fn output_crc(&self) -> Option<u32> {
        self.output_crc
    }

    /// eboot-rs copies a sketch to 0x1000 while its staged copy is still needed (a resumed
    /// copy starts over from it), so the output must end at or below the journal sector
    /// just under the staged image.
    fn output_fits(&self, out_len: u32) -> Result<()> {
        if round_up64(out_len) + SECTOR as u64 > self.src as u64 {
            return Err(UpdaterError::OutputTooBig);
        }
        Ok(())
    }

    /// Programs `data` after what is already staged, through the tail word.
    fn program<F: NorFlash>(&mut self, flash: &mut F, mut data: &[u8]) -> Result<()> {
        let mut buf = [0u32; CHUNK_WORDS];
        while !data.is_empty() {
            let b = as_bytes(&mut buf);
            let (head, rest) = b.split_at_mut(self.tail_len);
            head.copy_from_slice(&self.tail[..self.tail_len]);
            let take = rest.len().min(data.len());
            let (now, later) = data.split_at(take);
            rest[..take].copy_from_slice(now);
            data = later;
            let n = self.tail_len + take;
            let whole = n & !3;
            self.tail_len = n - whole;
            self.tail[..self.tail_len].copy_from_slice(&b[whole..n]);
            self.put(flash, &buf[..whole / 4])?;
        }
        Ok(())
    }

    /// Programs whole words at the next staged address, erasing each sector on first use.
    fn put<F: NorFlash>(&mut self, flash: &mut F, words: &[u32]) -> Result<()> {
        if words.is_empty() {
            return Ok(());
        }
        let addr = self.src + self.programmed;
        let end = addr + words.len() as u32 * 4;
        while self.erased_to < end {
            flash.erase(self.erased_to, self.erased_to + SECTOR).map_err(|_| UpdaterError::FlashErase)?;
            self.erased_to += SECTOR;
        }
        bootloader::flash::write_words(flash, addr, words).map_err(|_| UpdaterError::FlashWrite)?;
        self.programmed += words.len() as u32 * 4;
        Ok(())
    }

    /// Reads the staged image back: its digest (the one `check` needs), its first bytes,
    /// the app header at 4096, the last 4 bytes (a gzip ISIZE) and the output CRC.
    fn read_back<F: NorFlash>(&self, flash: &mut F, check: Check) -> Result<ReadBack> {
        let mut rb = ReadBack { md5: [0; 16], sha256: [0; 32], head: [0; 8], app_head: [0; 8], last: [0; 4], crc: 0 };
        let (mut md5, mut sha) = (Md5::new(), Sha256::new());
        let sha_needed = matches!(check, Check::Sha256(_));
        let skip = match self.kind {
            Kind::Sketch => SECTOR,
            Kind::Filesystem => 0,
        };
        let mut buf = [0u32; CHUNK_WORDS];
        let mut off = 0u32;
        while off < self.size {
            let b = as_bytes(&mut buf);
            let n = (self.size - off).min(b.len() as u32) as usize;
            // Word-granular reads: the bytes past `size` in the last word are erased.
            let nr = n.next_multiple_of(4);
            flash.read(self.src + off, &mut b[..nr]).map_err(|_| UpdaterError::FlashRead)?;
            let d = &b[..n];
            if sha_needed {
                sha.update(d);
            } else {
                md5.update(d);
            }
            // Chunks start at multiples of 256 from the image start, so 0 and 4096 are
            // chunk starts.
            if off == 0 {
                copy_prefix(&mut rb.head, d);
            }
            if off == SECTOR {
                copy_prefix(&mut rb.app_head, d);
            }
            if off + n as u32 > skip {
                let from = skip.saturating_sub(off) as usize;
                rb.crc = bootloader::crc::gzip(rb.crc, &d[from..]);
            }
            for &x in &d[n.saturating_sub(4)..] {
                rb.last = [rb.last[1], rb.last[2], rb.last[3], x];
            }
            off += n as u32;
        }
        if sha_needed {
            rb.sha256.copy_from_slice(&sha.finalize());
        } else {
            rb.md5.copy_from_slice(&md5.finalize());
        }
        Ok(rb)
    }
}

struct ReadBack {
    md5: [u8; 16],
    sha256: [u8; 32],
    head: [u8; 8],
    app_head: [u8; 8],
    last: [u8; 4],
    crc: u32,
}

fn copy_prefix(to: &mut [u8; 8], from: &[u8]) {
    let n = from.len().min(8);
    to[..n].copy_from_slice(&from[..n]);
}

fn round_up64(x: u32) -> u64 {
    (x as u64).next_multiple_of(SECTOR as u64)
}
