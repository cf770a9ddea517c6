//! The checker's driver and statements: passes until types settle, probes
//! grouped into programs, statements typed and lowered to `TStmt`.

use super::manifest::{Action, AttachInfo, Manifest, MapInfo, MapValue};
use super::typed::*;
use super::{Checked, Env, ProgKind, ProgramDef};
use crate::diagnostic::Diagnostic;
use crate::parser::ast::{self, walk_block, walk_expr, BinOp, Expr, ExprKind, Stmt, StmtKind};
use crate::probe::{Detail, ProbeSpec, Resolved, Return, UprobeSite};
use crate::span::Span;
use crate::types::Type;
use std::collections::HashMap;

/// A bound on the passes before the last: far more than any program needs
/// (each pass that changes something learns or widens a type, so passes grow
/// with the length of the longest chain of maps and variables typed from one
/// another); reaching it means a checker bug, reported as such.
const MAX_PASSES: usize = 1000;

/// The longest `max_strlen`: a string (and the frame holding it) must fit
/// a BPF map value, at most 4 MiB (bpftrace sets no limit of its own).
const MAX_STRLEN: u64 = 1 << 20;

/// Statements `unroll` may produce in one probe, nested unrolls multiplied:
/// `unroll (100) { unroll (100) { unroll (100) { ... } } }` would otherwise
/// hang the compiler on a million copies (bpftrace bounds each count by 100
/// and nothing else).
pub const MAX_UNROLLED: usize = 1000;

/// A map as learned so far: key and value types may still be unknown.
#[derive(Clone, Debug)]
pub(super) struct MapDecl {
    pub name: String,
    pub keys: Option<Vec<Type>>,
    pub value: Option<MapValue>,
    pub span: Span,
    /// Where the map is first assigned (an aggregation or a value).
    pub assigned: Option<Span>,
    /// `len()` reads the map's entry count.
    pub counted: bool,
    /// `delete()`, `clear()` or `zero()` takes entries away (`MapInfo::shrinks`).
    pub shrinks: bool,
    /// `let @x = kind(n);`, and where.
    pub declared: Option<(super::manifest::Declared, Span)>,
    /// Used by a probe (a declared map that is not is warned about).
    pub used: bool,
}

/// The attach points one program serves.
pub(super) struct Group<'a> {
    pub probe: &'a ast::Probe,
    pub probe_index: usize,
    pub kind: ProgKind,
    pub resolved: Vec<&'a Resolved>,
}

pub(super) struct Checker<'a> {
    pub env: &'a Env,
    pub final_pass: bool,
    pub diags: Vec<Diagnostic>,
    pub maps: Vec<MapDecl>,
    pub map_ids: HashMap<String, MapId>,
    pub actions: Vec<Action>,
    /// Something new was learned about a map or variable type in this pass.
    pub changed: bool,
    /// An unset map reads as a zero of the type its other operands give it.
    /// Off until the types the program states have settled, so that such a
    /// guess never decides a type that an assignment elsewhere states.
    pub zero_unset: bool,
    /// Variable types learned in earlier passes, by program and variable
    /// (variables are numbered in the order a pass meets them).
    pub var_types: HashMap<(usize, VarId), Type>,
    pub strlen: u32,
    pub max_map_keys: u32,
    /// Every kind of stack collected, for the Manifest.
    pub stacks: Vec<crate::types::StackType>,
    // The program being checked.
    pub prog: usize,
    pub group: Option<&'a Group<'a>>,
    pub vars: Vec<VarInfo>,
    pub scopes: super::scope::Scopes,
    pub loop_depth: u32,
    /// Statements `unroll` has produced in the program being checked.
    pub unrolled: usize,
    /// Statements that must run before the statement being checked: those
    /// of the block expressions in it (`print({ $a = 1; $a })`), hoisted.
    pub pre: Vec<TStmt>,
    /// The expression being checked may have no value (it is a statement,
    /// or the branch or block value of one), so statements such as
    /// `printf()` may stand in it.
    pub void_ok: bool,
    /// The macro uses whose expanded bodies are being checked, innermost
    /// last: diagnostics inside them name the use.
    pub expansions: Vec<ast::Expansion>,
    /// Structs and unions defined in the script, by `struct Name`.
    pub records: HashMap<String, std::sync::Arc<crate::types::Record>>,
    /// Enums defined in the script (by `enum Name`) and their constants.
    pub enums: HashMap<String, std::sync::Arc<crate::types::EnumType>>,
    pub enum_constants: HashMap<String, (std::sync::Arc<crate::types::EnumType>, u64)>,
    /// `#define NAME value` of the script: an integer or a string.
    pub defines: HashMap<String, String>,
    /// The config variables (`config = { ... }`, `BPFTRACE_*`).
    pub config: crate::config::Config,
    /// Inside this many branches a constant condition never takes: a
    /// `fail()` or `static_assert()` there does not fail.
    pub unreachable: u32,
    /// The options `getopt()` asks for, with their descriptions.
    pub getopts: Vec<(String, String)>,
}

