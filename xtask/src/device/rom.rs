//! One shared stub per ROM function called from several places, on the compiler's
//! assembly before `calls`.
//!
//! A ROM function (0x4000xxxx) is out of `call0`'s reach from our IRAM window, so each call
//! is `l32r a8, L; callx0 a8`: 6 bytes (GNU ld keeps one pool word per address). A stub in
//! IRAM, `l32r a8, L; jx a8` (5 bytes, plus up to 3 of entry alignment), turns every call
//! into a 3-byte `call0` of the stub: with k calls, 3k bytes saved for at most 8, so only
//! functions called from 3 or more places get one. The stub clobbers only a8, which the
//! CALL0 ABI lets any callee clobber (and no ROM function takes as an argument: those are
//! a2..a7); `jx` leaves a0, so the ROM function returns straight to the caller.
//!
//! The rewrite renames the function in the literals that load it (LLVM writes one
//! `.literal` per call) to the stub, whose own literal keeps the ROM name; `calls` then makes
//! the calls direct like any other call of ours. A literal used other than by a call still
//! works: calling the stub is calling the function.
use std::collections::{BTreeMap, HashSet};

use super::calls::{classify, literal, Line};

/// Calls (literals) a ROM function needs before a stub pays.
const MIN_CALLS: usize = 3;

pub fn stub_name(rom: &str) -> String {
    format!("eboot_rs_rom_{rom}")
}

/// ROM function names from rom.ld's `PROVIDE(name = 0x4000xxxx);` lines (not ROM data).
pub fn rom_functions(rom_ld: &str) -> Result<HashSet<String>, String> {
    let mut names = HashSet::new();
    for line in rom_ld.lines().map(str::trim).filter(|l| l.starts_with("PROVIDE(")) {
        let body = line.strip_prefix("PROVIDE(").and_then(|l| l.strip_suffix(");"));
        let Some((name, addr)) = body.and_then(|b| b.split_once('=')) else {
            return Err(format!("rom.ld: `{line}`: not `PROVIDE(name = address);`"));
        };
        let addr = addr.trim().strip_prefix("0x").and_then(|h| u32::from_str_radix(h, 16).ok());
        let Some(addr) = addr else { return Err(format!("rom.ld: `{line}`: address not hex")) };
        // The mask ROM's code; 0x3FFFxxxx are its data.
        if (0x4000_0000..0x4001_0000).contains(&addr) {
            names.insert(name.trim().to_string());
        }
    }
    Ok(names)
}

/// The assembly with stubs for the ROM functions of `rom` called from `MIN_CALLS` or more
/// places, and the names of the functions stubbed.
pub fn stubs(asm: &str, rom: &HashSet<String>) -> Result<(String, Vec<String>), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut calls_of: BTreeMap<&str, usize> = BTreeMap::new();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    for p in &parsed {
        match p {
            Line::Directive(".literal", args) => {
                let value = literal(args)?.1;
                if rom.contains(value) {
                    *count.entry(value).or_default() += 1;
                }
            }
            Line::Insn("callx0", _) => {}
            Line::Insn(_, ops) => {
                // A ROM name as an operand (never seen from LLVM): nothing to reason about.
                if let Some(o) = ops.iter().find(|o| rom.contains(**o)) {
                    return Err(format!("`{o}` used directly by an instruction"));
                }
            }
            _ => {}
        }
    }
    for (name, n) in &count {
        if *n >= MIN_CALLS {
            calls_of.insert(name, *n);
        }
    }
    let mut text = String::with_capacity(asm.len() + 512);
    for (i, line) in lines.iter().enumerate() {
        if let Line::Directive(".literal", args) = &parsed[i] {
            let (label, value) = literal(args)?;
            if calls_of.contains_key(value) {
                text.push_str(&format!("\t.literal {label}, {}\n", stub_name(value)));
                continue;
            }
        }
        text.push_str(line);
        text.push('\n');
    }
    for name in calls_of.keys() {
        let stub = stub_name(name);
        text.push_str(&format!(
            "\n\t.section\t.text.{stub},\"ax\",@progbits\n\t.literal_position\n\
             \t.literal .L{stub}, {name}\n\t.p2align\t2\n\t.type\t{stub},@function\n{stub}:\n\
             \tl32r\ta8, .L{stub}\n\tjx\ta8\n\t.size\t{stub}, .-{stub}\n"
        ));
    }
    Ok((text, calls_of.keys().map(|s| s.to_string()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROM_LD: &str = "/* x */\nPROVIDE(memcpy = 0x4000DF48);\nPROVIDE(SPIRead = 0x40004B1C);\nPROVIDE(flashchip = 0x3FFFC714);\n";

    #[test]
    fn rom_functions_are_code_addresses_only() {
        let rom = rom_functions(ROM_LD).unwrap();
        assert_eq!(rom, HashSet::from(["memcpy".to_string(), "SPIRead".to_string()]));
        assert!(rom_functions("PROVIDE(x = 12);\n").is_err());
        assert!(rom_functions("PROVIDE(x 0x12);\n").is_err());
    }

    #[test]
    fn functions_called_three_times_get_a_stub_and_calls_reach_it() {
        let asm = "\t.literal .LCPI0_0, memcpy\n\t.literal .LCPI0_1, memcpy\n\t.literal .LCPI0_2, SPIRead\n\
                   \t.literal .LCPI0_3, memcpy\n\t.section\t.text.f,\"ax\",@progbits\n\t.p2align\t2\n\t.type\tf,@function\nf:\n\
                   \tl32r\ta8, .LCPI0_0\n\tcallx0\ta8\n\tl32r\ta8, .LCPI0_1\n\tcallx0\ta8\n\tl32r\ta8, .LCPI0_2\n\tcallx0\ta8\n\
                   \tl32r\ta8, .LCPI0_3\n\tcallx0\ta8\n\tret\n\t.size\tf, .-f\n";
        let (text, stubbed) = stubs(asm, &rom_functions(ROM_LD).unwrap()).unwrap();
        assert_eq!(stubbed, ["memcpy"]);
        assert!(text.contains(".literal .LCPI0_1, eboot_rs_rom_memcpy\n"));
        assert!(text.contains(".literal .LCPI0_2, SPIRead\n"), "called twice: left alone");
        assert!(text.contains("\t.literal .Leboot_rs_rom_memcpy, memcpy\n\t.p2align\t2\n\t.type\teboot_rs_rom_memcpy,@function\n\
                               eboot_rs_rom_memcpy:\n\tl32r\ta8, .Leboot_rs_rom_memcpy\n\tjx\ta8\n"));
        // `calls` sees the stub as a local, aligned function and calls it directly.
        let local = super::super::calls::functions(&text);
        assert_eq!(local.get("eboot_rs_rom_memcpy"), Some(&true));
        let r = super::super::calls::direct_calls(&text, &local).unwrap();
        assert_eq!((r.direct, r.kept), (3, 1), "{}", r.text);
        assert!(r.text.contains("\tcall0\teboot_rs_rom_memcpy\n\tcall0\teboot_rs_rom_memcpy\n\tl32r\ta8, .LCPI0_2\n"), "{}", r.text);
        // An instruction naming a ROM function directly is not something LLVM writes.
        assert!(stubs("\tj\tmemcpy\n", &rom_functions(ROM_LD).unwrap()).is_err());
    }
}
