//! Expressions: operator precedence (C's) and the primaries (literals,
//! maps, variables, calls, ...).
//!
//! The grammar gives an expression as a flat list, `prefix* primary
//! postfix* (infix prefix* primary postfix*)*`; `operators` builds the tree
//! with two stacks (shunting-yard), so long operator chains cost no native
//! stack. Each node's height is counted on the way: an expression whose
//! root sits at `depth` may reach `MAX_NESTING`, no deeper (see
//! `crate::nesting`), which bounds every later pass's recursion.
//!
//! Blocks are values too (`{ stmts; value }`, `if c { a } else { b }`);
//! their statements are `build`'s, which passes in how to build them
//! (`Blocks`), as `build` itself builds on this module.

use super::ast::*;
use super::pairs::{int_literal, span, string_literal, too_deep, type_name, Result};
use super::Rule;
use crate::diagnostic::Diagnostic;
use crate::nesting::MAX_NESTING;
use crate::span::Span;

use pest::iterators::{Pair, Pairs};

/// An expression and its height (a leaf is 1).
type Tall = (Expr, u32);

/// Builds a `block_expr` or `if_expr` pair at a nesting level.
pub type Blocks = fn(Pair<Rule>, u32) -> Result<Expr>;

/// An `expr`, `angle_expr` or `unary` pair whose root sits at nesting level `depth`.
pub fn expr(pair: Pair<Rule>, depth: u32, blocks: Blocks) -> Result<Expr> {
    tall(pair, depth, blocks).map(|(e, _)| e)
}

fn tall(pair: Pair<Rule>, depth: u32, blocks: Blocks) -> Result<Tall> {
    if depth > MAX_NESTING {
        return Err(too_deep(span(&pair)));
    }
    Operators { depth, blocks, operands: Vec::new(), pending: Vec::new() }.parse(pair.into_inner())
}

/// Binding power of infix operators, lowest first, as in C.
fn precedence(rule: Rule) -> u8 {
    match rule {
        Rule::ternary => 1,
        Rule::or => 2,
        Rule::and => 3,
        Rule::bor => 4,
        Rule::bxor => 5,
        Rule::band => 6,
        Rule::eq | Rule::ne => 7,
        Rule::lt | Rule::le | Rule::gt | Rule::ge => 8,
        Rule::shl | Rule::shr => 9,
        Rule::add | Rule::sub => 10,
        _ => 11,
    }
}

fn is_prefix(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::pre_inc | Rule::pre_dec | Rule::neg | Rule::not | Rule::bitnot | Rule::deref | Rule::addr | Rule::cast
    )
}

fn is_postfix(rule: Rule) -> bool {
    matches!(rule, Rule::post_inc | Rule::post_dec | Rule::arrow | Rule::dot | Rule::index)
}

/// An infix operator waiting for its right operand (a ternary holds its
/// middle; `c ?: d` has none).
struct Pending<'i> {
    op: Pair<'i, Rule>,
    prec: u8,
    then: Option<Tall>,
}

struct Operators<'i> {
    depth: u32,
    blocks: Blocks,
    operands: Vec<Tall>,
    pending: Vec<Pending<'i>>,
}

impl<'i> Operators<'i> {
    fn parse(mut self, pairs: Pairs<'i, Rule>) -> Result<Tall> {
        let mut pairs = pairs.peekable();
        loop {
            let term = self.term(&mut pairs)?;
            self.operands.push(term);
            let Some(op) = pairs.next() else { break };
            let prec = precedence(op.as_rule());
            // Left-associative operators of equal binding power reduce first;
            // the ternary, the only right-associative one, waits.
            while self.pending.last().is_some_and(|p| p.prec > prec || (p.prec == prec && prec != 1)) {
                self.reduce()?;
            }
            let then = match op.clone().into_inner().next() {
                Some(middle) if op.as_rule() == Rule::ternary => Some(tall(middle, self.depth + 1, self.blocks)?),
                _ => None,
            };
            self.pending.push(Pending { op, prec, then });
        }
        while !self.pending.is_empty() {
            self.reduce()?;
        }
        self.operands.pop().ok_or_else(|| internal("an expression without operands"))
    }

    /// `prefix* primary postfix*`: postfix operators bind tighter, as in C.
    fn term(&mut self, pairs: &mut std::iter::Peekable<Pairs<'i, Rule>>) -> Result<Tall> {
        let mut prefixes = Vec::new();
        while let Some(p) = pairs.next_if(|p| is_prefix(p.as_rule())) {
            prefixes.push(p);
        }
        let first = pairs.next().ok_or_else(|| internal("an operator without an operand"))?;
        let mut term = primary(first, self.depth, self.blocks)?;
        while let Some(op) = pairs.next_if(|p| is_postfix(p.as_rule())) {
            term = self.postfix(term, op)?;
        }
        for op in prefixes.into_iter().rev() {
            term = self.prefix(op, term)?;
        }
        Ok(term)
    }

