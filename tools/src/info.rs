//! `otatool info`: identify a file (flash image, lone image, gzip, signed file, command
//! block) and explain it, as text or JSON.

use crate::cmdblock::{self, CommandReport};
use crate::error::{Error, Result};
use crate::gzip;
use crate::image::{self, ParsedImage, BOOTLOADER_SLOT, SLOT_FILL};
use crate::sign;
use bootloader::image::{Region, ARDUINO_CRC_OFFSET, IRAM_END};
use serde::Serialize;
use std::fmt::Write;

#[derive(Clone, Debug, Serialize)]
pub struct SegmentReport {
    pub addr: u32,
    pub len: u32,
    /// Offset of the data in the file.
    pub file_offset: usize,
    pub region: String,
    /// The bootloader copies it to RAM (IRAM/DRAM/RTC); flash-mapped code stays in flash.
    pub loaded: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    /// Offset of the image in the file.
    pub offset: usize,
    /// Image length with padding and checksum byte.
    pub len: usize,
    pub segment_count: u8,
    pub flash_mode: String,
    pub flash_freq: String,
    pub flash_size: String,
    pub entry: u32,
    pub segments: Vec<SegmentReport>,
    pub checksum_stored: u8,
    pub checksum_computed: u8,
    pub checksum_valid: bool,
    /// Why an invalid checksum is expected, when it is.
    pub checksum_note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CrcReport {
    pub stored_len: u32,
    pub stored_crc: u32,
    pub computed_crc: u32,
    pub absent: bool,
    pub valid: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// Bootloader slot + app at 0x1000 (what `otatool image` and elf2bin write).
    FlashImage {
        len: usize,
        bootloader: ImageReport,
        /// Bytes after the bootloader image up to 0x1000 are all 0xAA (elf2bin's fill).
        slot_fill_ok: bool,
        app: ImageReport,
        crc: Option<CrcReport>,
        /// Bytes after the app image (not part of any image).
        trailing: usize,
    },
    /// One ESP8266 image on its own (a bootloader .bin or an app image).
    Image {
        role: String,
        len: usize,
        image: ImageReport,
        trailing: usize,
        /// An extension image: the CRC-32 (ISO-HDLC) a command names it with.
        extension_crc: Option<u32>,
    },
    Gzip {
        len: usize,
        flags: u8,
        mtime: u32,
        name: Option<String>,
        crc32: u32,
        isize: u32,
        /// CRC-32 and ISIZE match the inflated data (eboot does not check them; eboot-rs does).
        trailer_valid: bool,
        /// Bytes after the gzip member.
        trailing: usize,
        /// Those bytes start another gzip member (a multi-member file, e.g. `cat a.gz b.gz`).
        more_members: bool,
        /// eboot-rs installs it: one member, its CRC-32 and ISIZE right, nothing after it.
        bootloader_accepts: bool,
        /// Compressed member size / inflated size.
        ratio: f64,
        contents: Box<Report>,
    },
    Signed {
        len: usize,
        payload_len: usize,
        signature_len: usize,
        payload_sha256: String,
        /// Set when a public key was given: the scheme that verified.
        verified: Option<String>,
        contents: Box<Report>,
    },
    Command(CommandReport),
    Unknown {
        len: usize,
        reason: String,
    },
}

fn region_name(r: Region) -> &'static str {
    match r {
        Region::Dram => "dram",
        Region::Iram => "iram",
        Region::Rtc => "rtc",
        Region::Flash => "flash",
        Region::Invalid => "invalid",
    }
}

/// IRAM the ROM loader can fill: the bootloader runs from its top (0x4010F000).
const ROM_IRAM: std::ops::Range<u32> = 0x4010_0000..0x4011_0000;

