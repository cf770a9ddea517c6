//! Pest pairs → AST, one function per grammar rule.

use super::ast::*;
use super::pairs::{int_literal, span, string_literal, too_deep, type_name, words, Result};
use super::Rule;
use crate::diagnostic::Diagnostic;
use crate::nesting::MAX_NESTING;
use crate::span::Span;
use pest::iterators::Pair;

/// An expression at nesting level `depth`, its block values built here.
fn expr(pair: Pair<Rule>, depth: u32) -> Result<Expr> {
    super::expr::expr(pair, depth, block_value)
}

/// A `unary` pair (an assignment's target, a condition without parentheses).
fn unary(pair: Pair<Rule>, depth: u32) -> Result<Expr> {
    expr(pair, depth)
}

pub fn program(pair: Pair<Rule>) -> std::result::Result<Program, Vec<Diagnostic>> {
    let mut prog = Program {
        includes: vec![],
        directives: vec![],
        config: vec![],
        structs: vec![],
        imports: vec![],
        macros: vec![],
        map_decls: vec![],
        enums: vec![],
        probes: vec![],
    };
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
            Rule::import => {
                let sp = span(&p);
                let path = p.into_inner().find(|q| q.as_rule() == Rule::string).unwrap();
                string_literal(path).map(|bytes| {
                    prog.imports.push(Import { path: String::from_utf8_lossy(&bytes).into_owned(), span: sp })
                })
            }
            Rule::macro_def => macro_def(p).map(|m| prog.macros.push(m)),
            Rule::map_decl => map_decl(p).map(|d| prog.map_decls.push(d)),
            Rule::enum_def => enum_def(p).map(|e| prog.enums.push(e)),
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
                Rule::boolean => ConfigValue::Bool(v.as_str() == "true"),
                _ => ConfigValue::Ident(v.as_str().to_string()),
            };
            Ok(ConfigItem { key, value, span: sp })
        })
        .collect()
}

/// The name of a `map` pair that has no keys (a macro parameter, a
/// declared map).
fn map_without_keys(pair: Pair<Rule>) -> Option<String> {
    let mut name = String::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::map_name => name = p.as_str().to_string(),
            Rule::map_keys => return None,
            _ => {}
        }
    }
    Some(name)
}

fn macro_def(pair: Pair<Rule>) -> Result<MacroDef> {
    let whole = span(&pair);
    let mut inner = pair.into_inner().skip(1);
    let name = inner.next().unwrap().as_str().to_string();
    let mut params = Vec::new();
    let mut body = None;
    for p in inner {
        match p.as_rule() {
            Rule::macro_param => {
                let sp = span(&p);
                let q = p.into_inner().next().unwrap();
                let (kind, name) = match q.as_rule() {
                    Rule::var => (MacroParamKind::Var, q.as_str()[1..].to_string()),
                    Rule::map => match map_without_keys(q) {
                        Some(name) => (MacroParamKind::Map, name),
                        None => return Err(Diagnostic::error("a macro parameter is `$var`, `@map` or a name", sp)),
                    },
                    _ => (MacroParamKind::Expr, q.as_str().to_string()),
                };
                params.push(MacroParam { kind, name, span: sp });
            }
            _ => body = Some(p),
        }
    }
    let body = body.expect("grammar: a macro has a body");
    let span = Span { start: whole.start, end: body.as_span().start() as u32 };
    let (stmts, value) = stmt_list(body.into_inner().next().unwrap(), 1, true)?;
    let body = BlockExpr { stmts, value: value.map(Box::new), expansion: None };
    Ok(MacroDef { name, params, body, span })
}

fn map_decl(pair: Pair<Rule>) -> Result<MapDecl> {
    let sp = span(&pair);
    let mut inner = pair.into_inner().skip(1);
    let Some(name) = map_without_keys(inner.next().unwrap()) else {
        return Err(Diagnostic::error("a map declaration names a map without keys: `let @name = hash(N);`", sp));
    };
    let mut call = inner.next().unwrap().into_inner();
    let kind = call.next().unwrap().as_str().to_string();
    let args = call.map(|a| expr(a, 1)).collect::<Result<Vec<_>>>()?;
    Ok(MapDecl { name, kind, args, span: sp })
}

fn struct_def(pair: Pair<Rule>) -> Result<StructDef> {
    let sp = span(&pair);
    let mut inner = pair.into_inner();
    let is_union = inner.next().unwrap().as_str() == "union";
    let name = inner.next().unwrap().as_str().to_string();
    let fields = struct_body(inner.next().unwrap(), 1)?;
    let mut def = StructDef { is_union, name, fields, packed: false, aligned: None, span: sp };
    attributes(inner, &mut def)?;
    Ok(def)
}

