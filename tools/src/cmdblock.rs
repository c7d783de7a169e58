//! Making and reading the 128-byte RTC command block on the host. The format is
//! [`bootloader::command`]; this adds the text (hex) form and a decoder that explains.

use crate::error::{Error, Result};
use bootloader::command::{
    block_crc, from_bytes, to_bytes, Command, ACTION_COPY_RAW, ACTION_LOAD_APP, EXT_CRC, EXT_KNOWN,
    EXT_IMAGE, EXT_TRIAL, MAGIC, MAGIC_MASK, WORDS,
};
use serde::Serialize;

/// Bytes of a block.
pub const BLOCK_LEN: usize = WORDS * 4;

/// Block bytes as one line of hex (memory order), for `xxd -r -p` and test scripts.
pub fn to_hex(bytes: &[u8; BLOCK_LEN]) -> String {
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.push('\n');
    s
}

/// Reads a block from its binary form or from hex text (whitespace ignored).
pub fn parse(b: &[u8]) -> Result<[u8; BLOCK_LEN]> {
    if b.len() == BLOCK_LEN {
        let mut out = [0; BLOCK_LEN];
        out.copy_from_slice(b);
        return Ok(out);
    }
    let text: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if text.len() == BLOCK_LEN * 2 && text.iter().all(|c| c.is_ascii_hexdigit()) {
        let mut out = [0; BLOCK_LEN];
        for (i, pair) in text.chunks(2).enumerate() {
            // Both characters are hex digits, checked above.
            out[i] = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("00"), 16).unwrap_or(0);
        }
        return Ok(out);
    }
    Err(Error::invalid(format!(
        "a command block is {BLOCK_LEN} bytes (or {} hex digits), not {} bytes",
        BLOCK_LEN * 2,
        b.len()
    )))
}

/// The block's words for a command.
pub fn encode(cmd: &Command) -> [u8; BLOCK_LEN] {
    to_bytes(&cmd.encode())
}

/// What `info` says about a block.
#[derive(Clone, Debug, Serialize)]
pub struct CommandReport {
    pub magic: u32,
    pub magic_valid: bool,
    pub crc_stored: u32,
    pub crc_computed: u32,
    pub crc_valid: bool,
    /// Accepted by eboot (magic under mask and CRC): eboot acts on it.
    pub valid: bool,
    pub action: String,
    pub action_code: u32,
    pub src: u32,
    pub dst: u32,
    pub len: u32,
    /// Extension flags in the magic's low 12 bits (stock eboot ignores them).
    pub extensions: Vec<String>,
    pub unknown_extension_bits: u32,
    pub args: Vec<u32>,
}

pub fn report(bytes: &[u8; BLOCK_LEN]) -> CommandReport {
    let w = from_bytes(bytes);
    let crc_computed = block_crc(&w);
    let magic_valid = w[0] & MAGIC_MASK == MAGIC;
    let ext = w[0] & !MAGIC_MASK;
    let mut extensions = Vec::new();
    for (bit, name) in [
        (EXT_TRIAL, "trial"),
        (EXT_CRC, "crc"),
        (EXT_IMAGE, "extension"),
    ] {
        if ext & bit != 0 {
            extensions.push(name.to_string());
        }
    }
    let action = match w[1] {
        ACTION_COPY_RAW => "copy_raw".to_string(),
        ACTION_LOAD_APP => "load_app".to_string(),
        other => format!("unknown ({other})"),
    };
    CommandReport {
        magic: w[0],
        magic_valid,
        crc_stored: w[WORDS - 1],
        crc_computed,
        crc_valid: crc_computed == w[WORDS - 1],
        valid: Command::decode(&w).is_some(),
        action,
        action_code: w[1],
        src: w[2],
        dst: w[3],
        len: w[4],
        extensions,
        unknown_extension_bits: ext & !EXT_KNOWN,
        args: w[2..WORDS - 1].to_vec(),
    }
}

/// `true` when 128 bytes look like a command block (magic under eboot's mask).
pub fn looks_like_block(b: &[u8]) -> bool {
    b.len() == BLOCK_LEN && u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & MAGIC_MASK == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_report() {
        let b = encode(&Command::copy(0x100000, 0, 0x50000));
        assert_eq!(parse(to_hex(&b).as_bytes()).unwrap(), b);
        let r = report(&b);
        assert!(r.valid && r.crc_valid && r.magic_valid);
        assert_eq!(r.crc_stored, 0x0A5D_70E6);
        assert_eq!((r.src, r.dst, r.len), (0x100000, 0, 0x50000));
        let mut bad = b;
        bad[10] ^= 1;
        assert!(!report(&bad).valid);
        assert!(parse(&b[..100]).is_err());
    }
}
