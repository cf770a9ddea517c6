//! The C preprocessor's conditionals in a script: `#if`, `#ifdef`,
//! `#ifndef`, `#elif`, `#else`, `#endif` (and `#undef`) are evaluated before
//! parsing, against the script's `#define`s above them and the macros the
//! caller predefines (`BPFTRACE_HAVE_BTF` where the kernel has BTF). The
//! lines of branches not taken, and the conditional lines themselves, become
//! blanks of the same length, so every span still points into the text as
//! written.

use crate::diagnostic::Diagnostic;
use crate::span::Span;
use std::collections::HashMap;

/// One `#if`-group being read.
struct Group {
    /// The `#if` line (for "never closed").
    start: Span,
    /// The enclosing text is kept.
    outer: bool,
    /// A branch of this group was taken already.
    taken: bool,
    /// This branch is taken.
    active: bool,
    seen_else: bool,
}

/// `text` with the branches not taken blanked out. `defined` are the
/// predefined macros and their values.
pub fn preprocess(text: &str, defined: &HashMap<String, String>) -> Result<String, Vec<Diagnostic>> {
    if !text.lines().any(|l| conditional(l.trim_start()).is_some()) {
        return Ok(text.to_string());
    }
    let mut macros = defined.clone();
    let mut groups: Vec<Group> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut diags = Vec::new();
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(first) = lines.next() {
        // A directive continues over lines ending in `\`.
        let mut line = first.to_string();
        while line.trim_end_matches(['\n', '\r']).ends_with('\\') && lines.peek().is_some() {
            line.push_str(lines.next().unwrap_or_default());
        }
        let span = Span::new(offset, offset + line.trim_end().len());
        offset += line.len();
        let keep = groups.last().is_none_or(|g| g.active);
        let trimmed = line.trim_start();
        let Some((name, rest)) = conditional(trimmed).or_else(|| directive(trimmed)) else {
            out.push_str(&if keep { line } else { blank(&line) });
            continue;
        };
        let rest = rest.trim();
        let mut conditional_line = true;
        match name {
            "ifdef" | "ifndef" | "if" => {
                let truth = keep
                    && test(name, rest, &macros).unwrap_or_else(|e| {
                        diags.push(Diagnostic::error(e, span));
                        false
                    });
                groups.push(Group { start: span, outer: keep, taken: truth, active: truth, seen_else: false });
            }
            "elif" | "else" => match groups.last_mut() {
                None => diags.push(Diagnostic::error(format!("`#{}` without `#if`", name), span)),
                Some(g) if g.seen_else => diags.push(
                    Diagnostic::error(format!("`#{}` after `#else`", name), span).with_label(g.start, "in this `#if`"),
                ),
                Some(g) => {
                    let truth = g.outer
                        && !g.taken
                        && (name == "else"
                            || test("if", rest, &macros).unwrap_or_else(|e| {
                                diags.push(Diagnostic::error(e, span));
                                false
                            }));
                    g.active = truth;
                    g.taken |= truth;
                    g.seen_else = name == "else";
                }
            },
            "endif" => {
                if groups.pop().is_none() {
                    diags.push(Diagnostic::error("`#endif` without `#if`", span));
                }
            }
            "define" if keep => {
                let mut words = rest.splitn(2, char::is_whitespace);
                if let Some(n) = words.next().filter(|n| !n.is_empty() && !n.contains('(')) {
                    macros.insert(n.to_string(), words.next().unwrap_or("").trim().to_string());
                }
                conditional_line = false;
            }
            "undef" if keep => {
                macros.remove(rest.split_whitespace().next().unwrap_or(""));
            }
            _ => conditional_line = false,
        }
        // Conditional lines are the preprocessor's own; other directives
        // stay for the parser when their branch is taken.
        out.push_str(&if keep && !conditional_line { line } else { blank(&line) });
    }
    if let Some(g) = groups.first() {
        diags.push(Diagnostic::error("`#if` without `#endif`", g.start).with_help("close it with `#endif`"));
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// `#ifdef X` and the other conditional lines: (name, the rest).
fn conditional(line: &str) -> Option<(&str, &str)> {
    directive(line).filter(|(name, _)| matches!(*name, "if" | "ifdef" | "ifndef" | "elif" | "else" | "endif"))
}

fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
    (end > 0).then(|| (&rest[..end], &rest[end..]))
}

/// Spaces in place of everything but line ends.
fn blank(line: &str) -> String {
    line.chars().map(|c| if c == '\n' || c == '\r' { c } else { ' ' }).collect()
}

fn test(kind: &str, rest: &str, macros: &HashMap<String, String>) -> Result<bool, String> {
    let name =
        || rest.split_whitespace().next().filter(|n| !n.is_empty()).ok_or(format!("`#{}` needs a macro name", kind));
    match kind {
        "ifdef" => Ok(macros.contains_key(name()?)),
        "ifndef" => Ok(!macros.contains_key(name()?)),
        _ => {
            let code = strip_comment(rest);
            if code.trim().is_empty() {
                return Err("`#if` needs a condition".into());
            }
            let mut p = Expr { tokens: tokenize(code)?, pos: 0, macros, depth: 0 };
            let v = p.ternary()?;
            match p.tokens.get(p.pos) {
                None => Ok(v != 0),
                Some(t) => Err(format!("unexpected `{}` in the `#if` condition", t)),
            }
        }
    }
}

fn strip_comment(s: &str) -> &str {
    let end = [s.find("//"), s.find("/*")].into_iter().flatten().min().unwrap_or(s.len());
    &s[..end]
}

fn tokenize(s: &str) -> Result<Vec<String>, String> {
    const OPS: &[&str] = &["<<", ">>", "<=", ">=", "==", "!=", "&&", "||"];
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if OPS.contains(&two.as_str()) {
                out.push(two);
                i += 2;
            } else if "()!~+-*/%<>&^|?:".contains(c) {
                out.push(c.to_string());
                i += 1;
            } else {
                return Err(format!("unexpected `{}` in the `#if` condition", c));
            }
        }
    }
    Ok(out)
}

