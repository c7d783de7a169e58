//! Building and reading ESP8266 flash images on the host.
//!
//! The byte format itself (header, segment headers, checksum, size codes, regions) is
//! defined once in [`bootloader::image`]; this module adds what only a host needs: ELF input,
//! the Arduino two-image layout that `tools/elf2bin.py` writes, and a parser for `info`.
//!
//! elf2bin's rules, reproduced here (read from its source, not guessed):
//! * the bootloader image has exactly the sections `.text`, `.rodata`; the app image exactly
//!   `.irom0.text`, `.text`, `.text1`, `.data`, `.rodata`, in that order, one segment each,
//!   even when a section is empty; a missing section is an error (its `objdump -j` fails);
//! * segment length = the section header's size, load address = its VMA, data = the section
//!   bytes (a NOBITS section of nonzero size fails elf2bin's size check, and here);
//! * checksum = 0xEF XOR all segment data; zero padding so that the length including the
//!   checksum byte is a multiple of 16; no per-segment padding;
//! * the bootloader image must leave 8 spare bytes in its 4096-byte slot and is padded with
//!   0xAA up to 4096; the app image follows at 0x1000;
//! * the words at 0x1010/0x1014 are zeroed, CRC-32/MPEG-2 is taken over the whole file, then
//!   0x1010 = file length, 0x1014 = CRC. The app checksum byte was computed before, so it
//!   is stale afterwards (eboot never checks it); we keep that byte for byte.

use crate::error::{Error, Result};
use bootloader::command::CRC32_MPEG2;
use bootloader::image::{
    le32,
    checksum_update, flash_size_code, flash_size_from_code, padded_len, Header, Region, Segment,
    APP_OFFSET, ARDUINO_CRC_OFFSET, CHECKSUM_SEED, HEADER_LEN, MAGIC, SEGMENT_HEADER_LEN,
};
use object::elf;
use object::read::elf::{ElfFile32, FileHeader, SectionHeader};
use object::Endianness;
use std::fmt;
use std::str::FromStr;

/// Size of the bootloader slot (flash sector 0).
pub const BOOTLOADER_SLOT: usize = APP_OFFSET as usize;
/// Byte elf2bin fills the rest of the bootloader slot with.
pub const SLOT_FILL: u8 = 0xAA;
/// Sections elf2bin takes from the bootloader ELF, in image order.
pub const BOOTLOADER_SECTIONS: [&str; 2] = [".text", ".rodata"];
/// Sections elf2bin takes from the app ELF, in image order.
pub const APP_SECTIONS: [&str; 5] = [".irom0.text", ".text", ".text1", ".data", ".rodata"];

/// SPI flash mode (header byte 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashMode {
    Qio,
    Qout,
    Dio,
    Dout,
}

impl FlashMode {
    pub fn code(self) -> u8 {
        match self {
            FlashMode::Qio => 0,
            FlashMode::Qout => 1,
            FlashMode::Dio => 2,
            FlashMode::Dout => 3,
        }
    }
    pub fn from_code(c: u8) -> Option<FlashMode> {
        Some(match c {
            0 => FlashMode::Qio,
            1 => FlashMode::Qout,
            2 => FlashMode::Dio,
            3 => FlashMode::Dout,
            _ => return None,
        })
    }
}

/// SPI flash clock (low nibble of header byte 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashFreq {
    F40m,
    F26m,
    F20m,
    F80m,
}

impl FlashFreq {
    pub fn code(self) -> u8 {
        match self {
            FlashFreq::F40m => 0,
            FlashFreq::F26m => 1,
            FlashFreq::F20m => 2,
            FlashFreq::F80m => 0xF,
        }
    }
    pub fn from_code(c: u8) -> Option<FlashFreq> {
        Some(match c {
            0 => FlashFreq::F40m,
            1 => FlashFreq::F26m,
            2 => FlashFreq::F20m,
            0xF => FlashFreq::F80m,
            _ => return None,
        })
    }
}

/// Flash chip size (high nibble of header byte 3), in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashSize(u32);

impl FlashSize {
    pub const S256K: FlashSize = FlashSize(256 << 10);
    pub const S512K: FlashSize = FlashSize(512 << 10);
    pub const S1M: FlashSize = FlashSize(1 << 20);
    pub const S2M: FlashSize = FlashSize(2 << 20);
    pub const S4M: FlashSize = FlashSize(4 << 20);
    pub const S8M: FlashSize = FlashSize(8 << 20);
    pub const S16M: FlashSize = FlashSize(16 << 20);