pub(super) fn run(program: &ast::Program, env: &Env) -> Result<Checked, Vec<Diagnostic>> {
    let mut ck = Checker {
        env,
        final_pass: false,
        diags: Vec::new(),
        maps: Vec::new(),
        map_ids: HashMap::new(),
        actions: Vec::new(),
        changed: false,
        zero_unset: false,
        var_types: HashMap::new(),
        strlen: env.strlen,
        max_map_keys: env.max_map_keys,
        stacks: Vec::new(),
        prog: 0,
        group: None,
        records: HashMap::new(),
        enums: HashMap::new(),
        enum_constants: HashMap::new(),
        // The script's own `#define`s win over the headers'.
        defines: env
            .header_defines
            .clone()
            .into_iter()
            .chain(
                program
                    .directives
                    .iter()
                    .filter(|d| d.name == "define")
                    .filter_map(|d| d.text.trim().split_once(char::is_whitespace))
                    .map(|(name, value)| (name.to_string(), value.trim().to_string())),
            )
            .collect(),
        vars: Vec::new(),
        scopes: Default::default(),
        loop_depth: 0,
        unrolled: 0,
        pre: Vec::new(),
        void_ok: false,
        expansions: Vec::new(),
        config: Default::default(),
        unreachable: 0,
        getopts: Vec::new(),
    };
    ck.apply_config(program);
    ck.final_pass = true;
    ck.define_enums(&program.enums);
    ck.define_records(&program.structs);
    ck.imports(&program.imports);
    ck.declare_maps(&program.map_decls);
    ck.final_pass = false;
    let (groups, warnings) = groups(program, env)?;
    ck.diags.extend(warnings);
    // Two fixed points: walk until a pass learns nothing, so a map may be
    // read before (in the text, or in an earlier probe) the assignment that
    // types it; then type what only reads itself or other untyped maps
    // (`@n = @n + 1`) from the operands around those reads.
    let mut settled = ck.settle(&groups);
    if ck.maps.iter().any(|m| m.value.is_none()) {
        ck.zero_unset = true;
        settled &= ck.settle(&groups);
    }
    ck.final_pass = true;
    let config_diags = std::mem::take(&mut ck.diags);
    let programs = ck.pass(&groups);
    ck.diags.splice(0..0, config_diags);
    if !settled {
        ck.diags.push(Diagnostic::error_nowhere(format!(
            "internal error, please report: map and variable types did not settle after {} passes",
            MAX_PASSES
        )));
    }
    ck.check_declared_maps();
    ck.check_named_options();
    // Only worth saying when nothing else went wrong: a failed assignment
    // leaves its map without a type too.
    if !ck.diags.iter().any(Diagnostic::is_error) {
        let untyped: Vec<Diagnostic> = ck.maps.iter().filter(|d| d.value.is_none()).map(untyped_map).collect();
        ck.diags.extend(untyped);
    }
    let warnings: Vec<Diagnostic> = ck.diags.iter().filter(|d| !d.is_error()).cloned().collect();
    if ck.diags.iter().any(Diagnostic::is_error) {
        return Err(ck.diags);
    }
    let manifest = Manifest {
        maps: ck
            .maps
            .iter()
            .map(|d| MapInfo {
                name: d.name.clone(),
                keys: d.keys.clone().unwrap_or_default(),
                value: d.value.clone().expect("checked above"),
                span: d.span,
                counted: d.counted,
                shrinks: d.shrinks,
                declared: d.declared.map(|(decl, _)| decl),
            })
            .collect(),
        actions: ck.actions,
        attach: groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| {
                g.resolved.iter().enumerate().map(move |(site, r)| AttachInfo {
                    program: i,
                    resolved: (*r).clone(),
                    cookie: site as u64,
                })
            })
            .collect(),
        strlen: ck.strlen,
        max_map_keys: ck.max_map_keys,
        config: ck.config,
        stacks: ck.stacks,
        arch: env.arch,
    };
    Ok(Checked { programs, manifest, warnings })
}

/// Why a map has no type after the last pass: nothing assigns it, or every
/// value assigned to it is read from itself or from other untyped maps.
fn untyped_map(decl: &MapDecl) -> Diagnostic {
    let name = &decl.name;
    match decl.assigned {
        None => Diagnostic::error(format!("map `{}` is read but never assigned", name), decl.span),
        Some(span) => Diagnostic::error(
            format!(
                "cannot infer the type of `{}`: it is only assigned from itself or other maps without a type",
                name
            ),
            span,
        )
        .with_help(format!(
            "an unset map reads as zero; give `{}` a type with an assignment such as `{} = 0`",
            name, name
        )),
    }
}

/// Splits every probe's attach points into programs: one per program kind, or
/// one per attach point when the body reads something that differs between
/// attach points (`args`, `probe`, `func`, or arguments of binaries with
/// different calling conventions). The return instructions of one function
/// are one attach point in that sense: they share one program.
fn groups<'a>(program: &'a ast::Program, env: &'a Env) -> Result<Groups<'a>, Vec<Diagnostic>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    let mut diags = Vec::new();
    let mut warnings = Vec::new();
    for (i, probe) in program.probes.iter().enumerate() {
        let resolved: Vec<&Resolved> = match go_kernel_uretprobes(probe, &env.resolved[i], env.unsafe_calls) {
            Ok((kept, warning)) => {
                warnings.extend(warning);
                kept
            }
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let langs: Vec<_> = resolved
            .iter()
            .filter_map(|r| match &r.detail {
                Detail::Uprobe(site) => Some(site.lang),
                _ => None,
            })
            .collect();
        let usdt_args: Vec<_> = resolved
            .iter()
            .filter_map(|r| match &r.detail {
                Detail::Usdt(site) => Some(&site.args),
                _ => None,
            })
            .collect();
        // `args` and the argument registers differ between attach points;
        // `probe` and `func` only need to know which one fired, which the
        // attach cookie tells where the kernel gives one. `probetype` is
        // a constant of the group's first attach point.
        let per_site = mentions(probe, &["args", "probetype"])
            || langs.windows(2).any(|w| w[0] != w[1])
            || usdt_args.windows(2).any(|w| w[0] != w[1]);
        let named = mentions(probe, &["probe", "func"]);
        for r in resolved {
            let kind = match prog_kind(r) {
                Some(k) => k,
                None => {
                    let msg = format!("`{}` probes are not supported yet", r.spec.provider());
                    let span = probe
                        .attach_points
                        .iter()
                        .find(|ap| r.name.contains(&ap.provider))
                        .map_or(probe.span, |ap| ap.span);
                    diags.push(Diagnostic::error(msg, span));
                    continue;
                }
            };
            let split = per_site || (named && !kind.has_attach_cookie());
            let joins = |g: &&mut Group<'_>| {
                g.probe_index == i && g.kind == kind && (!split || same_function_returns(g.resolved[0], r))
            };
            match out.iter_mut().find(joins) {
                Some(g) => g.resolved.push(r),
                None => out.push(Group { probe, probe_index: i, kind, resolved: vec![r] }),
            }
        }
    }
    if diags.is_empty() {
        Ok((out, warnings))
    } else {
        Err(diags)
    }
}

