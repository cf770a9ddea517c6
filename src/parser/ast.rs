//! The untyped syntax tree the parser produces: every node keeps its `Span`.
//! Names are kept as written; the checker (`sema`) gives them meaning.

use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// `#include <...>` / `#include "..."` lines, accepted and mostly ignored.
    pub includes: Vec<Include>,
    /// Other preprocessor lines (`#define`, `#ifdef`, ...), in order.
    pub directives: Vec<Directive>,
    /// `config = { key = value; ... }`
    pub config: Vec<ConfigItem>,
    /// C `struct`/`union` definitions written in the script.
    pub structs: Vec<StructDef>,
    /// `import "file";` statements.
    pub imports: Vec<Import>,
    /// `macro name(params) { ... }`: expanded where they are used
    /// (`parser::macros`), then kept only for listing.
    pub macros: Vec<MacroDef>,
    /// `let @name = kind(max_entries);`
    pub map_decls: Vec<MapDecl>,
    /// C `enum` definitions written in the script.
    pub enums: Vec<EnumDef>,
    pub probes: Vec<Probe>,
}

/// `import "path";`
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub path: String,
    pub span: Span,
}

/// `macro name(params) { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct MacroDef {
    pub name: String,
    pub params: Vec<MacroParam>,
    /// Its statements, and the value it ends with (if it is an expression).
    pub body: BlockExpr,
    /// `macro name(...)`, up to the body.
    pub span: Span,
}

/// How a macro takes an argument: a variable it may assign (`$x`), a map
/// (`@m`), or any expression, inserted wherever the name appears (`x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacroParamKind {
    Var,
    Map,
    Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MacroParam {
    pub kind: MacroParamKind,
    /// Without its sigil.
    pub name: String,
    pub span: Span,
}