/// `__attribute__((packed, aligned(N)))`; other attributes are ignored.
fn attributes<'a>(pairs: impl Iterator<Item = Pair<'a, Rule>>, def: &mut StructDef) -> Result<()> {
    for attr in pairs.filter(|p| p.as_rule() == Rule::attribute) {
        for item in attr.into_inner() {
            let mut parts = item.into_inner();
            match (parts.next().unwrap().as_str(), parts.next()) {
                ("packed" | "__packed__", _) => def.packed = true,
                ("aligned" | "__aligned__", Some(n)) => def.aligned = Some(int_literal(&n)? as u32),
                _ => {}
            }
        }
    }
    Ok(())
}

fn enum_def(pair: Pair<Rule>) -> Result<EnumDef> {
    let sp = span(&pair);
    let (mut name, mut variants, mut next) = (String::new(), Vec::new(), 0i64);
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::c_ident => name = p.as_str().to_string(),
            Rule::enum_item => {
                let mut inner = p.into_inner();
                let constant = inner.next().unwrap().as_str().to_string();
                if let Some(v) = inner.next() {
                    let digits = v.clone().into_inner().next().unwrap();
                    let magnitude = int_literal(&digits)? as i64;
                    next = if v.as_str().starts_with('-') { magnitude.wrapping_neg() } else { magnitude };
                }
                variants.push((constant, next));
                next = next.wrapping_add(1);
            }
            _ => {}
        }
    }
    Ok(EnumDef { name, variants, span: sp })
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
            let mut a = first.into_inner().peekable();
            let is_union = a.next().unwrap().as_str() == "union";
            let name = match a.peek().map(|p| p.as_rule()) {
                Some(Rule::c_ident) => a.next().unwrap().as_str().to_string(),
                _ => String::new(),
            };
            let fields = struct_body(a.next().unwrap(), depth + 1)?;
            let kw = if is_union { "union" } else { "struct" };
            let base = if name.is_empty() { kw.to_string() } else { format!("{} {}", kw, name) };
            let mut def = StructDef { is_union, name, fields, packed: false, aligned: None, span: sp };
            attributes(a, &mut def)?;
            (TypeName { base, pointer: 0, array: None, span: sp }, Some(Box::new(def)))
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
    TypeName { base, pointer: 0, array: None, span: sp }
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

fn attach_point(pair: Pair<Rule>) -> AttachPoint {
    AttachPoint::split(pair.as_str(), span(&pair))
}

/// A block at nesting level `depth` (a probe's body is level 1); its
/// statements' expressions and bodies are one level deeper.
pub fn block(pair: Pair<Rule>, depth: u32) -> Result<Block> {
    let sp = span(&pair);
    if depth > MAX_NESTING {
        return Err(too_deep(Span::new(sp.start as usize, sp.start as usize + 1)));
    }
    let (stmts, _) = stmt_list(pair.into_inner().next().unwrap(), depth, false)?;
    Ok(Block { stmts, span: sp })
}

/// A block used as a value, `{ stmts; value }` or `if c { a } else { b }`,
/// at nesting level `depth` (what expressions call for their blocks).
fn block_value(pair: Pair<Rule>, depth: u32) -> Result<Expr> {
    match pair.as_rule() {
        Rule::if_expr | Rule::if_stmt => if_value(pair, depth),
        _ => block_expr(pair, depth),
    }
}

/// A `block_expr` (or a `block` in value position): its statements and the
/// value it ends with.
fn block_expr(pair: Pair<Rule>, depth: u32) -> Result<Expr> {
    let sp = span(&pair);
    if depth > MAX_NESTING {
        return Err(too_deep(Span::new(sp.start as usize, sp.start as usize + 1)));
    }
    let (stmts, value) = stmt_list(pair.into_inner().next().unwrap(), depth, true)?;
    Ok(Expr {
        kind: ExprKind::Block(Box::new(BlockExpr { stmts, value: value.map(Box::new), expansion: None })),
        span: sp,
    })
}

