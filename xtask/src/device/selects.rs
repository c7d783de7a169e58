//! Compares with zero and conditional moves, on the final assembly.
//!
//! * LLVM compares with a register it has just set to 0 (`movi a10, 0; bne a2, a10, .L`):
//!   `bnez a2, .L` is never longer (gas narrows it to 2 bytes when the target is close) and
//!   has a longer reach; the `movi` goes when nothing else reads the register.
//! * A move skipped by a branch on one register's sign or zero-ness
//!   (`bnez a2, .L; mov.n a8, a14; .L:`, 4 or 5 bytes) is one conditional move
//!   (`moveqz a8, a14, a2`, 3 bytes), a core instruction of every Xtensa.
//!
//! The zero is known only from a `movi r, 0` earlier in the same straight stretch (no label,
//! branch or call between) with nothing between writing r; the move only when it is the
//! one instruction between the branch and its own target label. Dropping the `movi` needs
//! `peephole`'s walk to prove the register dead. Anything else stays.
use std::collections::HashMap;

use super::calls::{classify, transfers_control, Line};
use super::peephole::dead_from;

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

/// The line of a `movi reg, 0` whose value `reg` still holds at line `i`, if any.
fn zero_at(parsed: &[Line], i: usize, reg: &str) -> Option<usize> {
    for k in (0..i).rev() {
        match &parsed[k] {
            Line::Nothing => continue,
            Line::Insn(m, o) if !transfers_control(m) => {
                if !o.contains(&reg) {
                    continue;
                }
                if matches!(*m, "movi" | "movi.n") && o.as_slice() == [reg, "0"] {
                    return Some(k);
                }
                if (writes_first(m) && o[0] != reg) || only_reads(m) {
                    continue;
                }
                return None;
            }
            _ => return None,
        }
    }
    None
}

fn next_line(parsed: &[Line], i: usize) -> Option<usize> {
    (i + 1..parsed.len()).find(|&j| parsed[j] != Line::Nothing)
}

fn write(lines: &[&str], edit: &HashMap<usize, Option<String>>) -> String {
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        match edit.get(&i) {
            Some(None) => continue,
            Some(Some(new)) => text.push_str(new),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// The rewritten assembly, the compares made against zero, the moves made conditional.
pub fn selects(asm: &str) -> Result<(String, usize, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut edit: HashMap<usize, Option<String>> = HashMap::new();
    // Zeroing `movi`s a rewritten compare used: (line, register).
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
    // Zeroing `movi`s nothing reads any more.
    let text = write(&lines, &edit);
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
    Ok((write(&lines, &drop), compares, moves))
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
        let (text, compares, moves) = selects(SAMPLE).unwrap();
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
            let (text, compares, moves) = selects(&asm).unwrap();
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
            let (text, _, moves) = selects(&asm).unwrap();
            assert_eq!(moves, 2, "{from:?} -> {to:?}: {text}");
            assert!(text.contains(&format!("\tbltz\ta4, .LBB0_{}", if to.contains("LBB0_4") { 4 } else { 3 })), "{text}");
        }
    }

    #[test]
    fn a_zero_still_read_keeps_its_movi() {
        // a10 read on one path after the compare.
        let asm = SAMPLE.replace("\ts32i\ta10, a1, 4\n", "").replace("\tmovi\ta11, 0\n", "\tbeqz\ta3, .LBB0_9\n\tmovi\ta11, 0\n")
            + ".LBB0_9:\n\tmov.n\ta2, a10\n\tret\n";
        let (text, _, _) = selects(&asm).unwrap();
        assert!(text.starts_with("f:\n\tmovi\ta10, 0\n\tmoveqz\ta8, a14, a2\n"), "{text}");
        // Not read on any path: it goes.
        let asm = SAMPLE.replace("\ts32i\ta10, a1, 4\n", "");
        let (text, _, _) = selects(&asm).unwrap();
        assert!(text.starts_with("f:\n\tmoveqz\ta8, a14, a2\n"), "{text}");
    }
}
