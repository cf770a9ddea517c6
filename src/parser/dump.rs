//! A compact, stable, indented S-expression dump of the AST: what
//! `rtrace -d ast` prints and what the parser tests compare.

use super::ast::*;
use std::fmt::Write;

pub fn dump(p: &Program) -> String {
    // Recursive: as deep as the program nests (at most `MAX_NESTING`).
    crate::nesting::with_stack(|| dump_program(p))
}

fn dump_program(p: &Program) -> String {
    let mut out = String::new();
    for inc in &p.includes {
        let _ = writeln!(out, "(include {:?})", inc.path);
    }
    for d in &p.directives {
        let _ = writeln!(out, "(#{} {:?})", d.name, d.text);
    }
    for c in &p.config {
        let v = match &c.value {
            ConfigValue::Int(n) => n.to_string(),
            ConfigValue::Str(s) => format!("{:?}", s),
            ConfigValue::Bool(b) => b.to_string(),
            ConfigValue::Ident(s) => s.clone(),
        };
        let _ = writeln!(out, "(config {} {})", c.key, v);
    }
    for s in &p.structs {
        struct_def(&mut out, s, 0);
    }
    for i in &p.imports {
        let _ = writeln!(out, "(import {:?})", i.path);
    }
    for d in &p.map_decls {
        let _ = writeln!(out, "(let @{} ({} {}))", d.name, d.kind, list(&d.args));
    }
    for m in &p.macros {
        let params: Vec<String> = m
            .params
            .iter()
            .map(|p| match p.kind {
                MacroParamKind::Var => format!("${}", p.name),
                MacroParamKind::Map => format!("@{}", p.name),
                MacroParamKind::Expr => p.name.clone(),
            })
            .collect();
        let _ = writeln!(out, "(macro {} [{}]", m.name, params.join(", "));
        for s in &m.body.stmts {
            stmt(&mut out, s, 1);
        }
        if let Some(v) = &m.body.value {
            let _ = writeln!(out, "  {}", expr(v));
        }
        out.push_str(")\n");
    }
    for e in &p.enums {
        let vs: Vec<String> = e.variants.iter().map(|(n, v)| format!("{}={}", n, v)).collect();
        let _ = writeln!(out, "(enum {} {})", e.name, vs.join(" "));
    }
    for probe in &p.probes {
        let aps: Vec<String> = probe
            .attach_points
            .iter()
            .map(|a| {
                std::iter::once(a.provider.as_str())
                    .chain(a.parts.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect();
        let _ = writeln!(out, "(probe [{}]", aps.join(", "));
        if let Some(pred) = &probe.predicate {
            let _ = writeln!(out, "  (pred {})", expr(pred));
        }
        block(&mut out, &probe.body, 1);
        out.push_str(")\n");
    }
    out
}

fn struct_def(out: &mut String, s: &StructDef, depth: usize) {
    let pad = "  ".repeat(depth);
    let attrs = match (s.packed, s.aligned) {
        (false, None) => String::new(),
        (p, a) => {
            format!(" [{}{}]", if p { "packed" } else { "" }, a.map(|n| format!(" aligned({})", n)).unwrap_or_default())
        }
    };
    let _ = writeln!(out, "{}({} {}{}", pad, if s.is_union { "union" } else { "struct" }, s.name, attrs);
    for f in &s.fields {
        let dims: String = f.array.iter().map(|d| format!("[{}]", d)).collect();
        let bits = f.bits.map(|b| format!(" :{}", b)).unwrap_or_default();
        let _ = writeln!(out, "{}  (field {} {}{}{})", pad, type_text(&f.ty), f.name, dims, bits);
        if let Some(inner) = &f.inline {
            struct_def(out, inner, depth + 2);
        }
    }
    let _ = writeln!(out, "{})", pad);
}

fn block(out: &mut String, b: &Block, depth: usize) {
    for s in &b.stmts {
        stmt(out, s, depth);
    }
}

fn stmt(out: &mut String, s: &Stmt, depth: usize) {
    let pad = "  ".repeat(depth);
    match &s.kind {
        StmtKind::Expr(e) => {
            let _ = writeln!(out, "{}{}", pad, expr(e));
        }
        StmtKind::Assign { target, op, value } => {
            let op = op.map(|o| format!("{}=", o.symbol())).unwrap_or_else(|| "=".into());
            let _ = writeln!(out, "{}({} {} {})", pad, op, expr(target), expr(value));
        }
        StmtKind::If { cond, then, els } => {
            let _ = writeln!(out, "{}(if {}", pad, expr(cond));
            block(out, then, depth + 1);
            if let Some(e) = els {
                let _ = writeln!(out, "{} else", pad);
                block(out, e, depth + 1);
            }
            let _ = writeln!(out, "{})", pad);
        }
        StmtKind::Unroll { count, body } => nested(out, &pad, &format!("unroll {}", expr(count)), body, depth),
        StmtKind::While { cond, body } => nested(out, &pad, &format!("while {}", expr(cond)), body, depth),
        StmtKind::ForMap { var, map, body } => nested(out, &pad, &format!("for ${} {}", var, expr(map)), body, depth),
        StmtKind::ForRange { var, start, end, body } => {
            nested(out, &pad, &format!("for ${} {}..{}", var, expr(start), expr(end)), body, depth)
        }
        StmtKind::Break => out.push_str(&format!("{}(break)\n", pad)),
        StmtKind::Continue => out.push_str(&format!("{}(continue)\n", pad)),
        StmtKind::Return => out.push_str(&format!("{}(return)\n", pad)),
        StmtKind::Block(b) => nested(out, &pad, "block", b, depth),
        StmtKind::Let { var, ty, value, .. } => {
            let ty = match ty {
                None => String::new(),
                Some(DeclType::Name(t)) => format!(": {}", type_text(t)),
                Some(DeclType::Typeof(e)) => format!(": (typeof {})", expr(e)),
            };
            let value = value.as_ref().map(|v| format!(" {}", expr(v))).unwrap_or_default();
            let _ = writeln!(out, "{}(let ${}{}{})", pad, var, ty, value);
        }
        StmtKind::Discard(e) => {
            let _ = writeln!(out, "{}(_ {})", pad, expr(e));
        }
    }
}

fn nested(out: &mut String, pad: &str, head: &str, body: &Block, depth: usize) {
    let _ = writeln!(out, "{}({}", pad, head);
    block(out, body, depth + 1);
    let _ = writeln!(out, "{})", pad);
}

fn type_text(t: &TypeName) -> String {
    let dim = match t.array {
        Some(Some(n)) => format!("[{}]", n),
        Some(None) => "[]".to_string(),
        None => String::new(),
    };
    format!("{}{}{}", t.base, "*".repeat(t.pointer as usize), dim)
}

pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Str(s) => format!("{:?}", String::from_utf8_lossy(s)),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Var(n) => format!("${}", n),
        ExprKind::Positional(n) => format!("${}", n),
        ExprKind::PositionalCount => "$#".into(),
        ExprKind::Map { name, keys } if keys.is_empty() => format!("@{}", name),
        ExprKind::Map { name, keys } => format!("@{}[{}]", name, list(keys)),
        ExprKind::Call { name, args, .. } => format!("({} {})", name, list(args)).replace(" )", ")"),
        ExprKind::Unary { op, expr: inner } => format!("({} {})", op.symbol(), expr(inner)),
        ExprKind::Binary { op, lhs, rhs } => format!("({} {} {})", op.symbol(), expr(lhs), expr(rhs)),
        ExprKind::IncDec { target, increment, prefix } => {
            let op = if *increment { "++" } else { "--" };
            if *prefix {
                format!("({}pre {})", op, expr(target))
            } else {
                format!("({}post {})", op, expr(target))
            }
        }
        ExprKind::Ternary { cond, then, els } => format!("(? {} {} {})", expr(cond), expr(then), expr(els)),
        ExprKind::Cast { ty, expr: inner } => format!("(cast {} {})", type_text(ty), expr(inner)),
        ExprKind::Field { expr: inner, field, arrow, .. } => {
            format!("({} {} {})", if *arrow { "->" } else { "." }, expr(inner), field)
        }
        ExprKind::Index { expr: inner, index } => format!("([] {} {})", expr(inner), expr(index)),
        ExprKind::Tuple(items) => format!("(tuple {})", list(items)),
        ExprKind::Record(items) => {
            let fields: Vec<String> = items.iter().map(|(n, e)| format!("{}={}", n, expr(e))).collect();
            format!("(record {})", fields.join(" "))
        }
        ExprKind::SizeofType(t) => format!("(sizeof {})", type_text(t)),
        ExprKind::SizeofExpr(inner) => format!("(sizeof {})", expr(inner)),
        ExprKind::Offsetof { ty, field } => format!("(offsetof {} {})", type_text(ty), field),
        ExprKind::Block(b) => {
            // One line: statements separated by `;`, then the value.
            let mut parts: Vec<String> = b
                .stmts
                .iter()
                .map(|s| {
                    let mut text = String::new();
                    stmt(&mut text, s, 0);
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect();
            parts.extend(b.value.as_ref().map(|v| expr(v)));
            let head = match &b.expansion {
                Some(x) => format!("{{{}!", x.name),
                None => "{".to_string(),
            };
            format!("{} {} }}", head, parts.join("; "))
        }
    }
}

fn list(items: &[Expr]) -> String {
    items.iter().map(expr).collect::<Vec<_>>().join(" ")
}