    /// A new node of height `height`, refused past the nesting limit at `at`.
    fn node(&self, kind: ExprKind, span: Span, height: u32, at: Span) -> Result<Tall> {
        if self.depth + height - 1 > MAX_NESTING {
            return Err(too_deep(at));
        }
        Ok((Expr { kind, span }, height))
    }

    fn prefix(&self, op: Pair<'i, Rule>, (rhs, h): Tall) -> Result<Tall> {
        let at = span(&op);
        let sp = at.to(rhs.span);
        let kind = match op.as_rule() {
            Rule::pre_inc | Rule::pre_dec => {
                ExprKind::IncDec { target: Box::new(rhs), increment: op.as_rule() == Rule::pre_inc, prefix: true }
            }
            Rule::cast => ExprKind::Cast { ty: type_name(inner(&op)?), expr: Box::new(rhs) },
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
        self.node(kind, sp, h + 1, at)
    }

    fn postfix(&self, (lhs, h): Tall, op: Pair<'i, Rule>) -> Result<Tall> {
        let at = span(&op);
        let sp = lhs.span.to(at);
        let (kind, height) = match op.as_rule() {
            Rule::post_inc | Rule::post_dec => (
                ExprKind::IncDec { target: Box::new(lhs), increment: op.as_rule() == Rule::post_inc, prefix: false },
                h + 1,
            ),
            Rule::index => {
                let (index, ih) = tall(inner(&op)?, self.depth + 1, self.blocks)?;
                (ExprKind::Index { expr: Box::new(lhs), index: Box::new(index) }, h.max(ih) + 1)
            }
            rule => {
                let field = inner(&op)?;
                let kind = ExprKind::Field {
                    expr: Box::new(lhs),
                    field: field.as_str().to_string(),
                    field_span: span(&field),
                    arrow: rule == Rule::arrow,
                };
                (kind, h + 1)
            }
        };
        self.node(kind, sp, height, at)
    }

    /// Applies the innermost pending infix operator to the last two operands.
    fn reduce(&mut self) -> Result<()> {
        let Pending { op, then, .. } = self.pending.pop().ok_or_else(|| internal("no operator to apply"))?;
        let (rhs, rh) = self.operands.pop().ok_or_else(|| internal("an operator without operands"))?;
        let (lhs, lh) = self.operands.pop().ok_or_else(|| internal("an operator without operands"))?;
        let at = span(&op);
        let sp = lhs.span.to(rhs.span);
        let (kind, height) = match then {
            Some((then, th)) => (
                ExprKind::Ternary { cond: Box::new(lhs), then: Box::new(then), els: Box::new(rhs) },
                lh.max(th).max(rh) + 1,
            ),
            // `c ?: d` repeats the condition: `c ? c : d`.
            None if op.as_rule() == Rule::ternary => (
                ExprKind::Ternary { cond: Box::new(lhs.clone()), then: Box::new(lhs), els: Box::new(rhs) },
                lh.max(rh) + 1,
            ),
            None => {
                let op = binop(op.as_rule())?;
                (ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, lh.max(rh) + 1)
            }
        };
        let node = self.node(kind, sp, height, at)?;
        self.operands.push(node);
        Ok(())
    }
}

fn binop(rule: Rule) -> Result<BinOp> {
    Ok(match rule {
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
        other => return Err(internal(&format!("{:?} is not a binary operator", other))),
    })
}

/// The first inner pair of a rule the grammar gives one.
fn inner<'i>(pair: &Pair<'i, Rule>) -> Result<Pair<'i, Rule>> {
    pair.clone().into_inner().next().ok_or_else(|| internal(&format!("{:?} without its part", pair.as_rule())))
}

/// A grammar and builder that disagree: a bug in rtrace, not in the program.
fn internal(what: &str) -> Diagnostic {
    Diagnostic::error_nowhere(format!("internal error, please report: the parser found {}", what))
}

/// Sub-expressions of a primary at `depth`, one level deeper; returns
/// them and the tallest one's height.
fn items<'i>(pairs: impl Iterator<Item = Pair<'i, Rule>>, depth: u32, blocks: Blocks) -> Result<(Vec<Expr>, u32)> {
    let mut height = 0;
    let mut out = Vec::new();
    for p in pairs {
        let (e, h) = tall(p, depth + 1, blocks)?;
        height = height.max(h);
        out.push(e);
    }
    Ok((out, height))
}