/// The programs to generate, and what the checker warns of while grouping.
type Groups<'a> = (Vec<Group<'a>>, Vec<Diagnostic>);

/// A probe's attach points without the kernel uretprobes on Go functions
/// whose return instructions were not found: Go moves goroutine stacks, and
/// the return address the kernel plants on one then kills the program. A
/// function named is an error, those a wildcard matched are left out with
/// a warning; `--unsafe` keeps them all, with a warning.
fn go_kernel_uretprobes<'a>(
    probe: &ast::Probe,
    resolved: &'a [Resolved],
    unsafe_calls: bool,
) -> Result<(Vec<&'a Resolved>, Option<Diagnostic>), Diagnostic> {
    fn unsafe_site(r: &Resolved) -> Option<(&UprobeSite, &str, bool)> {
        match &r.detail {
            Detail::Uprobe(site @ UprobeSite { ret: Some(Return::KernelOnGo { why, wildcard }), .. }) => {
                Some((site, why, *wildcard))
            }
            _ => None,
        }
    }
    let cannot = |site: &UprobeSite, why: &str| {
        format!(
            "cannot find the return instructions of Go function `{}` in `{}`: {}",
            site.symbol,
            site.path.display(),
            why
        )
    };
    let refused: Vec<_> = resolved.iter().filter_map(unsafe_site).collect();
    let Some((first, why, _)) = refused.first() else {
        return Ok((resolved.iter().collect(), None));
    };
    let span = probe.attach_points.iter().find(|a| a.provider.starts_with("ur")).map_or(probe.span, |a| a.span);
    let what = cannot(first, why);
    let how = "a kernel uretprobe replaces the return address on the goroutine's stack, and Go's runtime kills the program when it moves that stack";
    if unsafe_calls {
        let more = if refused.len() > 1 { format!(" (and {} more)", refused.len() - 1) } else { String::new() };
        let d = Diagnostic::warning(format!("{}{}; --unsafe: a kernel uretprobe instead", what, more), span);
        return Ok((resolved.iter().collect(), Some(d.with_help(how))));
    }
    if let Some((named, why, _)) = refused.iter().find(|(_, _, wildcard)| !wildcard) {
        let d = Diagnostic::error(cannot(named, why), span);
        return Err(d.with_help(format!("{}; `--unsafe` attaches one anyway", how)));
    }
    let kept: Vec<&Resolved> = resolved.iter().filter(|r| unsafe_site(r).is_none()).collect();
    // A function probed at its return instructions has several sites.
    let functions = refused.len() + kept.iter().map(|r| &r.name).collect::<std::collections::HashSet<_>>().len();
    let help = format!("{}; `--unsafe` attaches them anyway", how);
    if kept.is_empty() {
        let none = format!("no function the wildcard matches can be probed at its returns: {}", what);
        return Err(Diagnostic::error(none, span).with_help(help));
    }
    let left_out =
        format!("{} of the {} functions the wildcard matches are left out: {}", refused.len(), functions, what);
    Ok((kept, Some(Diagnostic::warning(left_out, span).with_help(help))))
}

/// Two return instructions of the same function.
fn same_function_returns(a: &Resolved, b: &Resolved) -> bool {
    match (&a.detail, &b.detail) {
        (Detail::Uprobe(x), Detail::Uprobe(y)) => {
            x.ret == Some(Return::Instruction) && y.ret == x.ret && x.path == y.path && x.symbol == y.symbol
        }
        _ => false,
    }
}

/// The eBPF program kind an attach point compiles to; `None` for probe
/// types rtrace cannot generate yet.
fn prog_kind(r: &Resolved) -> Option<ProgKind> {
    if let Detail::Uprobe(UprobeSite { ret: Some(Return::Instruction), .. }) = r.detail {
        return Some(ProgKind::ReturnUprobe);
    }
    Some(match &r.spec {
        ProbeSpec::Begin => ProgKind::Begin,
        ProbeSpec::End => ProgKind::End,
        ProbeSpec::Signal { .. } => ProgKind::Signal,
        ProbeSpec::Iter { kind } => ProgKind::Iter { kind: kind.clone() },
        ProbeSpec::Tracepoint { .. } => ProgKind::Tracepoint,
        ProbeSpec::RawTracepoint { .. } => ProgKind::RawTracepoint,
        ProbeSpec::Uprobe { ret: false, .. } | ProbeSpec::Usdt { .. } => ProgKind::Uprobe,
        ProbeSpec::Uprobe { ret: true, .. } => ProgKind::Uretprobe,
        ProbeSpec::Kprobe { ret: false, .. } => ProgKind::Kprobe,
        ProbeSpec::Kprobe { ret: true, .. } => ProgKind::Kretprobe,
        ProbeSpec::Kfunc { func, ret: false } => ProgKind::Kfunc { func: func.clone() },
        ProbeSpec::Kfunc { func, ret: true } => ProgKind::Kretfunc { func: func.clone() },
        ProbeSpec::Interval { .. }
        | ProbeSpec::Profile { .. }
        | ProbeSpec::Software { .. }
        | ProbeSpec::Hardware { .. }
        | ProbeSpec::Watchpoint { .. } => ProgKind::PerfEvent,
    })
}

