//! Random well-typed `BEGIN { ... }` programs, reproducible from a seed, and
//! a shrinker that makes a failing one small.
//!
//! Every variable and map has one type, fixed by a cast wherever it is
//! assigned, so every program the generator writes checks: variables are
//! all assigned at the top (`$v0 = (int16)(...)`), loop counters are
//! their own, divisors are made odd (`| 1`: no division by zero), shift
//! counts stay below 64, and loops run a few times at most.

use std::fmt::Write;

/// splitmix64: small, fast and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len() as u64) as usize]
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub const TYPES: &[&str] = &["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"];

fn signed(ty: &str) -> bool {
    !ty.starts_with('u')
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal as written (`-129`, `18446744073709551615`).
    Lit(String),
    Var(String),
    /// `@name[k1, k2]` of a plain or `count`/`sum`/`min`/`max`/`avg` map
    /// (`@name` without keys).
    Map(String, Vec<Expr>),
    /// `$v++`, `--@m[k]`: the place as an expression, the operator, prefix.
    Update(Box<Expr>, &'static str, bool),
    /// A condition as a value (a bool: `%d` prints 0 or 1).
    Bool(Box<Cond>),
    Cast(&'static str, Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Un(&'static str, Box<Expr>),
    /// `cond ? (ty)a : (ty)b`
    Tern(Box<Cond>, &'static str, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Cmp(&'static str, Expr, Expr),
    Logic(&'static str, Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// An integer as a condition (non-zero).
    Truth(Expr),
    /// `has_key(@m, k)` / `has_key(@m, (k1, k2))`
    Has(String, Vec<Expr>),
    /// `delete(@m, k)` used as a value: whether there was an entry.
    Deleted(String, Vec<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `$v = (ty)(e)`; without the cast when `ty` is empty.
    Set(String, &'static str, Expr),
    /// `$v op= e`, `@m[k] op= e`: the place as an expression.
    Compound(Expr, &'static str, Expr),
    /// `@m[k] = (ty)(e)`, `++$v;`: an expression statement.
    Eval(Expr),
    MapSet(String, Vec<Expr>, &'static str, Expr),
    /// `@name[key] = count()`, `sum(e)`, ... (`func` is the call's text up
    /// to its value: `sum`, `lhist` gets its bounds appended).
    Agg(String, Vec<Expr>, &'static str, Option<Expr>),
    Delete(String, Vec<Expr>),
    Printf(Vec<(&'static str, Expr)>),
    If(Cond, Vec<Stmt>, Vec<Stmt>),
    /// `$c = 0; while ($c < n) { $c++; body }`
    While(String, u64, Vec<Stmt>),
    /// `for ($f : lo..hi) { body }`
    For(String, i64, i64, Vec<Stmt>),
    Break,
    Continue,
    Return,
    /// `exit()`, or `exit(code)`.
    Exit(Option<u8>),
}

/// A map the program uses: its name, key type (none: a map without keys)
/// and what it holds (a plain value of a type, or an aggregation).
#[derive(Clone, Debug, PartialEq)]
pub struct MapDef {
    pub name: String,
    /// The key types: none for a map without keys.
    pub keys: Vec<&'static str>,
    /// A type name, or `count`, `sum`, `min`, `max`, `avg`, `stats`, `hist`, `lhist`.
    pub holds: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The variables and their types, assigned at the top.
    pub vars: Vec<(String, &'static str, Expr)>,
    pub maps: Vec<MapDef>,
    pub body: Vec<Stmt>,
}

const AGGS: &[&str] = &["count", "sum", "min", "max", "avg", "stats", "hist", "lhist"];

struct Gen<'a> {
    rng: &'a mut Rng,
    p: Program,
    /// Loop variables in scope (readable, never assigned).
    loop_vars: Vec<String>,
    loops: u32,
    depth: u32,
    counters: u32,
    /// Above 0: no side effects (`$x++`, `delete()`, a warning) in what is
    /// generated, as in map keys and the values stored in maps, whose order
    /// of evaluation the eBPF backend has wrong (FUZZING.md, open bugs).
    pure: u32,
}

/// A random program of seed `seed`.
pub fn generate(seed: u64) -> Program {
    let mut rng = Rng::new(seed);
    let mut g = Gen {
        p: Program { vars: vec![], maps: vec![], body: vec![] },
        loop_vars: vec![],
        loops: 0,
        depth: 0,
        counters: 0,
        pure: 0,
        rng: &mut rng,
    };
    let nvars = 2 + g.rng.below(4);
    for i in 0..nvars {
        let ty = *g.rng.pick(TYPES);
        let init = if i == 0 || g.rng.chance(50) { Expr::Lit(g.literal()) } else { g.expr(2) };
        g.p.vars.push((format!("$v{}", i), ty, init));
    }
    let nmaps = 1 + g.rng.below(3);
    for i in 0..nmaps {
        let nkeys = match g.rng.below(8) {
            0..=1 => 0,
            2 => 2,
            _ => 1,
        };
        let keys = (0..nkeys).map(|_| g.rng.pick_str(TYPES)).collect();
        let holds = if g.rng.chance(55) { *g.rng.pick(TYPES) } else { *g.rng.pick(AGGS) };
        g.p.maps.push(MapDef { name: format!("@m{}", i), keys, holds });
    }
    let n = 3 + g.rng.below(8);
    g.p.body = g.block(n as usize);
    g.p
}

impl Gen<'_> {
    fn literal(&mut self) -> String {
        const EDGES: &[&str] = &[
            "0",
            "1",
            "-1",
            "2",
            "7",
            "127",
            "128",
            "-128",
            "-129",
            "255",
            "256",
            "32767",
            "32768",
            "-32769",
            "65535",
            "65536",
            "2147483647",
            "2147483648",
            "-2147483649",
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "-9223372036854775807",
            "18446744073709551615",
        ];
        if self.rng.chance(60) {
            self.rng.pick_str(EDGES).to_string()
        } else {
            let v = self.rng.below(2000) as i64 - 1000;
            v.to_string()
        }
    }

    /// An integer expression of at most `depth` levels.
    fn expr(&mut self, depth: u32) -> Expr {
        let leaf = depth == 0 || self.rng.chance(30);
        if leaf {
            return match self.rng.below(10) {
                0..=1 => Expr::Lit(self.literal()),
                2 if !self.loop_vars.is_empty() => Expr::Var(self.rng.pick(&self.loop_vars).clone()),
                3 => {
                    // Maps whose entries read as one integer.
                    let readable: Vec<MapDef> = self
                        .p
                        .maps
                        .iter()
                        .filter(|m| !matches!(m.holds, "stats" | "hist" | "lhist"))
                        .cloned()
                        .collect();
                    if readable.is_empty() {
                        return Expr::Lit(self.literal());
                    }
                    let m = self.rng.pick(&readable).clone();
                    let keys = self.keys(&m);
                    Expr::Map(m.name, keys)
                }
                4 if self.pure == 0 && self.rng.chance(40) => {
                    let place = self.place();
                    let op = self.rng.pick_str(&["++", "--"]);
                    Expr::Update(Box::new(place), op, self.rng.chance(50))
                }
                _ => self.var(),
            };
        }
        let d = depth - 1;
        match self.rng.below(12) {
            0 => Expr::Cast(self.rng.pick_str(TYPES), Box::new(self.expr(d))),
            1 => Expr::Un(self.rng.pick_str(&["-", "~"]), Box::new(self.expr(d))),
            2 => {
                let c = self.cond(d);
                Expr::Tern(Box::new(c), self.rng.pick_str(TYPES), Box::new(self.expr(d)), Box::new(self.expr(d)))
            }
            3 => {
                // Mostly an odd divisor (never zero); a zero one warns.
                let op = self.rng.pick_str(&["/", "%"]);
                let divisor = if self.pure > 0 || self.rng.chance(80) {
                    Expr::Bin("|", Box::new(self.expr(d)), Box::new(Expr::Lit("1".into())))
                } else {
                    self.expr(d)
                };
                Expr::Bin(op, Box::new(self.expr(d)), Box::new(divisor))
            }
            4 => {
                let op = self.rng.pick_str(&["<<", ">>"]);
                let count = if self.rng.chance(50) {
                    Expr::Lit(self.rng.below(64).to_string())
                } else {
                    Expr::Bin("&", Box::new(self.expr(d)), Box::new(Expr::Lit("63".into())))
                };
                Expr::Bin(op, Box::new(self.expr(d)), Box::new(count))
            }
            _ => {
                let op = self.rng.pick_str(&["+", "-", "*", "&", "|", "^", "+", "-"]);
                Expr::Bin(op, Box::new(self.expr(d)), Box::new(self.expr(d)))
            }
        }
    }

    fn var(&mut self) -> Expr {
        let i = self.rng.below(self.p.vars.len() as u64) as usize;
        Expr::Var(self.p.vars[i].0.clone())
    }

    /// A place to update: a variable or a plain map's entry.
    fn place(&mut self) -> Expr {
        let plain: Vec<MapDef> = self.p.maps.iter().filter(|m| TYPES.contains(&m.holds)).cloned().collect();
        if plain.is_empty() || self.rng.chance(50) {
            return self.var();
        }
        let m = self.rng.pick(&plain).clone();
        let keys = self.keys(&m);
        Expr::Map(m.name, keys)
    }

    fn keys(&mut self, m: &MapDef) -> Vec<Expr> {
        self.pure += 1;
        let keys = m.keys.iter().map(|k| self.key(k)).collect();
        self.pure -= 1;
        keys
    }

    /// A value stored in a map (no side effects).
    fn pure_expr(&mut self, depth: u32) -> Expr {
        self.pure += 1;
        let e = self.expr(depth);
        self.pure -= 1;
        e
    }

    /// A map key: a few distinct values, so that keys repeat.
    fn key(&mut self, ty: &'static str) -> Expr {
        let e = if self.rng.chance(40) { Expr::Lit(self.rng.below(4).to_string()) } else { self.expr(1) };
        Expr::Cast(ty, Box::new(Expr::Bin("&", Box::new(e), Box::new(Expr::Lit("3".into())))))
    }

    fn cond(&mut self, depth: u32) -> Cond {
        match self.rng.below(10) {
            0 if depth > 0 => {
                let op = self.rng.pick_str(&["&&", "||"]);
                Cond::Logic(op, Box::new(self.cond(depth - 1)), Box::new(self.cond(depth - 1)))
            }
            1 if depth > 0 => Cond::Not(Box::new(self.cond(depth - 1))),
            2 => Cond::Truth(self.expr(depth)),
            3 if !self.p.maps.is_empty() => {
                let m = self.rng.pick(&self.p.maps).clone();
                if m.keys.is_empty() || matches!(m.holds, "hist" | "lhist") {
                    return Cond::Truth(self.expr(depth));
                }
                let keys = self.keys(&m);
                if self.pure > 0 || self.rng.chance(50) {
                    Cond::Has(m.name, keys)
                } else {
                    Cond::Deleted(m.name, keys)
                }
            }
            _ => {
                let op = self.rng.pick_str(&["==", "!=", "<", "<=", ">", ">="]);
                Cond::Cmp(op, self.expr(depth), self.expr(depth))
            }
        }
    }

    fn compound(&mut self, place: Expr) -> Stmt {
        let map = u32::from(matches!(place, Expr::Map(..)));
        self.pure += map;
        let stmt = self.compound_of(place);
        self.pure -= map;
        stmt
    }

    fn compound_of(&mut self, place: Expr) -> Stmt {
        let op = self.rng.pick_str(&["+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", "+=", "-="]);
        let value = match op {
            "/=" | "%=" => Expr::Bin("|", Box::new(self.expr(2)), Box::new(Expr::Lit("1".into()))),
            "<<=" | ">>=" => Expr::Lit(self.rng.below(64).to_string()),
            _ => self.expr(2),
        };
        Stmt::Compound(place, op, value)
    }

    fn block(&mut self, n: usize) -> Vec<Stmt> {
        (0..n).map(|_| self.stmt()).collect()
    }

    fn stmt(&mut self) -> Stmt {
        let nested = self.depth < 2;
        match self.rng.below(20) {
            0..=3 => {
                let i = self.rng.below(self.p.vars.len() as u64) as usize;
                let (name, ty) = (self.p.vars[i].0.clone(), self.p.vars[i].1);
                // Uncast: the checker converts (or refuses: a rejected program).
                let ty = if self.rng.chance(15) { "" } else { ty };
                Stmt::Set(name, ty, self.expr(3))
            }
            4..=6 => {
                let m = self.rng.pick(&self.p.maps).clone();
                let keys = self.keys(&m);
                if TYPES.contains(&m.holds) {
                    if self.rng.chance(20) {
                        let place = Expr::Map(m.name, keys);
                        return self.compound(place);
                    }
                    Stmt::MapSet(m.name, keys, m.holds, self.pure_expr(2))
                } else {
                    let value = (m.holds != "count").then(|| self.pure_expr(2));
                    Stmt::Agg(m.name, keys, m.holds, value)
                }
            }
            7 => {
                // Not `hist`/`lhist` maps (rtrace cannot delete from them yet).
                let keyed: Vec<MapDef> = self
                    .p
                    .maps
                    .iter()
                    .filter(|m| !m.keys.is_empty() && !matches!(m.holds, "hist" | "lhist"))
                    .cloned()
                    .collect();
                if keyed.is_empty() {
                    return Stmt::Printf(vec![]);
                }
                let m = self.rng.pick(&keyed).clone();
                let keys = self.keys(&m);
                Stmt::Delete(m.name, keys)
            }
            8..=11 => {
                let n = 1 + self.rng.below(3);
                let args = (0..n)
                    .map(|_| {
                        let e = self.expr(3);
                        (self.rng.pick_str(&["%lld", "%llu", "%lld", "%llu", "%d", "%x"]), e)
                    })
                    .collect();
                Stmt::Printf(args)
            }
            12..=14 if nested => {
                self.depth += 1;
                let c = self.cond(2);
                let n = 1 + self.rng.below(3) as usize;
                let then = self.block(n);
                let els = if self.rng.chance(40) {
                    let n = 1 + self.rng.below(2) as usize;
                    self.block(n)
                } else {
                    vec![]
                };
                self.depth -= 1;
                Stmt::If(c, then, els)
            }
            15 if nested => {
                self.depth += 1;
                self.loops += 1;
                let name = format!("$c{}", self.counters);
                self.counters += 1;
                let times = 1 + self.rng.below(4);
                let n = 1 + self.rng.below(3) as usize;
                let body = self.block(n);
                self.loops -= 1;
                self.depth -= 1;
                Stmt::While(name, times, body)
            }
            16 if nested => {
                self.depth += 1;
                self.loops += 1;
                let name = format!("$f{}", self.counters);
                self.counters += 1;
                let lo = self.rng.below(7) as i64 - 3;
                let hi = lo + self.rng.below(5) as i64;
                self.loop_vars.push(name.clone());
                let n = 1 + self.rng.below(3) as usize;
                let body = self.block(n);
                self.loop_vars.pop();
                self.loops -= 1;
                self.depth -= 1;
                Stmt::For(name, lo, hi, body)
            }
            17 if self.loops > 0 => {
                let c = self.cond(1);
                Stmt::If(c, vec![if self.rng.chance(50) { Stmt::Break } else { Stmt::Continue }], vec![])
            }
            18 if self.depth > 0 && self.rng.chance(30) => {
                let c = self.cond(1);
                let code = self.rng.chance(50).then(|| self.rng.below(6) as u8);
                Stmt::If(c, vec![if self.rng.chance(50) { Stmt::Return } else { Stmt::Exit(code) }], vec![])
            }
            19 => {
                if self.rng.chance(50) {
                    let place = self.var();
                    self.compound(place)
                } else {
                    let place = self.place();
                    let op = self.rng.pick_str(&["++", "--"]);
                    Stmt::Eval(Expr::Update(Box::new(place), op, self.rng.chance(50)))
                }
            }
            _ => {
                let i = self.rng.below(self.p.vars.len() as u64) as usize;
                let (name, ty) = (self.p.vars[i].0.clone(), self.p.vars[i].1);
                Stmt::Set(name, ty, self.expr(2))
            }
        }
    }
}

// Printing.

fn expr_text(e: &Expr, out: &mut String) {
    match e {
        Expr::Lit(v) => out.push_str(v),
        Expr::Var(v) => out.push_str(v),
        Expr::Map(m, keys) => map_place(m, keys, out),
        Expr::Update(place, op, true) => {
            out.push_str(op);
            expr_text(place, out);
        }
        Expr::Update(place, op, false) => {
            expr_text(place, out);
            out.push_str(op);
        }
        Expr::Bool(c) => {
            out.push('(');
            cond_text(c, out);
            out.push(')');
        }
        Expr::Cast(ty, e) => {
            let _ = write!(out, "({})(", ty);
            expr_text(e, out);
            out.push(')');
        }
        Expr::Bin(op, a, b) => {
            out.push('(');
            expr_text(a, out);
            let _ = write!(out, " {} ", op);
            expr_text(b, out);
            out.push(')');
        }
        Expr::Un(op, e) => {
            let _ = write!(out, "{}(", op);
            expr_text(e, out);
            out.push(')');
        }
        Expr::Tern(c, ty, a, b) => {
            out.push('(');
            cond_text(c, out);
            let _ = write!(out, " ? ({})(", ty);
            expr_text(a, out);
            let _ = write!(out, ") : ({})(", ty);
            expr_text(b, out);
            out.push_str("))");
        }
    }
}

fn cond_text(c: &Cond, out: &mut String) {
    match c {
        Cond::Cmp(op, a, b) => {
            out.push('(');
            expr_text(a, out);
            let _ = write!(out, " {} ", op);
            expr_text(b, out);
            out.push(')');
        }
        Cond::Logic(op, a, b) => {
            out.push('(');
            cond_text(a, out);
            let _ = write!(out, " {} ", op);
            cond_text(b, out);
            out.push(')');
        }
        Cond::Not(c) => {
            out.push('!');
            cond_text(c, out);
        }
        Cond::Truth(e) => expr_text(e, out),
        Cond::Has(m, keys) => {
            let _ = write!(out, "has_key({}, ", m);
            key_args(keys, out);
            out.push(')');
        }
        Cond::Deleted(m, keys) => {
            let _ = write!(out, "delete({}, ", m);
            key_args(keys, out);
            out.push(')');
        }
    }
}

/// The key argument of `has_key()` and `delete()`: a tuple of several.
fn key_args(keys: &[Expr], out: &mut String) {
    if keys.len() > 1 {
        out.push('(');
    }
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        expr_text(k, out);
    }
    if keys.len() > 1 {
        out.push(')');
    }
}

fn map_place(name: &str, keys: &[Expr], out: &mut String) {
    out.push_str(name);
    if !keys.is_empty() {
        out.push('[');
        for (i, k) in keys.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            expr_text(k, out);
        }
        out.push(']');
    }
}

fn stmts_text(stmts: &[Stmt], indent: usize, out: &mut String) {
    for s in stmts {
        stmt_text(s, indent, out);
    }
}

fn stmt_text(s: &Stmt, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    out.push_str(&pad);
    match s {
        Stmt::Set(v, "", e) => {
            let _ = write!(out, "{} = ", v);
            expr_text(e, out);
            out.push_str(";\n");
        }
        Stmt::Set(v, ty, e) => {
            let _ = write!(out, "{} = ({})(", v, ty);
            expr_text(e, out);
            out.push_str(");\n");
        }
        Stmt::Compound(place, op, e) => {
            expr_text(place, out);
            let _ = write!(out, " {} ", op);
            expr_text(e, out);
            out.push_str(";\n");
        }
        Stmt::Eval(e) => {
            expr_text(e, out);
            out.push_str(";\n");
        }
        Stmt::MapSet(m, k, ty, e) => {
            map_place(m, k, out);
            let _ = write!(out, " = ({})(", ty);
            expr_text(e, out);
            out.push_str(");\n");
        }
        Stmt::Agg(m, k, func, e) => {
            map_place(m, k, out);
            let _ = write!(out, " = {}(", func);
            if let Some(e) = e {
                expr_text(e, out);
            }
            if *func == "lhist" {
                out.push_str(", -100, 200, 25");
            }
            out.push_str(");\n");
        }
        Stmt::Delete(m, keys) => {
            let _ = write!(out, "delete({}, ", m);
            key_args(keys, out);
            out.push_str(");\n");
        }
        Stmt::Printf(args) => {
            let mut fmt = String::from("p");
            for (spec, _) in args {
                let _ = write!(fmt, " {}", spec);
            }
            let _ = write!(out, "printf(\"{}\\n\"", fmt);
            for (_, e) in args {
                out.push_str(", ");
                expr_text(e, out);
            }
            out.push_str(");\n");
        }
        Stmt::If(c, then, els) => {
            out.push_str("if (");
            cond_text(c, out);
            out.push_str(") {\n");
            stmts_text(then, indent + 1, out);
            let _ = write!(out, "{}}}", pad);
            if !els.is_empty() {
                out.push_str(" else {\n");
                stmts_text(els, indent + 1, out);
                let _ = write!(out, "{}}}", pad);
            }
            out.push('\n');
        }
        Stmt::While(c, n, body) => {
            let _ = writeln!(out, "{} = 0;", c);
            let _ = writeln!(out, "{}while ({} < {}) {{", pad, c, n);
            let _ = writeln!(out, "{}  {}++;", pad, c);
            stmts_text(body, indent + 1, out);
            let _ = writeln!(out, "{}}}", pad);
        }
        Stmt::For(f, lo, hi, body) => {
            let _ = writeln!(out, "for ({} : {}..{}) {{", f, lo, hi);
            stmts_text(body, indent + 1, out);
            let _ = writeln!(out, "{}}}", pad);
        }
        Stmt::Break => out.push_str("break;\n"),
        Stmt::Continue => out.push_str("continue;\n"),
        Stmt::Return => out.push_str("return;\n"),
        Stmt::Exit(None) => out.push_str("exit();\n"),
        Stmt::Exit(Some(code)) => {
            let _ = writeln!(out, "exit({});", code);
        }
    }
}

impl Program {
    pub fn text(&self) -> String {
        let mut out = String::from("BEGIN {\n");
        for (v, ty, e) in &self.vars {
            let _ = write!(out, "  {} = ({})(", v, ty);
            expr_text(e, &mut out);
            out.push_str(");\n");
        }
        // Every plain map assigned once first: reading a map nothing
        // assigns is an error.
        for m in &self.maps {
            let key: Vec<Expr> = m.keys.iter().map(|k| Expr::Cast(k, Box::new(Expr::Lit("0".into())))).collect();
            let zero = Expr::Lit("0".into());
            let first = if TYPES.contains(&m.holds) {
                Stmt::MapSet(m.name.clone(), key, m.holds, zero)
            } else {
                Stmt::Agg(m.name.clone(), key, m.holds, (m.holds != "count").then_some(zero))
            };
            stmt_text(&first, 1, &mut out);
        }
        stmts_text(&self.body, 1, &mut out);
        // Always: BEGIN alone would otherwise run until Ctrl-C.
        out.push_str("  exit();\n}\n");
        out
    }
}

// Shrinking: smaller candidates of a program, largest cuts first.

fn smaller_exprs(e: &Expr) -> Vec<Expr> {
    let mut out = Vec::new();
    if !matches!(e, Expr::Lit(v) if v == "0" || v == "1") {
        out.push(Expr::Lit("0".into()));
        out.push(Expr::Lit("1".into()));
    }
    match e {
        Expr::Lit(_) | Expr::Var(_) => {}
        Expr::Map(m, keys) => out.extend(smaller_lists(keys).into_iter().map(|k| Expr::Map(m.clone(), k))),
        Expr::Update(place, _, _) => out.push((**place).clone()),
        Expr::Bool(c) => out.extend(smaller_conds(c).into_iter().map(|c| Expr::Bool(Box::new(c)))),
        Expr::Cast(ty, a) => {
            out.push((**a).clone());
            out.extend(smaller_exprs(a).into_iter().map(|a| Expr::Cast(ty, Box::new(a))));
        }
        Expr::Un(op, a) => {
            out.push((**a).clone());
            out.extend(smaller_exprs(a).into_iter().map(|a| Expr::Un(op, Box::new(a))));
        }
        Expr::Bin(op, a, b) => {
            out.push((**a).clone());
            if !matches!(*op, "/" | "%") {
                out.push((**b).clone());
            }
            out.extend(smaller_exprs(a).into_iter().map(|a| Expr::Bin(op, Box::new(a), b.clone())));
            out.extend(smaller_exprs(b).into_iter().map(|b| Expr::Bin(op, a.clone(), Box::new(b))));
        }
        Expr::Tern(c, ty, a, b) => {
            out.push(Expr::Cast(ty, a.clone()));
            out.push(Expr::Cast(ty, b.clone()));
            out.extend(smaller_conds(c).into_iter().map(|c| Expr::Tern(Box::new(c), ty, a.clone(), b.clone())));
            out.extend(smaller_exprs(a).into_iter().map(|a| Expr::Tern(c.clone(), ty, Box::new(a), b.clone())));
            out.extend(smaller_exprs(b).into_iter().map(|b| Expr::Tern(c.clone(), ty, a.clone(), Box::new(b))));
        }
    }
    out
}

fn smaller_conds(c: &Cond) -> Vec<Cond> {
    let mut out = Vec::new();
    match c {
        Cond::Cmp(op, a, b) => {
            out.extend(smaller_exprs(a).into_iter().map(|a| Cond::Cmp(op, a, b.clone())));
            out.extend(smaller_exprs(b).into_iter().map(|b| Cond::Cmp(op, a.clone(), b)));
        }
        Cond::Logic(op, a, b) => {
            out.push((**a).clone());
            out.push((**b).clone());
            out.extend(smaller_conds(a).into_iter().map(|a| Cond::Logic(op, Box::new(a), b.clone())));
            out.extend(smaller_conds(b).into_iter().map(|b| Cond::Logic(op, a.clone(), Box::new(b))));
        }
        Cond::Not(a) => {
            out.push((**a).clone());
            out.extend(smaller_conds(a).into_iter().map(|a| Cond::Not(Box::new(a))));
        }
        Cond::Truth(e) => out.extend(smaller_exprs(e).into_iter().map(Cond::Truth)),
        Cond::Has(m, keys) => out.extend(smaller_lists(keys).into_iter().map(|k| Cond::Has(m.clone(), k))),
        Cond::Deleted(m, keys) => {
            out.push(Cond::Has(m.clone(), keys.clone()));
            out.extend(smaller_lists(keys).into_iter().map(|k| Cond::Deleted(m.clone(), k)));
        }
    }
    out
}

/// A list of expressions with one of them smaller.
fn smaller_lists(items: &[Expr]) -> Vec<Vec<Expr>> {
    let mut out = Vec::new();
    for i in 0..items.len() {
        for e in smaller_exprs(&items[i]) {
            let mut v = items.to_vec();
            v[i] = e;
            out.push(v);
        }
    }
    out
}

fn smaller_stmts(stmts: &[Stmt]) -> Vec<Vec<Stmt>> {
    let mut out = Vec::new();
    // Drop halves, then single statements.
    if stmts.len() > 1 {
        let half = stmts.len() / 2;
        out.push(stmts[half..].to_vec());
        out.push(stmts[..half].to_vec());
    }
    for i in 0..stmts.len() {
        let mut v = stmts.to_vec();
        v.remove(i);
        out.push(v);
    }
    for i in 0..stmts.len() {
        for s in smaller_stmt(&stmts[i]) {
            let mut v = stmts.to_vec();
            v.splice(i..i + 1, s);
            out.push(v);
        }
    }
    out
}

/// Smaller replacements of one statement (each a list: a block may replace it).
fn smaller_stmt(s: &Stmt) -> Vec<Vec<Stmt>> {
    let mut out = Vec::new();
    match s {
        Stmt::Set(v, ty, e) => out.extend(smaller_exprs(e).into_iter().map(|e| vec![Stmt::Set(v.clone(), ty, e)])),
        Stmt::MapSet(m, k, ty, e) => {
            out.extend(smaller_exprs(e).into_iter().map(|e| vec![Stmt::MapSet(m.clone(), k.clone(), ty, e)]));
            out.extend(smaller_lists(k).into_iter().map(|k| vec![Stmt::MapSet(m.clone(), k, ty, e.clone())]));
        }
        Stmt::Compound(place, op, e) => {
            out.extend(smaller_exprs(e).into_iter().map(|e| vec![Stmt::Compound(place.clone(), op, e)]));
        }
        Stmt::Eval(e) => out.extend(smaller_exprs(e).into_iter().map(|e| vec![Stmt::Eval(e)])),
        Stmt::Agg(m, k, f, Some(e)) => {
            out.extend(smaller_exprs(e).into_iter().map(|e| vec![Stmt::Agg(m.clone(), k.clone(), f, Some(e))]));
        }
        Stmt::Printf(args) => {
            for i in 0..args.len() {
                let mut a = args.clone();
                a.remove(i);
                out.push(vec![Stmt::Printf(a)]);
            }
            for i in 0..args.len() {
                for e in smaller_exprs(&args[i].1) {
                    let mut a = args.clone();
                    a[i].1 = e;
                    out.push(vec![Stmt::Printf(a)]);
                }
            }
        }
        Stmt::If(c, then, els) => {
            out.push(then.clone());
            out.push(els.clone());
            out.extend(smaller_conds(c).into_iter().map(|c| vec![Stmt::If(c, then.clone(), els.clone())]));
            out.extend(smaller_stmts(then).into_iter().map(|t| vec![Stmt::If(c.clone(), t, els.clone())]));
            out.extend(smaller_stmts(els).into_iter().map(|e| vec![Stmt::If(c.clone(), then.clone(), e)]));
        }
        Stmt::While(c, n, body) => {
            if *n > 1 {
                out.push(vec![Stmt::While(c.clone(), 1, body.clone())]);
            }
            out.extend(smaller_stmts(body).into_iter().map(|b| vec![Stmt::While(c.clone(), *n, b)]));
        }
        Stmt::For(f, lo, hi, body) => {
            if hi - lo > 1 {
                out.push(vec![Stmt::For(f.clone(), *lo, lo + 1, body.clone())]);
            }
            out.extend(smaller_stmts(body).into_iter().map(|b| vec![Stmt::For(f.clone(), *lo, *hi, b)]));
        }
        _ => {}
    }
    out
}

/// Every program one step smaller than `p`.
pub fn smaller(p: &Program) -> Vec<Program> {
    let mut out = Vec::new();
    for body in smaller_stmts(&p.body) {
        out.push(Program { body, ..p.clone() });
    }
    for i in 0..p.vars.len() {
        for e in smaller_exprs(&p.vars[i].2) {
            let mut q = p.clone();
            q.vars[i].2 = e;
            out.push(q);
        }
    }
    for i in 0..p.vars.len() {
        let mut q = p.clone();
        q.vars.remove(i);
        out.push(q);
    }
    out
}

/// The smallest program reachable from `p` by one-step cuts that still
/// `fails`.
pub fn shrink(p: &Program, mut fails: impl FnMut(&Program) -> bool) -> Program {
    let mut best = p.clone();
    'outer: loop {
        for q in smaller(&best) {
            if q.text().len() < best.text().len() && fails(&q) {
                best = q;
                continue 'outer;
            }
        }
        return best;
    }
}
