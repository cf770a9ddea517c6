//! Pest pairs → AST, one function per grammar rule.

use super::ast::*;
use super::expr::{expr, unary};
use super::pairs::{int_literal, span, string_literal, too_deep, words, Result};
use super::Rule;
use crate::diagnostic::Diagnostic;
use crate::nesting::MAX_NESTING;
use crate::span::Span;
use pest::iterators::Pair;

pub fn program(pair: Pair<Rule>) -> std::result::Result<Program, Vec<Diagnostic>> {
    let mut prog = Program { includes: vec![], directives: vec![], config: vec![], structs: vec![], probes: vec![] };
    let mut errors = Vec::new();
    for p in pair.into_inner() {
        let r: Result<()> = match p.as_rule() {
            Rule::include => {
                prog.includes.push(include(p));
                Ok(())
            }
            Rule::directive => {
                let sp = span(&p);
                let mut inner = p.into_inner();
                let name = inner.next().unwrap().as_str().to_string();
                let text = inner.next().map(|t| t.as_str().trim().to_string()).unwrap_or_default();
                prog.directives.push(Directive { name, text, span: sp });
                Ok(())
            }
            Rule::config => config(p).map(|items| prog.config.extend(items)),
            Rule::struct_def => struct_def(p).map(|s| prog.structs.push(s)),
            Rule::probe => probe(p).map(|pr| prog.probes.push(pr)),
            _ => Ok(()),
        };
        if let Err(e) = r {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(prog)
    } else {
        Err(errors)
    }
}

fn include(pair: Pair<Rule>) -> Include {
    let sp = span(&pair);
    let path = pair.into_inner().next().map(|p| p.as_str().to_string()).unwrap_or_default();
    Include { path, span: sp }
}

fn config(pair: Pair<Rule>) -> Result<Vec<ConfigItem>> {
    pair.into_inner()
        .map(|item| {
            let sp = span(&item);
            let mut inner = item.into_inner();
            let key = inner.next().unwrap().as_str().to_string();
            let v = inner.next().unwrap().into_inner().next().unwrap();
            let value = match v.as_rule() {
                Rule::int_lit => ConfigValue::Int(int_literal(&v)?),
                Rule::string => ConfigValue::Str(String::from_utf8_lossy(&string_literal(v)?).into_owned()),
                _ => ConfigValue::Ident(v.as_str().to_string()),
            };
            Ok(ConfigItem { key, value, span: sp })
        })
        .collect()
}

fn struct_def(pair: Pair<Rule>) -> Result<StructDef> {
    let sp = span(&pair);
    let mut inner = pair.into_inner();
    let is_union = inner.next().unwrap().as_str() == "union";
    let name = inner.next().unwrap().as_str().to_string();
    let fields = struct_body(inner.next().unwrap(), 1)?;
    Ok(StructDef { is_union, name, fields, span: sp })
}

/// The fields of a struct body at nesting level `depth` (anonymous members nest).
fn struct_body(pair: Pair<Rule>, depth: u32) -> Result<Vec<FieldDef>> {
    if depth > MAX_NESTING {
        return Err(too_deep(span(&pair)));
    }
    let mut fields = Vec::new();
    for field in pair.into_inner() {
        let mut parts = field.into_inner();
        let first = parts.next().unwrap();
        let (ty, inline) = if first.as_rule() == Rule::anon_struct {
            let sp = span(&first);
            let mut a = first.into_inner();
            let is_union = a.next().unwrap().as_str() == "union";
            let fields = struct_body(a.next().unwrap(), depth + 1)?;
            let kw = if is_union { "union" } else { "struct" };
            let def = StructDef { is_union, name: String::new(), fields, span: sp };
            (TypeName { base: kw.into(), pointer: 0, span: sp }, Some(Box::new(def)))
        } else {
            (c_type(first), None)
        };
        for decl in parts {
            let mut f = declarator(decl, &ty)?;
            f.inline = inline.clone();
            fields.push(f);
        }
    }
    Ok(fields)
}

fn c_type(pair: Pair<Rule>) -> TypeName {
    let sp = span(&pair);
    let base = pair.into_inner().find(|p| p.as_rule() == Rule::c_base).map(|b| words(b.as_str())).unwrap_or_default();
    TypeName { base, pointer: 0, span: sp }
}

fn declarator(pair: Pair<Rule>, ty: &TypeName) -> Result<FieldDef> {
    let sp = span(&pair);
    let mut ty = ty.clone();
    let (mut name, mut array, mut bits) = (String::new(), vec![], None);
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::pointer => ty.pointer += 1,
            Rule::c_ident => name = p.as_str().to_string(),
            Rule::array_dim => array.push(int_literal(&p.into_inner().next().unwrap())?),
            Rule::int_lit => bits = Some(int_literal(&p)? as u32),
            _ => {}
        }
    }
    Ok(FieldDef { ty, name, array, bits, inline: None, span: sp })
}

fn probe(pair: Pair<Rule>) -> Result<Probe> {
    let sp = span(&pair);
    let mut attach_points = Vec::new();
    let mut predicate = None;
    let mut body = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::attach_points => {
                for ap in p.into_inner() {
                    attach_points.push(attach_point(ap));
                }
            }
            Rule::predicate => predicate = Some(expr(p.into_inner().next().unwrap(), 1)?),
            Rule::block | Rule::angle_block => body = Some(block(p, 1)?),
            _ => {}
        }
    }
    Ok(Probe { attach_points, predicate, body: body.expect("grammar: a probe has a body"), span: sp })
}