/// Whether the probe's predicate or body reads one of the builtins `names`.
fn mentions(probe: &ast::Probe, names: &[&str]) -> bool {
    let mut found = false;
    let mut visit = |e: &Expr| {
        if let ExprKind::Ident(name) = &e.kind {
            found |= names.contains(&name.as_str());
        }
    };
    if let Some(p) = &probe.predicate {
        walk_expr(p, &mut visit);
    }
    walk_block(&probe.body, &mut visit);
    found
}

impl<'a> Checker<'a> {
    /// Records an error (only the final pass reports).
    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.report(Diagnostic::error(message, span));
    }

    pub fn report(&mut self, diag: Diagnostic) {
        if self.final_pass {
            let diag = match self.expansions.last() {
                // Inside a macro's body: point at the use too.
                Some(x) if diag.span.is_some_and(|s| s.start < x.call.start || s.end > x.call.end) => {
                    diag.with_label(x.call, format!("in this use of the macro `{}`", x.name))
                }
                _ => diag,
            };
            self.diags.push(diag);
        }
    }

    pub fn warn(&mut self, span: Span, message: impl Into<String>) {
        self.report(Diagnostic::warning(message, span));
    }

    /// Something the language has that rtrace does not compile yet.
    pub fn unsupported(&mut self, span: Span, what: impl std::fmt::Display) {
        self.error(span, format!("{} is not supported yet", what));
    }

    /// The config block, then the environment's settings (which win), as
    /// bpftrace applies them; a bad key or value is an error at its item.
    fn apply_config(&mut self, program: &ast::Program) {
        use crate::config::Note;
        let mut config = crate::config::Config {
            max_strlen: self.env.strlen as u64,
            max_map_keys: self.env.max_map_keys as u64,
            ..Default::default()
        };
        let mut set_at = HashMap::new();
        for item in &program.config {
            match config.set(&item.key, &config_value(&item.value)) {
                Ok(None) => {}
                Ok(Some(Note::Renamed(new))) => self
                    .diags
                    .push(Diagnostic::warning(format!("{} has been renamed, please use {}", item.key, new), item.span)),
                Ok(Some(Note::Deprecated)) => self
                    .diags
                    .push(Diagnostic::warning(format!("{} is deprecated and has no effect", item.key), item.span)),
                Err(e) => self.diags.push(Diagnostic::error(e.to_string(), item.span)),
            }
            set_at.insert(item.key.to_ascii_lowercase().trim_start_matches("bpftrace_").to_string(), item.span);
        }
        let env = self.env.config_env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if let Err(e) = config.apply_env(env) {
            self.diags.push(Diagnostic::error_nowhere(e.to_string()));
        }
        // rtrace's own limits: a program's strings fit a BPF map value
        // (past the stack they live in a scratch map), map sizes are u32.
        let at = |key: &str, msg: &str| match set_at.get(key) {
            Some(&span) => Diagnostic::error(msg, span),
            None => Diagnostic::error_nowhere(msg),
        };
        match config.max_strlen {
            n @ 2..=MAX_STRLEN => self.strlen = n as u32,
            _ => {
                self.diags.push(at("max_strlen", &format!("`max_strlen` must be an integer from 2 to {}", MAX_STRLEN)))
            }
        }
        match config.max_map_keys {
            n @ 1..=0xffff_ffff => self.max_map_keys = n as u32,
            _ => self.diags.push(at("max_map_keys", "`max_map_keys` must be a positive integer")),
        }
        self.config = config;
    }

    /// Walks until a pass learns nothing; false if that takes `MAX_PASSES`.
    fn settle(&mut self, groups: &'a [Group<'a>]) -> bool {
        for _ in 0..MAX_PASSES {
            self.changed = false;
            self.pass(groups);
            if !self.changed {
                return true;
            }
        }
        false
    }

    /// One walk over every program; returns the typed programs (meaningful
    /// in the final pass).
    fn pass(&mut self, groups: &'a [Group<'a>]) -> Vec<ProgramDef> {
        self.actions.clear();
        let mut programs = Vec::new();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (i, g) in groups.iter().enumerate() {
            self.prog = i;
            self.group = Some(g);
            self.vars.clear();
            self.reset_scopes();
            self.loop_depth = 0;
            self.unrolled = 0;
            let mut body = self.block(&g.probe.body);
            if let Some(pred) = &g.probe.predicate {
                let cond = self.expr(pred);
                self.expect_condition(&cond);
                let mut checked = std::mem::take(&mut self.pre);
                checked.push(TStmt { kind: TStmtKind::If { cond, then: body, els: vec![] }, span: pred.span });
                body = checked;
            }
            // An iterator runs once more at its end, with no object
            // (`ctx->task` NULL): the program does nothing then.
            if matches!(g.kind, ProgKind::Iter { .. }) {
                let span = g.probe.span;
                let task = TExpr {
                    kind: TExprKind::CtxLoad { offset: 8, bytes: 8, signed: false },
                    ty: crate::types::U64,
                    span,
                };
                body = vec![TStmt { kind: TStmtKind::If { cond: task, then: body, els: vec![] }, span }];
            }
            let n = counts.entry(short_kind(&g.kind)).or_default();
            let name = program_name(&g.kind, *n, g.resolved.first().copied());
            *n += 1;
            let in_process = !g.resolved.iter().any(|r| matches!(r.spec, ProbeSpec::Interval { .. }));
            programs.push(ProgramDef {
                name,
                kind: g.kind.clone(),
                body,
                vars: self.vars.clone(),
                span: g.probe.span,
                in_process,
            });
        }
        programs
    }

    /// The statements of a block, in a scope of their own.
    pub fn block(&mut self, block: &ast::Block) -> Vec<TStmt> {
        self.open_scope();
        let out = self.stmts(&block.stmts);
        self.close_scope();
        out
    }

    pub fn stmts(&mut self, stmts: &[Stmt]) -> Vec<TStmt> {
        let mut out = Vec::new();
        for s in stmts {
            self.stmt(s, &mut out);
        }
        out
    }

    /// Checks one statement into `out`, after the statements hoisted out of
    /// its block expressions.
    fn stmt(&mut self, s: &Stmt, out: &mut Vec<TStmt>) {
        let outer = std::mem::take(&mut self.pre);
        let mut here = Vec::new();
        self.stmt_kind(s, &mut here);
        out.append(&mut self.pre);
        out.append(&mut here);
        self.pre = outer;
    }

    fn stmt_kind(&mut self, s: &Stmt, out: &mut Vec<TStmt>) {
        let push = |out: &mut Vec<TStmt>, kind| out.push(TStmt { kind, span: s.span });
        match &s.kind {
            StmtKind::Expr(e) | StmtKind::Discard(e) => {
                if let Some(kind) = self.call_statement(e) {
                    push(out, kind);
                } else {
                    self.void_ok = true;
                    let te = self.expr(e);
                    // Nothing left to run (`{ print(1); }` ran in `pre`).
                    if te.ty != Type::None {
                        push(out, TStmtKind::Expr(te));
                    }
                }
            }
            StmtKind::Assign { target, op, value } => {
                if let Some(kind) = self.assign(target, *op, value, s.span) {
                    push(out, kind);
                }
            }
            StmtKind::Let { var, var_span, ty, value } => {
                let declared = ty.as_ref().and_then(|t| self.decl_type(t));
                let value = value.as_ref().map(|v| self.expr(v));
                let id = self.declare_var(var, declared, value.is_some(), *var_span);
                match value {
                    Some(v) => {
                        let (var, value) = self.assign_var(var, v, *var_span);
                        debug_assert_eq!(var, id);
                        push(out, TStmtKind::SetVar { var, value });
                    }
                    None => push(out, TStmtKind::ZeroVar { var: id }),
                }
            }
            StmtKind::If { cond, then, els } => {
                let cond = self.expr(cond);
                self.expect_condition(&cond);
                // A branch a constant condition never takes (`if ($1 < 2)`
                // with `$1` given) is checked, but cannot `fail()`.
                let never = |taken: bool| match cond.kind {
                    TExprKind::Int(v) => (v != 0) != taken,
                    _ => false,
                } as u32;
                self.unreachable += never(true);
                let then = self.block(then);
                self.unreachable -= never(true);
                self.unreachable += never(false);
                let els = els.as_ref().map(|b| self.block(b)).unwrap_or_default();
                self.unreachable -= never(false);
                push(out, TStmtKind::If { cond, then, els });
            }
            StmtKind::While { cond, body } => {
                let cond = self.expr(cond);
                self.expect_condition(&cond);
                // What the condition's block expressions run, runs before
                // each test: `while (1) { pre; if (!cond) break; body }`.
                let pre = std::mem::take(&mut self.pre);
                if matches!(cond.kind, TExprKind::Int(v) if v != 0) && !has_break(body) {
                    self.error(cond.span, "this loop never ends: its condition is always true and it has no `break`");
                }
                self.loop_depth += 1;
                let body = self.block(body);
                self.loop_depth -= 1;
                if pre.is_empty() {
                    push(out, TStmtKind::While { cond, body });
                } else {
                    let span = cond.span;
                    let mut looped = pre;
                    let stop = TStmt { kind: TStmtKind::Break, span };
                    looped.push(TStmt { kind: TStmtKind::If { cond, then: vec![], els: vec![stop] }, span });
                    looped.extend(body);
                    push(
                        out,
                        TStmtKind::While {
                            cond: TExpr { kind: TExprKind::Int(1), ty: crate::types::I64, span },
                            body: looped,
                        },
                    );
                }
            }
            StmtKind::Unroll { count, body } => {
                // bpftrace's words.
                let n = match self.const_int(count) {
                    Some(n) if (1..=100).contains(&n) => n,
                    Some(n) => {
                        let limit = if n > 100 { "maximum value is 100" } else { "minimum value is 1" };
                        self.error(count.span, format!("unroll {}", limit));
                        1
                    }
                    None => {
                        self.report(
                            Diagnostic::error("invalid unroll value", count.span)
                                .with_help("unroll takes an integer literal from 1 to 100"),
                        );
                        1
                    }
                };
                // The copies replace what unrolls inside the body counted.
                let before = self.unrolled;
                let body = self.block(body);
                let copies = statements(&body) * n as usize;
                if before + copies > MAX_UNROLLED {
                    // Said once, at the unroll that passes the limit.
                    if self.unrolled <= MAX_UNROLLED {
                        let msg = format!(
                            "`unroll` makes this probe too large: more than {} statements (nested unrolls multiply)",
                            MAX_UNROLLED
                        );
                        self.error(count.span, msg);
                    }
                    self.unrolled = MAX_UNROLLED + 1;
                    out.extend(body);
                    return;
                }
                self.unrolled = before + copies;
                for _ in 0..n {
                    out.extend(body.iter().cloned());
                }
            }
            StmtKind::Break | StmtKind::Continue => {
                if self.loop_depth == 0 {
                    let word = if s.kind == StmtKind::Break { "break" } else { "continue" };
                    self.error(s.span, format!("`{}` outside of a loop", word));
                }
                push(out, if s.kind == StmtKind::Break { TStmtKind::Break } else { TStmtKind::Continue });
            }
            StmtKind::Return => push(out, TStmtKind::Return),
            StmtKind::Block(b) => {
                let inner = self.block(b);
                out.extend(inner);
            }
            StmtKind::ForMap { var, map, body } => {
                if let Some(kind) = self.for_map(var, map, body, s.span) {
                    push(out, kind);
                }
            }
            StmtKind::ForRange { var, start, end, body } => {
                if let Some(kind) = self.for_range(var, start, end, body, s.span) {
                    push(out, kind);
                }
            }
        }
    }

    /// `target = value` and `target op= value`.
    fn assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr, span: Span) -> Option<TStmtKind> {
        match &target.kind {
            ExprKind::Var(name) => {
                let value = match op {
                    None => self.expr(value),
                    Some(op) => self.binary(op, target, value, span),
                };
                let (var, value) = self.assign_var(name, value, target.span);
                Some(TStmtKind::SetVar { var, value })
            }
            ExprKind::Map { .. } if op.is_none() && ends_in_aggregation(value) => {
                // `@m = { let $a = 1; avg($a) }`: the block's statements, then
                // the aggregation (which is no value a block can hold).
                let ExprKind::Block(b) = &value.kind else { unreachable!("checked") };
                if let Some(x) = &b.expansion {
                    self.expansions.push(x.clone());
                }
                self.open_scope();
                let stmts = self.stmts(&b.stmts);
                self.pre.extend(stmts);
                let kind = self.assign(target, op, b.value.as_ref().expect("checked"), span);
                self.close_scope();
                if b.expansion.is_some() {
                    self.expansions.pop();
                }
                kind
            }
            ExprKind::Map { name, keys } => {
                if op.is_none() {
                    if let Some(update) = self.aggregation(value) {
                        let map = self.assigned_map(name, target.span);
                        let keys = self.map_keys(map, keys, target.span);
                        self.learn_map_value(map, update.map_value(), value.span);
                        return Some(TStmtKind::Aggregate { map, keys, update });
                    }
                }
                // `@a += v` on a new map is `@a = @a + v`: the unset map
                // reads as a zero of `v`'s type.
                let map = self.assigned_map(name, target.span);
                if op.is_some() && self.maps[map].value.as_ref().is_some_and(MapValue::per_cpu) {
                    self.unsupported(span, "compound assignment to an aggregation map");
                    return None;
                }
                let value = match op {
                    None => self.expr(value),
                    Some(op) => self.binary(op, target, value, span),
                };
                let keys = self.map_keys(map, keys, target.span);
                if !self.storable(&value) {
                    return None;
                }
                self.learn_map_value(map, MapValue::Plain(value.ty.clone()), value.span);
                Some(TStmtKind::SetMap { map, keys, value })
            }
            _ => {
                self.error(target.span, "can only assign to a variable (`$x`) or a map (`@x`, `@x[key]`)");
                None
            }
        }
    }

    /// True when a value of this type can be kept in a variable or map.
    pub fn storable(&mut self, value: &TExpr) -> bool {
        match &value.ty {
            t if storable_type(t) => true,
            other => {
                let msg = format!("a value of type {} cannot be stored", other);
                self.error(value.span, msg);
                false
            }
        }
    }

    pub fn expect_condition(&mut self, cond: &TExpr) {
        if !cond.ty.is_scalar() && cond.ty.is_known() {
            let msg = format!("condition must be a boolean, an integer or a pointer, not {}", cond.ty);
            self.error(cond.span, msg);
        }
    }

    /// The map assigned at `span` (remembered for the error when its type is
    /// never decided).
    pub fn assigned_map(&mut self, name: &str, span: Span) -> MapId {
        let map = self.map_id(name, span);
        self.maps[map].assigned.get_or_insert(span);
        map
    }

    pub fn map_id(&mut self, name: &str, span: Span) -> MapId {
        let display = if name.is_empty() { "@".to_string() } else { format!("@{}", name) };
        if let Some(&id) = self.map_ids.get(&display) {
            self.maps[id].used = true;
            return id;
        }
        self.maps.push(MapDecl {
            name: display.clone(),
            keys: None,
            value: None,
            span,
            assigned: None,
            counted: false,
            shrinks: false,
            declared: None,
            used: true,
        });
        self.map_ids.insert(display, self.maps.len() - 1);
        self.maps.len() - 1
    }

    /// Checks key expressions and learns (or checks) the map's key types.
    pub fn map_keys(&mut self, map: MapId, keys: &[Expr], span: Span) -> Vec<TExpr> {
        let typed: Vec<TExpr> = keys.iter().map(|k| self.expr(k)).collect();
        self.typed_map_keys(map, typed, span)
    }

    /// As `map_keys`, for keys already checked. One tuple is its elements:
    /// `@m[$t]` with `$t = (1, "a")` is `@m[1, "a"]`, as in bpftrace, where
    /// several keys are a tuple.
    pub fn typed_map_keys(&mut self, map: MapId, mut typed: Vec<TExpr>, span: Span) -> Vec<TExpr> {
        let tuple_items = match typed.as_slice() {
            [TExpr { ty: Type::Tuple(items), .. }] => Some(items.clone()),
            _ => None,
        };
        if let Some(items) = tuple_items {
            {
                let key = typed.pop().expect("one key");
                typed = match key.kind {
                    TExprKind::Tuple(elems) => elems,
                    kind => {
                        let tuple = TExpr { kind, ty: key.ty, span: key.span };
                        let offsets = crate::types::tuple_layout(&items).offsets;
                        items
                            .iter()
                            .zip(offsets)
                            .map(|(ty, offset)| TExpr {
                                kind: TExprKind::TupleField { tuple: Box::new(tuple.clone()), offset },
                                ty: ty.clone(),
                                span: tuple.span,
                            })
                            .collect()
                    }
                };
            }
        }
        for k in &typed {
            if !storable_type(&k.ty) {
                let msg = format!("a map key cannot be of type {}", k.ty);
                self.error(k.span, msg);
            }
        }
        let types: Vec<Type> = typed.iter().map(|k| normalize_key(&k.ty)).collect();
        if !types.iter().all(Type::is_known) {
            return typed;
        }
        let name = self.maps[map].name.clone();
        match self.maps[map].keys.clone() {
            None => {
                self.maps[map].keys = Some(types);
                self.changed = true;
            }
            Some(old) if old.len() != types.len() => {
                self.error(
                    span,
                    format!("`{}` is used with {} key(s) here but {} elsewhere", name, types.len(), old.len()),
                );
            }
            Some(old) => {
                let mut merged = Vec::new();
                for ((o, n), k) in old.iter().zip(&types).zip(&typed) {
                    match unify(o, n) {
                        Some(t) => merged.push(t),
                        None => {
                            self.error(k.span, format!("key type mismatch for `{}`: {} but {} elsewhere", name, n, o));
                            merged.push(o.clone());
                        }
                    }
                }
                if merged != old {
                    self.maps[map].keys = Some(merged);
                    self.changed = true;
                }
            }
        }
        typed
    }

    pub fn learn_map_value(&mut self, map: MapId, value: MapValue, span: Span) {
        // Nothing learned from a value whose type is not known (yet).
        if matches!(&value, MapValue::Plain(t) if !t.is_known()) {
            return;
        }
        // A map holds integers in 8 bytes: `@n = 1` is an int64 map, so that
        // a wider value stored later (also typed at the prompt) fits it.
        let value = match value {
            MapValue::Plain(Type::Int { signed, .. }) => MapValue::Plain(Type::Int { bytes: 8, signed }),
            other => other,
        };
        let name = self.maps[map].name.clone();
        let merged = match (&self.maps[map].value, &value) {
            (None, v) => v.clone(),
            (Some(MapValue::Plain(old)), MapValue::Plain(new)) => match unify(old, new) {
                Some(t) => MapValue::Plain(t),
                None => {
                    self.error(span, format!("type mismatch for `{}`: assigning {} but it holds {}", name, new, old));
                    return;
                }
            },
            (Some(MapValue::Sum { signed: a }), MapValue::Sum { signed: b }) => MapValue::Sum { signed: *a || *b },
            (Some(MapValue::Min { signed: a }), MapValue::Min { signed: b }) => MapValue::Min { signed: *a || *b },
            (Some(MapValue::Max { signed: a }), MapValue::Max { signed: b }) => MapValue::Max { signed: *a || *b },
            (Some(old), new) if old == new => old.clone(),
            (Some(old), new) => {
                let msg = format!(
                    "type mismatch for `{}`: assigning {} but it holds {}",
                    name,
                    new.describe(),
                    old.describe()
                );
                self.error(span, msg);
                return;
            }
        };
        if self.maps[map].value.as_ref() != Some(&merged) {
            self.maps[map].value = Some(merged);
            self.changed = true;
        }
    }

    pub fn group(&self) -> &'a Group<'a> {
        self.group.expect("checking a program")
    }

    /// The value of an integer literal expression (or a numeric `$N`).
    pub fn const_int(&mut self, e: &Expr) -> Option<i64> {
        let t = self.expr(e);
        match t.kind {
            TExprKind::Int(v) => Some(v as i64),
            _ => None,
        }
    }
}

