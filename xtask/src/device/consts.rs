//! Integer constants loaded from the literal pool once in the whole program, on the
//! assembly after `frame`.
//!
//! `l32r aN, L` costs 3 bytes plus the 4-byte pool word; GNU ld merges pool words of equal
//! value across functions, so a value loaded in k places costs 3k + 4. A value that two
//! instructions build (`movi` then `slli`, `srli`, `extui` or `addmi`, 5 bytes with a
//! narrow `movi.n`, 6 with `movi`) is cheaper only when k = 1: 5 or 6 bytes against 7.
//! The sequence writes only aN, as the `l32r` did, so no liveness question arises.
//! Symbol literals (addresses) are left alone: their values are the linker's.
use std::collections::{HashMap, HashSet};

use super::calls::{classify, literal, Line};
use super::peephole::int;

/// Bytes of `movi`/`movi.n` for `x`, None when out of `movi`'s signed 12 bits.
fn movi_len(x: i64) -> Option<usize> {
    match x {
        -32..=95 => Some(2),
        -2048..=2047 => Some(3),
        _ => None,
    }
}

fn movi(reg: &str, x: i64) -> String {
    if movi_len(x) == Some(2) {
        format!("\tmovi.n\t{reg}, {x}")
    } else {
        format!("\tmovi\t{reg}, {x}")
    }
}

/// The shortest two-instruction sequence leaving `v` (as a 32-bit word) in `reg`, with
/// its length in bytes.
pub(super) fn build(reg: &str, v: i64) -> Option<(Vec<String>, usize)> {
    let v = v as u32;
    let mut best: Option<(Vec<String>, usize)> = None;
    let mut offer = |x: i64, second: String| {
        if let Some(n) = movi_len(x) {
            if best.as_ref().map_or(true, |b| n + 3 < b.1) {
                best = Some((vec![movi(reg, x), second], n + 3));
            }
        }
    };
    // x << s: the low s bits of v are zero and the rest sign-extends from 12 bits (the
    // largest s first: the smallest x, so movi.n where possible).
    for s in (1..32).rev() {
        let x = (v as i32) >> s;
        if ((x as u32) << s) == v {
            offer(x as i64, format!("\tslli\t{reg}, {reg}, {s}"));
        }
    }
    // x >> s (logical, srli takes 0..15): x = v << s with the top bits set or clear.
    for s in 1..16 {
        for x in [((v << s) as i32) as i64, (((v << s) | ((1u32 << s) - 1)) as i32) as i64] {
            if (x as u32) >> s == v {
                offer(x, format!("\tsrli\t{reg}, {reg}, {s}"));
            }
        }
    }
    // Low k bits of x (extui's mask is 1..16 bits): movi -1 for a low mask.
    for k in 1..=16u32 {
        if v < (1 << k) {
            for x in [v as i64, (v as i64) - (1 << k)] {
                if ((x as u32) & ((1 << k) - 1)) == v {
                    offer(x, format!("\textui\t{reg}, {reg}, 0, {k}"));
                }
            }
        }
    }
    // x + 256 * y (addmi: y signed 8 bits).
    for y in -128..=127i64 {
        let x = (v as i32 as i64) - 256 * y;
        if y != 0 {
            offer(x, format!("\taddmi\t{reg}, {reg}, {}", 256 * y));
        }
    }
    best
}

