//! Tail calls, on the assembly after `peephole`.
//!
//! A function whose only use of the stack is saving a0 around calls that are all the last
//! thing it does (`flash::read_words`, `journal::step`) keeps a frame just for that:
//!
//! ```text
//! f:  addi  a1, a1, -16            f:  slli  a4, a4, 2
//!     s32i  a0, a1, 0                  j     g
//!     slli  a4, a4, 2
//!     call0 g
//!     l32i  a0, a1, 0
//!     addi  a1, a1, 16
//!     ret
//! ```
//!
//! Jumping to the callee instead lets it return straight to our caller with a0, a1 and
//! a12..a15 as they were at our entry, which is what our return after its return gave. Its
//! arguments are in registers (nothing of ours is on the stack: a1 is used by nothing but
//! the save and the restore), so it sees the same inputs. Returns not after a call just
//! lose the restore; one only the call reached goes. Only that exact shape: the adjustment then the save of a0 alone first,
//! every `ret` right after the load of a0 and the adjustment back, every call right before
//! such an epilogue (labels may sit between), no other mention of a1, nothing leaving the
//! body but `ret` and those calls. Anything else stays.
use std::collections::HashMap;

use super::calls::{classify, function_ranges, rewrite, transfers_control, Line};
use super::peephole::int;

fn next_insn(parsed: &[Line], i: usize, end: usize) -> Option<usize> {
    (i + 1..end).find(|&j| matches!(parsed[j], Line::Insn(..)))
}

/// Line -> replacement (None: deleted) for the function in `parsed[start..end]`.
fn plan(parsed: &[Line], start: usize, end: usize) -> Result<Option<HashMap<usize, Option<String>>>, String> {
    let own: Vec<&str> = parsed[start..end].iter().filter_map(|p| if let Line::Label(l) = p { Some(*l) } else { None }).collect();
    let Some(adjust) = next_insn(parsed, start, end) else { return Ok(None) };
    let Line::Insn("addi", o) = &parsed[adjust] else { return Ok(None) };
    let ["a1", "a1", n] = o.as_slice() else { return Ok(None) };
    let frame = -int(n).map_err(|e| format!("line {}: {e}", adjust + 1))?;
    let Some(save) = next_insn(parsed, adjust, end) else { return Ok(None) };
    let Line::Insn("s32i" | "s32i.n", o) = &parsed[save] else { return Ok(None) };
    let ["a0", "a1", slot] = o.as_slice() else { return Ok(None) };
    // The epilogue starting at line i: its three lines.
    let epilogue = |i: usize| -> Option<[usize; 3]> {
        let Line::Insn("l32i" | "l32i.n", o) = &parsed[i] else { return None };
        if o.as_slice() != ["a0", "a1", *slot] {
            return None;
        }
        let a = next_insn(parsed, i, end)?;
        let Line::Insn("addi", o) = &parsed[a] else { return None };
        let ["a1", "a1", n] = o.as_slice() else { return None };
        let r = next_insn(parsed, a, end)?;
        // Nothing but blank lines and comments inside the epilogue.
        let plain = |from: usize, to: usize| parsed[from + 1..to].iter().all(|p| *p == Line::Nothing);
        (int(n).ok() == Some(frame) && matches!(parsed[r], Line::Insn("ret" | "ret.n", _)) && plain(i, a) && plain(a, r)).then_some([i, a, r])
    };
    let mut edit = HashMap::from([(adjust, None), (save, None)]);
    let mut epilogue_lines = vec![];
    let mut calls = 0;
    for i in start..end {
        let Line::Insn(m, o) = &parsed[i] else { continue };
        if i == adjust || i == save {
            continue;
        }
        match *m {
            "l32i" | "l32i.n" if o.first() == Some(&"a0") => {
                let Some(e) = epilogue(i) else { return Ok(None) };
                edit.insert(e[0], None);
                edit.insert(e[1], None);
                epilogue_lines.extend(e);
            }
            "call0" | "callx0" => {
                // Only labels (other paths in) may sit between the call and the epilogue.
                let Some(n) = next_insn(parsed, i, end) else { return Ok(None) };
                let Some([_, _, r]) = epilogue(n) else { return Ok(None) };
                // With no label between, nothing else reaches that `ret` any more.
                if !parsed[i..n].iter().any(|p| matches!(p, Line::Label(_))) {
                    edit.insert(r, None);
                }
                // (`callx0 a0` reads a0 before writing it; a jump through a0 is no call.)
                let [target] = o.as_slice() else { return Ok(None) };
                if *target == "a0" {
                    return Ok(None);
                }
                let jump = if *m == "call0" { "j" } else { "jx" };
                edit.insert(i, Some(format!("\t{jump}\t{target}")));
                calls += 1;
            }
            _ if epilogue_lines.contains(&i) => {}
            "ret" | "ret.n" => return Ok(None),
            _ if o.contains(&"a1") || o.contains(&"a0") => return Ok(None),
            _ if transfers_control(m) && !(*m != "jx" && o.last().is_some_and(|l| own.contains(l))) => return Ok(None),
            _ => {}
        }
    }
    // Every return was matched as an epilogue above (an unmatched `ret` bailed out).
    Ok((calls > 0).then_some(edit))
}

