//! Stack slots beyond `addi`'s reach, on the assembly after `peephole`.
//!
//! For a frame offset over 127 (the large frames of the entry and the copier) LLVM's
//! Xtensa backend builds the slot's address in full and then uses it at offset 0:
//!
//! ```text
//! movi  a8, 1780          movi  a8, 1700
//! add   a8, a1, a8        add   a8, a1, a8
//! s32i  a0, a8, 0         addi  a2, a8, 0
//! ```
//!
//! 7-8 bytes each (gas narrows `add` and offset-0 `l32i`/`s32i`). `addmi` adds a multiple
//! of 256 to a1 in 3 bytes, and the rest fits the use's own offset field:
//! `addmi a8, a1, 1536; s32i a0, a8, 244`, `addmi a2, a1, 1792; addi a2, a2, -92`. A run
//! of such accesses with the same base register and the same multiple of 256, one right
//! after the other (LLVM's saves and restores of the callee-saved registers), shares one
//! `addmi`.
//!
//! The rewrite leaves a different value in the scratch register (a1 + the multiple of
//! 256, not the slot's address), so it is made only when the register is dead after the
//! use (`peephole`'s walk), or the use overwrites it. Only the exact three-line shape with
//! nothing but comments between is touched; any other use of the address stays as it is.
use std::collections::HashMap;

use super::calls::{classify, Line};
use super::peephole::{dead_from, int};

/// Memory accesses by their offset scale (`l32i a, b, off`: off = 4 * imm8).
fn scale(m: &str) -> Option<i64> {
    match m {
        "l32i" | "l32i.n" | "s32i" | "s32i.n" => Some(4),
        "l16ui" | "l16si" | "s16i" => Some(2),
        "l8ui" | "s8i" => Some(1),
        _ => None,
    }
}

fn is_load(m: &str) -> bool {
    m.starts_with('l')
}

/// The next line after `i` that is not blank or a comment.
fn next_line(parsed: &[Line], i: usize) -> Option<usize> {
    (i + 1..parsed.len()).find(|&j| parsed[j] != Line::Nothing)
}

/// `addmi`'s range: a signed 8-bit multiple of 256.
fn addmi_ok(h: i64) -> bool {
    h % 256 == 0 && (-32768..=32512).contains(&h)
}

/// One recognised `movi t, v; add t, a1, t; <use>`.
struct Slot<'a> {
    /// Lines of the movi, the add and the use.
    lines: [usize; 3],
    t: &'a str,
    /// The multiple of 256 `addmi` adds to a1 (`None`: the use reaches the slot from a1
    /// directly).
    high: Option<i64>,
    /// The use, rewritten to go through `t` (= a1 + high) or a1; None: nothing left to do.
    use_line: Option<String>,
    /// `t` still holds a1 + high after the use (a later slot may use it as its base).
    keeps_base: bool,
}