/// `by_rom`: the image is a bootloader, loaded by the ROM (which also fills the IRAM above
/// the app's limit); otherwise an app, loaded by the bootloader with eboot's rule.
fn image_report(p: &ParsedImage, offset: usize, by_rom: bool) -> ImageReport {
    ImageReport {
        offset,
        len: p.len,
        segment_count: p.header.segments,
        flash_mode: p.flash_mode().map_or_else(
            || format!("unknown({})", p.header.flash_mode),
            |m| m.to_string(),
        ),
        flash_freq: p.flash_freq().map_or_else(
            || format!("unknown({})", p.header.size_freq & 0xF),
            |f| f.to_string(),
        ),
        flash_size: p.flash_size().map_or_else(
            || format!("unknown({})", p.header.size_freq >> 4),
            |s| s.to_string(),
        ),
        entry: p.header.entry,
        segments: p
            .segments
            .iter()
            .map(|s| {
                let rom_iram = by_rom && ROM_IRAM.contains(&s.addr);
                SegmentReport {
                    addr: s.addr,
                    len: s.len,
                    file_offset: offset + s.data_offset,
                    region: if rom_iram {
                        "iram"
                    } else {
                        region_name(s.region)
                    }
                    .to_string(),
                    loaded: rom_iram || s.region.loaded(),
                }
            })
            .collect(),
        checksum_stored: p.checksum_stored,
        checksum_computed: p.checksum_computed,
        checksum_valid: p.checksum_valid(),
        checksum_note: None,
    }
}

/// Options for [`inspect`].
#[derive(Default)]
pub struct Options<'a> {
    pub public_key: Option<&'a rsa::RsaPublicKey>,
}

/// Identifies and explains `b`.
pub fn inspect(b: &[u8], opts: &Options) -> Result<Report> {
    inspect_depth(b, opts, 0)
}

fn inspect_depth(b: &[u8], opts: &Options, depth: u32) -> Result<Report> {
    if b.is_empty() {
        return Err(Error::invalid("file is empty"));
    }
    // Binary block (by its magic), or its hex text form (by length and digits).
    if cmdblock::looks_like_block(b)
        || (b.len() < 600 && b[0] != 0xE9 && cmdblock::parse(b).is_ok())
    {
        return Ok(Report::Command(cmdblock::report(&cmdblock::parse(b)?)));
    }
    // A signature trailer is checked before the formats, since a signed file starts like
    // its payload. Only a payload that is itself recognisable counts.
    if depth == 0 {
        if let Some(s) = sign::split(b) {
            if image::parse_image(s.payload).is_ok() || gzip::inspect(s.payload).is_ok() {
                let verified = match opts.public_key {
                    Some(k) => Some(sign::verify(b, k)?.name().to_string()),
                    None => None,
                };
                let contents = inspect_depth(s.payload, opts, depth + 1)?;
                return Ok(Report::Signed {
                    len: b.len(),
                    payload_len: s.payload.len(),
                    signature_len: s.signature.len(),
                    payload_sha256: sign::sha256_hex(s.payload),
                    verified,
                    contents: Box::new(contents),
                });
            }
        }
    }
    if gzip::is_gzip(b) {
        let g = gzip::inspect(b)?;
        let contents = if depth < 2 {
            inspect_depth(&g.data, opts, depth + 1)?
        } else {
            unknown(&g.data, "nested too deep")
        };
        return Ok(Report::Gzip {
            len: b.len(),
            flags: g.flags,
            mtime: g.mtime,
            name: g.name,
            crc32: g.crc32,
            isize: g.isize,
            trailer_valid: g.trailer_valid,
            trailing: b.len() - g.member_len,
            more_members: gzip::is_gzip(&b[g.member_len..]),
            bootloader_accepts: g.trailer_valid && b.len() == g.member_len,
            ratio: g.member_len as f64 / g.data.len().max(1) as f64,
            contents: Box::new(contents),
        });
    }
    if b[0] == bootloader::image::MAGIC {
        return image_file(b);
    }
    if image::is_elf(b) {
        let why = "this is an ELF file (linker output), not a flash image; \
                   make the image with `otatool image --bootloader BOOT --app FILE -o OUT`";
        if depth == 0 {
            return Err(Error::invalid(why));
        }
        return Ok(unknown(b, why));
    }
    let why = format!(
        "first byte 0x{:02X} is no known magic (0xE9 image, 1F 8B gzip, command block)",
        b[0]
    );
    if depth == 0 {
        return Err(Error::invalid(format!(
            "not a flash image, gzip, signed file or command block: {why}"
        )));
    }
    Ok(unknown(b, &why))
}

