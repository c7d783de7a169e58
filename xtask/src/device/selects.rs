//! Compares with zero and conditional moves, on the final assembly.
//!
//! * LLVM compares with a register it has just set to 0 (`movi a10, 0; bne a2, a10, .L`):
//!   `bnez a2, .L` is never longer (gas narrows it to 2 bytes when the target is close) and
//!   has a longer reach; the `movi` goes when nothing else reads the register.
//! * `and` with a register LLVM set to a low mask for several masks (so `peephole`, which
//!   needs the register dead, left them) is `extui`, as long, and nothing at all (or a
//!   move) when the other operand was just loaded zero-extended by `l8ui`/`l16ui`; the
//!   mask's `movi` goes once nothing reads it.
//! * A move skipped by a branch on one register's sign or zero-ness
//!   (`bnez a2, .L; mov.n a8, a14; .L:`, 4 or 5 bytes) is one conditional move
//!   (`moveqz a8, a14, a2`, 3 bytes), a core instruction of every Xtensa.
//!
//! A zero or a mask is known only from a `movi r, v` earlier in the same straight stretch (no label,
//! branch or call between) with nothing between writing r; the move only when it is the
//! one instruction between the branch and its own target label. Dropping the `movi` needs
//! `peephole`'s walk to prove the register dead. Anything else stays.
use std::collections::HashMap;

use super::calls::{classify, rewrite, transfers_control, Line};
use super::peephole::{dead_from, int, low_mask};

/// The conditional move doing what the fall-through of each branch did.
fn select_for(branch: &str) -> Option<&'static str> {
    match branch.strip_suffix(".n").unwrap_or(branch) {
        // Falls through (moves) when the register is zero.
        "bnez" => Some("moveqz"),
        "beqz" => Some("movnez"),
        "bgez" => Some("movltz"),
        "bltz" => Some("movgez"),
        _ => None,
    }
}

/// Instructions that write their first operand and only read the others.
fn writes_first(m: &str) -> bool {
    (m.starts_with('l') && !m.starts_with("loop")) || matches!(m, "add" | "add.n" | "addi" | "addi.n" | "addmi" | "sub" | "and" | "or" | "xor" | "movi" | "movi.n" | "mov" | "mov.n" | "extui" | "slli" | "srli" | "srai" | "addx2" | "addx4" | "addx8" | "neg")
}

/// Only read their register operands.
fn only_reads(m: &str) -> bool {
    matches!(m, "s8i" | "s16i" | "s32i" | "s32i.n" | "memw" | "nop" | "nop.n")
}

/// The line that last wrote `reg` before line `i` in the same straight stretch (no label,
/// branch or call between), if every instruction between is known not to write it.
fn def_at(parsed: &[Line], i: usize, reg: &str) -> Option<usize> {
    for k in (0..i).rev() {
        match &parsed[k] {
            Line::Nothing => continue,
            Line::Insn(m, o) if !transfers_control(m) => {
                if !o.contains(&reg) {
                    continue;
                }
                if writes_first(m) && o[0] == reg {
                    return Some(k);
                }
                if writes_first(m) || only_reads(m) {
                    continue;
                }
                return None;
            }
            _ => return None,
        }
    }
    None
}

/// The line and value of the `movi reg, v` whose value `reg` still holds at line `i`.
fn movi_at(parsed: &[Line], i: usize, reg: &str) -> Option<(usize, i64)> {
    let k = def_at(parsed, i, reg)?;
    match &parsed[k] {
        Line::Insn("movi" | "movi.n", o) if o.len() == 2 => int(o[1]).ok().map(|v| (k, v)),
        _ => None,
    }
}

/// The line of a `movi reg, 0` whose value `reg` still holds at line `i`, if any.
fn zero_at(parsed: &[Line], i: usize, reg: &str) -> Option<usize> {
    movi_at(parsed, i, reg).filter(|&(_, v)| v == 0).map(|(k, _)| k)
}

fn next_line(parsed: &[Line], i: usize) -> Option<usize> {
    (i + 1..parsed.len()).find(|&j| parsed[j] != Line::Nothing)
}