    /// Only the sizes elf2bin can write are representable.
    pub fn from_bytes(bytes: u32) -> Option<FlashSize> {
        flash_size_code(bytes).map(|_| FlashSize(bytes))
    }
    pub fn bytes(self) -> u32 {
        self.0
    }
    pub fn code(self) -> u8 {
        // Every constructor checked the size against the table.
        flash_size_code(self.0).unwrap_or(0)
    }
    pub fn from_code(c: u8) -> Option<FlashSize> {
        flash_size_from_code(c).map(FlashSize)
    }
}

/// Flash parameters written into header bytes 2 and 3 of both images.
///
/// The default is dio / 40 MHz / 4 MB: the NodeMCU / Wemos D1 mini class of board, the
/// most common ESP-12 modules (elf2bin itself has no defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashParams {
    pub mode: FlashMode,
    pub freq: FlashFreq,
    pub size: FlashSize,
}

impl Default for FlashParams {
    fn default() -> Self {
        FlashParams {
            mode: FlashMode::Dio,
            freq: FlashFreq::F40m,
            size: FlashSize::S4M,
        }
    }
}

impl FlashParams {
    /// Header byte 2.
    pub fn mode_byte(&self) -> u8 {
        self.mode.code()
    }
    /// Header byte 3: size code in the high nibble, frequency code in the low one.
    pub fn size_freq_byte(&self) -> u8 {
        (self.size.code() << 4) | self.freq.code()
    }
}

impl FromStr for FlashMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "qio" => FlashMode::Qio,
            "qout" => FlashMode::Qout,
            "dio" => FlashMode::Dio,
            "dout" => FlashMode::Dout,
            _ => return Err(format!("unknown flash mode '{s}' (qio, qout, dio, dout)")),
        })
    }
}

impl FromStr for FlashFreq {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        // elf2bin spells these "40"; esptool "40m". Accept both.
        let t = s.to_ascii_lowercase();
        let t = t.trim_end_matches("hz").trim_end_matches('m');
        Ok(match t {
            "40" => FlashFreq::F40m,
            "26" => FlashFreq::F26m,
            "20" => FlashFreq::F20m,
            "80" => FlashFreq::F80m,
            _ => return Err(format!("unknown flash frequency '{s}' (20, 26, 40, 80)")),
        })
    }
}

impl FromStr for FlashSize {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        // elf2bin spells these "4M"/"512K"; esptool "4MB"/"512KB". Accept both.
        let t = s.to_ascii_uppercase();
        let t = t.trim_end_matches('B');
        let bytes = if let Some(k) = t.strip_suffix('K') {
            k.parse::<u32>().ok().map(|k| k << 10)
        } else if let Some(m) = t.strip_suffix('M') {
            m.parse::<u32>().ok().map(|m| m << 20)
        } else {
            None
        };
        bytes
            .and_then(FlashSize::from_bytes)
            .ok_or_else(|| format!("unknown flash size '{s}' (256K, 512K, 1M, 2M, 4M, 8M, 16M)"))
    }
}

impl fmt::Display for FlashMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlashMode::Qio => "qio",
            FlashMode::Qout => "qout",
            FlashMode::Dio => "dio",
            FlashMode::Dout => "dout",
        })
    }
}

impl fmt::Display for FlashFreq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlashFreq::F40m => "40m",
            FlashFreq::F26m => "26m",
            FlashFreq::F20m => "20m",
            FlashFreq::F80m => "80m",
        })
    }
}

impl fmt::Display for FlashSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 20 {
            write!(f, "{}M", self.0 >> 20)
        } else {
            write!(f, "{}K", self.0 >> 10)
        }
    }
}

/// One section of an ELF, as an image segment would take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfSection<'a> {
    pub name: String,
    pub addr: u32,
    /// Section header size (`objdump -h`'s size).
    pub size: u32,
    /// The file bytes; `None` for NOBITS.
    pub data: Option<&'a [u8]>,
    pub alloc: bool,
}

/// The parts of an ESP8266 ELF an image is made of.
#[derive(Clone, Debug)]
pub struct Elf<'a> {
    pub entry: u32,
    pub sections: Vec<ElfSection<'a>>,
}

/// `true` when `b` starts with the ELF magic.
pub fn is_elf(b: &[u8]) -> bool {
    b.starts_with(b"\x7fELF")
}

