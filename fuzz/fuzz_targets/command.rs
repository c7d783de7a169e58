//! Any 128 bytes as an RTC command block: decoding must not panic, and a block it accepts
//! must encode back to the same 32 words. Random blocks almost never carry a valid magic
//! and CRC, so the first input byte can ask for both to be made valid.
#![no_main]

use bootloader::command::{block_crc, from_bytes, Command, MAGIC, MAGIC_MASK, WORDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some(block) = rest.get(..WORDS * 4) else { return };
    let mut words = from_bytes(block.try_into().unwrap());
    let fix = mode & 1 != 0;
    if fix {
        words[0] = MAGIC | (words[0] & !MAGIC_MASK);
        words[WORDS - 1] = block_crc(&words);
    }
    let decoded = Command::decode(&words);
    if fix {
        assert!(decoded.is_some(), "valid magic and CRC rejected");
    }
    if let Some(c) = decoded {
        assert_eq!(c.encode(), words);
        assert_eq!(c.ext, words[0] & !MAGIC_MASK);
        assert_eq!(c.action, words[1]);
        assert_eq!(c.args[..], words[2..WORDS - 1]);
    }
});