/// A `#if` condition: C's integer expressions, `defined(X)`, macros by value
/// (an unknown name is 0, as in C).
struct Expr<'a> {
    tokens: Vec<String>,
    pos: usize,
    macros: &'a HashMap<String, String>,
    /// Macro values expanded inside macro values.
    depth: u32,
}

impl Expr<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ternary(&mut self) -> Result<i64, String> {
        let c = self.binary(0)?;
        if !self.eat("?") {
            return Ok(c);
        }
        let a = self.ternary()?;
        if !self.eat(":") {
            return Err("`?` without `:` in the `#if` condition".into());
        }
        let b = self.ternary()?;
        Ok(if c != 0 { a } else { b })
    }

    /// Binary operators by C precedence, lowest first.
    fn binary(&mut self, level: usize) -> Result<i64, String> {
        const LEVELS: &[&[&str]] = &[
            &["||"],
            &["&&"],
            &["|"],
            &["^"],
            &["&"],
            &["==", "!="],
            &["<", "<=", ">", ">="],
            &["<<", ">>"],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut l = self.binary(level + 1)?;
        while let Some(op) = self.peek().filter(|t| LEVELS[level].contains(t)).map(str::to_string) {
            self.pos += 1;
            let r = self.binary(level + 1)?;
            l = match op.as_str() {
                "||" => (l != 0 || r != 0) as i64,
                "&&" => (l != 0 && r != 0) as i64,
                "|" => l | r,
                "^" => l ^ r,
                "&" => l & r,
                "==" => (l == r) as i64,
                "!=" => (l != r) as i64,
                "<" => (l < r) as i64,
                "<=" => (l <= r) as i64,
                ">" => (l > r) as i64,
                ">=" => (l >= r) as i64,
                "<<" => l.wrapping_shl(r as u32),
                ">>" => l.wrapping_shr(r as u32),
                "+" => l.wrapping_add(r),
                "-" => l.wrapping_sub(r),
                "*" => l.wrapping_mul(r),
                _ if r == 0 => return Err("division by zero in the `#if` condition".into()),
                "/" => l.wrapping_div(r),
                _ => l.wrapping_rem(r),
            };
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<i64, String> {
        let Some(t) = self.peek().map(str::to_string) else {
            return Err("the `#if` condition ends too early".into());
        };
        self.pos += 1;
        match t.as_str() {
            "!" => Ok((self.unary()? == 0) as i64),
            "~" => Ok(!self.unary()?),
            "-" => Ok(self.unary()?.wrapping_neg()),
            "+" => self.unary(),
            "(" => {
                let v = self.ternary()?;
                if self.eat(")") {
                    Ok(v)
                } else {
                    Err("`(` without `)` in the `#if` condition".into())
                }
            }
            "defined" => {
                let paren = self.eat("(");
                let name = self.peek().map(str::to_string).ok_or("`defined` needs a macro name")?;
                self.pos += 1;
                if paren && !self.eat(")") {
                    return Err("`defined(` without `)`".into());
                }
                Ok(self.macros.contains_key(&name) as i64)
            }
            t if t.starts_with(|c: char| c.is_ascii_digit()) => number(t),
            name => match self.macros.get(name) {
                // A macro stands for its value, itself a condition.
                Some(value) if self.depth < 16 && !value.trim().is_empty() => {
                    let mut inner = Expr {
                        tokens: tokenize(strip_comment(value))?,
                        pos: 0,
                        macros: self.macros,
                        depth: self.depth + 1,
                    };
                    inner.ternary()
                }
                _ => Ok(0),
            },
        }
    }
}

/// An integer as C writes one (suffixes `u`, `l` ignored).
fn number(t: &str) -> Result<i64, String> {
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches(['u', 'l']);
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        u64::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse()
    };
    parsed.map(|v| v as i64).map_err(|_| format!("`{}` is not a number", t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> String {
        let defined = HashMap::from([("BPFTRACE_HAVE_BTF".to_string(), "1".to_string())]);
        preprocess(text, &defined).unwrap_or_else(|d| panic!("{:?}", d))
    }

    fn kept(text: &str) -> Vec<String> {
        run(text).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
    }

    #[test]
    fn the_taken_branch_stays_at_its_place() {
        let text = "#define FOO 1\n#ifdef FOO\n#define X 1\n#else\n#define X 2\n#endif\nbegin { }\n";
        let out = run(text);
        assert_eq!(out.len(), text.len());
        assert_eq!(kept(text), ["#define FOO 1", "#define X 1", "begin { }"]);
    }

    #[test]
    fn conditions() {
        let k = |t| kept(&format!("#define V 3\n#if {}\nyes\n#else\nno\n#endif\n", t));
        assert_eq!(k("V > 2 && defined(V)"), ["#define V 3", "yes"]);
        assert_eq!(k("!defined BPFTRACE_HAVE_BTF"), ["#define V 3", "no"]);
        assert_eq!(k("(V << 2) == 12 ? 1 : 0"), ["#define V 3", "yes"]);
        assert_eq!(k("UNKNOWN"), ["#define V 3", "no"]);
        assert_eq!(kept("#ifndef BPFTRACE_HAVE_BTF\nold\n#elif V\nnever\n#elif 1\nnew\n#endif\n"), ["new"]);
        assert_eq!(kept("#if 0\n#if 1\na\n#endif\n#else\nb\n#endif\n"), ["b"]);
        assert_eq!(kept("#define A 1\n#undef A\n#ifdef A\nx\n#endif\n"), ["#define A 1"]);
    }

    #[test]
    fn unbalanced_groups_are_errors() {
        let err = |t: &str| preprocess(t, &HashMap::new()).unwrap_err()[0].message.clone();
        assert_eq!(err("#if 1\nx\n"), "`#if` without `#endif`");
        assert_eq!(err("#endif\n"), "`#endif` without `#if`");
        assert_eq!(err("#if 1\n#else\n#else\n#endif\n"), "`#else` after `#else`");
        assert_eq!(err("#if 1 +\n#endif\n"), "the `#if` condition ends too early");
    }
}