/// Statements in `body`, those of nested blocks included.
fn statements(body: &[TStmt]) -> usize {
    body.iter()
        .map(|s| {
            1 + match &s.kind {
                TStmtKind::If { then, els, .. } => statements(then) + statements(els),
                TStmtKind::While { body, .. } | TStmtKind::ForRange { body, .. } | TStmtKind::ForMap { body, .. } => {
                    statements(body)
                }
                _ => 0,
            }
        })
        .sum()
}

/// A block expression whose value is an aggregation (`count()`, ...).
fn ends_in_aggregation(value: &Expr) -> bool {
    match &value.kind {
        ExprKind::Block(b) => b.value.as_ref().is_some_and(|v| {
            ends_in_aggregation(v)
                || matches!(&v.kind, ExprKind::Call { name, .. }
                    if matches!(name.as_str(), "count" | "sum" | "avg" | "stats" | "min" | "max" | "hist" | "lhist"))
        }),
        _ => false,
    }
}

/// Whether a loop body can leave the loop (`break` or `return` outside any
/// nested loop).
fn has_break(body: &ast::Block) -> bool {
    body.stmts.iter().any(|s| match &s.kind {
        StmtKind::Break | StmtKind::Return => true,
        StmtKind::If { then, els, .. } => has_break(then) || els.as_ref().is_some_and(has_break),
        StmtKind::Block(b) | StmtKind::Unroll { body: b, .. } => has_break(b),
        _ => false,
    })
}