/// The rewritten assembly and the number of literals replaced.
pub fn inline(asm: &str) -> Result<(String, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut value_of: HashMap<&str, &str> = HashMap::new();
    for p in &parsed {
        if let Line::Directive(".literal", args) = p {
            let (label, value) = literal(args)?;
            value_of.insert(label, value);
        }
    }
    // Loads per pool value (ld's merging is by value, so labels of one value count together).
    let mut loads: HashMap<&str, usize> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        if let Line::Insn("l32r", ops) = p {
            let [_, label] = ops.as_slice() else { return Err(format!("line {}: `{}`: l32r with other than two operands", i + 1, lines[i])) };
            let value = value_of.get(label).ok_or_else(|| format!("line {}: `{}`: no such literal", i + 1, lines[i]))?;
            *loads.entry(*value).or_default() += 1;
        }
    }
    let mut edit: HashMap<usize, Vec<String>> = HashMap::new();
    let mut freed: HashSet<&str> = HashSet::new();
    for (i, p) in parsed.iter().enumerate() {
        let Line::Insn("l32r", ops) = p else { continue };
        let (reg, label) = (ops[0], ops[1]);
        let value = value_of[label];
        // Symbols are not ours to compute; a value loaded elsewhere keeps its pool word.
        let Ok(v) = int(value) else { continue };
        if loads[value] != 1 || !(i32::MIN as i64..=u32::MAX as i64).contains(&v) {
            continue;
        }
        // 3 (l32r) + 4 (pool word) against the sequence.
        let Some((seq, len)) = build(reg, v) else { continue };
        if len < 7 {
            edit.insert(i, seq);
            freed.insert(value);
        }
    }
    let mut text = String::with_capacity(asm.len());
    for (i, line) in lines.iter().enumerate() {
        if let Some(new) = edit.get(&i) {
            for l in new {
                text.push_str(l);
                text.push('\n');
            }
            continue;
        }
        if let Line::Directive(".literal", args) = &parsed[i] {
            if freed.contains(literal(args)?.1) {
                continue;
            }
        }
        text.push_str(line);
        text.push('\n');
    }
    Ok((text, edit.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the sequence computes, by the ISA's definitions.
    fn run(seq: &[String]) -> u32 {
        let mut a: u32 = 0;
        for l in seq {
            let Line::Insn(m, o) = classify(l) else { panic!("{l}") };
            let n = |k: usize| int(o[k]).unwrap();
            a = match m {
                "movi" | "movi.n" => n(1) as i32 as u32,
                "slli" => a << n(2),
                "srli" => a >> n(2),
                "extui" => (a >> n(2)) & ((1u32 << n(3)) - 1),
                "addmi" => a.wrapping_add(n(2) as i32 as u32),
                _ => panic!("{m}"),
            };
        }
        a
    }

    #[test]
    fn built_values_are_right_and_short() {
        for (v, len) in [
            (4096, 5),
            (-4096, 5),
            (0x8000_0000u32 as i64, 5),
            (-352321536, 5),
            (65535, 5),
            (4095, 5),
            (0x0FFF_FFFF, 5),
            (2680, 6),
            (1075838976, 6),
            (61184, 6),
        ] {
            let (seq, n) = build("a8", v).unwrap_or_else(|| panic!("{v}"));
            assert_eq!((run(&seq), n), (v as u32, len), "{v}: {seq:?}");
        }
        for v in [559903, -346161151, -352317440, 1246904901, 0x1FFFC, 35615] {
            assert!(build("a8", v).is_none(), "{v}");
        }
        // Exhaustively around the edges of each form.
        for v in (-70000..70000).chain([i32::MIN as i64, i32::MAX as i64, 0xFFFF_FFFF]) {
            if let Some((seq, _)) = build("a3", v) {
                assert_eq!(run(&seq), v as u32, "{v}: {seq:?}");
            }
        }
    }

    const SAMPLE: &str = "\
	.literal .LCPI0_0, 65536
	.literal .LCPI0_1, 4096
	.literal .LCPI0_2, memcpy
	.literal .LCPI1_0, 4096
	.literal .LCPI1_1, 559903
f:
	l32r	a8, .LCPI0_0
	l32r	a9, .LCPI0_1
	l32r	a10, .LCPI0_2
	ret
g:
	l32r	a2, .LCPI1_0
	l32r	a3, .LCPI1_1
	ret
";

    #[test]
    fn only_values_loaded_once_are_built() {
        let (text, n) = inline(SAMPLE).unwrap();
        assert_eq!(n, 1, "{text}");
        assert!(text.contains("f:\n\tmovi.n\ta8, 1\n\tslli\ta8, a8, 16\n\tl32r\ta9, .LCPI0_1\n"), "{text}");
        assert!(!text.contains(".LCPI0_0"));
        for kept in [".LCPI0_1, 4096", ".LCPI1_0, 4096", ".LCPI0_2, memcpy", ".LCPI1_1, 559903"] {
            assert!(text.contains(kept), "{kept}: {text}");
        }
    }

    #[test]
    fn an_unknown_literal_is_an_error() {
        assert!(inline(&SAMPLE.replace("l32r\ta3, .LCPI1_1", "l32r\ta3, .LCPI9_9")).is_err());
    }
}