/// The rewritten assembly and the number of functions that now end in tail calls.
pub fn tail_calls(asm: &str) -> Result<(String, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut edit: HashMap<usize, Option<String>> = HashMap::new();
    let mut count = 0;
    for (start, end) in function_ranges(&parsed) {
        if let Some(e) = plan(&parsed, start, end)? {
            edit.extend(e);
            count += 1;
        }
    }
    Ok((rewrite(&lines, &edit), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
	.type	f,@function
f:
	addi	a1, a1, -16
	s32i	a0, a1, 0
	slli	a4, a4, 2
	beqz	a4, .LBB0_2
	call0	g
.LBB0_2:
	l32i	a0, a1, 0
	addi	a1, a1, 16
	ret
.Lfunc_end0:
	.size	f, .Lfunc_end0-f
	.type	h,@function
h:
	addi	a1, a1, -16
	s32i	a0, a1, 0
	l32r	a8, .LCPI1_0
	callx0	a8
	l32i	a0, a1, 0
	addi	a1, a1, 16
	ret
.Lfunc_end1:
	.size	h, .Lfunc_end1-h
";

    #[test]
    fn a_call_right_before_the_return_becomes_a_jump() {
        let (text, n) = tail_calls(SAMPLE).unwrap();
        assert_eq!(n, 2, "{text}");
        assert!(text.contains("f:\n\tslli\ta4, a4, 2\n\tbeqz\ta4, .LBB0_2\n\tj\tg\n.LBB0_2:\n\tret\n.Lfunc_end0:"), "{text}");
        assert!(text.contains("h:\n\tl32r\ta8, .LCPI1_0\n\tjx\ta8\n.Lfunc_end1:"), "{text}");
    }

    #[test]
    fn other_shapes_stay() {
        for (from, to) in [
            // A call that is not the last thing: a0 must survive it.
            ("\tcall0\tg\n", "\tcall0\tg\n\tmov.n\ta2, a3\n"),
            // The stack used for something else.
            ("\tslli\ta4, a4, 2\n", "\ts32i\ta4, a1, 4\n"),
            ("\tslli\ta4, a4, 2\n", "\taddi\ta3, a1, 4\n"),
            // a0 read in the body, a second register saved, a return without the restore.
            ("\tslli\ta4, a4, 2\n", "\tmov.n\ta2, a0\n"),
            ("\tslli\ta4, a4, 2\n", "\ts32i\ta12, a1, 4\n"),
            ("\tbeqz\ta4, .LBB0_2\n", "\tbnez\ta4, .LBB0_3\n\tret\n.LBB0_3:\n"),
            // Something between the load and the adjustment, another adjustment.
            ("\tl32i\ta0, a1, 0\n\taddi", "\tl32i\ta0, a1, 0\n\tmovi\ta2, 0\n\taddi"),
            ("\taddi\ta1, a1, 16\n\tret\n.Lfunc_end0", "\taddi\ta1, a1, 32\n\tret\n.Lfunc_end0"),
            // A way out of the body.
            ("\tbeqz\ta4, .LBB0_2\n", "\tbeqz\ta4, elsewhere\n"),
        ] {
            assert!(SAMPLE.contains(from), "{from}");
            let asm = SAMPLE.replacen(from, to, 1);
            let (text, n) = tail_calls(&asm).unwrap();
            assert_eq!(n, 1, "{from:?} -> {to:?}: {text}");
            assert!(text.starts_with(&asm[..asm.find(".Lfunc_end0").unwrap()]), "{from:?} -> {to:?}: {text}");
        }
        // No call at all: nothing to gain here (the frame is `peephole`'s business).
        let (_, n) = tail_calls(&SAMPLE.replace("\tcall0\tg\n", "")).unwrap();
        assert_eq!(n, 1);
    }
}