/// A primary at `depth`, with its height.
fn primary(pair: Pair<Rule>, depth: u32, blocks: Blocks) -> Result<Tall> {
    let sp = span(&pair);
    let leaf = |kind| Ok((Expr { kind, span: sp }, 1));
    let opening = Span::new(sp.start as usize, sp.start as usize + 1);
    let (kind, height) = match pair.as_rule() {
        Rule::int_lit => return leaf(ExprKind::Int(int_literal(&pair)?)),
        Rule::string => return leaf(ExprKind::Str(string_literal(pair)?)),
        Rule::boolean => return leaf(ExprKind::Bool(pair.as_str() == "true")),
        Rule::ident => return leaf(ExprKind::Ident(pair.as_str().to_string())),
        Rule::var => return leaf(ExprKind::Var(pair.as_str()[1..].to_string())),
        Rule::positional => {
            let n: u32 = pair.as_str()[1..]
                .parse()
                .map_err(|_| Diagnostic::error("positional parameter number too large", sp))?;
            if n == 0 {
                return Err(Diagnostic::error("`$0` is not a positional parameter; they start at `$1`", sp));
            }
            return leaf(ExprKind::Positional(n));
        }
        Rule::positional_count => return leaf(ExprKind::PositionalCount),
        Rule::map => {
            let mut name = String::new();
            let (mut keys, mut height) = (Vec::new(), 0);
            for p in pair.into_inner() {
                match p.as_rule() {
                    Rule::map_name => name = p.as_str().to_string(),
                    Rule::map_keys => (keys, height) = items(p.into_inner(), depth, blocks)?,
                    _ => {}
                }
            }
            (ExprKind::Map { name, keys }, height + 1)
        }
        Rule::call => {
            let mut inner = pair.into_inner();
            let name_pair = inner.next().ok_or_else(|| internal("a call without a name"))?;
            let (args, height) = items(inner, depth, blocks)?;
            (ExprKind::Call { name: name_pair.as_str().to_string(), name_span: span(&name_pair), args }, height + 1)
        }
        Rule::record => {
            let (mut fields, mut height) = (Vec::new(), 0);
            for item in pair.into_inner() {
                let mut parts = item.into_inner();
                let name = parts.next().ok_or_else(|| internal("a record field without a name"))?;
                let value = parts.next().ok_or_else(|| internal("a record field without a value"))?;
                let (e, h) = tall(value, depth + 1, blocks)?;
                height = height.max(h);
                fields.push((name.as_str().to_string(), e));
            }
            (ExprKind::Record(fields), height + 1)
        }
        Rule::paren => {
            let (mut items, height) = items(pair.into_inner(), depth, blocks)?;
            if items.len() == 1 {
                // Parentheses only group (keeping the inner span for messages),
                // but they count as a level, as they do in the parser's recursion.
                let e = items.pop().ok_or_else(|| internal("empty parentheses"))?;
                return Ok((e, height + 1));
            }
            (ExprKind::Tuple(items), height + 1)
        }
        Rule::sizeof_expr => {
            let arg = pair.into_inner().nth(1).ok_or_else(|| internal("`sizeof` without its argument"))?;
            if arg.as_rule() == Rule::cast_type {
                return leaf(ExprKind::SizeofType(type_name(arg)));
            }
            let (e, h) = tall(arg, depth + 1, blocks)?;
            (ExprKind::SizeofExpr(Box::new(e)), h + 1)
        }
        Rule::offsetof_expr => {
            let mut inner = pair.into_inner().skip(1);
            let t = inner.next().ok_or_else(|| internal("`offsetof` without a type"))?;
            let ty = match t.as_rule() {
                Rule::c_ident => TypeName { base: t.as_str().to_string(), pointer: 0, array: None, span: span(&t) },
                _ => type_name(t),
            };
            let field = inner.map(|f| f.as_str()).collect::<Vec<_>>().join(".");
            return leaf(ExprKind::Offsetof { ty, field });
        }
        // Its statements are bounded by the nesting limit from here on.
        Rule::if_expr | Rule::block_expr => return Ok((blocks(pair, depth + 1)?, 2)),
        other => return Err(internal(&format!("{:?} as a primary", other))),
    };
    if depth + height - 1 > MAX_NESTING {
        return Err(too_deep(opening));
    }
    Ok((Expr { kind, span: sp }, height))
}
