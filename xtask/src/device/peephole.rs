//! Peephole fixes for two things LLVM's Xtensa backend emits at length, on the assembly
//! after `calls`:
//!
//! * Stack adjustments go through a scratch register (`addi a8, a1, -16` then
//!   `or a1, a8, a8`, or `movi a8, N; add a8, a1, a8; or a1, a8, a8` for large frames):
//!   they become `addi a1, a1, N`, `addmi a1, a1, N` or `movi a8, N; add a1, a1, a8`.
//! * `and` with a low-bit mask (`movi a9, 255; and a2, a3, a9`; masks up to 16 bits, also
//!   loaded with `l32r`) becomes `extui a2, a3, 0, 8`, which the backend never selects;
//!   and goes when it masks what an `l8ui`/`l16ui` just loaded.
//! * A function that never returns (the entry, `halt`) still saves a0 and the callee-saved
//!   registers it uses in its prologue; nothing ever restores them, so the stores go.
//!
//! Each rewrite drops the write of a scratch register whose value only the rewritten
//! instruction read, so it is done only when a walk of every path onward (through
//! branches and jumps) proves the register dead: overwritten before any read, or clobbered
//! by a call or a return (CALL0 ABI). Anything the walk does not know (an unlisted
//! mnemonic, a directive, a computed jump) means "maybe live", and the code stays as it
//! is. Input that cannot be what LLVM means (an unknown literal, a bad immediate) is an error.
use std::collections::{HashMap, HashSet};

use super::calls::{classify, literal, Line};

/// The rewritten assembly and how many of each rewrite were made.
pub struct Shrunk {
    pub text: String,
    pub stack: usize,
    pub masks: usize,
    /// Masks dropped after a zero-extending load.
    pub loads: usize,
    /// Callee-saved registers no longer saved by functions that never return.
    pub saves: usize,
}

/// Write the first operand, read the others, nothing implicit.
const DEFS: &[&str] = &[
    "add", "add.n", "addi", "addi.n", "addmi", "addx2", "addx4", "addx8", "sub", "subx2", "subx4",
    "subx8", "and", "or", "xor", "neg", "abs", "movi", "movi.n", "mov", "mov.n", "l32r", "l32i",
    "l32i.n", "l16ui", "l16si", "l8ui", "slli", "srli", "srai", "sll", "srl", "sra", "src", "extui",
    "mull", "muluh", "mulsh", "min", "max", "minu", "maxu", "sext", "nsa", "nsau",
];

/// Only read their register operands, nothing implicit. (A conditional move may also keep
/// its destination's value: a read of it too.)
const USES: &[&str] = &[
    "s8i", "s16i", "s32i", "s32i.n", "memw", "nop", "nop.n", "ssl", "ssr", "ssai", "ssa8l", "ssa8b",
    "isync", "dsync", "esync", "rsync", "extw", "moveqz", "movnez", "movltz", "movgez",
];

/// Conditional branches: register operands, then the target label.
const BRANCHES: &[&str] = &[
    "beq", "bne", "bge", "blt", "bgeu", "bltu", "beqz", "bnez", "bgez", "bltz", "beqi", "bnei",
    "bgei", "blti", "bgeui", "bltui", "bany", "bnone", "ball", "bnall", "bbc", "bbs", "bbci", "bbsi",
    "beqz.n", "bnez.n",
];