/// Says in words when a 32-bit little-endian ELF is cut short (an interrupted copy or
/// build), before the parser reports it as a bad header offset.
fn check_elf_extent(b: &[u8]) -> Result<()> {
    const EHDR: usize = 52;
    if b.len() >= 6 && (b[4] != 1 || b[5] != 1) {
        return Ok(()); // not ELF32 LE: the parser's own message is the better one
    }
    if b.len() < EHDR {
        return Err(Error::invalid(format!(
            "ELF is truncated: {} bytes, shorter than the {EHDR}-byte ELF header",
            b.len()
        )));
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    for (what, off, entsize, num) in [
        (
            "program header table",
            le32(&b[0x1C..]) as u64,
            u16_at(0x2A),
            u16_at(0x2C),
        ),
        (
            "section header table",
            le32(&b[0x20..]) as u64,
            u16_at(0x2E),
            u16_at(0x30),
        ),
    ] {
        let end = off + entsize * num;
        if num > 0 && end > b.len() as u64 {
            return Err(Error::invalid(format!(
                "ELF is truncated: its {what} ends at byte {end} but the file has {} bytes (an interrupted copy or build?)",
                b.len()
            )));
        }
    }
    Ok(())
}

/// Parses a 32-bit little-endian Xtensa ELF (what xtensa-lx106-elf-ld writes).
pub fn parse_elf(bytes: &[u8]) -> Result<Elf<'_>> {
    if !is_elf(bytes) {
        return Err(Error::invalid("not an ELF file (no \\x7fELF magic)"));
    }
    check_elf_extent(bytes)?;
    let file = ElfFile32::<Endianness>::parse(bytes)
        .map_err(|e| Error::invalid(format!("not a valid 32-bit ELF: {e}")))?;
    let endian = file.endian();
    if endian != Endianness::Little {
        return Err(Error::invalid(
            "ELF is big-endian; the ESP8266 is little-endian",
        ));
    }
    let hdr = file.elf_header();
    if hdr.e_machine(endian) != elf::EM_XTENSA {
        return Err(Error::invalid(format!(
            "ELF is for machine {}, not Xtensa ({})",
            hdr.e_machine(endian),
            elf::EM_XTENSA
        )));
    }
    let table = file.elf_section_table();
    let mut sections = Vec::new();
    for sh in table.iter() {
        let name = table
            .section_name(endian, sh)
            .map_err(|e| Error::invalid(format!("ELF section name table is corrupt: {e}")))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let nobits = sh.sh_type(endian) == elf::SHT_NOBITS;
        let data = if nobits || sh.sh_type(endian) == elf::SHT_NULL {
            None
        } else {
            Some(sh.data(endian, bytes).map_err(|_| {
                Error::invalid(format!(
                    "ELF is truncated: section {name} lies beyond the file end"
                ))
            })?)
        };
        sections.push(ElfSection {
            name,
            addr: sh.sh_addr(endian),
            size: sh.sh_size(endian),
            data,
            alloc: sh.sh_flags(endian) & elf::SHF_ALLOC != 0,
        });
    }
    Ok(Elf {
        entry: hdr.e_entry(endian),
        sections,
    })
}

/// Assembles an image from (load address, data) pairs: header, segments, zero padding and
/// the checksum byte, exactly as elf2bin's `write_bin` lays them out.
pub fn build_image(params: &FlashParams, entry: u32, segments: &[(u32, &[u8])]) -> Result<Vec<u8>> {
    if segments.is_empty() || segments.len() > bootloader::image::MAX_SEGMENTS as usize {
        return Err(Error::invalid(format!(
            "an image needs 1..={} segments, not {}",
            bootloader::image::MAX_SEGMENTS,
            segments.len()
        )));
    }
    let header = Header {
        segments: segments.len() as u8,
        flash_mode: params.mode_byte(),
        size_freq: params.size_freq_byte(),
        entry,
    };
    let mut out = header.to_bytes().to_vec();
    let mut sum = CHECKSUM_SEED;
    for (addr, data) in segments {
        let len =
            u32::try_from(data.len()).map_err(|_| Error::invalid("segment larger than 4 GiB"))?;
        out.extend_from_slice(&Segment { addr: *addr, len }.to_bytes());
        out.extend_from_slice(data);
        sum = checksum_update(sum, data);
    }
    out.resize(padded_len(out.len() as u32) as usize - 1, 0);
    out.push(sum);
    Ok(out)
}