/// The rewritten assembly, the compares made against zero, the masks by register made
/// `extui` (or dropped), the moves made conditional.
pub fn selects(asm: &str) -> Result<(String, usize, usize, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut edit: HashMap<usize, Option<String>> = HashMap::new();
    // `movi`s a rewritten compare or mask used: (line, register).
    let mut zeros = vec![];
    let mut compares = 0;
    for (i, p) in parsed.iter().enumerate() {
        let Line::Insn(m @ ("beq" | "bne"), o) = p else { continue };
        let [x, y, label] = o.as_slice() else { continue };
        if x == y {
            continue;
        }
        for (z, r) in [(y, x), (x, y)] {
            if let Some(k) = zero_at(&parsed, i, z) {
                edit.insert(i, Some(format!("\t{m}z\t{r}, {label}")));
                zeros.push((k, *z));
                compares += 1;
                break;
            }
        }
    }
    // `and` with a register holding a low mask (LLVM shares one `movi a11, 255` between
    // masks, so `peephole` left them): `extui`, as long; nothing at all, or a move, when the
    // other operand was just loaded zero-extended to no more bits.
    let mut masks = 0;
    for (i, p) in parsed.iter().enumerate() {
        let Line::Insn("and", o) = p else { continue };
        let [d, x, y] = o.as_slice() else { continue };
        if x == y || edit.contains_key(&i) {
            continue;
        }
        for (m, s) in [(y, x), (x, y)] {
            let Some((k, v)) = movi_at(&parsed, i, m) else { continue };
            let Some(bits) = low_mask(v) else { continue };
            let loaded = def_at(&parsed, i, s).map(|l| &parsed[l]);
            let width = match loaded {
                Some(Line::Insn("l8ui", _)) => 8,
                Some(Line::Insn("l16ui", _)) => 16,
                _ => 32,
            };
            let new = match (width <= bits, d == s) {
                (true, true) => None,
                (true, false) => Some(format!("\tmov.n\t{d}, {s}")),
                (false, _) => Some(format!("\textui\t{d}, {s}, 0, {bits}")),
            };
            edit.insert(i, new);
            zeros.push((k, *m));
            masks += 1;
            break;
        }
    }
    // Branches (rewritten or not) over one move to their own label.
    let mut moves = 0;
    for (i, p) in parsed.iter().enumerate() {
        let branch: Option<(String, Vec<String>)> = match (edit.get(&i), p) {
            (Some(Some(new)), _) => match classify(new) {
                Line::Insn(m, o) => Some((m.to_string(), o.iter().map(|s| s.to_string()).collect())),
                _ => None,
            },
            (_, Line::Insn(m, o)) => Some((m.to_string(), o.iter().map(|s| s.to_string()).collect())),
            _ => None,
        };
        let Some((m, o)) = branch else { continue };
        let Some(cmov) = select_for(&m) else { continue };
        let [r, label] = o.as_slice() else { continue };
        let label = label.as_str();
        let Some(j) = next_line(&parsed, i) else { continue };
        let (d, s) = match &parsed[j] {
            Line::Insn("mov" | "mov.n", mo) if mo.len() == 2 => (mo[0], mo[1]),
            Line::Insn("or", mo) if mo.len() == 3 && mo[1] == mo[2] => (mo[0], mo[1]),
            _ => continue,
        };
        if next_line(&parsed, j).map(|k| &parsed[k]) != Some(&Line::Label(label)) || d == "a1" || edit.contains_key(&j) {
            continue;
        }
        edit.insert(i, Some(format!("\t{cmov}\t{d}, {s}, {r}")));
        edit.insert(j, None);
        moves += 1;
    }
    // Those `movi`s nothing reads any more.
    let text = rewrite(&lines, &edit);
    let parsed: Vec<Line> = text.lines().map(classify).collect();
    let mut labels = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        if let Line::Label(name) = p {
            labels.insert(*name, i);
        }
    }
    // Lines kept their numbers where nothing was deleted before them: map old to new.
    let mut new_index = vec![0; lines.len()];
    let mut n = 0;
    for (i, slot) in new_index.iter_mut().enumerate() {
        *slot = n;
        if edit.get(&i) != Some(&None) {
            n += 1;
        }
    }
    let mut drop = HashMap::new();
    for (k, z) in zeros {
        let k = new_index[k];
        if !drop.contains_key(&k) && dead_from(&parsed, &labels, k + 1, z) {
            drop.insert(k, None);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    Ok((rewrite(&lines, &drop), compares, masks, moves))
}


#[cfg(test)]
mod tests {
    use super::*;

    /// LLVM's shapes from `journal::search` and `segment_region`.
    const SAMPLE: &str = "\
f:
	movi	a10, 0
	s32i	a10, a1, 4
	bne	a2, a10, .LBB0_1
	or	a8, a14, a14
.LBB0_1:
	movi	a11, 0
	beq	a11, a3, .LBB0_2
	mov.n	a9, a3
.LBB0_2:
	bltz	a4, .LBB0_3
	or	a5, a6, a6
.LBB0_3:
	movi	a12, 0
	bne	a4, a12, .LBB0_4
	movi	a2, 1
.LBB0_4:
	s32i	a12, a1, 0
	ret
";

    #[test]
    fn compares_with_zero_and_conditional_moves() {
        let (text, compares, _, moves) = selects(SAMPLE).unwrap();
        assert_eq!((compares, moves), (3, 3), "{text}");
        assert_eq!(
            text,
            "f:\n\tmovi\ta10, 0\n\ts32i\ta10, a1, 4\n\tmoveqz\ta8, a14, a2\n.LBB0_1:\n\tmovnez\ta9, a3, a3\n.LBB0_2:\n\
             \tmovgez\ta5, a6, a4\n.LBB0_3:\n\tmovi\ta12, 0\n\tbnez\ta4, .LBB0_4\n\tmovi\ta2, 1\n.LBB0_4:\n\ts32i\ta12, a1, 0\n\tret\n"
        );
    }

    #[test]
    fn each_move_does_what_the_fall_through_did() {
        // The branch skips the move exactly when the conditional move does not move.
        let taken = |b: &str, r: i32| match b {
            "bnez" => r != 0,
            "beqz" => r == 0,
            "bgez" => r >= 0,
            "bltz" => r < 0,
            _ => unreachable!(),
        };
        let moves = |c: &str, r: i32| match c {
            "moveqz" => r == 0,
            "movnez" => r != 0,
            "movltz" => r < 0,
            "movgez" => r >= 0,
            _ => unreachable!(),
        };
        for b in ["bnez", "beqz", "bgez", "bltz", "bnez.n", "beqz.n"] {
            let c = select_for(b).unwrap();
            for r in [i32::MIN, -1, 0, 1, i32::MAX] {
                assert_ne!(taken(b.trim_end_matches(".n"), r), moves(c, r), "{b} {c} {r}");
            }
        }
        assert_eq!(select_for("beqi"), None);
    }

    #[test]
    fn unknown_zeros_and_other_shapes_stay() {
        for (from, to) in [
            // The register written, a label, a call between the zero and the compare.
            ("\ts32i\ta10, a1, 4\n", "\taddi\ta10, a10, 1\n"),
            ("\ts32i\ta10, a1, 4\n", ".LBB0_9:\n"),
            ("\ts32i\ta10, a1, 4\n", "\tcall0\tg\n"),
            ("\ts32i\ta10, a1, 4\n", "\tmull\ta10, a3, a4\n"),
            // Not a zero.
            ("\tmovi\ta10, 0\n", "\tmovi\ta10, 1\n"),
        ] {
            let asm = SAMPLE.replacen(from, to, 1);
            let (text, compares, _, moves) = selects(&asm).unwrap();
            assert_eq!((compares, moves), (2, 2), "{from:?} -> {to:?}: {text}");
            assert!(text.contains("\tbne\ta2, a10, .LBB0_1\n\tor\ta8, a14, a14\n.LBB0_1:\n"), "{from:?} -> {to:?}: {text}");
        }
        for (from, to) in [
            // Two instructions, a label between, a move to another label, a move to a1.
            ("\tor\ta5, a6, a6\n", "\tor\ta5, a6, a6\n\tnop\n"),
            ("\tor\ta5, a6, a6\n", ".LBB0_8:\n\tor\ta5, a6, a6\n"),
            ("\tbltz\ta4, .LBB0_3\n", "\tbltz\ta4, .LBB0_4\n"),
            ("\tor\ta5, a6, a6\n", "\tor\ta1, a6, a6\n"),
            ("\tor\ta5, a6, a6\n", "\tor\ta5, a6, a7\n"),
        ] {
            let asm = SAMPLE.replacen(from, to, 1);
            let (text, _, _, moves) = selects(&asm).unwrap();
            assert_eq!(moves, 2, "{from:?} -> {to:?}: {text}");
            assert!(text.contains(&format!("\tbltz\ta4, .LBB0_{}", if to.contains("LBB0_4") { 4 } else { 3 })), "{text}");
        }
    }

    #[test]
    fn masks_in_a_register() {
        // From `Sink::chunk`: one mask for a byte loaded just before and one from elsewhere.
        let asm = "f:\n\tl8ui\ta10, a10, 0\n\tmovi\ta11, 255\n\tand\ta9, a9, a11\n\tand\ta10, a10, a11\n\
                   \tl16ui\ta3, a2, 0\n\tmovi\ta8, 2047\n\tand\ta4, a8, a3\n\tl8ui\ta5, a2, 2\n\tand\ta5, a8, a5\n\
                   \tl8ui\ta2, a2, 4\n\tand\ta3, a2, a8\n\tmovi\ta7, 255\n\tand\ta6, a4, a7\n\tbeq\ta9, a10, f\n\tret\n";
        let (text, _, masks, _) = selects(asm).unwrap();
        assert_eq!(masks, 6, "{text}");
        assert_eq!(
            text,
            "f:\n\tl8ui\ta10, a10, 0\n\textui\ta9, a9, 0, 8\n\tl16ui\ta3, a2, 0\n\textui\ta4, a3, 0, 11\n\tl8ui\ta5, a2, 2\n\
             \tl8ui\ta2, a2, 4\n\tmov.n\ta3, a2\n\textui\ta6, a4, 0, 8\n\tbeq\ta9, a10, f\n\tret\n"
        );
        // Not a low mask, the register written between, a mask still read: as they were.
        for (from, to) in [("movi\ta11, 255", "movi\ta11, 254"), ("\tand\ta9", "\taddi\ta11, a11, 1\n\tand\ta9")] {
            let asm = asm.replace(from, to);
            let (text, _, masks, _) = selects(&asm).unwrap();
            assert_eq!(masks, 4, "{text}");
            assert!(text.starts_with(&asm[..asm.find("\tl16ui").unwrap()]), "{text}");
        }
        let asm = asm.replace("\tret\n", "\ts32i\ta8, a1, 0\n\tret\n");
        assert!(selects(&asm).unwrap().0.contains("\tl16ui\ta3, a2, 0\n\tmovi\ta8, 2047\n\textui\ta4, a3, 0, 11\n"));
        // A load of another register, or one before a write of it, is not known narrow.
        let asm = "f:\n\tl8ui\ta10, a10, 0\n\taddi\ta10, a10, 1\n\tmovi\ta11, 255\n\tand\ta10, a10, a11\n\tret\n";
        assert!(selects(asm).unwrap().0.contains("\textui\ta10, a10, 0, 8\n"));
    }

    #[test]
    fn a_zero_still_read_keeps_its_movi() {
        // a10 read on one path after the compare.
        let asm = SAMPLE.replace("\ts32i\ta10, a1, 4\n", "").replace("\tmovi\ta11, 0\n", "\tbeqz\ta3, .LBB0_9\n\tmovi\ta11, 0\n")
            + ".LBB0_9:\n\tmov.n\ta2, a10\n\tret\n";
        let (text, _, _, _) = selects(&asm).unwrap();
        assert!(text.starts_with("f:\n\tmovi\ta10, 0\n\tmoveqz\ta8, a14, a2\n"), "{text}");
        // Not read on any path: it goes.
        let asm = SAMPLE.replace("\ts32i\ta10, a1, 4\n", "");
        let (text, _, _, _) = selects(&asm).unwrap();
        assert!(text.starts_with("f:\n\tmoveqz\ta8, a14, a2\n"), "{text}");
    }
}
