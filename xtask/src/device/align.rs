//! Entry alignment only where `call0` needs it, on the final assembly.
//!
//! LLVM aligns every function entry to 4 bytes (`.p2align 2`), which costs up to 3 bytes
//! of padding before it. Of our calls only `call0` needs it (its target is a word address);
//! `callx0` jumps to any byte. A function whose address is only taken (a `.literal` of its
//! name, called through a register: closures passed as function pointers) and that no
//! instruction names (no `call0`, no `j`) needs no alignment, so its `.p2align` goes and
//! its section's alignment becomes 1. A function with a `loop` instruction keeps it (the
//! assembler aligns loop bodies relative to the section). The entry point, which the ROM
//! enters, is named by no literal and so keeps its alignment too.
use std::collections::HashSet;

use super::calls::{classify, literal, Line};

/// The assembly without the alignment of address-only functions, and how many lost it.
/// `other` is the rest of the program's assembly (entry.S), whose calls count too.
pub fn unalign(asm: &str, other: &str) -> Result<(String, usize), String> {
    let lines: Vec<&str> = asm.lines().collect();
    let parsed: Vec<Line> = lines.iter().map(|l| classify(l)).collect();
    let mut taken = HashSet::new();
    let mut named = HashSet::new();
    for p in parsed.iter().chain(other.lines().map(classify).collect::<Vec<_>>().iter()) {
        match p {
            Line::Directive(".literal", args) => {
                taken.insert(literal(args)?.1.to_string());
            }
            Line::Insn(_, ops) => named.extend(ops.iter().map(|o| o.to_string())),
            // Data that holds an address (`.long f`, a vtable) might be anything's.
            Line::Directive(".long" | ".word" | ".4byte", args) => named.extend(args.split(',').map(|a| a.trim().to_string())),
            _ => {}
        }
    }
    let mut drop = HashSet::new();
    for (i, p) in parsed.iter().enumerate() {
        let Line::Directive(".type", args) = p else { continue };
        let Some((name, "@function")) = args.split_once(',').map(|(n, k)| (n.trim(), k.trim())) else { continue };
        if !taken.contains(name) || named.contains(name) {
            continue;
        }
        // `.p2align` right before the `.type`, the label right after.
        let Some(a) = (0..i).rev().find(|&j| parsed[j] != Line::Nothing) else { continue };
        if !matches!(parsed[a], Line::Directive(".p2align", _)) || parsed.get(i + 1) != Some(&Line::Label(name)) {
            return Err(format!("line {}: function `{name}` is not `.p2align; .type; {name}:`", i + 1));
        }
        let end = (i..parsed.len())
            .find(|&j| matches!(parsed[j], Line::Directive(".size", a) if a.split(',').next().map(str::trim) == Some(name)))
            .ok_or_else(|| format!("line {}: function `{name}` has no .size", i + 1))?;
        if parsed[i..end].iter().any(|p| matches!(p, Line::Insn(m, _) if m.starts_with("loop"))) {
            continue;
        }
        drop.insert(a);
    }
    let mut text = String::with_capacity(asm.len());
    for (i, line) in lines.iter().enumerate() {
        if !drop.contains(&i) {
            text.push_str(line);
            text.push('\n');
        }
    }
    Ok((text, drop.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
	.literal .LCPI0_0, closure
	.literal .LCPI0_1, called
	.section	.text.f,\"ax\",@progbits
	.p2align	2
	.type	f,@function
f:
	l32r	a8, .LCPI0_0
	callx0	a8
	call0	called
	ret
	.size	f, 12
	.section	.text.closure,\"ax\",@progbits
	.p2align	2
	.type	closure,@function
closure:
	movi	a2, 1
	ret
	.size	closure, 5
	.section	.text.called,\"ax\",@progbits
	.p2align	2
	.type	called,@function
called:
	ret
	.size	called, 3
";

    #[test]
    fn only_address_only_functions_lose_alignment() {
        let (text, n) = unalign(SAMPLE, "").unwrap();
        assert_eq!(n, 1);
        assert!(text.contains("@progbits\n\t.type\tclosure,@function\n"), "{text}");
        assert!(text.contains("\t.p2align\t2\n\t.type\tcalled,@function\n"), "called by call0 too");
        assert!(text.contains("\t.p2align\t2\n\t.type\tf,@function\n"), "no literal: the entry");
    }

    #[test]
    fn calls_elsewhere_loops_and_data_keep_it() {
        assert_eq!(unalign(SAMPLE, "\tcall0\tclosure\n").unwrap().1, 0);
        assert_eq!(unalign(SAMPLE, "\t.long\tclosure\n").unwrap().1, 0);
        assert_eq!(unalign(&SAMPLE.replace("\tmovi\ta2, 1\n", "\tloop\ta3, .L1\n.L1:\n"), "").unwrap().1, 0);
        // A shape it does not know is an error, not a guess.
        assert!(unalign(&SAMPLE.replace("\t.p2align\t2\n\t.type\tclosure", "\t.type\tclosure"), "").is_err());
    }
}