/// ESP8266 image from an ELF: every SHF_ALLOC + PROGBITS section of nonzero size, in
/// ascending address order, one segment each; entry = ELF entry; checksum + padding as
/// elf2bin. (This is what `xtask` makes of our own bootloader ELF; for the Arduino layout,
/// with elf2bin's fixed section lists, see [`arduino_image`].)
pub fn image_from_elf(elf: &[u8], params: &FlashParams) -> Result<Vec<u8>> {
    let parsed = parse_elf(elf)?;
    let mut segs: Vec<(u32, &[u8])> = parsed
        .sections
        .iter()
        .filter(|s| s.alloc && s.size > 0)
        .filter_map(|s| s.data.map(|d| (s.addr, d)))
        .collect();
    segs.sort_by_key(|(a, _)| *a);
    if segs.is_empty() {
        return Err(Error::invalid(
            "ELF has no loadable (allocated PROGBITS) section",
        ));
    }
    build_image(params, parsed.entry, &segs)
}

/// An image made of the named sections, in the given order, with elf2bin's rules
/// (missing section = error, empty section = empty segment, NOBITS of nonzero size = error).
pub fn image_from_sections(elf: &[u8], names: &[&str], params: &FlashParams) -> Result<Vec<u8>> {
    let parsed = parse_elf(elf)?;
    let mut segs = Vec::with_capacity(names.len());
    for name in names {
        let s = parsed.sections.iter().find(|s| s.name == *name).ok_or_else(|| {
            Error::invalid(format!(
                "ELF has no section {name} (elf2bin requires {}; define it in the linker script even when empty)",
                names.join(", ")
            ))
        })?;
        let data = match s.data {
            Some(d) => d,
            None if s.size == 0 => &[][..],
            None => {
                return Err(Error::invalid(format!(
                    "section {name} has no file contents (NOBITS, {} bytes); it cannot be put in an image",
                    s.size
                )))
            }
        };
        segs.push((s.addr, data));
    }
    build_image(params, parsed.entry, &segs)
}

/// Puts a bootloader (ELF, or an already built image) into its 4096-byte slot.
///
/// An ELF gets elf2bin's sections (`.text`, `.rodata`). A prebuilt image is checked and
/// taken as is, except that header bytes 2 and 3 get `params`, as elf2bin writes the same
/// flash parameters into both images (the header is outside the checksum).
pub fn bootloader_slot(bootloader: &[u8], params: &FlashParams) -> Result<Vec<u8>> {
    let mut img = if is_elf(bootloader) {
        image_from_sections(bootloader, &BOOTLOADER_SECTIONS, params)?
    } else {
        let parsed = parse_image(bootloader).map_err(|e| {
            Error::invalid(format!(
                "bootloader is neither an ELF nor an ESP8266 image: {e}"
            ))
        })?;
        let mut img = bootloader[..parsed.len].to_vec();
        // Trailing fill after the image (a whole 4 KiB slot read back from flash) is fine.
        if bootloader[parsed.len..]
            .iter()
            .any(|&b| b != SLOT_FILL && b != 0xFF)
        {
            return Err(Error::invalid(format!(
                "bootloader image ends at {} bytes but the file has other data after it",
                parsed.len
            )));
        }
        img[2] = params.mode_byte();
        img[3] = params.size_freq_byte();
        img
    };
    // elf2bin's limit: the image plus 8 bytes must fit the slot. Images are whole
    // 16-byte blocks, so the largest that passes is 4080 bytes.
    if img.len() + 8 > BOOTLOADER_SLOT {
        return Err(Error::refused(format!(
            "bootloader image is {} bytes; it must be at most {} to fit sector 0",
            img.len(),
            (BOOTLOADER_SLOT - 8) / 16 * 16
        )));
    }
    img.resize(BOOTLOADER_SLOT, SLOT_FILL);
    Ok(img)
}

