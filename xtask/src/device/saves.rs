//! Shared register saves and restores (like RISC-V's `-msave-restore`, for CALL0), on the
//! assembly after `peephole`.
//!
//! LLVM saves a0 and the callee-saved registers a function uses (a12..a15) in its prologue
//! and loads them back before every `ret`: 2 bytes a register each way (3 beyond
//! `l32i.n`'s reach). Two routines shared by the whole program do it instead:
//!
//! ```text
//! f:  addi a1, a1, -F          f:  mov.n  a8, a0
//!     s32i a0, a1, 40              call0  eboot_rs_save     # a1 -= 32, a8 a12..a15 saved
//!     s32i a12, a1, 36             addi   a1, a1, -F'
//!     ...                          ...
//!     l32i a12, a1, 36             addi   a1, a1, F'
//!     l32i a0, a1, 40              j      eboot_rs_restore  # a0 a12..a15 back, a1 += 32, ret
//!     addi a1, a1, F
//!     ret
//! ```
//!
//! The routines save all five registers: storing and loading back one the function never
//! changes leaves it as it was, so one pair serves every function. a8 is free at entry (not
//! an argument in the CALL0 ABI). The save area sits above the function's own frame, so
//! every stack slot keeps its offset from a1; the frame loses its save slots when nothing
//! else lies at or above them (F' = F rounded down to them, 16-byte aligned, 0: no `addi`
//! at all), else keeps its size. A frame size kept by two or more epilogues gets an entry
//! of the restore routine that frees it (`j eboot_rs_restore_48` for the `addi` and the
//! `j`), falling through to the next smaller one.
//!
//! Only the exact shape is rewritten: the stack adjustment first, then the saves, each
//! `ret` right after the loads of the same registers from the same slots and the matching
//! adjustment; every other mention of a1 a load, store or address inside the frame (an
//! offset at or past F would be the caller's, shifted by the save area), nothing else
//! touching the save slots, no way out but `ret` (no computed jump, no jump out of the
//! body). Anything else leaves the function as it is. The bytes are counted: a function is
//! rewritten only when it gains, and the routines are added only when the gains pay for
//! them.
use std::collections::HashMap;

use super::calls::{classify, function_ranges, literal, transfers_control, Line};
use super::peephole::int;

pub const SAVE: &str = "eboot_rs_save";
pub const RESTORE: &str = "eboot_rs_restore";

/// Bytes of the area the routines push: five words, rounded to the ABI's 16-byte stack.
const AREA: i64 = 32;

/// The two routines: 15 + 15 bytes, and up to 3 of alignment before the `call0` target.
const ROUTINES_COST: i64 = 33;

/// Saved registers in the routines' layout (offset from a1 after the save), a0 as a8.
const LAYOUT: [(&str, i64); 5] = [("a0", 16), ("a12", 12), ("a13", 8), ("a14", 4), ("a15", 0)];

/// The restore routine's entry for a function that keeps a frame of `frame` bytes: it
/// frees that frame first.
fn restore_name(frame: i64) -> String {
    format!("{RESTORE}_{frame}")
}

/// The routines; `frames` (descending) get restore entries of their own, each freeing the
/// difference to the next and falling through to it (3 bytes each, 3 saved a use).
fn routines(frames: &[i64]) -> String {
    let mut s = format!("\n\t.section\t.text.{SAVE},\"ax\",@progbits\n\t.p2align\t2\n\t.type\t{SAVE},@function\n{SAVE}:\n");
    s.push_str(&format!("\taddi\ta1, a1, -{AREA}\n"));
    for (r, off) in LAYOUT {
        let r = if r == "a0" { "a8" } else { r };
        s.push_str(&format!("\ts32i.n\t{r}, a1, {off}\n"));
    }
    s.push_str(&format!("\tret.n\n\t.size\t{SAVE}, .-{SAVE}\n"));
    for (i, &f) in frames.iter().enumerate() {
        let name = restore_name(f);
        let step = f - frames.get(i + 1).copied().unwrap_or(0);
        s.push_str(&format!("\t.type\t{name},@function\n{name}:\n\taddi\ta1, a1, {step}\n\t.size\t{name}, .-{name}\n"));
    }
    s.push_str(&format!("\t.type\t{RESTORE},@function\n{RESTORE}:\n"));
    for (r, off) in LAYOUT {
        s.push_str(&format!("\tl32i.n\t{r}, a1, {off}\n"));
    }
    s.push_str(&format!("\taddi\ta1, a1, {AREA}\n\tret.n\n\t.size\t{RESTORE}, .-{RESTORE}\n"));
    s
}