/// Values a variable or a map can hold: integers, pointers, strings and
/// tuples of them.
fn storable_type(t: &Type) -> bool {
    match t {
        Type::Int { .. }
        | Type::Bool
        | Type::Enum(_)
        | Type::Str { .. }
        | Type::Ptr { .. }
        | Type::None
        | Type::Unknown => true,
        Type::Timestamp { .. } | Type::Buffer { .. } | Type::Inet | Type::Ksym | Type::Usym | Type::CgroupPath => true,
        Type::MacAddr
        | Type::Errno
        | Type::SignalName
        | Type::SyscallName
        | Type::Username
        | Type::Record(_)
        | Type::Array { .. }
        | Type::Float { .. }
        | Type::Stack(_) => true,
        Type::Tuple(items) => items.iter().all(storable_type),
        Type::TracepointArgs => false,
    }
}

/// Integers are stored as 8 bytes whatever their source width.
fn normalize_key(t: &Type) -> Type {
    match t {
        Type::Int { signed, .. } => Type::Int { bytes: 8, signed: *signed },
        Type::Ptr { .. } => crate::types::U64,
        other => other.clone(),
    }
}

/// The type that holds values of both `old` and `new`, if there is one:
/// integers widen to 8 bytes (keeping the first signedness), strings take the
/// larger size.
pub(super) fn unify(old: &Type, new: &Type) -> Option<Type> {
    match (old, new) {
        _ if old == new => Some(old.clone()),
        (_, Type::None | Type::Unknown) => Some(old.clone()),
        (Type::None | Type::Unknown, _) => Some(new.clone()),
        // Integers widen; a boolean or an enum value stored where another
        // integral type is becomes an integer (0 or 1, the enum's value).
        (a, b) if a.is_integral() && b.is_integral() => {
            Some(Type::Int { bytes: 8, signed: if a.is_int() { a.is_signed() } else { b.is_signed() } })
        }
        (Type::Int { .. }, Type::Ptr { .. }) | (Type::Ptr { .. }, Type::Int { .. }) => Some(old.clone()),
        (Type::Ptr { .. }, Type::Ptr { .. }) => Some(old.clone()),
        (Type::Str { size: a }, Type::Str { size: b }) => Some(Type::Str { size: (*a).max(*b) }),
        // Records with the same fields, in any order: the first order stays.
        (Type::Record(a), Type::Record(b))
            if a.name.is_empty() && b.name.is_empty() && a.fields.len() == b.fields.len() =>
        {
            let names: Vec<String> = a.fields.iter().map(|f| f.name.clone()).collect();
            let types = a
                .fields
                .iter()
                .map(|f| unify(&f.ty, &b.fields.iter().find(|g| g.name == f.name)?.ty))
                .collect::<Option<Vec<_>>>()?;
            Some(Type::Record(std::sync::Arc::new(crate::types::record_of(&names, &types))))
        }
        (Type::Tuple(a), Type::Tuple(b)) if a.len() == b.len() => {
            a.iter().zip(b).map(|(x, y)| unify(x, y)).collect::<Option<Vec<_>>>().map(Type::Tuple)
        }
        _ => (old == new).then(|| old.clone()),
    }
}

