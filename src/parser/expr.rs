//! Expressions: operator precedence (C's) with pest's Pratt parser, and the
//! primaries (literals, maps, variables, calls, ...).

use super::ast::*;
use super::pairs::{int_literal, span, string_literal, type_name, Result};
use super::Rule;
use crate::diagnostic::Diagnostic;

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::OnceLock;

/// Lowest precedence first, as in C.
fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::ternary, Assoc::Right))
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::infix(Rule::bor, Assoc::Left))
            .op(Op::infix(Rule::bxor, Assoc::Left))
            .op(Op::infix(Rule::band, Assoc::Left))
            .op(Op::infix(Rule::eq, Assoc::Left) | Op::infix(Rule::ne, Assoc::Left))
            .op(Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left))
            .op(Op::infix(Rule::shl, Assoc::Left) | Op::infix(Rule::shr, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::pre_inc)
                | Op::prefix(Rule::pre_dec)
                | Op::prefix(Rule::neg)
                | Op::prefix(Rule::not)
                | Op::prefix(Rule::bitnot)
                | Op::prefix(Rule::deref)
                | Op::prefix(Rule::addr)
                | Op::prefix(Rule::cast))
            .op(Op::postfix(Rule::post_inc)
                | Op::postfix(Rule::post_dec)
                | Op::postfix(Rule::arrow)
                | Op::postfix(Rule::dot)
                | Op::postfix(Rule::index))
    })
}

/// An `expr` or `unary` pair.
pub fn expr(pair: Pair<Rule>) -> Result<Expr> {
    operators(pair.into_inner())
}

pub fn unary(pair: Pair<Rule>) -> Result<Expr> {
    operators(pair.into_inner())
}

fn operators(pairs: Pairs<Rule>) -> Result<Expr> {
    pratt()
        .map_primary(primary)
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            let sp = span(&op).to(rhs.span);
            let kind = match op.as_rule() {
                Rule::pre_inc | Rule::pre_dec => {
                    ExprKind::IncDec { target: Box::new(rhs), increment: op.as_rule() == Rule::pre_inc, prefix: true }
                }
                Rule::cast => ExprKind::Cast { ty: type_name(op.into_inner().next().unwrap()), expr: Box::new(rhs) },
                rule => {
                    let op = match rule {
                        Rule::neg => UnOp::Neg,
                        Rule::not => UnOp::Not,
                        Rule::bitnot => UnOp::BitNot,
                        Rule::deref => UnOp::Deref,
                        _ => UnOp::AddrOf,
                    };
                    ExprKind::Unary { op, expr: Box::new(rhs) }
                }
            };
            Ok(Expr { kind, span: sp })
        })
        .map_postfix(|lhs, op| {
            let lhs = lhs?;
            let sp = lhs.span.to(span(&op));
            let kind = match op.as_rule() {
                Rule::post_inc | Rule::post_dec => {
                    ExprKind::IncDec { target: Box::new(lhs), increment: op.as_rule() == Rule::post_inc, prefix: false }
                }
                Rule::index => {
                    ExprKind::Index { expr: Box::new(lhs), index: Box::new(expr(op.into_inner().next().unwrap())?) }
                }
                rule => {
                    let field = op.into_inner().next().unwrap();
                    ExprKind::Field {
                        expr: Box::new(lhs),
                        field: field.as_str().to_string(),
                        field_span: span(&field),
                        arrow: rule == Rule::arrow,
                    }
                }
            };
            Ok(Expr { kind, span: sp })
        })
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
            let sp = lhs.span.to(rhs.span);
            if op.as_rule() == Rule::ternary {
                let then = expr(op.into_inner().next().unwrap())?;
                return Ok(Expr {
                    kind: ExprKind::Ternary { cond: Box::new(lhs), then: Box::new(then), els: Box::new(rhs) },
                    span: sp,
                });
            }
            let op = binop(op.as_rule());
            Ok(Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span: sp })
        })
        .parse(pairs)
}

fn binop(rule: Rule) -> BinOp {
    match rule {
        Rule::or => BinOp::Or,
        Rule::and => BinOp::And,
        Rule::bor => BinOp::BitOr,
        Rule::bxor => BinOp::BitXor,
        Rule::band => BinOp::BitAnd,
        Rule::eq => BinOp::Eq,
        Rule::ne => BinOp::Ne,
        Rule::lt => BinOp::Lt,
        Rule::le => BinOp::Le,
        Rule::gt => BinOp::Gt,
        Rule::ge => BinOp::Ge,
        Rule::shl => BinOp::Shl,
        Rule::shr => BinOp::Shr,
        Rule::add => BinOp::Add,
        Rule::sub => BinOp::Sub,
        Rule::mul => BinOp::Mul,
        Rule::div => BinOp::Div,
        Rule::rem => BinOp::Mod,
        other => unreachable!("grammar: {:?} is not a binary operator", other),
    }
}

fn primary(pair: Pair<Rule>) -> Result<Expr> {
    let sp = span(&pair);
    let kind = match pair.as_rule() {
        Rule::int_lit => ExprKind::Int(int_literal(&pair)?),
        Rule::string => ExprKind::Str(string_literal(pair)?),
        Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
        Rule::ident => ExprKind::Ident(pair.as_str().to_string()),
        Rule::var => ExprKind::Var(pair.as_str()[1..].to_string()),
        Rule::positional => {
            let n: u32 = pair.as_str()[1..]
                .parse()
                .map_err(|_| Diagnostic::error("positional parameter number too large", sp))?;
            if n == 0 {
                return Err(Diagnostic::error("`$0` is not a positional parameter; they start at `$1`", sp));
            }
            ExprKind::Positional(n)
        }
        Rule::positional_count => ExprKind::PositionalCount,
        Rule::map => map(pair)?,
        Rule::call => {
            let mut inner = pair.into_inner();
            let name_pair = inner.next().unwrap();
            let args = inner.map(expr).collect::<Result<Vec<_>>>()?;
            ExprKind::Call { name: name_pair.as_str().to_string(), name_span: span(&name_pair), args }
        }
        Rule::paren => {
            let mut items = pair.into_inner().map(expr).collect::<Result<Vec<_>>>()?;
            if items.len() == 1 {
                // Parentheses only group: keep the inner span for messages.
                return Ok(items.pop().unwrap());
            }
            ExprKind::Tuple(items)
        }
        Rule::sizeof_expr => {
            let arg = pair.into_inner().nth(1).unwrap();
            if arg.as_rule() == Rule::cast_type {
                ExprKind::SizeofType(type_name(arg))
            } else {
                ExprKind::SizeofExpr(Box::new(expr(arg)?))
            }
        }
        Rule::offsetof_expr => {
            let mut inner = pair.into_inner().skip(1);
            let ty = type_name(inner.next().unwrap());
            let field = inner.next().unwrap().as_str().to_string();
            ExprKind::Offsetof { ty, field }
        }
        other => unreachable!("grammar: {:?} is not a primary", other),
    };
    Ok(Expr { kind, span: sp })
}

fn map(pair: Pair<Rule>) -> Result<ExprKind> {
    let mut name = String::new();
    let mut keys = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::map_name => name = p.as_str().to_string(),
            Rule::map_keys => keys = p.into_inner().map(expr).collect::<Result<Vec<_>>>()?,
            _ => {}
        }
    }
    Ok(ExprKind::Map { name, keys })
}