/// What one instruction does to the value of a register.
#[derive(Debug, PartialEq)]
enum Effect<'a> {
    /// Overwrites or clobbers it without reading it: dead on this path.
    Kills,
    /// Reads it, or might (unknown instruction): maybe live.
    Reads,
    /// Leaves it alone; go on with the next line.
    Passes,
    Jump(&'a str),
    /// Both the label and the next line.
    Branch(&'a str),
}

fn effect<'a>(m: &str, ops: &[&'a str], r: &str) -> Effect<'a> {
    let mentions = ops.contains(&r);
    match m {
        // a2..a5 may hold the result, a12..a15 must be kept: only a6..a11 are dead.
        "ret" | "ret.n" if matches!(r, "a6" | "a7" | "a8" | "a9" | "a10" | "a11") => Effect::Kills,
        // a8..a11 are neither arguments (a2..a7) nor kept across the call.
        "call0" | "callx0" if !mentions && matches!(r, "a8" | "a9" | "a10" | "a11") => Effect::Kills,
        "j" => match ops {
            [label] => Effect::Jump(label),
            _ => Effect::Reads,
        },
        _ if BRANCHES.contains(&m) => match ops.split_last() {
            Some((label, regs)) if !regs.contains(&r) => Effect::Branch(label),
            _ => Effect::Reads,
        },
        _ if DEFS.contains(&m) => match ops.split_first() {
            Some((_, srcs)) if srcs.contains(&r) => Effect::Reads,
            Some((dst, _)) if *dst == r => Effect::Kills,
            _ => Effect::Passes,
        },
        _ if USES.contains(&m) && !mentions => Effect::Passes,
        _ => Effect::Reads,
    }
}

/// True when no path from line `start` on can read `reg` before overwriting it.
pub(super) fn dead_from(parsed: &[Line], labels: &HashMap<&str, usize>, start: usize, reg: &str) -> bool {
    let mut todo = vec![start];
    let mut seen = HashSet::new();
    while let Some(mut i) = todo.pop() {
        // Lines already walked from are explored (or being explored) already.
        while seen.insert(i) {
            match parsed.get(i) {
                Some(Line::Nothing | Line::Label(_)) => i += 1,
                // Falling off the function, or anything that is not code.
                None | Some(Line::Directive(..)) => return false,
                Some(Line::Insn(m, ops)) => match effect(m, ops, reg) {
                    Effect::Kills => break,
                    Effect::Reads => return false,
                    Effect::Passes => i += 1,
                    Effect::Jump(l) => match labels.get(l) {
                        Some(&t) => i = t,
                        None => return false,
                    },
                    Effect::Branch(l) => match labels.get(l) {
                        Some(&t) => {
                            todo.push(t);
                            i += 1;
                        }
                        None => return false,
                    },
                },
            }
        }
    }
    true
}

/// The instruction just before line `i` when nothing but blank lines or comments separate
/// them (a label would let another path in between).
fn prev_insn(parsed: &[Line], i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| parsed[j] != Line::Nothing).filter(|&j| matches!(parsed[j], Line::Insn(..)))
}

