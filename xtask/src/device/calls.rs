//! Direct calls in the compiler's assembly.
//!
//! LLVM's Xtensa backend calls every function through its literal pool:
//! `l32r aN, .LCPI; callx0 aN` (3 + 3 bytes and a 4-byte literal). A function in our own
//! 4 KiB IRAM window is in reach of `call0 sym` (3 bytes, PC-relative, +-512 KiB), so
//! such a pair becomes one `call0` and the literal goes when nothing else loads it.
//! ROM functions (0x4000xxxx) are out of `call0` range and keep the long form.
//!
//! Only one exact shape is rewritten, and only when it is provably equivalent:
//! `callx0 aN` whose register was last written, in the same basic block, by
//! `l32r aN, L` where literal `L` holds the name of a function of ours, with no
//! instruction in between mentioning `aN`, and `aN` clobbered by the call (a0, a2..a11 in
//! the CALL0 ABI) so that nothing after the call can read the address. Every other call
//! is left as it is. Input the rewriter does not understand (a malformed `.literal`, an
//! `l32r` of an unknown literal, a callee not aligned for `call0`) is an error.
use std::collections::{HashMap, HashSet};

/// The rewritten assembly and what was done.
pub struct Rewritten {
    pub text: String,
    /// `callx0`s turned into `call0`s.
    pub direct: usize,
    /// `callx0`s left as they were (ROM calls, calls through tables or spilled registers).
    pub kept: usize,
}

/// A line of assembly, as far as the rewriter needs to know.
#[derive(Debug, PartialEq)]
pub(super) enum Line<'a> {
    /// Blank or comment.
    Nothing,
    Label(&'a str),
    Directive(&'a str, &'a str),
    Insn(&'a str, Vec<&'a str>),
}

pub(super) fn classify(line: &str) -> Line<'_> {
    let t = line.trim();
    // LLVM writes comments with '#'; the lx106 GNU as does too.
    if t.is_empty() || t.starts_with('#') {
        return Line::Nothing;
    }
    if let Some(name) = t.strip_suffix(':') {
        if !name.contains(char::is_whitespace) {
            return Line::Label(name);
        }
    }
    let (head, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    if head.starts_with('.') {
        return Line::Directive(head, rest.trim());
    }
    let ops = if rest.trim().is_empty() { vec![] } else { rest.split(',').map(str::trim).collect() };
    Line::Insn(head, ops)
}

/// Registers a `callx0` clobbers in the CALL0 ABI: a0 gets the return address, a2..a11
/// are caller-saved. An address left in one of them is dead after the call.
fn clobbered_by_call(reg: &str) -> bool {
    matches!(reg, "a0" | "a2" | "a3" | "a4" | "a5" | "a6" | "a7" | "a8" | "a9" | "a10" | "a11")
}

/// Branches, jumps, calls, returns: the end of a straight-line stretch.
pub(super) fn transfers_control(mnemonic: &str) -> bool {
    mnemonic.starts_with('b')
        || mnemonic.starts_with('j')
        || mnemonic.starts_with("call")
        || mnemonic.starts_with("ret")
        || mnemonic.starts_with("loop")
}

fn is_symbol(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$')
}

/// `.literal LABEL, VALUE` -> (LABEL, VALUE).
pub(super) fn literal(args: &str) -> Result<(&str, &str), String> {
    let (label, value) = args.split_once(',').ok_or_else(|| format!("`.literal {args}`: no value"))?;
    let (label, value) = (label.trim(), value.trim());
    if !is_symbol(label) || value.is_empty() || value.contains(',') {
        return Err(format!("`.literal {args}`: not `.literal LABEL, VALUE`"));
    }
    Ok((label, value))
}

/// Functions defined in `asm` (`.type NAME,@function`), with whether their entry is
/// aligned to 4 bytes (a `.p2align` of 2 or more since the last section switch), as
/// `call0` needs.
pub fn functions(asm: &str) -> HashMap<String, bool> {
    let mut typed = HashSet::new();
    for line in asm.lines() {
        if let Line::Directive(".type", args) = classify(line) {
            if let Some((name, kind)) = args.split_once(',') {
                if kind.trim() == "@function" {
                    typed.insert(name.trim().to_string());
                }
            }
        }
    }
    let mut found = HashMap::new();
    let mut aligned = false;
    for line in asm.lines() {
        match classify(line) {
            Line::Directive(".section" | ".text", _) => aligned = false,
            Line::Directive(".p2align", n) => {
                let n = n.split(',').next().unwrap_or("").trim();
                aligned = n.parse::<u32>().is_ok_and(|n| n >= 2);
            }
            // Any other alignment directive or data may move the next label off 4 bytes.
            Line::Directive(d, _) if d.contains("align") => aligned = false,
            Line::Insn(..) => aligned = false,
            Line::Label(name) if typed.contains(name) => {
                found.insert(name.to_string(), aligned);
            }
            _ => {}
        }
    }
    found
}