fn recognise<'a>(parsed: &[Line<'a>], i: usize) -> Result<Option<Slot<'a>>, String> {
    let Line::Insn("movi", mo) = &parsed[i] else { return Ok(None) };
    let [t, v] = mo.as_slice() else { return Ok(None) };
    let Some(j) = next_line(parsed, i) else { return Ok(None) };
    let Line::Insn("add" | "add.n", ao) = &parsed[j] else { return Ok(None) };
    if !(ao.as_slice() == [*t, "a1", *t] || ao.as_slice() == [*t, *t, "a1"]) || *t == "a1" {
        return Ok(None);
    }
    let Some(k) = next_line(parsed, j) else { return Ok(None) };
    let Line::Insn(m, uo) = &parsed[k] else { return Ok(None) };
    let v = int(v).map_err(|e| format!("line {}: {e}", i + 1))?;
    let lines = [i, j, k];
    if let Some(sc) = scale(m) {
        // `op r, t, off`: t only as the base, and neither t's old value (a store of it)
        // nor a1 as the loaded register.
        let [r, b, off] = uo.as_slice() else { return Ok(None) };
        if b != t || (!is_load(m) && r == t) || *r == "a1" {
            return Ok(None);
        }
        let total = v + int(off).map_err(|e| format!("line {}: {e}", k + 1))?;
        // The low part goes in the use's unsigned, scaled 8-bit offset.
        let high = total.div_euclid(256) * 256;
        let low = total - high;
        if !addmi_ok(high) || low % sc != 0 || low > 255 * sc {
            return Ok(None);
        }
        let m = m.trim_end_matches(".n");
        return Ok(Some(Slot { lines, t, high: Some(high), use_line: Some(format!("\t{m}\t{r}, {t}, {low}")), keeps_base: r != t }));
    }
    if *m == "addi" || *m == "addi.n" {
        let [d, b, off] = uo.as_slice() else { return Ok(None) };
        if b != t || *d == "a1" {
            return Ok(None);
        }
        let total = v + int(off).map_err(|e| format!("line {}: {e}", k + 1))?;
        if (-128..=127).contains(&total) {
            return Ok(Some(Slot { lines, t, high: None, use_line: Some(format!("\taddi\t{d}, a1, {total}")), keeps_base: false }));
        }
        // Nearest multiple of 256, so that the rest fits addi's signed 8 bits.
        let high = (total + 128).div_euclid(256) * 256;
        let low = total - high;
        if !addmi_ok(high) {
            return Ok(None);
        }
        let use_line = match (low, d == t) {
            (0, true) => None,
            (0, false) => Some(format!("\tmov.n\t{d}, {t}")),
            _ => Some(format!("\taddi\t{d}, {t}, {low}")),
        };
        return Ok(Some(Slot { lines, t, high: Some(high), use_line, keeps_base: d != t || low == 0 }));
    }
    Ok(None)
}