/// Bytes of a load or store to the stack at `off` once gas has narrowed what it can.
fn access_len(off: i64) -> i64 {
    if (0..=60).contains(&off) && off % 4 == 0 {
        2
    } else {
        3
    }
}

/// Width in bytes of a memory access, None for anything else.
fn width(m: &str) -> Option<i64> {
    match m {
        "l32i" | "l32i.n" | "s32i" | "s32i.n" => Some(4),
        "l16ui" | "l16si" | "s16i" => Some(2),
        "l8ui" | "s8i" => Some(1),
        _ => None,
    }
}

const CALLEE_SAVED: [&str; 5] = ["a0", "a12", "a13", "a14", "a15"];

/// One function the rewrite applies to.
struct Plan {
    /// The stack adjustment line and the save lines.
    adjust: usize,
    saves: Vec<usize>,
    /// Each epilogue: its load lines, its adjustment line, its `ret`.
    epilogues: Vec<(Vec<usize>, usize, usize)>,
    /// The frame the function keeps below the save area.
    frame: i64,
    gain: i64,
}

fn next_insn(parsed: &[Line], i: usize) -> Option<usize> {
    (i + 1..parsed.len()).find(|&j| parsed[j] != Line::Nothing)
}

/// True when the `jx` at line `i` is LLVM's switch, `l32r r, L; addx4 r, x, r; l32i r, r, 0;
/// jx r` with nothing between, where literal `L` names a table of `.long`s that are all
/// labels of `own`.
fn table_jump(parsed: &[Line], i: usize, own: &[&str]) -> bool {
    let prev = |k: usize| (0..k).rev().find(|&j| parsed[j] != Line::Nothing);
    let Line::Insn("jx", o) = &parsed[i] else { return false };
    let [r] = o.as_slice() else { return false };
    let Some(load) = prev(i) else { return false };
    let Line::Insn("l32i" | "l32i.n", lo) = &parsed[load] else { return false };
    let Some(add) = prev(load) else { return false };
    let Line::Insn("addx4", ao) = &parsed[add] else { return false };
    let Some(base) = prev(add) else { return false };
    let Line::Insn("l32r", bo) = &parsed[base] else { return false };
    if lo.as_slice() != [*r, *r, "0"] || ao.len() != 3 || ao[0] != *r || ao[2] != *r || ao[1] == *r || bo.len() != 2 || bo[0] != *r {
        return false;
    }
    let table = parsed.iter().find_map(|p| match p {
        Line::Directive(".literal", args) => literal(args).ok().filter(|(l, _)| *l == bo[1]).map(|(_, v)| v),
        _ => None,
    });
    let Some(table) = table else { return false };
    let Some(t) = parsed.iter().position(|p| *p == Line::Label(table)) else { return false };
    let entries: Vec<&Line> = parsed[t + 1..].iter().take_while(|p| matches!(p, Line::Directive(".long", _))).collect();
    !entries.is_empty() && entries.iter().all(|p| matches!(p, Line::Directive(_, l) if own.contains(l)))
}

