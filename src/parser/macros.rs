//! Macro expansion (bpftrace 0.23+): every use of a macro, `name(args)` or a
//! bare `name` for a macro without parameters, becomes a block expression
//! holding a copy of the macro's body, before anything is checked.
//!
//! Hygiene, as bpftrace has it: a `$var` parameter is the caller's variable
//! (the body may assign it), a `@map` parameter the caller's map, and a
//! plain `name` parameter stands for the expression passed, inserted
//! wherever `name` appears. The body sees no other map, and the variables
//! it assigns or declares are its own (renamed `$$macro_name`).

use super::ast::*;
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use std::collections::{HashMap, HashSet};

/// Expands every macro use in the probes of `program`. `builtin` tells the
/// names the language itself defines: a use of one whose arguments fit no
/// macro of that name is the builtin, not an error (`macro cpu(x)` leaves
/// `cpu()` alone).
pub fn expand(program: &mut Program, builtin: &dyn Fn(&str) -> bool) -> Result<(), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let registry = Registry::new(&program.macros, &mut diags);
    let mut stack = Vec::new();
    for probe in &mut program.probes {
        let mut x = Expander::new(&registry, builtin, &mut stack, &mut diags, None);
        if let Some(p) = &mut probe.predicate {
            x.expr(p);
        }
        x.block(&mut probe.body.stmts);
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags)
    }
}

struct Registry<'m> {
    macros: HashMap<&'m str, Vec<&'m MacroDef>>,
}

impl<'m> Registry<'m> {
    fn new(defs: &'m [MacroDef], diags: &mut Vec<Diagnostic>) -> Registry<'m> {
        let mut macros: HashMap<&str, Vec<&MacroDef>> = HashMap::new();
        for def in defs {
            let same = macros
                .get(def.name.as_str())
                .and_then(|ms| ms.iter().find(|m| kinds(&m.params) == kinds(&def.params)).copied());
            if let Some(first) = same {
                diags.push(
                    Diagnostic::error(
                        format!("macro `{}` is defined twice with the same parameters", def.name),
                        def.span,
                    )
                    .with_label(first.span, "first defined here"),
                );
                continue;
            }
            if let Some(d) = repeated_param(def) {
                diags.push(d);
                continue;
            }
            macros.entry(def.name.as_str()).or_default().push(def);
        }
        Registry { macros }
    }

    /// The macro a use with `args` calls, or the closest one (for the error).
    fn lookup(&self, name: &str, args: &[Expr]) -> Lookup<'m> {
        let Some(candidates) = self.macros.get(name) else { return Lookup::None };
        let mut best: Option<(usize, &MacroDef)> = None;
        for m in candidates {
            let d = distance(m, args);
            if d == 0 {
                return Lookup::Exact(m);
            }
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, m));
            }
        }
        best.map_or(Lookup::None, |(_, m)| Lookup::Closest(m))
    }
}