/// Writes elf2bin's whole-image CRC into an Arduino flash image: zero the words at
/// 0x1010/0x1014, CRC-32/MPEG-2 over the whole file, then length and CRC there.
pub fn apply_arduino_crc(img: &mut [u8]) -> Result<()> {
    let off = ARDUINO_CRC_OFFSET as usize;
    if img.len() < off + 8 {
        return Err(Error::invalid(
            "image too short to hold the whole-image CRC at 0x1010",
        ));
    }
    img[off..off + 8].fill(0);
    let crc = CRC32_MPEG2.checksum(img);
    let len = u32::try_from(img.len()).map_err(|_| Error::invalid("image larger than 4 GiB"))?;
    img[off..off + 4].copy_from_slice(&len.to_le_bytes());
    img[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What the whole-image CRC words of an Arduino flash image say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArduinoCrc {
    /// `__crc_len` as stored.
    pub stored_len: u32,
    /// `__crc_val` as stored.
    pub stored_crc: u32,
    /// CRC computed over the file with the two words zeroed.
    pub computed_crc: u32,
    /// Both words are zero: the ELF's placeholders, never filled in.
    pub absent: bool,
    /// Length equals the file length and the CRC matches.
    pub valid: bool,
}

/// Checks elf2bin's whole-image CRC (what `ESP.checkFlashCRC()` checks on the device).
pub fn arduino_crc(img: &[u8]) -> Option<ArduinoCrc> {
    let off = ARDUINO_CRC_OFFSET as usize;
    if img.len() < off + 8 {
        return None;
    }
    let stored_len = le32(&img[off..]);
    let stored_crc = le32(&img[off + 4..]);
    let mut d = CRC32_MPEG2.digest();
    d.update(&img[..off]);
    d.update(&[0; 8]);
    d.update(&img[off + 8..]);
    let computed_crc = d.finalize();
    Some(ArduinoCrc {
        stored_len,
        stored_crc,
        computed_crc,
        absent: stored_len == 0 && stored_crc == 0,
        valid: stored_len as usize == img.len() && stored_crc == computed_crc,
    })
}

/// elf2bin-compatible Arduino flash image: bootloader image (given as an ELF or as an
/// already built image .bin) padded to 4096 with 0xAA, then the app image from the app ELF
/// with sections .irom0.text, .text, .text1, .data, .rodata (elf2bin's order and rules),
/// then the whole-image CRC written at 0x1010/0x1014.
pub fn arduino_image(bootloader: &[u8], app_elf: &[u8], params: &FlashParams) -> Result<Vec<u8>> {
    let mut out = bootloader_slot(bootloader, params)?;
    let app = image_from_sections(app_elf, &APP_SECTIONS, params)
        .map_err(|e| Error::invalid(format!("app: {e}")))?;
    // The CRC words must land inside .irom0.text (its first 8 bytes are __crc_len/__crc_val);
    // elf2bin would silently overwrite the next segment header instead.
    let irom_len = le32(&app[HEADER_LEN + 4..]);
    if irom_len < 8 {
        return Err(Error::invalid(format!(
            "app: .irom0.text is {irom_len} bytes; it must start with the 8-byte __crc_len/__crc_val words"
        )));
    }
    out.extend_from_slice(&app);
    apply_arduino_crc(&mut out)?;
    Ok(out)
}

/// One segment of a parsed image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedSegment {
    pub addr: u32,
    pub len: u32,
    /// Offset of the segment data, relative to the image start.
    pub data_offset: usize,
    pub region: Region,
}

/// A parsed image: header, segment table, checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedImage {
    pub header: Header,
    pub segments: Vec<ParsedSegment>,
    /// Image length including padding and checksum byte.
    pub len: usize,
    pub checksum_stored: u8,
    pub checksum_computed: u8,
}

impl ParsedImage {
    pub fn checksum_valid(&self) -> bool {
        self.checksum_stored == self.checksum_computed
    }
    pub fn flash_mode(&self) -> Option<FlashMode> {
        FlashMode::from_code(self.header.flash_mode)
    }
    pub fn flash_freq(&self) -> Option<FlashFreq> {
        FlashFreq::from_code(self.header.size_freq & 0xF)
    }
    pub fn flash_size(&self) -> Option<FlashSize> {
        FlashSize::from_code(self.header.size_freq >> 4)
    }
}