/// The rewritten assembly and the number of slot accesses rewritten.
pub fn slots(asm: &str) -> Result<(String, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut labels = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        if let Line::Label(name) = p {
            labels.insert(*name, i);
        }
    }
    // Line -> replacement lines (empty: deleted).
    let mut edit: HashMap<usize, Vec<String>> = HashMap::new();
    let mut count = 0;
    // The base register and its value (a1 + high) left by the previous rewritten slot,
    // and the line of its use.
    let mut base: Option<(&str, i64, usize)> = None;
    let mut i = 0;
    while i < parsed.len() {
        let Some(slot) = recognise(&parsed, i)? else {
            i += 1;
            continue;
        };
        let [mi, ai, ui] = slot.lines;
        // The old value of t (the slot's address) must be dead after the use, unless the
        // use overwrites it (or nothing is left of it: `addmi t` alone gives the same value).
        let overwrites = slot.use_line.as_ref().map_or(true, |l| matches!(classify(l), Line::Insn(_, o) if o.first() == Some(&slot.t)));
        if !overwrites && !dead_from(&parsed, &labels, ui + 1, slot.t) {
            base = None;
            i += 1;
            continue;
        }
        // Shares the previous slot's base when nothing but comments came between.
        let chained = matches!((base, slot.high), (Some((t, h, prev)), Some(high))
            if t == slot.t && h == high && next_line(&parsed, prev) == Some(mi));
        let mut new = vec![];
        if let (Some(high), false) = (slot.high, chained) {
            new.push(format!("\taddmi\t{}, a1, {high}", slot.t));
        }
        new.extend(slot.use_line.clone());
        edit.insert(mi, vec![]);
        edit.insert(ai, vec![]);
        edit.insert(ui, new);
        count += 1;
        base = match slot.high {
            Some(h) if slot.keeps_base => Some((slot.t, h, ui)),
            _ => None,
        };
        i = ui + 1;
    }
    let mut text = String::with_capacity(asm.len());
    for (i, line) in lines.iter().enumerate() {
        match edit.get(&i) {
            Some(new) => new.iter().for_each(|l| {
                text.push_str(l);
                text.push('\n');
            }),
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    Ok((text, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LLVM's shapes from the copier: saves in the prologue, a buffer's address, a byte.
    const SAMPLE: &str = "\
f:
	addmi	a1, a1, -1792
	movi	a8, 1780
	add	a8, a1, a8
	s32i	a0, a8, 0
	movi	a8, 1776
	add	a8, a1, a8
	s32i	a12, a8, 0
	movi	a8, 1700
	add	a8, a1, a8
	addi	a2, a8, 0
	movi	a8, 1701
	add	a8, a1, a8
	l8ui	a8, a8, 0
	movi	a9, 228
	add	a9, a1, a9
	addi	a9, a9, 0
	movi	a8, 100
	add	a8, a8, a1
	addi	a3, a8, 4
	or	a4, a8, a8
	call0	g
	ret
";

    #[test]
    fn slots_use_addmi_and_share_it() {
        let (text, n) = slots(SAMPLE).unwrap();
        assert_eq!(n, 5, "{text}");
        assert!(
            text.contains(
                "f:\n\taddmi\ta1, a1, -1792\n\taddmi\ta8, a1, 1536\n\ts32i\ta0, a8, 244\n\ts32i\ta12, a8, 240\n\
                 \taddmi\ta8, a1, 1792\n\taddi\ta2, a8, -92\n"
            ),
            "{text}"
        );
        assert!(text.contains("\taddmi\ta8, a1, 1536\n\tl8ui\ta8, a8, 165\n"), "{text}");
        assert!(text.contains("\taddmi\ta9, a1, 256\n\taddi\ta9, a9, -28\n"), "{text}");
        // a8 is read after the use (the `or`): that one stays.
        assert!(text.contains("\tmovi\ta8, 100\n\tadd\ta8, a8, a1\n\taddi\ta3, a8, 4\n"), "{text}");
    }

    #[test]
    fn small_totals_go_straight_from_a1() {
        let asm = "f:\n\tmovi\ta8, 120\n\tadd\ta8, a1, a8\n\taddi\ta2, a8, 4\n\tret\n";
        let (text, n) = slots(asm).unwrap();
        assert_eq!(n, 1);
        assert_eq!(text, "f:\n\taddi\ta2, a1, 124\n\tret\n");
    }

    #[test]
    fn a_label_breaks_the_shared_base() {
        let asm = SAMPLE.replace("\tmovi\ta8, 1776\n", ".L1:\n\tmovi\ta8, 1776\n");
        let (text, _) = slots(&asm).unwrap();
        assert!(text.contains("\ts32i\ta0, a8, 244\n.L1:\n\taddmi\ta8, a1, 1536\n\ts32i\ta12, a8, 240\n"), "{text}");
    }

    #[test]
    fn a_live_address_or_odd_shape_stays() {
        // The address stored through itself, a store of the address, an offset out of
        // range: left alone.
        for asm in [
            "f:\n\tmovi\ta8, 1780\n\tadd\ta8, a1, a8\n\ts32i\ta8, a8, 0\n\tret\n",
            "f:\n\tmovi\ta8, 1780\n\tadd\ta8, a1, a8\n\ts32i\ta0, a8, 0\n\tl32i\ta2, a8, 4\n\tret\n",
            "f:\n\tmovi\ta8, 1781\n\tadd\ta8, a1, a8\n\tl32i\ta8, a8, 0\n\tret\n",
            "f:\n\tmovi\ta8, 1780\n\tadd\ta8, a2, a8\n\ts32i\ta0, a8, 0\n\tret\n",
            "f:\n\tmovi\ta8, 1780\n\tadd\ta8, a1, a8\n\tl32i\ta1, a8, 0\n\tret\n",
        ] {
            let (text, n) = slots(asm).unwrap();
            assert_eq!((n, text.as_str()), (0, asm));
        }
        assert!(slots("f:\n\tmovi\ta8, x\n\tadd\ta8, a1, a8\n\ts32i\ta0, a8, 0\n").is_err());
    }
}