/// The rewrite of the function whose body is `parsed[start..end]`, if it has the shape.
fn plan(parsed: &[Line], start: usize, end: usize) -> Result<Option<Plan>, String> {
    let body = start..end;
    let own: Vec<&str> = parsed[body.clone()].iter().filter_map(|p| if let Line::Label(l) = p { Some(*l) } else { None }).collect();
    // The first instruction sets up the frame.
    let Some(adjust) = (start..end).find(|&i| matches!(parsed[i], Line::Insn(..))) else { return Ok(None) };
    let Line::Insn("addi", o) = &parsed[adjust] else { return Ok(None) };
    let ["a1", "a1", n] = o.as_slice() else { return Ok(None) };
    let frame = -int(n).map_err(|e| format!("line {}: {e}", adjust + 1))?;
    if frame <= 0 || frame % 16 != 0 {
        return Ok(None);
    }
    // The saves right after it: register -> slot.
    let mut slot: HashMap<&str, i64> = HashMap::new();
    let mut saves = vec![];
    let mut i = adjust;
    while let Some(j) = next_insn(parsed, i).filter(|&j| j < end) {
        let Line::Insn("s32i" | "s32i.n", o) = &parsed[j] else { break };
        let [r, "a1", off] = o.as_slice() else { break };
        if !CALLEE_SAVED.contains(r) || slot.contains_key(r) {
            break;
        }
        let off = int(off).map_err(|e| format!("line {}: {e}", j + 1))?;
        if off < 0 || off % 4 != 0 || off + 4 > frame {
            return Ok(None);
        }
        slot.insert(r, off);
        saves.push(j);
        i = j;
    }
    if saves.is_empty() {
        return Ok(None);
    }
    let lowest = *slot.values().min().unwrap_or(&0);
    let slots: Vec<i64> = slot.values().copied().collect();
    // Every `ret` with its epilogue; every other use of a1 inside the frame.
    let mut epilogues = vec![];
    let mut in_epilogue = vec![false; end];
    for r in body.clone() {
        let Line::Insn("ret" | "ret.n", _) = &parsed[r] else { continue };
        let mut k = r;
        let prev = |k: usize| (start..k).rev().find(|&j| parsed[j] != Line::Nothing);
        let Some(a) = prev(k) else { return Ok(None) };
        if !matches!(&parsed[a], Line::Insn("addi", o) if o.len() == 3 && o[0] == "a1" && o[1] == "a1" && int(o[2]).ok() == Some(frame)) {
            return Ok(None);
        }
        k = a;
        let mut loads = vec![];
        let mut seen: Vec<&str> = vec![];
        while loads.len() < slot.len() {
            let Some(l) = prev(k) else { return Ok(None) };
            let Line::Insn("l32i" | "l32i.n", o) = &parsed[l] else { return Ok(None) };
            let [reg, "a1", off] = o.as_slice() else { return Ok(None) };
            if slot.get(reg).copied() != int(off).ok() || seen.contains(reg) {
                return Ok(None);
            }
            seen.push(reg);
            loads.push(l);
            k = l;
        }
        for &l in loads.iter().chain([&a, &r]) {
            in_epilogue[l] = true;
        }
        epilogues.push((loads, a, r));
    }
    if epilogues.is_empty() {
        // No way back: `peephole` already dropped its saves.
        return Ok(None);
    }
    // Whether the frame may shrink to below the save slots.
    let mut below = true;
    for i in body {
        if i == adjust || saves.contains(&i) || in_epilogue[i] {
            continue;
        }
        let Line::Insn(m, o) = &parsed[i] else { continue };
        // Jumps and branches stay in the body (a `jx` only through a table of its own
        // labels); calls come back.
        let inside = match *m {
            "jx" => table_jump(parsed, i, &own),
            _ => o.last().is_some_and(|l| own.contains(l)),
        };
        if transfers_control(m) && !m.starts_with("call") && !inside {
            return Ok(None);
        }
        if !o.contains(&"a1") {
            continue;
        }
        let (off, w) = match (width(m), *m, o.as_slice()) {
            (Some(w), _, [r, "a1", off]) if *r != "a1" => (int(off).map_err(|e| format!("line {}: {e}", i + 1))?, w),
            // An address in the frame: the object lies between it and the next slot up.
            (None, "addi" | "addi.n", [d, "a1", off]) if *d != "a1" => (int(off).map_err(|e| format!("line {}: {e}", i + 1))?, 1),
            (None, "or", [d, "a1", "a1"]) | (None, "mov" | "mov.n", [d, "a1"]) if *d != "a1" => (0, 1),
            _ => return Ok(None),
        };
        if off < 0 || off + w > frame {
            return Ok(None);
        }
        if slots.iter().any(|&s| off < s + 4 && s < off + w) {
            return Ok(None);
        }
        if off + w > lowest {
            below = false;
        }
    }
    // 16-byte multiples keep a1 aligned as the ABI wants; lowest + 4 <= frame, a multiple.
    let kept = if below { (lowest + 15) / 16 * 16 } else { frame };
    // The loads of an epilogue are as long as the saves.
    let saved: i64 = slots.iter().map(|&off| access_len(off)).sum();
    let adjusts = if kept == 0 { 3 } else { 0 };
    let gain = saved - 5 + adjusts + epilogues.len() as i64 * (saved + 2 - 3 + adjusts);
    Ok(Some(Plan { adjust, saves, epilogues, frame: kept, gain }))
}