/// Rewrites the calls to `local` functions (name -> entry aligned to 4) in `asm`.
pub fn direct_calls(asm: &str, local: &HashMap<String, bool>) -> Result<Rewritten, String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();

    let mut literals: HashMap<&str, &str> = HashMap::new();
    for p in &parsed {
        if let Line::Directive(".literal", args) = p {
            let (label, value) = literal(args)?;
            if literals.insert(label, value).is_some() {
                return Err(format!("literal {label} defined twice"));
            }
        }
    }

    let mut replace: HashMap<usize, String> = HashMap::new();
    let mut delete: HashSet<usize> = HashSet::new();
    let mut kept = 0;
    for (i, p) in parsed.iter().enumerate() {
        let Line::Insn("callx0", ops) = p else { continue };
        let [reg] = ops.as_slice() else {
            return Err(format!("line {}: `{}`: callx0 with other than one operand", i + 1, lines[i]));
        };
        let mut target = None;
        if clobbered_by_call(reg) {
            // The last instruction before the call, in this straight-line stretch, that
            // mentions the register: the one that put the address there.
            for j in (0..i).rev() {
                match &parsed[j] {
                    Line::Nothing => continue,
                    Line::Label(_) | Line::Directive(..) => break,
                    Line::Insn(m, _) if transfers_control(m) => break,
                    Line::Insn(m, o) if o.contains(reg) => {
                        if *m == "l32r" && o.len() == 2 && o[0] == *reg {
                            let value = literals.get(o[1]).ok_or_else(|| {
                                format!("line {}: `{}`: no such literal", j + 1, lines[j])
                            })?;
                            if let Some(&aligned) = local.get(*value) {
                                if !aligned {
                                    return Err(format!("{value}: not 4-byte aligned, call0 cannot reach it"));
                                }
                                target = Some((j, *value));
                            }
                        }
                        break;
                    }
                    Line::Insn(..) => continue,
                }
            }
        }
        match target {
            Some((j, name)) => {
                replace.insert(i, format!("\tcall0\t{name}"));
                delete.insert(j);
            }
            None => kept += 1,
        }
    }

    // Literals that only the deleted loads used go too.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        if let Line::Insn(_, ops) = p {
            for op in ops {
                if literals.contains_key(op) && !delete.contains(&i) {
                    *uses.entry(op).or_default() += 1;
                }
            }
        }
    }
    let mut text = String::with_capacity(asm.len());
    for (i, line) in lines.iter().enumerate() {
        if delete.contains(&i) {
            continue;
        }
        if let Line::Directive(".literal", args) = &parsed[i] {
            let (label, _) = literal(args)?;
            if !uses.contains_key(label) {
                continue;
            }
        }
        text.push_str(replace.get(&i).map_or(line, String::as_str));
        text.push('\n');
    }
    Ok(Rewritten { text, direct: delete.len(), kept })
}

/// Every function of the text (`.type name,@function`) as the line range from its label to
/// its `.size` directive: what the per-function passes walk.
pub fn function_ranges(parsed: &[Line]) -> Vec<(usize, usize)> {
    let mut found = vec![];
    for (i, p) in parsed.iter().enumerate() {
        let Line::Directive(".type", args) = p else { continue };
        let Some((name, "@function")) = args.split_once(',').map(|(n, k)| (n.trim(), k.trim())) else { continue };
        let Some(start) = (i..parsed.len()).find(|&j| parsed[j] == Line::Label(name)) else { continue };
        let Some(end) = (start..parsed.len())
            .find(|&j| matches!(parsed[j], Line::Directive(".size", a) if a.split(',').next().map(str::trim) == Some(name)))
        else {
            continue;
        };
        found.push((start, end));
    }
    found
}