/// Splits an attach point at `:` outside quotes, removing the quotes; `\"`
/// in quotes is a quote (`usdt:./bin:test:"\"probe1\""`).
fn attach_point(pair: Pair<Rule>) -> AttachPoint {
    let raw = pair.as_str().to_string();
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => cur.extend(chars.next()),
            '"' => quoted = !quoted,
            ':' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    let provider = fields.remove(0);
    AttachPoint { raw, provider, parts: fields, span: span(&pair) }
}

/// A block at nesting level `depth` (a probe's body is level 1); its
/// statements' expressions and bodies are one level deeper.
pub fn block(pair: Pair<Rule>, depth: u32) -> Result<Block> {
    let sp = span(&pair);
    if depth > MAX_NESTING {
        return Err(too_deep(Span::new(sp.start as usize, sp.start as usize + 1)));
    }
    let stmts_pair = pair.into_inner().next().unwrap();
    let stmts = stmts_pair.into_inner().map(|s| stmt(s, depth)).collect::<Result<Vec<_>>>()?;
    Ok(Block { stmts, span: sp })
}

/// A statement of a block at level `depth`.
fn stmt(pair: Pair<Rule>, depth: u32) -> Result<Stmt> {
    let sp = span(&pair);
    let inside = depth + 1;
    let kind = match pair.as_rule() {
        Rule::if_stmt => if_stmt(pair, depth)?,
        Rule::unroll_stmt | Rule::while_stmt => {
            let is_unroll = pair.as_rule() == Rule::unroll_stmt;
            let mut inner = pair.into_inner().skip(1);
            let cond = expr(inner.next().unwrap(), inside)?;
            let body = block(inner.next().unwrap(), inside)?;
            if is_unroll {
                StmtKind::Unroll { count: cond, body }
            } else {
                StmtKind::While { cond, body }
            }
        }
        Rule::for_stmt => for_stmt(pair, depth)?,
        Rule::block => StmtKind::Block(block(pair, inside)?),
        Rule::jump_stmt => match pair.into_inner().next().unwrap().as_rule() {
            Rule::kw_break => StmtKind::Break,
            Rule::kw_continue => StmtKind::Continue,
            _ => StmtKind::Return,
        },
        Rule::assign_stmt | Rule::angle_assign => {
            let mut inner = pair.into_inner();
            let target = unary(inner.next().unwrap(), inside)?;
            let op = compound_op(inner.next().unwrap().as_str());
            let value = expr(inner.next().unwrap(), inside)?;
            StmtKind::Assign { target, op, value }
        }
        Rule::expr_stmt | Rule::angle_expr_stmt => StmtKind::Expr(expr(pair.into_inner().next().unwrap(), inside)?),
        other => unreachable!("grammar: unexpected statement rule {:?}", other),
    };
    Ok(Stmt { kind, span: sp })
}

/// An `if` in a block at level `depth`; an `else if` is one level deeper,
/// in the `else` block that holds it.
fn if_stmt(pair: Pair<Rule>, depth: u32) -> Result<StmtKind> {
    let mut inner = pair.into_inner().filter(|p| !matches!(p.as_rule(), Rule::kw_if | Rule::kw_else));
    let cond = expr(inner.next().unwrap(), depth + 1)?;
    let then = block(inner.next().unwrap(), depth + 1)?;
    let els = match inner.next() {
        None => None,
        Some(p) if p.as_rule() == Rule::if_stmt => {
            let sp = span(&p);
            if depth + 1 > MAX_NESTING {
                return Err(too_deep(Span::new(sp.start as usize, sp.start as usize + 2)));
            }
            Some(Block { stmts: vec![Stmt { kind: if_stmt(p, depth + 1)?, span: sp }], span: sp })
        }
        Some(p) => Some(block(p, depth + 1)?),
    };
    Ok(StmtKind::If { cond, then, els })
}

fn for_stmt(pair: Pair<Rule>, depth: u32) -> Result<StmtKind> {
    let mut inner = pair.into_inner().skip(1);
    let var = inner.next().unwrap().as_str()[1..].to_string();
    let source = inner.next().unwrap();
    let body = block(inner.next().unwrap(), depth + 1)?;
    if source.as_rule() == Rule::for_range {
        let mut r = source.into_inner();
        let start = expr(r.next().unwrap(), depth + 1)?;
        let end = expr(r.next().unwrap(), depth + 1)?;
        Ok(StmtKind::ForRange { var, start, end, body })
    } else {
        Ok(StmtKind::ForMap { var, map: expr(source, depth + 1)?, body })
    }
}

fn compound_op(text: &str) -> Option<BinOp> {
    Some(match text {
        "+=" => BinOp::Add,
        "-=" => BinOp::Sub,
        "*=" => BinOp::Mul,
        "/=" => BinOp::Div,
        "%=" => BinOp::Mod,
        "&=" => BinOp::BitAnd,
        "|=" => BinOp::BitOr,
        "^=" => BinOp::BitXor,
        "<<=" => BinOp::Shl,
        ">>=" => BinOp::Shr,
        _ => return None,
    })
}
