//! Branches around a jump, on the final assembly.
//!
//! LLVM's Xtensa backend reaches a far block with a branch of the opposite condition over a
//! `j`, sizing blocks before the rewriter has shrunk them:
//!
//! ```text
//!     bltu  a10, a15, .L46          bgeu  a10, a15, .L105
//!     j     .L105             ->  .L46:
//! .L46:
//! ```
//!
//! GNU as relaxes a conditional branch whose target is out of its range into exactly the
//! left-hand pair (an inverted branch over a `j`), so the rewrite never costs a byte and
//! saves the 3 of the `j` whenever the target is near. Only that shape: the branch, the
//! `j`, and the branch's own label right after, with nothing but blank lines and comments
//! between (a label before the `j` would let another path reach it).
use std::collections::HashMap;

use super::calls::{classify, rewrite, Line};

/// Each conditional branch with the one taken exactly when it is not.
const INVERSE: &[(&str, &str)] = &[
    ("beq", "bne"),
    ("blt", "bge"),
    ("bltu", "bgeu"),
    ("beqz", "bnez"),
    ("bltz", "bgez"),
    ("beqi", "bnei"),
    ("blti", "bgei"),
    ("bltui", "bgeui"),
    ("bany", "bnone"),
    ("ball", "bnall"),
    ("bbc", "bbs"),
    ("bbci", "bbsi"),
];

fn inverse(m: &str) -> Option<&'static str> {
    // The narrow forms only reach forward 4..67 bytes: invert to the wide form and let gas
    // narrow it again where it fits.
    let m = m.strip_suffix(".n").unwrap_or(m);
    INVERSE.iter().find_map(|&(a, b)| if m == a { Some(b) } else if m == b { Some(a) } else { None })
}

fn next_line(parsed: &[Line], i: usize) -> Option<usize> {
    (i + 1..parsed.len()).find(|&j| parsed[j] != Line::Nothing)
}

/// The rewritten assembly and the number of jumps gone.
pub fn invert(asm: &str) -> Result<(String, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut edit: HashMap<usize, Option<String>> = HashMap::new();
    let mut count = 0;
    for (i, p) in parsed.iter().enumerate() {
        let Line::Insn(m, ops) = p else { continue };
        let Some(inv) = inverse(m) else { continue };
        let Some((label, regs)) = ops.split_last() else {
            return Err(format!("line {}: `{}`: a branch without a target", i + 1, lines[i]));
        };
        let Some(j) = next_line(&parsed, i) else { continue };
        let Line::Insn("j", jo) = &parsed[j] else { continue };
        let [far] = jo.as_slice() else { continue };
        let Some(k) = next_line(&parsed, j) else { continue };
        if parsed[k] != Line::Label(label) || edit.contains_key(&i) || edit.contains_key(&j) {
            continue;
        }
        let mut ops = regs.to_vec();
        ops.push(far);
        edit.insert(i, Some(format!("\t{inv}\t{}", ops.join(", "))));
        edit.insert(j, None);
        count += 1;
    }
    Ok((rewrite(&lines, &edit), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
f:
	bltu	a10, a15, .LBB0_1
	j	.LBB0_9
.LBB0_1:
	beqi	a8, 1, .LBB0_2
	# a comment
	j	.LBB0_9
.LBB0_2:
	bnez.n	a2, .LBB0_3
	j	.LBB0_9
.LBB0_3:
	bbci	a3, 4, .LBB0_4
	j	.LBB0_9
.LBB0_4:
	ret
.LBB0_9:
	movi	a2, 0
	ret
";

    #[test]
    fn a_branch_over_a_jump_becomes_the_opposite_branch() {
        let (text, n) = invert(SAMPLE).unwrap();
        assert_eq!(n, 4, "{text}");
        assert_eq!(
            text,
            "f:\n\tbgeu\ta10, a15, .LBB0_9\n.LBB0_1:\n\tbnei\ta8, 1, .LBB0_9\n\t# a comment\n.LBB0_2:\n\
             \tbeqz\ta2, .LBB0_9\n.LBB0_3:\n\tbbsi\ta3, 4, .LBB0_9\n.LBB0_4:\n\tret\n.LBB0_9:\n\tmovi\ta2, 0\n\tret\n"
        );
    }

    #[test]
    fn other_shapes_stay() {
        for (from, to) in [
            // Another path reaches the jump.
            ("\tj\t.LBB0_9\n.LBB0_1:\n", ".LBB0_8:\n\tj\t.LBB0_9\n.LBB0_1:\n"),
            // The branch does not go to the label after the jump.
            ("\tbltu\ta10, a15, .LBB0_1\n", "\tbltu\ta10, a15, .LBB0_2\n"),
            // Something else between.
            ("\tj\t.LBB0_9\n.LBB0_1:\n", "\tj\t.LBB0_9\n\tnop\n.LBB0_1:\n"),
            // A computed jump.
            ("\tj\t.LBB0_9\n.LBB0_1:\n", "\tjx\ta9\n.LBB0_1:\n"),
            // Not a conditional branch.
            ("\tbltu\ta10, a15, .LBB0_1\n", "\tloop\ta10, .LBB0_1\n"),
        ] {
            assert!(SAMPLE.contains(from), "{from}");
            let asm = SAMPLE.replacen(from, to, 1);
            let (text, n) = invert(&asm).unwrap();
            assert_eq!(n, 3, "{from:?} -> {to:?}: {text}");
            assert!(text.starts_with(&asm[..asm.find("\tbeqi").unwrap()]), "{from:?} -> {to:?}: {text}");
        }
        assert!(invert("\tbeqz\n\tj\t.L1\n").is_err());
    }

    #[test]
    fn every_branch_has_its_inverse_both_ways() {
        for (a, b) in INVERSE {
            assert_eq!((inverse(a), inverse(b)), (Some(*b), Some(*a)));
        }
        assert_eq!(inverse("beqz.n"), Some("bnez"));
        assert_eq!(inverse("loop"), None);
    }
}