/// The text with line edits applied: a line mapped to `None` is dropped, to `Some` replaced.
pub fn rewrite(lines: &[&str], edit: &std::collections::HashMap<usize, Option<String>>) -> String {
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed-down LLVM output: `f` calls `g` (ours), `SPIRead` (ROM), `g` again through
    /// a register it also reads, and `g` through a callee-saved register.
    const SAMPLE: &str = "\
	.literal_position
	.literal .LCPI0_0, g
	.literal .LCPI0_1, SPIRead
	.literal .LCPI0_2, 4096
	.literal .LCPI0_3, g
	.section	.text.f,\"ax\",@progbits
	.p2align	2
	.type	f,@function
f:
	l32r	a8, .LCPI0_0
	or	a2, a3, a3
	callx0	a8
	l32r	a8, .LCPI0_1
	l32r	a4, .LCPI0_2
	callx0	a8
	l32r	a9, .LCPI0_3
	or	a2, a9, a9
	callx0	a9
	l32r	a12, .LCPI0_3
	callx0	a12
	ret
.Lfunc_end0:
	.size	f, .Lfunc_end0-f
	.section	.text.g,\"ax\",@progbits
	.p2align	2
	.type	g,@function
g:
	ret
";

    fn rewrite(asm: &str) -> Result<Rewritten, String> {
        direct_calls(asm, &functions(asm))
    }

    #[test]
    fn local_call_becomes_call0_and_its_literal_goes() {
        let r = rewrite(SAMPLE).unwrap();
        assert_eq!(r.direct, 1);
        assert_eq!(r.kept, 3);
        assert!(r.text.contains("\tor\ta2, a3, a3\n\tcall0\tg\n\tl32r\ta8, .LCPI0_1\n"));
        assert!(!r.text.contains(".LCPI0_0"), "the literal only the call used is dropped");
        // Still used: the ROM call, the number, and g's address read by `or`.
        for kept in [".literal .LCPI0_1, SPIRead", ".literal .LCPI0_2, 4096", ".literal .LCPI0_3, g"] {
            assert!(r.text.contains(kept), "{kept}");
        }
        assert_eq!(r.text.matches("callx0").count(), 3);
        assert_eq!(r.text.lines().count(), SAMPLE.lines().count() - 2);
    }

    #[test]
    fn a_label_between_load_and_call_keeps_the_call() {
        // Another path may reach the call with another address in a8.
        let asm = SAMPLE.replace("\tor\ta2, a3, a3\n", ".LBB0_1:\n");
        let r = rewrite(&asm).unwrap();
        assert_eq!(r.direct, 0);
        assert!(r.text.contains("\tl32r\ta8, .LCPI0_0\n.LBB0_1:\n\tcallx0\ta8\n"));
    }

    #[test]
    fn a_branch_between_load_and_call_keeps_the_call() {
        let asm = SAMPLE.replace("\tor\ta2, a3, a3\n", "\tbeqz\ta2, .LBB0_9\n");
        assert_eq!(rewrite(&asm).unwrap().direct, 0);
    }

    #[test]
    fn misaligned_callee_is_an_error() {
        let asm = SAMPLE.replace("\t.p2align\t2\n\t.type\tg", "\t.p2align\t1\n\t.type\tg");
        assert!(functions(&asm).get("g") == Some(&false));
        let e = rewrite(&asm).err().unwrap();
        assert!(e.contains("not 4-byte aligned"), "{e}");
    }

    #[test]
    fn unknown_literal_and_malformed_literal_are_errors() {
        let asm = SAMPLE.replace("l32r\ta8, .LCPI0_0", "l32r\ta8, .LCPI9_9");
        assert!(rewrite(&asm).err().unwrap().contains("no such literal"));
        let asm = SAMPLE.replace(".literal .LCPI0_2, 4096", ".literal .LCPI0_2");
        assert!(rewrite(&asm).is_err());
    }

    #[test]
    fn functions_of_entry_assembly_count_as_local() {
        let entry = "\t.section .text.jump_to_app, \"ax\", @progbits\n\t.literal_position\n\
                     \t.literal .Lapp_stack, 0x3FFFFFF0\n\t.global jump_to_app\n\
                     \t.type jump_to_app, @function\n\t.p2align 2\njump_to_app:\n\tjx a2\n";
        assert_eq!(functions(entry).get("jump_to_app"), Some(&true));
    }
}