/// The eboot-rs extension image: every loaded segment in DRAM or the extension's IRAM
/// window, with code there and the entry in it.
pub fn is_extension(img: &ParsedImage) -> bool {
    use bootloader::image::{segment_region, Region, EXT_IRAM_END};
    let entry = img.header.entry;
    (IRAM_END..EXT_IRAM_END).contains(&entry)
        && img.segments.iter().all(|s| segment_region(s.addr, s.len, EXT_IRAM_END) != Region::Invalid)
        && img.segments.iter().any(|s| s.addr >= IRAM_END && s.addr < EXT_IRAM_END)
}

fn unknown(b: &[u8], reason: &str) -> Report {
    Report::Unknown {
        len: b.len(),
        reason: reason.to_string(),
    }
}

fn image_file(b: &[u8]) -> Result<Report> {
    let first = image::parse_image(b)?;
    let is_flash = b.len() > BOOTLOADER_SLOT
        && first.len + 8 <= BOOTLOADER_SLOT
        && b[BOOTLOADER_SLOT] == bootloader::image::MAGIC;
    if !is_flash {
        // A bootloader runs from IRAM above the app's range; an app enters below it; the
        // eboot-rs extension image enters between the two (0x4010C000..0x4010F000).
        let role = if is_extension(&first) {
            "extension"
        } else if first.header.entry >= IRAM_END && first.len <= BOOTLOADER_SLOT {
            "bootloader"
        } else {
            "app"
        };
        let trailing = b.len() - first.len;
        let bl_slot = role == "bootloader" && b[first.len..].iter().all(|&x| x == SLOT_FILL);
        return Ok(Report::Image {
            role: role.to_string(),
            len: b.len(),
            image: image_report(&first, 0, role == "bootloader"),
            trailing: if bl_slot { 0 } else { trailing },
            extension_crc: (role == "extension").then(|| bootloader::crc::gzip(0, &b[..first.len])),
        });
    }
    let boot = image_report(&first, 0, true);
    let slot_fill_ok = b[first.len..BOOTLOADER_SLOT]
        .iter()
        .all(|&x| x == SLOT_FILL);
    let app_parsed = image::parse_image(&b[BOOTLOADER_SLOT..])
        .map_err(|e| Error::invalid(format!("app image at 0x1000: {e}")))?;
    let mut app = image_report(&app_parsed, BOOTLOADER_SLOT, false);
    let crc = image::arduino_crc(b);
    if !app.checksum_valid {
        // elf2bin computes the app checksum with the CRC words zero, then fills them in.
        let off = ARDUINO_CRC_OFFSET as usize;
        let words_in_first_segment = app_parsed.segments.first().is_some_and(|s| {
            BOOTLOADER_SLOT + s.data_offset <= off
                && off + 8 <= BOOTLOADER_SLOT + s.data_offset + s.len as usize
        });
        if words_in_first_segment {
            let fixed = b[off..off + 8]
                .iter()
                .fold(app.checksum_computed, |sum, x| sum ^ x);
            if fixed == app.checksum_stored {
                app.checksum_note = Some(
                    "stale as elf2bin leaves it: computed before the whole-image CRC was written at 0x1010; \
                     eboot and eboot-rs do not check it (the whole-image CRC covers the image)"
                        .to_string(),
                );
            } else if crc.is_some_and(|c| c.valid) {
                // The CRC vouches for the file as written, so the checksum was computed
                // over other bytes at 0x1010: the app ELF had code or data there instead
                // of the zero __crc_len/__crc_val words, and the CRC replaced them.
                app.checksum_note = Some(
                    "the whole-image CRC is valid, so the file is as elf2bin/otatool wrote it: the checksum was \
                     computed over 8 nonzero bytes at 0x1010 that the CRC then replaced. The app ELF had no \
                     __crc_len/__crc_val words there (a core before 3.0.0?), so 8 bytes of the sketch's own \
                     code or data at 0x40201010 are overwritten and the sketch may crash"
                        .to_string(),
                );
            }
        }
    }
    Ok(Report::FlashImage {
        len: b.len(),
        bootloader: boot,
        slot_fill_ok,
        trailing: b.len() - (BOOTLOADER_SLOT + app.len),
        app,
        crc: crc.map(|c| CrcReport {
            stored_len: c.stored_len,
            stored_crc: c.stored_crc,
            computed_crc: c.computed_crc,
            absent: c.absent,
            valid: c.valid,
        }),
    })
}