/// A config block's value as `config` reads it.
fn config_value(value: &ast::ConfigValue) -> crate::config::Value {
    use crate::config::Value;
    match value {
        ast::ConfigValue::Int(n) => Value::Int(*n),
        ast::ConfigValue::Str(s) | ast::ConfigValue::Ident(s) => Value::Str(s.clone()),
        ast::ConfigValue::Bool(b) => Value::Bool(*b),
    }
}

/// The `missing_probes` setting of `program` and the `BPFTRACE_*`
/// variables `env` (which win), needed before checking: attach points are
/// resolved first. A bad value is reported by the check itself.
pub fn missing_probes(program: &ast::Program, env: &[(String, String)]) -> crate::config::MissingProbes {
    let mut config = crate::config::Config::default();
    for item in &program.config {
        let _ = config.set(&item.key, &config_value(&item.value));
    }
    let _ = config.apply_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    config.missing_probes
}

fn short_kind(kind: &ProgKind) -> &'static str {
    match kind {
        ProgKind::Begin => "BEGIN",
        ProgKind::End => "END",
        ProgKind::Signal => "self",
        ProgKind::Iter { .. } => "it",
        ProgKind::Tracepoint => "t",
        ProgKind::RawTracepoint => "rt",
        ProgKind::Uprobe => "u",
        // One count for both kinds of uretprobe keeps the names unique.
        ProgKind::Uretprobe | ProgKind::ReturnUprobe => "ur",
        ProgKind::Kprobe => "k",
        ProgKind::Kretprobe => "kr",
        ProgKind::Kfunc { .. } => "f",
        ProgKind::Kretfunc { .. } => "fr",
        ProgKind::PerfEvent => "p",
    }
}

/// A readable, unique program name: `u0_main_Fibonacci`, `t1_sys_enter_open`.
fn program_name(kind: &ProgKind, n: usize, first: Option<&Resolved>) -> String {
    let short = short_kind(kind);
    if matches!(kind, ProgKind::Begin | ProgKind::End) {
        return if n == 0 { short.to_string() } else { format!("{}_{}", short, n) };
    }
    let tail = first.map(|r| r.name.rsplit(':').next().unwrap_or("").to_string()).unwrap_or_default();
    let tail: String = tail.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect();
    format!("{}{}_{}", short, n, tail)
}