/// The statements of a `stmts` pair of a block at level `depth`. When the
/// block is a value (`as_value`), what it ends with is its value instead: an
/// expression without `;`, an `if`/`else` or a nested block (bpftrace's
/// trailing expression).
fn stmt_list(pair: Pair<Rule>, depth: u32, as_value: bool) -> Result<(Vec<Stmt>, Option<Expr>)> {
    let pairs: Vec<Pair<Rule>> = pair.into_inner().collect();
    let n = pairs.len();
    let mut stmts = Vec::new();
    let mut value = None;
    for (i, p) in pairs.into_iter().enumerate() {
        if p.as_rule() == Rule::semi {
            continue;
        }
        if as_value && i + 1 == n {
            match p.as_rule() {
                Rule::expr_stmt => {
                    value = Some(expr(p.into_inner().next().unwrap(), depth + 1)?);
                    continue;
                }
                Rule::if_stmt if p.clone().into_inner().any(|q| q.as_rule() == Rule::kw_else) => {
                    value = Some(if_value(p, depth + 1)?);
                    continue;
                }
                Rule::block => {
                    value = Some(block_expr(p, depth + 1)?);
                    continue;
                }
                _ => {}
            }
        }
        stmts.push(stmt(p, depth)?);
    }
    Ok((stmts, value))
}

/// `if c { a } else { b }` as a value (an `if_expr`, or an `if_stmt` a
/// block ends with) at level `depth`: `c ? { a } : { b }`; without `else`,
/// the else value is nothing.
fn if_value(pair: Pair<Rule>, depth: u32) -> Result<Expr> {
    let sp = span(&pair);
    if depth > MAX_NESTING {
        return Err(too_deep(Span::new(sp.start as usize, sp.start as usize + 2)));
    }
    let mut inner = pair.into_inner().filter(|p| !matches!(p.as_rule(), Rule::kw_if | Rule::kw_else));
    let cond = expr(inner.next().unwrap(), depth + 1)?;
    let then = block_expr(inner.next().unwrap(), depth + 1)?;
    let els = match inner.next() {
        Some(p) if matches!(p.as_rule(), Rule::if_stmt | Rule::if_expr) => if_value(p, depth + 1)?,
        Some(p) => block_expr(p, depth + 1)?,
        None => Expr {
            kind: ExprKind::Block(Box::new(BlockExpr { stmts: vec![], value: None, expansion: None })),
            span: Span { start: sp.end, end: sp.end },
        },
    };
    Ok(Expr { kind: ExprKind::Ternary { cond: Box::new(cond), then: Box::new(then), els: Box::new(els) }, span: sp })
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
        Rule::jump_stmt => {
            let mut inner = pair.into_inner();
            match inner.next().unwrap().as_rule() {
                Rule::kw_break => StmtKind::Break,
                Rule::kw_continue => StmtKind::Continue,
                // `return value;`: the value is evaluated (for what it
                // does), then the probe returns.
                _ => match inner.next() {
                    None => StmtKind::Return,
                    Some(v) => StmtKind::Block(Block {
                        stmts: vec![
                            Stmt { kind: StmtKind::Expr(expr(v, inside)?), span: sp },
                            Stmt { kind: StmtKind::Return, span: sp },
                        ],
                        span: sp,
                    }),
                },
            }
        }
        Rule::let_stmt => let_stmt(pair, inside)?,
        Rule::discard_stmt => StmtKind::Discard(expr(pair.into_inner().next().unwrap(), inside)?),
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
        let map = expr(source, depth + 1)?;
        if !matches!(&map.kind, ExprKind::Map { keys, .. } if keys.is_empty()) {
            return Err(Diagnostic::error("expected a map or a range in the `for` loop", map.span)
                .with_help("`for ($kv : @map) { }` or `for ($i : 0..10) { }`"));
        }
        Ok(StmtKind::ForMap { var, map, body })
    }
}

/// `let $x [: type] [= value]`, its value at level `depth`.
fn let_stmt(pair: Pair<Rule>, depth: u32) -> Result<StmtKind> {
    let mut inner = pair.into_inner().skip(1);
    let var_pair = inner.next().unwrap();
    let (var, var_span) = (var_pair.as_str()[1..].to_string(), span(&var_pair));
    let (mut ty, mut value) = (None, None);
    for p in inner {
        match p.as_rule() {
            Rule::decl_type => {
                let first = p.clone().into_inner().next().unwrap();
                ty = Some(match first.as_rule() {
                    Rule::kw_typeof => {
                        let t = p.into_inner().nth(1).unwrap();
                        match t.as_rule() {
                            Rule::cast_type => DeclType::Name(type_name(t)),
                            _ => DeclType::Typeof(Box::new(expr(t, depth)?)),
                        }
                    }
                    Rule::cast_type => DeclType::Name(type_name(first)),
                    // `name *...`: a typedef name the checker resolves.
                    _ => DeclType::Name(type_name(p)),
                });
            }
            _ => value = Some(expr(p, depth)?),
        }
    }
    Ok(StmtKind::Let { var, var_span, ty, value })
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