enum Lookup<'m> {
    None,
    Exact(&'m MacroDef),
    Closest(&'m MacroDef),
}

fn kinds(params: &[MacroParam]) -> Vec<MacroParamKind> {
    params.iter().map(|p| p.kind).collect()
}

fn repeated_param(def: &MacroDef) -> Option<Diagnostic> {
    let mut seen = HashSet::new();
    def.params
        .iter()
        .find(|p| !seen.insert((p.kind, p.name.as_str())))
        .map(|p| Diagnostic::error(format!("macro `{}` has two parameters named `{}`", def.name, sigil(p)), p.span))
}

fn sigil(p: &MacroParam) -> String {
    match p.kind {
        MacroParamKind::Var => format!("${}", p.name),
        MacroParamKind::Map => format!("@{}", p.name),
        MacroParamKind::Expr => p.name.clone(),
    }
}

/// How far `args` are from what `m` takes: a wrong count dominates, then
/// one per argument of the wrong kind (a `$var` or `@map` parameter takes
/// only a variable or a map; a plain one takes anything).
fn distance(m: &MacroDef, args: &[Expr]) -> usize {
    let count = 1024 * m.params.len().abs_diff(args.len());
    count + m.params.iter().zip(args).filter(|(p, a)| !fits(p, a)).count()
}

fn fits(p: &MacroParam, a: &Expr) -> bool {
    match p.kind {
        MacroParamKind::Var => matches!(a.kind, ExprKind::Var(_)),
        MacroParamKind::Map => matches!(&a.kind, ExprKind::Map { keys, .. } if keys.is_empty()),
        MacroParamKind::Expr => true,
    }
}

/// The renaming done inside one expanded body.
struct Hygiene {
    /// The macro's name, and how deep its use is nested in other macros.
    name: String,
    depth: usize,
    /// `$param` → the caller's variable.
    vars: HashMap<String, String>,
    /// `@param` → the caller's map.
    maps: HashMap<String, String>,
    /// `name` → the expression passed.
    exprs: HashMap<String, Expr>,
    /// Variables the body assigns or declares: renamed.
    own: HashSet<String>,
    /// The macro's definition, for "not passed in" errors.
    definition: Span,
}

impl Hygiene {
    fn own_name(&self, var: &str) -> String {
        if self.depth <= 1 {
            format!("${}_{}", self.name, var)
        } else {
            format!("${}_{}_{}", self.name, self.depth, var)
        }
    }

    fn var(&mut self, name: &mut String, assigned: bool) {
        if let Some(caller) = self.vars.get(name.as_str()) {
            *name = caller.clone();
            return;
        }
        if assigned {
            self.own.insert(name.clone());
        }
        if self.own.contains(name.as_str()) {
            *name = self.own_name(name);
        }
    }
}

struct Expander<'a, 'm> {
    registry: &'a Registry<'m>,
    builtin: &'a dyn Fn(&str) -> bool,
    /// The macros being expanded, outermost first (recursion is refused).
    stack: &'a mut Vec<&'m MacroDef>,
    diags: &'a mut Vec<Diagnostic>,
    /// `None` outside any macro body, and inside an expression passed to a
    /// macro (that expression is the caller's code).
    hygiene: Option<Hygiene>,
}

impl<'a, 'm> Expander<'a, 'm> {
    fn new(
        registry: &'a Registry<'m>,
        builtin: &'a dyn Fn(&str) -> bool,
        stack: &'a mut Vec<&'m MacroDef>,
        diags: &'a mut Vec<Diagnostic>,
        hygiene: Option<Hygiene>,
    ) -> Self {
        Expander { registry, builtin, stack, diags, hygiene }
    }

    fn block(&mut self, stmts: &mut [Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &mut Stmt) {
        match &mut s.kind {
            StmtKind::Expr(e) | StmtKind::Discard(e) => self.expr(e),
            // As in bpftrace, a variable the body assigns is its own from
            // the assignment on, its value included (`$y = $y + 1`).
            StmtKind::Assign { target, value, .. } => {
                match &mut target.kind {
                    ExprKind::Var(name) => {
                        if let Some(h) = &mut self.hygiene {
                            h.var(name, true);
                        }
                    }
                    _ => self.expr(target),
                }
                self.expr(value);
            }
            StmtKind::Let { var, var_span, ty, value } => {
                if let Some(h) = &mut self.hygiene {
                    if h.vars.contains_key(var.as_str()) {
                        self.diags.push(Diagnostic::error(
                            format!("`let ${}` shadows the macro's parameter `${}`", var, var),
                            *var_span,
                        ));
                        return;
                    }
                    h.var(var, true);
                }
                if let Some(v) = value {
                    self.expr(v);
                }
                if let Some(DeclType::Typeof(e)) = ty {
                    self.expr(e);
                }
            }
            StmtKind::If { cond, then, els } => {
                self.expr(cond);
                self.block(&mut then.stmts);
                if let Some(b) = els {
                    self.block(&mut b.stmts);
                }
            }
            StmtKind::Unroll { count: e, body } | StmtKind::While { cond: e, body } => {
                self.expr(e);
                self.block(&mut body.stmts);
            }
            StmtKind::ForMap { var, map, body } => {
                self.expr(map);
                if let Some(h) = &mut self.hygiene {
                    h.var(var, true);
                }
                self.block(&mut body.stmts);
            }
            StmtKind::ForRange { var, start, end, body } => {
                self.expr(start);
                self.expr(end);
                if let Some(h) = &mut self.hygiene {
                    h.var(var, true);
                }
                self.block(&mut body.stmts);
            }
            StmtKind::Block(b) => self.block(&mut b.stmts),
            StmtKind::Break | StmtKind::Continue | StmtKind::Return => {}
        }
    }

    fn expr(&mut self, e: &mut Expr) {
        match &mut e.kind {
            ExprKind::Var(name) => {
                if let Some(h) = &mut self.hygiene {
                    h.var(name, false);
                }
            }
            ExprKind::Map { name, keys } => {
                keys.iter_mut().for_each(|k| self.expr(k));
                if let Some(h) = &self.hygiene {
                    match h.maps.get(name.as_str()) {
                        Some(caller) => *name = caller.clone(),
                        None => {
                            let shown = if name.is_empty() { "@".to_string() } else { format!("@{}", name) };
                            self.diags.push(
                                Diagnostic::error(
                                    format!("macro `{}` uses the map `{}`, which it was not passed", h.name, shown),
                                    e.span,
                                )
                                .with_label(h.definition, "the macro")
                                .with_help("maps must be passed to a macro as arguments: `macro m(@x) { ... }`"),
                            );
                        }
                    }
                }
            }
            ExprKind::Ident(name) => {
                if let Some(passed) = self.hygiene.as_ref().and_then(|h| h.exprs.get(name.as_str())) {
                    // The caller's expression: its names are the caller's.
                    let mut inserted = passed.clone();
                    let mut caller = Expander::new(self.registry, self.builtin, self.stack, self.diags, None);
                    caller.expr(&mut inserted);
                    *e = inserted;
                    return;
                }
                let name = name.clone();
                self.use_macro(e, &name, Vec::new(), true);
            }
            ExprKind::Call { name, args, .. } => {
                args.iter_mut().for_each(|a| self.expr(a));
                let (name, args) = (name.clone(), args.clone());
                self.use_macro(e, &name, args, false);
            }
            ExprKind::Unary { expr, .. }
            | ExprKind::Cast { expr, .. }
            | ExprKind::Field { expr, .. }
            | ExprKind::SizeofExpr(expr)
            | ExprKind::IncDec { target: expr, .. } => self.expr(expr),
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Index { expr: lhs, index: rhs } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Ternary { cond, then, els } => {
                self.expr(cond);
                self.expr(then);
                self.expr(els);
            }
            ExprKind::Tuple(items) => items.iter_mut().for_each(|i| self.expr(i)),
            ExprKind::Record(fields) => fields.iter_mut().for_each(|(_, v)| self.expr(v)),
            ExprKind::Block(b) => {
                self.block(&mut b.stmts);
                if let Some(v) = &mut b.value {
                    self.expr(v);
                }
            }
            ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Positional(_)
            | ExprKind::PositionalCount
            | ExprKind::SizeofType(_)
            | ExprKind::Offsetof { .. } => {}
        }
    }

    /// Replaces `e`, a use of `name` (a bare identifier when `bare`), by the
    /// expanded body of the macro it calls, if it calls one.
    fn use_macro(&mut self, e: &mut Expr, name: &str, args: Vec<Expr>, bare: bool) {
        let def = match self.registry.lookup(name, &args) {
            Lookup::None => return,
            Lookup::Exact(def) => def,
            Lookup::Closest(_) if (self.builtin)(name) => return,
            Lookup::Closest(def) => {
                self.diags.push(mismatch(def, e.span, &args, bare));
                return;
            }
        };
        if let Some(at) = self.stack.iter().position(|m| std::ptr::eq(*m, def)) {
            let chain: Vec<&str> =
                self.stack[at..].iter().map(|m| m.name.as_str()).chain(std::iter::once(name)).collect();
            self.diags.push(
                Diagnostic::error(format!("recursive macro call: {}", chain.join(" > ")), e.span)
                    .with_label(def.span, "macros cannot call themselves"),
            );
            return;
        }
        let mut h = Hygiene {
            name: def.name.clone(),
            depth: self.stack.len() + 1,
            vars: HashMap::new(),
            maps: HashMap::new(),
            exprs: HashMap::new(),
            own: HashSet::new(),
            definition: def.span,
        };
        for (p, a) in def.params.iter().zip(args) {
            match (&p.kind, a.kind) {
                (MacroParamKind::Var, ExprKind::Var(v)) => {
                    h.vars.insert(p.name.clone(), v);
                }
                (MacroParamKind::Map, ExprKind::Map { name, .. }) => {
                    h.maps.insert(p.name.clone(), name);
                }
                (_, kind) => {
                    // A variable or map passed for an expression is read,
                    // never assigned through it: `{ $x }`.
                    let arg = Expr { kind, span: a.span };
                    let arg = match arg.kind {
                        ExprKind::Var(_) | ExprKind::Map { .. } => Expr {
                            span: arg.span,
                            kind: ExprKind::Block(Box::new(BlockExpr {
                                stmts: vec![],
                                value: Some(Box::new(arg)),
                                expansion: None,
                            })),
                        },
                        _ => arg,
                    };
                    h.exprs.insert(p.name.clone(), arg);
                }
            }
        }
        let mut body = def.body.clone();
        self.stack.push(def);
        let mut inner = Expander::new(self.registry, self.builtin, self.stack, self.diags, Some(h));
        inner.block(&mut body.stmts);
        if let Some(v) = &mut body.value {
            inner.expr(v);
        }
        self.stack.pop();
        // A body that is only a value is that value (so `printf(fmt())`
        // still sees a string literal).
        if body.stmts.is_empty() {
            if let Some(v) = body.value {
                *e = Expr { span: e.span, ..*v };
                return;
            }
        }
        body.expansion = Some(Expansion { name: def.name.clone(), call: e.span, definition: def.span });
        e.kind = ExprKind::Block(Box::new(body));
    }
}

/// A use whose arguments fit no definition: what the closest one expects.
fn mismatch(def: &MacroDef, at: Span, args: &[Expr], bare: bool) -> Diagnostic {
    let name = &def.name;
    if def.params.len() != args.len() {
        let how = if bare { "used without arguments".to_string() } else { format!("given {}", args.len()) };
        return Diagnostic::error(format!("macro `{}` takes {} argument(s), {}", name, def.params.len(), how), at)
            .with_label(def.span, "defined here");
    }
    let (p, a) = def.params.iter().zip(args).find(|(p, a)| !fits(p, a)).expect("a mismatch has a mismatched argument");
    let wants = match p.kind {
        MacroParamKind::Var => "a variable",
        _ => "a map",
    };
    let got = match &a.kind {
        ExprKind::Var(_) => "a variable",
        ExprKind::Map { .. } => "a map",
        _ => "an expression",
    };
    Diagnostic::error(format!("macro `{}` takes {} for `{}`, but this is {}", name, wants, sigil(p), got), a.span)
        .with_label(p.span, "the parameter")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(src: &str) -> Result<String, Vec<String>> {
        let mut p = crate::parser::parse(src).map_err(|d| d.into_iter().map(|d| d.message).collect::<Vec<_>>())?;
        expand(&mut p, &|n| matches!(n, "cpu" | "comm"))
            .map_err(|d| d.into_iter().map(|d| d.message).collect::<Vec<_>>())?;
        let text = crate::parser::dump::dump(&p);
        Ok(text[text.find("(probe").unwrap()..].to_string())
    }

    #[test]
    fn parameters_are_the_callers_names() {
        let out = expanded("macro inc($x, @m) { $x += 1; @m = 1; $y = 2; } begin { inc($a, @b); }").unwrap();
        assert!(out.contains("(+= $a 1); (= @b 1); (= $$inc_y 2)"), "{}", out);
    }

    #[test]
    fn expression_parameters_are_inserted_where_named() {
        let out = expanded("macro twice(x) { x + x } begin { print(twice(1 + 2)); }").unwrap();
        assert!(out.contains("(print (+ (+ 1 2) (+ 1 2)))"), "{}", out);
    }

    #[test]
    fn nested_uses_are_renamed_by_depth() {
        let out = expanded("macro a() { $v = 1; $v } macro b() { $v = a(); $v } begin { print(b()); }").unwrap();
        assert!(out.contains("$$b_v") && out.contains("$$a_2_v"), "{}", out);
    }

    #[test]
    fn builtins_stay_when_no_macro_fits() {
        let out = expanded("macro cpu(x) { x } begin { print(cpu); print(cpu(\"hi\")); }").unwrap();
        assert!(out.contains("(print cpu)") && out.contains("(print \"hi\")"), "{}", out);
    }

    #[test]
    fn errors() {
        let e = |src| expanded(src).unwrap_err().join("\n");
        assert!(e("macro m() { @x = 1; } begin { m(); }").contains("not passed"));
        assert!(e("macro m() { m() } begin { m(); }").contains("recursive macro call: m > m"));
        assert!(e("macro m($x) { $x } begin { m(1); }").contains("takes a variable for `$x`"));
        assert!(e("macro m(a) { a } begin { m(); }").contains("takes 1 argument(s), given 0"));
        assert!(e("macro m() { 1 } macro m() { 2 } begin { m(); }").contains("defined twice"));
    }
}