/// The rewritten assembly and the number of functions that use the shared routines.
pub fn share(asm: &str) -> Result<(String, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    if parsed.iter().any(|p| matches!(p, Line::Label(l) if *l == SAVE || *l == RESTORE)) {
        return Err(format!("{SAVE} or {RESTORE} already defined"));
    }
    let mut plans = vec![];
    for (start, end) in function_ranges(&parsed) {
        if let Some(plan) = plan(&parsed, start, end)? {
            if plan.gain > 0 {
                plans.push(plan);
            }
        }
    }
    if plans.iter().map(|p| p.gain).sum::<i64>() <= ROUTINES_COST {
        return Ok((asm.to_string(), 0));
    }
    // Frames kept by two or more epilogues get their own restore entry.
    let mut uses: HashMap<i64, usize> = HashMap::new();
    for p in plans.iter().filter(|p| p.frame > 0) {
        *uses.entry(p.frame).or_default() += p.epilogues.len();
    }
    let mut frames: Vec<i64> = uses.iter().filter(|(_, &n)| n >= 2).map(|(&f, _)| f).collect();
    frames.sort_unstable_by(|a, b| b.cmp(a));
    let mut edit: HashMap<usize, Vec<String>> = HashMap::new();
    for p in &plans {
        let mut prologue = vec!["\tmov.n\ta8, a0".to_string(), format!("\tcall0\t{SAVE}")];
        if p.frame > 0 {
            prologue.push(format!("\taddi\ta1, a1, -{}", p.frame));
        }
        edit.insert(p.adjust, prologue);
        for &s in &p.saves {
            edit.insert(s, vec![]);
        }
        for (loads, a, r) in &p.epilogues {
            for &l in loads {
                edit.insert(l, vec![]);
            }
            if frames.contains(&p.frame) {
                edit.insert(*a, vec![]);
                edit.insert(*r, vec![format!("\tj\t{}", restore_name(p.frame))]);
            } else {
                edit.insert(*a, if p.frame > 0 { vec![format!("\taddi\ta1, a1, {}", p.frame)] } else { vec![] });
                edit.insert(*r, vec![format!("\tj\t{RESTORE}")]);
            }
        }
    }
    let mut text = String::with_capacity(asm.len() + 512);
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
    text.push_str(&routines(&frames));
    Ok((text, plans.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LLVM's shapes: `f` saves five registers above its locals and returns through a
    /// shared epilogue; `g` saves two and has no other stack use; `h` saves a0 only and
    /// has a local; `k` saves five and has no locals.
    const SAMPLE: &str = "\
	.section	.text.f,\"ax\",@progbits
	.p2align	2
	.type	f,@function
f:
	addi	a1, a1, -48
	s32i	a0, a1, 40
	s32i	a12, a1, 36
	s32i	a13, a1, 32
	s32i	a14, a1, 28
	s32i	a15, a1, 24
	or	a12, a2, a2
	movi	a13, 7
	movi	a14, 9
	movi	a15, 11
	s32i	a12, a1, 20
	addi	a2, a1, 4
	call0	g
	beqz	a2, .LBB0_2
	l32i	a2, a1, 20
	add	a2, a2, a13
.LBB0_2:
	add	a2, a2, a15
	l32i	a15, a1, 24
	l32i	a14, a1, 28
	l32i	a13, a1, 32
	l32i	a12, a1, 36
	l32i	a0, a1, 40
	addi	a1, a1, 48
	ret
.Lfunc_end0:
	.size	f, .Lfunc_end0-f
	.section	.text.g,\"ax\",@progbits
	.p2align	2
	.type	g,@function
g:
	addi	a1, a1, -16
	s32i	a0, a1, 4
	s32i	a12, a1, 0
	or	a12, a2, a2
	call0	h
	add	a2, a2, a12
	l32i	a12, a1, 0
	l32i	a0, a1, 4
	addi	a1, a1, 16
	ret
.Lfunc_end1:
	.size	g, .Lfunc_end1-g
	.type	h,@function
h:
	addi	a1, a1, -16
	s32i	a0, a1, 0
	s32i	a3, a1, 4
	movi	a2, 3
	l32i	a0, a1, 0
	addi	a1, a1, 16
	ret
.Lfunc_end2:
	.size	h, .Lfunc_end2-h
	.type	k,@function
k:
	addi	a1, a1, -32
	s32i	a0, a1, 16
	s32i	a12, a1, 12
	s32i	a13, a1, 8
	s32i	a14, a1, 4
	s32i	a15, a1, 0
	movi	a12, 1
	movi	a13, 2
	movi	a14, 3
	movi	a15, 4
	call0	g
	l32i	a15, a1, 0
	l32i	a14, a1, 4
	l32i	a13, a1, 8
	l32i	a12, a1, 12
	l32i	a0, a1, 16
	addi	a1, a1, 32
	ret
.Lfunc_end3:
	.size	k, .Lfunc_end3-k
";

    /// Runs the program from `entry` until it returns, on a machine that knows what the
    /// samples and the routines use; returns the registers and memory at the end. a0 holds
    /// line numbers (a `call0` leaves the next line's), the caller's return is `u32::MAX`.
    fn run(asm: &str, entry: &str, a2: u32) -> (HashMap<String, u32>, HashMap<u32, u32>) {
        let parsed: Vec<Line> = asm.lines().map(classify).collect();
        let at = |l: &str| parsed.iter().position(|p| *p == Line::Label(l)).unwrap_or_else(|| panic!("{l}"));
        let mut reg: HashMap<String, u32> = (0..16).map(|r| (format!("a{r}"), 0x1000 + r)).collect();
        reg.insert("a0".into(), u32::MAX);
        reg.insert("a1".into(), 0x3FFF_F000);
        reg.insert("a2".into(), a2);
        let mut mem: HashMap<u32, u32> = HashMap::new();
        let mut pc = at(entry);
        for _ in 0..10_000 {
            if pc as u32 == u32::MAX {
                return (reg, mem);
            }
            let Line::Insn(m, o) = &parsed[pc] else {
                pc += 1;
                continue;
            };
            let r = |reg: &HashMap<String, u32>, k: usize| reg[o[k]];
            let imm = |k: usize| int(o[k]).unwrap() as i32 as u32;
            pc += 1;
            match *m {
                "addi" | "addi.n" => {
                    let v = r(&reg, 1).wrapping_add(imm(2));
                    reg.insert(o[0].into(), v);
                }
                "add" | "add.n" => {
                    let v = r(&reg, 1).wrapping_add(r(&reg, 2));
                    reg.insert(o[0].into(), v);
                }
                "or" => {
                    let v = r(&reg, 1) | r(&reg, 2);
                    reg.insert(o[0].into(), v);
                }
                "mov.n" => {
                    let v = r(&reg, 1);
                    reg.insert(o[0].into(), v);
                }
                "movi" | "movi.n" => {
                    reg.insert(o[0].into(), imm(1));
                }
                "s32i" | "s32i.n" => {
                    let a = r(&reg, 1).wrapping_add(imm(2));
                    assert!(a % 4 == 0 && a < 0x3FFF_F000, "a store outside the stack below the entry's a1: {a:#x}");
                    mem.insert(a, r(&reg, 0));
                }
                "l32i" | "l32i.n" => {
                    let a = r(&reg, 1).wrapping_add(imm(2));
                    reg.insert(o[0].into(), *mem.get(&a).unwrap_or_else(|| panic!("load of unwritten {a:#x}")));
                }
                "beqz" => {
                    if r(&reg, 0) == 0 {
                        pc = at(o[1]);
                    }
                }
                "j" => pc = at(o[0]),
                "call0" => {
                    reg.insert("a0".into(), pc as u32);
                    pc = at(o[0]);
                }
                "ret" | "ret.n" => pc = reg["a0"] as usize,
                _ => panic!("{m}"),
            }
        }
        panic!("no return");
    }

    /// What the caller can see after a call: a1, a12..a15, the result a2.
    fn visible(regs: &HashMap<String, u32>) -> Vec<u32> {
        ["a1", "a2", "a12", "a13", "a14", "a15"].iter().map(|r| regs[*r]).collect()
    }

    #[test]
    fn saves_and_restores_go_through_the_routines() {
        let (text, n) = share(SAMPLE).unwrap();
        assert_eq!(n, 3, "{text}");
        // f keeps the 24 bytes below its save slots (rounded to 32); g keeps no frame.
        assert!(
            text.contains("f:\n\tmov.n\ta8, a0\n\tcall0\teboot_rs_save\n\taddi\ta1, a1, -32\n\tor\ta12, a2, a2\n"),
            "{text}"
        );
        assert!(text.contains("\tadd\ta2, a2, a15\n\taddi\ta1, a1, 32\n\tj\teboot_rs_restore\n.Lfunc_end0:"), "{text}");
        assert!(text.contains("g:\n\tmov.n\ta8, a0\n\tcall0\teboot_rs_save\n\tor\ta12, a2, a2\n"), "{text}");
        assert!(text.contains("\tadd\ta2, a2, a12\n\tj\teboot_rs_restore\n.Lfunc_end1:"), "{text}");
        // h saves a0 alone and keeps a frame: the routines would not pay there.
        assert!(text.contains("h:\n\taddi\ta1, a1, -16\n\ts32i\ta0, a1, 0\n"), "{text}");
        assert_eq!(text.matches(".type\teboot_rs_save,@function").count(), 1);
        assert_eq!(text.matches(".type\teboot_rs_restore,@function").count(), 1);
        assert!(text.contains("k:\n\tmov.n\ta8, a0\n\tcall0\teboot_rs_save\n\tmovi\ta12, 1\n"), "{text}");
        // Same results, same registers kept, a1 back where it was, on both paths.
        for (f, a2) in [("f", 0), ("f", 1), ("f", 77), ("g", 3), ("k", 0)] {
            let (before, after) = (run(SAMPLE, f, a2), run(&text, f, a2));
            assert_eq!(visible(&before.0), visible(&after.0), "{f}({a2})");
            assert_eq!(visible(&after.0)[0], 0x3FFF_F000);
        }
    }

    #[test]
    fn frames_kept_twice_get_their_own_restore_entry() {
        let f = &SAMPLE[..SAMPLE.find("\t.section\t.text.g").unwrap()];
        let f2 = f.replace("\tf", "\tf2").replace("f:", "f2:").replace("-f\n", "-f2\n").replace("0_2", "9_2").replace("end0", "end9");
        let asm = format!("{SAMPLE}{f2}");
        let (text, n) = share(&asm).unwrap();
        assert_eq!(n, 4, "{text}");
        assert_eq!(text.matches("\tj\teboot_rs_restore_32\n").count(), 2, "{text}");
        assert!(text.contains("\tadd\ta2, a2, a15\n\tj\teboot_rs_restore_32\n.Lfunc_end0:"), "{text}");
        assert!(text.contains("eboot_rs_restore_32:\n\taddi\ta1, a1, 32\n\t.size\teboot_rs_restore_32, .-eboot_rs_restore_32\n\t.type\teboot_rs_restore,@function\neboot_rs_restore:\n"), "{text}");
        for (f, a2) in [("f", 0), ("f2", 1), ("g", 3), ("k", 0)] {
            let (before, after) = (run(&asm, f, a2), run(&text, f, a2));
            assert_eq!(visible(&before.0), visible(&after.0), "{f}({a2})");
        }
    }

    #[test]
    fn a0_alone_without_a_frame_pays() {
        // The prologue is as long (mov.n + call0 for addi + s32i.n), the epilogue 4 bytes
        // shorter (j for l32i.n + addi + ret.n).
        let asm = SAMPLE.replace("\ts32i\ta3, a1, 4\n", "\tmov.n\ta3, a2\n");
        let (text, n) = share(&asm).unwrap();
        assert_eq!(n, 4, "{text}");
        assert!(text.contains("h:\n\tmov.n\ta8, a0\n\tcall0\teboot_rs_save\n\tmov.n\ta3, a2\n\tmovi\ta2, 3\n\tj\teboot_rs_restore\n"), "{text}");
    }

    #[test]
    fn the_routines_come_only_when_they_pay() {
        // f and g gain 14 + 8 bytes, less than the routines cost.
        let f_g = &SAMPLE[..SAMPLE.find("\t.type\tk,").unwrap()];
        let (text, n) = share(f_g).unwrap();
        assert_eq!((n, text.as_str()), (0, f_g));
    }

    #[test]
    fn slots_above_the_saves_keep_the_frame() {
        // A local above the save slots: the frame stays 48 under the save area.
        let asm = SAMPLE.replace("\ts32i\ta12, a1, 20\n", "\ts32i\ta12, a1, 44\n").replace("\tl32i\ta2, a1, 20\n", "\tl32i\ta2, a1, 44\n");
        let (text, n) = share(&asm).unwrap();
        assert_eq!(n, 3);
        assert!(text.contains("\tcall0\teboot_rs_save\n\taddi\ta1, a1, -48\n\tor\ta12, a2, a2\n"), "{text}");
        for a2 in [0, 5] {
            assert_eq!(visible(&run(&asm, "f", a2).0), visible(&run(&text, "f", a2).0));
        }
    }

    #[test]
    fn shapes_it_does_not_know_stay() {
        for (from, to) in [
            // A label inside the epilogue: another path may enter between the loads.
            ("\tl32i\ta13, a1, 32\n\tl32i\ta12, a1, 36\n", "\tl32i\ta13, a1, 32\n.LBB0_9:\n\tl32i\ta12, a1, 36\n"),
            // A save slot read elsewhere.
            ("\tl32i\ta2, a1, 20\n", "\tl32i\ta2, a1, 24\n"),
            // The caller's frame (a stack argument) at or past the frame's end.
            ("\tl32i\ta2, a1, 20\n", "\tl32i\ta2, a1, 48\n"),
            ("\taddi\ta2, a1, 4\n", "\taddi\ta2, a1, 48\n"),
            // a1 used other than as a base or an address.
            ("\taddi\ta2, a1, 4\n", "\tadd\ta2, a1, a2\n"),
            // A way out that is not `ret`.
            ("\tbeqz\ta2, .LBB0_2\n", "\tbeqz\ta2, elsewhere\n"),
            ("\tbeqz\ta2, .LBB0_2\n", "\tjx\ta2\n"),
            // An epilogue that does not restore what was saved, or from another slot.
            ("\tl32i\ta14, a1, 28\n", "\tl32i\ta14, a1, 20\n"),
            ("\tl32i\ta14, a1, 28\n", ""),
            // Another adjustment before the return.
            ("\taddi\ta1, a1, 48\n\tret\n", "\taddi\ta1, a1, 32\n\tret\n"),
        ] {
            assert!(SAMPLE.contains(from), "{from}");
            // (g and k alone do not pay for the routines either.)
            let (text, _) = share(&SAMPLE.replacen(from, to, 1)).unwrap();
            assert!(text.contains("f:\n\taddi\ta1, a1, -48\n\ts32i\ta0, a1, 40\n"), "{from:?} -> {to:?}: {text}");
        }
        // A function that never returns has nothing to restore (`peephole` drops its saves).
        let asm = SAMPLE.replace("\tl32i\ta0, a1, 40\n\taddi\ta1, a1, 48\n\tret\n", "\tj\t.LBB0_2\n");
        assert!(share(&asm).unwrap().0.contains("f:\n\taddi\ta1, a1, -48\n\ts32i\ta0, a1, 40\n"));
        // Routines of the same names already there: not something to guess about.
        assert!(share(&format!("{SAMPLE}eboot_rs_save:\n")).is_err());
    }

    #[test]
    fn a_switch_through_its_own_table_is_fine() {
        let table = "\tl32r\ta11, .LCPI0_8\n\taddx4\ta11, a2, a11\n\tl32i\ta11, a11, 0\n\tjx\ta11\n";
        let asm = format!(
            "\t.literal .LCPI0_8, .LJTI0_0\n{}\t.section\t.rodata.f\n.LJTI0_0:\n\t.long\t.LBB0_2\n\t.long\t.LBB0_2\n",
            SAMPLE.replace("\tbeqz\ta2, .LBB0_2\n", table)
        );
        assert_eq!(share(&asm).unwrap().1, 3);
        // A table entry outside the function, or another shape of jump: left alone.
        for asm in [asm.replacen("\t.long\t.LBB0_2\n", "\t.long\t.LBB1_7\n", 1), asm.replace("\tl32i\ta11, a11, 0\n", "\tl32i\ta11, a11, 4\n")] {
            assert!(share(&asm).unwrap().0.contains("f:\n\taddi\ta1, a1, -48\n\ts32i\ta0, a1, 40\n"));
        }
    }
}