pub(super) fn int(s: &str) -> Result<i64, String> {
    let (neg, digits) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
    let v = match digits.strip_prefix("0x") {
        Some(h) => i64::from_str_radix(h, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("`{s}`: not an integer"))?;
    Ok(if neg { -v } else { v })
}

/// k when `v` is 2^k - 1 with 1 <= k <= 16 (what `extui`'s mask field holds).
pub(super) fn low_mask(v: i64) -> Option<u32> {
    (v > 0 && v & (v + 1) == 0 && v <= 0xFFFF).then(|| 64 - v.leading_zeros())
}

/// Deletes the prologue's register saves of every function with no way to return: no
/// `ret`, no computed jump, no branch or jump out of its own body. LLVM's save slots are
/// its own (no other code addresses them); as a check, no load from the stack may use
/// their offsets either.
fn noreturn_saves(parsed: &[Line], edit: &mut HashMap<usize, Option<String>>, count: &mut usize) {
    let typed: HashSet<&str> = parsed
        .iter()
        .filter_map(|p| match p {
            Line::Directive(".type", a) => a.split_once(',').filter(|(_, k)| k.trim() == "@function").map(|(n, _)| n.trim()),
            _ => None,
        })
        .collect();
    for (start, p) in parsed.iter().enumerate() {
        let Line::Label(name) = p else { continue };
        if !typed.contains(name) {
            continue;
        }
        let Some(len) = parsed[start..].iter().position(|p| matches!(p, Line::Directive(".size", a) if a.split(',').next().map(str::trim) == Some(*name))) else { continue };
        let body = &parsed[start..start + len];
        let own: HashSet<&str> = body.iter().filter_map(|p| if let Line::Label(l) = p { Some(*l) } else { None }).collect();
        let escapes = body.iter().any(|p| match p {
            Line::Insn(m, ops) => {
                m.starts_with("ret")
                    || *m == "jx"
                    || ((*m == "j" || BRANCHES.contains(m)) && !ops.last().is_some_and(|l| own.contains(l)))
            }
            _ => false,
        });
        if escapes {
            continue;
        }
        let mut insns = body.iter().enumerate().filter(|(_, p)| matches!(p, Line::Insn(..)));
        // The stack adjustment as LLVM writes it: at most two instructions computing the new
        // SP in a scratch register, then SP set.
        let mut adjusts = false;
        for (_, p) in insns.by_ref().take(3) {
            match p {
                Line::Insn("addi" | "addmi" | "add" | "or", o) if o.first() == Some(&"a1") => {
                    adjusts = true;
                    break;
                }
                Line::Insn("addi" | "add" | "movi", _) => continue,
                _ => break,
            }
        }
        if !adjusts {
            continue;
        }
        let mut saves = vec![];
        for (i, p) in insns {
            match p {
                Line::Insn("s32i" | "s32i.n", o)
                    if o.len() == 3 && o[1] == "a1" && matches!(o[0], "a0" | "a12" | "a13" | "a14" | "a15") =>
                {
                    saves.push((start + i, o[2]));
                }
                _ => break,
            }
        }
        let loaded = |off: &str| {
            body.iter().any(|p| matches!(p, Line::Insn(m, o) if m.starts_with('l') && o.len() == 3 && o[1] == "a1" && o[2] == off))
        };
        for (i, off) in saves {
            if !loaded(off) && !edit.contains_key(&i) {
                edit.insert(i, None);
                *count += 1;
            }
        }
    }
}

pub fn shrink(asm: &str) -> Result<Shrunk, String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut labels = HashMap::new();
    let mut literals = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        match p {
            Line::Label(name) => {
                labels.insert(*name, i);
            }
            Line::Directive(".literal", args) => {
                let (label, value) = literal(args)?;
                literals.insert(label, value);
            }
            _ => {}
        }
    }
    let dead = |start: usize, reg: &str| dead_from(&parsed, &labels, start, reg);

    // Line -> its replacement (None: deleted).
    let mut edit: HashMap<usize, Option<String>> = HashMap::new();
    let (mut stack, mut masks, mut loads, mut saves) = (0, 0, 0, 0);
    for (i, p) in parsed.iter().enumerate() {
        let Line::Insn(m, ops) = p else { continue };
        match (*m, ops.as_slice()) {
            // The stack pointer set from a scratch register computed just before.
            ("or", ["a1", t, t2]) if t == t2 && *t != "a1" => {
                let Some(j) = prev_insn(&parsed, i) else { continue };
                match &parsed[j] {
                    Line::Insn("addi", o) if o.len() == 3 && o[0] == *t && o[1] == "a1" && dead(i + 1, t) => {
                        edit.insert(j, None);
                        edit.insert(i, Some(format!("\taddi\ta1, a1, {}", o[2])));
                        stack += 1;
                    }
                    Line::Insn("add", o)
                        if o.len() == 3 && o[0] == *t && ((o[1] == "a1" && o[2] == *t) || (o[1] == *t && o[2] == "a1")) =>
                    {
                        let Some(k) = prev_insn(&parsed, j) else { continue };
                        let Line::Insn("movi", n) = &parsed[k] else { continue };
                        if n.len() != 2 || n[0] != *t || !dead(i + 1, t) {
                            continue;
                        }
                        let v = int(n[1]).map_err(|e| format!("line {}: {e}", k + 1))?;
                        if v % 256 == 0 && (-32768..=32512).contains(&v) {
                            edit.insert(k, None);
                            edit.insert(i, Some(format!("\taddmi\ta1, a1, {v}")));
                        } else {
                            edit.insert(i, Some(format!("\tadd\ta1, a1, {t}")));
                        }
                        edit.insert(j, None);
                        stack += 1;
                    }
                    _ => {}
                }
            }
            ("and", [d, x, y]) => {
                for (t, s) in [(y, x), (x, y)] {
                    if t == s {
                        continue;
                    }
                    // The nearest earlier mention of `t` in this straight stretch.
                    let mut def = None;
                    for k in (0..i).rev() {
                        match &parsed[k] {
                            Line::Nothing => continue,
                            Line::Insn(m, o) if o.contains(t) => {
                                def = Some((k, *m, o));
                                break;
                            }
                            Line::Insn(m, _) if !super::calls::transfers_control(m) => continue,
                            _ => break,
                        }
                    }
                    let Some((k, dm, o)) = def else { continue };
                    if o.len() != 2 || o[0] != *t || edit.contains_key(&k) {
                        continue;
                    }
                    let value = match dm {
                        "movi" | "movi.n" => int(o[1]).map_err(|e| format!("line {}: {e}", k + 1))?,
                        "l32r" => {
                            let v = literals.get(o[1]).ok_or_else(|| format!("line {}: `{}`: no such literal", k + 1, lines[k]))?;
                            // Literals of symbols are addresses, never masks.
                            match int(v) {
                                Ok(v) => v,
                                Err(_) => continue,
                            }
                        }
                        _ => continue,
                    };
                    let Some(bits) = low_mask(value) else { continue };
                    if t == d || dead(i + 1, t) {
                        edit.insert(k, None);
                        edit.insert(i, Some(format!("\textui\t{d}, {s}, 0, {bits}")));
                        masks += 1;
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    // A mask of a byte the instruction before loaded zero-extended: a no-op. Its input may
    // be a mask just rewritten above (LLVM masks some `l8ui` results again).
    for i in 0..parsed.len() {
        let Some(Some(new)) = edit.get(&i) else { continue };
        let Line::Insn("extui", ops) = classify(new) else { continue };
        // The instruction before it once deleted lines are gone.
        let j = (0..i).rev().find(|j| parsed[*j] != Line::Nothing && edit.get(j) != Some(&None));
        let (Some(j), [d, s, "0", bits]) = (j, ops.as_slice()) else { continue };
        let width = match &parsed[j] {
            Line::Insn("l8ui", o) if o.first() == Some(d) => 8,
            Line::Insn("l16ui", o) if o.first() == Some(d) => 16,
            _ => continue,
        };
        if d == s && int(bits)? >= width && !edit.contains_key(&j) {
            edit.insert(i, None);
            loads += 1;
        }
    }

    noreturn_saves(&parsed, &mut edit, &mut saves);

    // Literals only deleted loads used go too.
    let (mut used, mut freed) = (HashSet::new(), HashSet::new());
    for (i, p) in parsed.iter().enumerate() {
        if let Line::Insn(m, ops) = p {
            if edit.get(&i) != Some(&None) {
                used.extend(ops.iter().copied());
            } else if *m == "l32r" {
                freed.insert(ops[1]);
            }
        }
    }
    let mut text = String::with_capacity(asm.len());
    for (i, line) in lines.iter().enumerate() {
        let line = match edit.get(&i) {
            Some(None) => continue,
            Some(Some(new)) => new.as_str(),
            None => line,
        };
        if let Line::Directive(".literal", args) = &parsed[i] {
            let label = literal(args)?.0;
            if freed.contains(label) && !used.contains(label) {
                continue;
            }
        }
        text.push_str(line);
        text.push('\n');
    }
    Ok(Shrunk { text, stack, masks, loads, saves })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LLVM's shapes: a small frame, a large one, masks by movi and by literal.
    const SAMPLE: &str = "\
	.literal_position
	.literal .LCPI0_0, 65535
	.literal .LCPI0_1, 65536
	.section	.text.f,\"ax\",@progbits
	.p2align	2
	.type	f,@function
f:
	addi	a8, a1, -16
	or	a1, a8, a8
	s32i	a0, a1, 0
	movi	a9, 255
	and	a2, a2, a9
	l32r	a8, .LCPI0_0
	and	a3, a8, a3
	beqz	a2, .LBB0_2
	call0	g
.LBB0_2:
	l32i	a0, a1, 0
	addi	a8, a1, 16
	or	a1, a8, a8
	ret
.Lfunc_end0:
	.size	f, .Lfunc_end0-f
	.type	h,@function
h:
	movi	a8, -512
	add	a8, a1, a8
	or	a1, a8, a8
	movi	a8, 160
	add	a8, a1, a8
	or	a1, a8, a8
	ret
";

    #[test]
    fn frames_and_masks_shrink() {
        let r = shrink(SAMPLE).unwrap();
        assert_eq!((r.stack, r.masks), (4, 2), "{}", r.text);
        assert!(r.text.contains("f:\n\taddi\ta1, a1, -16\n\ts32i\ta0, a1, 0\n\textui\ta2, a2, 0, 8\n\textui\ta3, a3, 0, 16\n"), "{}", r.text);
        assert!(r.text.contains("\tl32i\ta0, a1, 0\n\taddi\ta1, a1, 16\n\tret\n"));
        assert!(r.text.contains("h:\n\taddmi\ta1, a1, -512\n\tmovi\ta8, 160\n\tadd\ta1, a1, a8\n\tret\n"), "{}", r.text);
        assert!(!r.text.contains(".LCPI0_0"), "the mask's literal goes with its load");
        assert!(r.text.contains(".literal .LCPI0_1, 65536"), "unused before: not ours to judge");
    }

    #[test]
    fn a_register_read_later_keeps_its_value() {
        // a8 read after the prologue, on a branch path only.
        let asm = SAMPLE
            .replace("\ts32i\ta0, a1, 0\n", "\ts32i\ta0, a1, 0\n\tbeqz\ta3, .LBB0_9\n")
            .replace(".Lfunc_end0:\n", ".LBB0_9:\n\tor\ta2, a8, a8\n\tret\n.Lfunc_end0:\n");
        let r = shrink(&asm).unwrap();
        assert!(r.text.contains("f:\n\taddi\ta8, a1, -16\n\tor\ta1, a8, a8\n"), "{}", r.text);
        // a9 read after the mask: the movi stays.
        let asm = SAMPLE.replace("\tand\ta2, a2, a9\n", "\tand\ta2, a2, a9\n\ts32i\ta9, a1, 4\n");
        assert!(shrink(&asm).unwrap().text.contains("\tmovi\ta9, 255\n\tand\ta2, a2, a9\n"));
    }

    #[test]
    fn a_mask_after_a_byte_load_goes() {
        let asm = SAMPLE.replace("\tmovi\ta9, 255\n", "\tl8ui\ta2, a3, 1\n\tmovi\ta9, 255\n");
        let r = shrink(&asm).unwrap();
        assert_eq!((r.masks, r.loads), (2, 1));
        assert!(r.text.contains("\tl8ui\ta2, a3, 1\n\textui\ta3, a3, 0, 16\n"), "{}", r.text);
        // A 4-bit mask of a byte is not a no-op, nor is one of another register.
        for other in ["\tl8ui\ta2, a3, 1\n\tmovi\ta9, 15\n", "\tl8ui\ta4, a3, 1\n\tmovi\ta9, 255\n"] {
            let r = shrink(&SAMPLE.replace("\tmovi\ta9, 255\n", other)).unwrap();
            assert_eq!((r.masks, r.loads), (2, 0));
        }
    }

    #[test]
    fn a_function_that_never_returns_saves_nothing() {
        let f = "\t.type\tm,@function\nm:\n\tmovi\ta8, -512\n\tadd\ta8, a1, a8\n\tor\ta1, a8, a8\n\ts32i\ta0, a1, 508\n\ts32i\ta12, a1, 504\n\
                 \tmovi\ta12, 0\n.LBB9_1:\n\tcall0\tg\n\tbnez\ta2, .LBB9_1\n\tcall0\thalt\n.Lfunc_end9:\n\t.size\tm, .Lfunc_end9-m\n";
        let r = shrink(f).unwrap();
        assert_eq!(r.saves, 2);
        assert!(r.text.contains("m:\n\taddmi\ta1, a1, -512\n\tmovi\ta12, 0\n"), "{}", r.text);
        // A return, a jump elsewhere, or a load of a slot: the saves stay.
        for change in [("\tcall0\thalt\n", "\tret.n\n"), ("\tcall0\thalt\n", "\tj\thalt\n"), ("\tmovi\ta12, 0\n", "\tl32i\ta12, a1, 504\n")] {
            let r = shrink(&f.replace(change.0, change.1)).unwrap();
            assert_eq!(r.saves, if change.1.contains("l32i") { 1 } else { 0 }, "{change:?}");
        }
        // The sample's f returns.
        assert_eq!(shrink(SAMPLE).unwrap().saves, 0);
    }

    #[test]
    fn a_label_between_mask_and_and_keeps_both() {
        let asm = SAMPLE.replace("\tmovi\ta9, 255\n", "\tmovi\ta9, 255\n.LBB0_1:\n");
        let r = shrink(&asm).unwrap();
        assert!(r.text.contains("\tmovi\ta9, 255\n.LBB0_1:\n\tand\ta2, a2, a9\n"));
        assert_eq!(r.masks, 1);
    }

    #[test]
    fn only_low_masks_up_to_16_bits() {
        assert_eq!(low_mask(1), Some(1));
        assert_eq!(low_mask(255), Some(8));
        assert_eq!(low_mask(0xFFFF), Some(16));
        for v in [0, 2, 254, 0x1FFFF, -1, -4] {
            assert_eq!(low_mask(v), None, "{v}");
        }
        let asm = SAMPLE.replace("movi\ta9, 255", "movi\ta9, 254");
        assert_eq!(shrink(&asm).unwrap().masks, 1);
    }

    #[test]
    fn unknown_instructions_and_computed_jumps_count_as_reads() {
        assert_eq!(effect("movnez", &["a8", "a2", "a3"], "a8"), Effect::Reads);
        assert_eq!(effect("jx", &["a2"], "a8"), Effect::Reads);
        assert_eq!(effect("ret", &[], "a2"), Effect::Reads);
        assert_eq!(effect("callx0", &["a8"], "a8"), Effect::Reads);
        assert_eq!(effect("call0", &["g"], "a3"), Effect::Reads, "an argument");
        assert_eq!(effect("call0", &["g"], "a12"), Effect::Reads, "kept across calls: not walked past");
        assert_eq!(effect("l32i", &["a8", "a8", "0"], "a8"), Effect::Reads);
        assert_eq!(effect("l32i", &["a8", "a1", "0"], "a8"), Effect::Kills);
        assert_eq!(effect("s32i", &["a8", "a1", "0"], "a8"), Effect::Reads);
        assert_eq!(effect("bnez", &["a2", ".L1"], "a8"), Effect::Branch(".L1"));
        assert_eq!(effect("bnez", &["a8", ".L1"], "a8"), Effect::Reads);
    }

    #[test]
    fn a_loop_is_walked_once() {
        let asm = "f:\n\taddi\ta8, a1, -16\n\tor\ta1, a8, a8\n.L1:\n\taddi.n\ta2, a2, 1\n\tbnez\ta2, .L1\n\tmovi\ta8, 0\n\tret\n";
        assert_eq!(shrink(asm).unwrap().stack, 1);
        let asm = asm.replace("\tmovi\ta8, 0\n", "\tmov.n\ta2, a8\n");
        assert_eq!(shrink(&asm).unwrap().stack, 0);
    }

    #[test]
    fn a_bad_immediate_or_literal_is_an_error() {
        let asm = SAMPLE.replace("movi\ta9, 255", "movi\ta9, x255");
        assert!(shrink(&asm).is_err());
        let asm = SAMPLE.replace("l32r\ta8, .LCPI0_0", "l32r\ta8, .LCPI9_9");
        assert!(shrink(&asm).err().unwrap().contains("no such literal"));
    }
}