/// `let @name = kind(args);`
#[derive(Clone, Debug, PartialEq)]
pub struct MapDecl {
    pub name: String,
    /// `hash`, `lruhash`, `percpuhash`, `percpulruhash`, ...
    pub kind: String,
    pub args: Vec<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Include {
    /// The text between `<>` or `""`.
    pub path: String,
    pub span: Span,
}

/// `#name text`, e.g. `#define AF_INET 2` has name `define`, text `AF_INET 2`.
#[derive(Clone, Debug, PartialEq)]
pub struct Directive {
    pub name: String,
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConfigItem {
    pub key: String,
    pub value: ConfigValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    Int(u64),
    Str(String),
    Bool(bool),
    /// A bare word such as `perf` in `stack_mode = perf`.
    Ident(String),
}

/// `struct Name { fields };` or `union Name { ... };`
#[derive(Clone, Debug, PartialEq)]
pub struct StructDef {
    pub is_union: bool,
    pub name: String,
    pub fields: Vec<FieldDef>,
    /// `__attribute__((packed))`: members without padding, alignment 1.
    pub packed: bool,
    /// `__attribute__((aligned(N)))`.
    pub aligned: Option<u32>,
    pub span: Span,
}

/// `enum Name { A = 1, B, C };` (the name may be left out).
#[derive(Clone, Debug, PartialEq)]
pub struct EnumDef {
    pub name: String,
    /// Each constant with its value (C's rule: one more than the previous).
    pub variants: Vec<(String, i64)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub ty: TypeName,
    pub name: String,
    /// Array dimensions, outermost first: `char name[16]` has `[16]`.
    pub array: Vec<u64>,
    /// Bit-field width (`int x : 3`).
    pub bits: Option<u32>,
    /// The fields of a member struct defined in place, `struct { ... } name;`
    /// (then `ty` is `struct` or `union`, or `struct Name` when named).
    pub inline: Option<Box<StructDef>>,
    pub span: Span,
}

/// A C-ish type as written: `uint8`, `unsigned long`, `struct task_struct *`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeName {
    /// The base name with single spaces: `int`, `unsigned long`, `struct task_struct`,
    /// `uint64`, `const char` keeps no qualifiers (`const`/`volatile` are dropped).
    pub base: String,
    /// Number of `*` after the base.
    pub pointer: u8,
    /// A trailing array dimension (`int8[8]`; `int8[]`: sized from the
    /// value cast), in casts.
    pub array: Option<Option<u32>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// One or more comma-separated attach points.
    pub attach_points: Vec<AttachPoint>,
    pub predicate: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

/// An attach point split at top-level `:` (quotes respected, quotes removed):
/// `uprobe:./fib:main.Fibonacci` has provider `uprobe`, parts `["./fib", "main.Fibonacci"]`.
/// Wildcards (`*`, `?`) stay in the text; positional parameters (`$1`) are not expanded here.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachPoint {
    /// The whole attach point exactly as written.
    pub raw: String,
    pub provider: String,
    pub parts: Vec<String>,
    pub span: Span,
}

impl AttachPoint {
    /// Splits an attach point at `:` outside quotes, removing the quotes;
    /// `\"` in quotes is a quote (`usdt:./bin:test:"\"probe1\""`).
    pub fn split(raw: &str, span: Span) -> AttachPoint {
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
        AttachPoint { raw: raw.to_string(), provider, parts: fields, span }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Expr(Expr),
    /// `target = value`, or `target op= value` when `op` is set (`+=` has `Some(Add)`).
    /// The target is a map (`@x`, `@x[k]`), a variable (`$x`), or any other
    /// expression the checker will reject with a clear error.
    Assign {
        target: Expr,
        op: Option<BinOp>,
        value: Expr,
    },
    /// `if (c) { } else if (d) { } else { }`: an `else if` is an `else` block holding one `If`.
    If {
        cond: Expr,
        then: Block,
        els: Option<Block>,
    },
    /// `unroll (n) { }`
    Unroll {
        count: Expr,
        body: Block,
    },
    /// `while (c) { }`
    While {
        cond: Expr,
        body: Block,
    },
    /// `for ($kv : @map) { }` (bpftrace 0.21+)
    ForMap {
        var: String,
        map: Expr,
        body: Block,
    },
    /// `for ($i : start..end) { }` (bpftrace 0.24+)
    ForRange {
        var: String,
        start: Expr,
        end: Expr,
        body: Block,
    },
    Break,
    Continue,
    Return,
    /// A `{ }` block used as a statement.
    Block(Block),
    /// `let $x;`, `let $x = value;`, `let $x: type = value;`: declares `$x`
    /// in the enclosing block.
    Let {
        var: String,
        var_span: Span,
        ty: Option<DeclType>,
        value: Option<Expr>,
    },
    /// `_ = expr;`
    Discard(Expr),
}

/// The type a `let` gives its variable.
#[derive(Clone, Debug, PartialEq)]
pub enum DeclType {
    Name(TypeName),
    /// `typeof(expr)`
    Typeof(Box<Expr>),
}

/// A block used as a value: `{ stmts; value }`. `value` is `None` when the
/// block ends with a statement (its value is then nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockExpr {
    pub stmts: Vec<Stmt>,
    pub value: Option<Box<Expr>>,
    /// Set when the block is a macro's body expanded at a use.
    pub expansion: Option<Expansion>,
}

/// Where a block came from when it is a macro's expanded body: diagnostics
/// inside it point at the definition and name the use.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    pub name: String,
    /// The use: `add1(x)` (or the bare name `one`).
    pub call: Span,
    /// The macro's `macro name(...)`.
    pub definition: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// Integer literal value (decimal, hex, octal, `1e6`, with `_` separators removed).
    Int(u64),
    /// String literal bytes after escape processing (no terminating NUL).
    Str(Vec<u8>),
    /// `true` / `false`
    Bool(bool),
    /// A bare identifier: a builtin (`pid`, `comm`, `arg0`, `args`), or an enum/type name.
    Ident(String),
    /// `$name`
    Var(String),
    /// `$1`, `$2`, ...
    Positional(u32),
    /// `$#`
    PositionalCount,
    /// `@name`, `@name[k]`, `@name[k1, k2]`; the anonymous map `@` has name `""`.
    Map {
        name: String,
        keys: Vec<Expr>,
    },
    /// `name(args)`; `name_span` covers just the name.
    Call {
        name: String,
        name_span: Span,
        args: Vec<Expr>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `++x`, `x++`, `--x`, `x--`
    IncDec {
        target: Box<Expr>,
        increment: bool,
        prefix: bool,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
    },
    /// `(type) expr`
    Cast {
        ty: TypeName,
        expr: Box<Expr>,
    },
    /// `expr.field` (`arrow == false`) or `expr->field` (`arrow == true`).
    /// Tuple access `$t.0` is a field named `"0"`.
    Field {
        expr: Box<Expr>,
        field: String,
        field_span: Span,
        arrow: bool,
    },
    /// `expr[index]`
    Index {
        expr: Box<Expr>,
        index: Box<Expr>,
    },
    /// `(a, b, ...)` with at least two elements.
    Tuple(Vec<Expr>),
    /// `(name = a, other = b, ...)`
    Record(Vec<(String, Expr)>),
    /// `sizeof(type)` or `sizeof(expr)`
    SizeofType(TypeName),
    SizeofExpr(Box<Expr>),
    /// `offsetof(struct X, field)`; `field` may be a path (`bar.x`).
    Offsetof {
        ty: TypeName,
        field: String,
    },
    /// `{ stmts; value }`, and a macro's body where it is used.
    Block(Box<BlockExpr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
    /// `*p`
    Deref,
    /// `&x`
    AddrOf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `&&` (short-circuit)
    And,
    /// `||` (short-circuit)
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
}

impl UnOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::Not => "!",
            UnOp::BitNot => "~",
            UnOp::Deref => "*",
            UnOp::AddrOf => "&",
        }
    }
}