fn render_image(out: &mut String, title: &str, r: &ImageReport) {
    let _ = writeln!(
        out,
        "{title} at 0x{:X}: {} bytes, {} segments, {} / {} / {}, entry 0x{:08X}",
        r.offset, r.len, r.segment_count, r.flash_mode, r.flash_freq, r.flash_size, r.entry
    );
    for (i, s) in r.segments.iter().enumerate() {
        let what = if s.loaded {
            "loaded"
        } else {
            "not loaded (stays in flash)"
        };
        let what = if s.region == "invalid" {
            "INVALID address: not loaded"
        } else {
            what
        };
        let _ = writeln!(
            out,
            "  segment {i}: 0x{:08X} {:>7} bytes at file 0x{:06X}  {:<5} {what}",
            s.addr, s.len, s.file_offset, s.region
        );
    }
    let state = if r.checksum_valid {
        "valid".to_string()
    } else {
        format!("INVALID (computed 0x{:02X})", r.checksum_computed)
    };
    let _ = writeln!(out, "  checksum 0x{:02X} {state}", r.checksum_stored);
    if let Some(n) = &r.checksum_note {
        let _ = writeln!(out, "    {n}");
    }
}

/// Human-readable form of a report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    render_into(&mut out, r);
    out
}

fn render_into(out: &mut String, r: &Report) {
    match r {
        Report::FlashImage {
            len,
            bootloader,
            slot_fill_ok,
            app,
            crc,
            trailing,
        } => {
            let _ = writeln!(
                out,
                "Arduino flash image, {len} bytes (bootloader slot 0x0..0x1000, app at 0x1000)"
            );
            let _ = writeln!(out, "  serial flash: write at 0x0; OTA: send as is (the bootloader keeps its own sector 0)");
            render_image(out, "bootloader image", bootloader);
            if !slot_fill_ok {
                let _ = writeln!(
                    out,
                    "  note: slot after the bootloader image is not all 0xAA"
                );
            }
            render_image(out, "app image", app);
            match crc {
                Some(c) if c.absent => {
                    let _ = writeln!(out, "whole-image CRC: absent (words at 0x1010 are zero)");
                }
                Some(c) => {
                    let state = if c.valid {
                        "valid".to_string()
                    } else {
                        format!(
                            "INVALID (file is {len} bytes, CRC computed 0x{:08X})",
                            c.computed_crc
                        )
                    };
                    let _ = writeln!(
                        out,
                        "whole-image CRC: length {} crc 0x{:08X} {state}",
                        c.stored_len, c.stored_crc
                    );
                }
                None => {}
            }
            if *trailing > 0 {
                let _ = writeln!(out, "note: {trailing} bytes after the app image");
            }
        }
        Report::Image {
            role,
            len,
            image,
            trailing,
            extension_crc,
        } => {
            let _ = writeln!(out, "ESP8266 {role} image, file {len} bytes");
            if let Some(crc) = extension_crc {
                let _ = writeln!(
                    out,
                    "eboot-rs extension image (target/esp8266/extension.bin): the sector-0 bootloader chain-loads it \
                     to carry out trial updates and expected CRCs. Stage it below the update's journal sector and \
                     name it in the command (otatool command --extension; the updater crate's stage_extension); \
                     CRC-32 0x{crc:08X}"
                );
            }
            render_image(out, "image", image);
            if *trailing > 0 {
                let _ = writeln!(out, "note: {trailing} bytes after the image");
            }
        }
        Report::Gzip {
            len,
            crc32,
            isize,
            trailer_valid,
            trailing,
            more_members,
            ratio,
            contents,
            name,
            ..
        } => {
            let trailer = match (*trailer_valid, *trailing) {
                (true, 0) => "trailer valid",
                (true, _) => "member trailer valid, but the file goes on after it",
                (false, _) => "trailer INVALID (CRC-32 or ISIZE does not match the data)",
            };
            let _ = writeln!(
                out,
                "gzip, {len} bytes -> {isize} bytes (ratio {ratio:.3}), CRC-32 0x{crc32:08X}, {trailer}"
            );
            if let Some(n) = name {
                let _ = writeln!(out, "  stored name: {n}");
            }
            if *trailing > 0 {
                let what = if *more_members {
                    "another gzip member (several members in one file)"
                } else {
                    "data that is not gzip"
                };
                let _ = writeln!(
                    out,
                    "  REFUSED by the bootloader: {trailing} bytes after the first gzip member are {what}; \
                     eboot-rs refuses the file (GzipTrailer) and stock eboot would take ISIZE from the file's last 4 bytes. \
                     Compress the image as one member (otatool gzip)"
                );
            } else if !*trailer_valid {
                let _ = writeln!(
                    out,
                    "  REFUSED by eboot-rs (GzipTrailer); stock eboot does not check the gzip CRC"
                );
            }
            let _ = writeln!(out, "--- contents:");
            render_into(out, contents);
        }
        Report::Signed {
            len,
            payload_len,
            signature_len,
            payload_sha256,
            verified,
            contents,
        } => {
            let _ = writeln!(
                out,
                "signed file, {len} bytes: payload {payload_len} + signature {signature_len} + 4-byte length"
            );
            let _ = writeln!(out, "  payload SHA-256 {payload_sha256}");
            match verified {
                Some(s) => {
                    let _ = writeln!(out, "  signature VERIFIED ({s})");
                }
                None => {
                    let _ = writeln!(out, "  signature not checked (give --pubkey)");
                }
            }
            let _ = writeln!(out, "--- payload:");
            render_into(out, contents);
        }
        Report::Command(c) => {
            let _ = writeln!(
                out,
                "RTC command block: {} (magic 0x{:08X} {}, CRC 0x{:08X} {})",
                if c.valid {
                    "valid, the bootloader acts on it"
                } else {
                    "INVALID, the bootloader ignores it"
                },
                c.magic,
                if c.magic_valid { "ok" } else { "wrong" },
                c.crc_stored,
                if c.crc_valid {
                    "ok".to_string()
                } else {
                    format!("wrong, computed 0x{:08X}", c.crc_computed)
                },
            );
            let _ = writeln!(
                out,
                "  action {} ({:#x}): src 0x{:X} dst 0x{:X} len {}",
                c.action, c.action_code, c.src, c.dst, c.len
            );
            if !c.extensions.is_empty() || c.unknown_extension_bits != 0 {
                let _ = writeln!(
                    out,
                    "  extensions: {} (unknown bits 0x{:03X})",
                    c.extensions.join(", "),
                    c.unknown_extension_bits
                );
            }
        }
        Report::Unknown { len, reason } => {
            let _ = writeln!(out, "unknown file, {len} bytes: {reason}");
        }
    }
}