/// Parses an image at the start of `b` (trailing bytes after it are ignored).
pub fn parse_image(b: &[u8]) -> Result<ParsedImage> {
    if b.len() < HEADER_LEN {
        return Err(Error::invalid(format!(
            "{} bytes is too short for an image header",
            b.len()
        )));
    }
    if b[0] != MAGIC {
        return Err(Error::invalid(format!(
            "wrong magic 0x{:02X} (an image starts with 0xE9)",
            b[0]
        )));
    }
    let header = Header::parse(b).ok_or_else(|| {
        Error::invalid(format!(
            "implausible segment count {} in image header",
            b[1]
        ))
    })?;
    let mut pos = HEADER_LEN;
    let mut sum = CHECKSUM_SEED;
    let mut segments = Vec::new();
    for i in 0..header.segments {
        if b.len() < pos + SEGMENT_HEADER_LEN {
            return Err(Error::invalid(format!(
                "image truncated in the header of segment {i}"
            )));
        }
        let s = Segment::parse(&b[pos..]);
        pos += SEGMENT_HEADER_LEN;
        let end = pos
            .checked_add(s.len as usize)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| {
                Error::invalid(format!(
                "image truncated: segment {i} (0x{:08X}, {} bytes) runs past the end of the file",
                s.addr, s.len
            ))
            })?;
        sum = checksum_update(sum, &b[pos..end]);
        segments.push(ParsedSegment {
            addr: s.addr,
            len: s.len,
            data_offset: pos,
            region: Region::of(s.addr),
        });
        pos = end;
    }
    let len = padded_len(pos as u32) as usize;
    if b.len() < len {
        return Err(Error::invalid("image truncated before its checksum byte"));
    }
    Ok(ParsedImage {
        header,
        segments,
        len,
        checksum_stored: b[len - 1],
        checksum_computed: sum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_bytes() {
        let p = FlashParams::default();
        assert_eq!((p.mode_byte(), p.size_freq_byte()), (2, 0x40));
        let p = FlashParams {
            mode: FlashMode::Qio,
            freq: FlashFreq::F80m,
            size: FlashSize::S16M,
        };
        assert_eq!((p.mode_byte(), p.size_freq_byte()), (0, 0x9F));
    }

    #[test]
    fn params_parse_both_spellings() {
        assert_eq!("40".parse::<FlashFreq>().unwrap(), FlashFreq::F40m);
        assert_eq!("80m".parse::<FlashFreq>().unwrap(), FlashFreq::F80m);
        assert_eq!("4M".parse::<FlashSize>().unwrap(), FlashSize::S4M);
        assert_eq!("512KB".parse::<FlashSize>().unwrap(), FlashSize::S512K);
        assert!("3M".parse::<FlashSize>().is_err());
        assert_eq!("DOUT".parse::<FlashMode>().unwrap(), FlashMode::Dout);
    }

    #[test]
    fn build_then_parse() {
        let p = FlashParams::default();
        let img = build_image(
            &p,
            0x4010_0004,
            &[(0x4010_0000, &[1, 2, 3]), (0x3FFE_8000, &[4])],
        )
        .unwrap();
        assert_eq!(img.len() % 16, 0);
        let parsed = parse_image(&img).unwrap();
        assert_eq!(parsed.len, img.len());
        assert!(parsed.checksum_valid());
        assert_eq!(parsed.checksum_stored, 0xEF ^ 1 ^ 2 ^ 3 ^ 4);
        assert_eq!(parsed.segments.len(), 2);
        assert_eq!(parsed.segments[1].data_offset, 8 + 8 + 3 + 8);
        // 8 + 8+3 + 8+1 = 28 bytes of content; checksum at 31.
        assert_eq!(img.len(), 32);
    }

    #[test]
    fn exact_multiple_still_gets_a_padding_block() {
        // 8 + 8 + 16 = 32: elf2bin adds 15 zero bytes and the checksum (length 48).
        let img = build_image(&FlashParams::default(), 0, &[(0x4010_0000, &[0u8; 16])]).unwrap();
        assert_eq!(img.len(), 48);
    }

    #[test]
    fn crc_roundtrip() {
        let mut img = vec![0x5Au8; 0x1100];
        apply_arduino_crc(&mut img).unwrap();
        let c = arduino_crc(&img).unwrap();
        assert!(c.valid && !c.absent);
        assert_eq!(c.stored_len, 0x1100);
        img[0x1050] ^= 1;
        assert!(!arduino_crc(&img).unwrap().valid);
    }

    #[test]
    fn parse_rejects_truncation_and_magic() {
        let img = build_image(&FlashParams::default(), 0, &[(0x4010_0000, &[7u8; 40])]).unwrap();
        assert!(parse_image(&img[..30]).is_err());
        let mut bad = img.clone();
        bad[0] = 0xEA;
        assert!(parse_image(&bad).unwrap_err().to_string().contains("magic"));
    }
}