/// Calls `f` on every expression of a block, outermost first.
pub fn walk_block(block: &Block, f: &mut impl FnMut(&Expr)) {
    walk_stmts(&block.stmts, f)
}

fn walk_stmts(stmts: &[Stmt], f: &mut impl FnMut(&Expr)) {
    for s in stmts {
        match &s.kind {
            StmtKind::Expr(e) | StmtKind::Unroll { count: e, .. } | StmtKind::Discard(e) => walk_expr(e, f),
            StmtKind::Let { value: Some(e), .. } => walk_expr(e, f),
            StmtKind::Assign { target, value, .. } => {
                walk_expr(target, f);
                walk_expr(value, f);
            }
            StmtKind::If { cond, .. } | StmtKind::While { cond, .. } => walk_expr(cond, f),
            StmtKind::ForMap { map, .. } => walk_expr(map, f),
            StmtKind::ForRange { start, end, .. } => {
                walk_expr(start, f);
                walk_expr(end, f);
            }
            _ => {}
        }
        match &s.kind {
            StmtKind::If { then, els, .. } => {
                walk_block(then, f);
                if let Some(b) = els {
                    walk_block(b, f);
                }
            }
            StmtKind::Unroll { body, .. }
            | StmtKind::While { body, .. }
            | StmtKind::ForMap { body, .. }
            | StmtKind::ForRange { body, .. }
            | StmtKind::Block(body) => walk_block(body, f),
            _ => {}
        }
    }
}

/// Calls `f` on `e` and every expression inside it.
pub fn walk_expr(e: &Expr, f: &mut impl FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Map { keys, .. } => keys.iter().for_each(|k| walk_expr(k, f)),
        ExprKind::Call { args, .. } | ExprKind::Tuple(args) => args.iter().for_each(|a| walk_expr(a, f)),
        ExprKind::Record(items) => items.iter().for_each(|(_, a)| walk_expr(a, f)),
        ExprKind::Unary { expr, .. }
        | ExprKind::Cast { expr, .. }
        | ExprKind::Field { expr, .. }
        | ExprKind::SizeofExpr(expr)
        | ExprKind::IncDec { target: expr, .. } => walk_expr(expr, f),
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Index { expr: lhs, index: rhs } => {
            walk_expr(lhs, f);
            walk_expr(rhs, f);
        }
        ExprKind::Ternary { cond, then, els } => {
            walk_expr(cond, f);
            walk_expr(then, f);
            walk_expr(els, f);
        }
        ExprKind::Block(b) => {
            walk_stmts(&b.stmts, f);
            if let Some(v) = &b.value {
                walk_expr(v, f);
            }
        }
        _ => {}
    }
}
