use super::ast::*;
use super::*;

fn ok(src: &str) -> String {
    match parse(src) {
        Ok(p) => dump::dump(&p),
        Err(d) => panic!("{}: {:?}", src, d),
    }
}

fn err(src: &str) -> String {
    let d = parse(src).expect_err(src);
    d[0].message.clone()
}

#[test]
fn precedence_follows_c() {
    assert_eq!(
        ok("BEGIN { $x = 1 + 2 * 3 << 1 == 14 && !0 || 0; }"),
        "(probe [BEGIN]\n  (= $x (|| (&& (== (<< (+ 1 (* 2 3)) 1) 14) (! 0)) 0))\n)\n"
    );
    assert_eq!(ok("BEGIN { $x = a ? b : c ? d : e; }"), "(probe [BEGIN]\n  (= $x (? a b (? c d e)))\n)\n");
    assert_eq!(
        ok("BEGIN { $x = -$y->z.w[1]++; }"),
        "(probe [BEGIN]\n  (= $x (- (++post ([] (. (-> $y z) w) 1))))\n)\n"
    );
    assert_eq!(ok("BEGIN { $x = 1 & 2 | 3 ^ 4; }"), "(probe [BEGIN]\n  (= $x (| (& 1 2) (^ 3 4)))\n)\n");
}

#[test]
fn casts_do_not_steal_parentheses() {
    assert_eq!(ok("BEGIN { $a = (uint8)$x + (x) * 2; }"), "(probe [BEGIN]\n  (= $a (+ (cast uint8 $x) (* x 2)))\n)\n");
    assert_eq!(
        ok("BEGIN { $a = (struct task_struct *)curtask; }"),
        "(probe [BEGIN]\n  (= $a (cast struct task_struct* curtask))\n)\n"
    );
    assert_eq!(
        ok("BEGIN { $a = (unsigned long)1; $b = (foo **)0; }"),
        "(probe [BEGIN]\n  (= $a (cast unsigned long 1))\n  (= $b (cast foo** 0))\n)\n"
    );
}

#[test]
fn attach_points_and_predicates() {
    assert_eq!(
        ok("uprobe:/lib/x86_64-linux-gnu/libc.so.6:fopen,uretprobe:./bin:\"ns::f(int)\" /pid == 1/ { }"),
        "(probe [uprobe | /lib/x86_64-linux-gnu/libc.so.6 | fopen, uretprobe | ./bin | ns::f(int)]\n  (pred (== pid 1))\n)\n"
    );
    assert_eq!(
        ok("t:syscalls:sys_enter_* /$x / 2 > 1/{}"),
        "(probe [t | syscalls | sys_enter_*]\n  (pred (> (/ $x 2) 1))\n)\n"
    );
    assert_eq!(ok("BEGIN{exit()}END{}"), "(probe [BEGIN]\n  (exit)\n)\n(probe [END]\n)\n");
}

#[test]
fn angle_blocks() {
    assert_eq!(
        ok("uprobe:a:b < printf(\"hi\"); > END { }"),
        "(probe [uprobe | a | b]\n  (printf \"hi\")\n)\n(probe [END]\n)\n"
    );
    assert_eq!(
        ok("BEGIN < if (1 > 0) { @x = 2 > 1 } >"),
        "(probe [BEGIN]\n  (if (> 1 0)\n    (= @x (> 2 1))\n  )\n)\n"
    );
    // A `>` that only the end of input or another probe can follow closes the body.
    assert_eq!(
        ok("uprobe:a:b < printf(\"%d\", reg(\"ax\")) >"),
        "(probe [uprobe | a | b]\n  (printf \"%d\" (reg \"ax\"))\n)\n"
    );
    assert_eq!(
        ok("BEGIN < exit() > END < $x = 1 > 0 >"),
        "(probe [BEGIN]\n  (exit)\n)\n(probe [END]\n  (= $x (> 1 0))\n)\n"
    );
    assert_eq!(
        err("BEGIN < $x = 1 > 0;"),
        "syntax error: expected `{`, a statement or an expression, found end of input"
    );
}

#[test]
fn statements() {
    let src =
        "BEGIN { if (a) { } else if (b) { x() } else { y() } while (1) { break; continue } unroll(3) { $i++ } return }";
    assert!(ok(src).contains("(while 1\n    (break)\n    (continue)\n  )"));
    assert!(ok("BEGIN { @x[1, \"a\"] += 2; @ = count(); @[comm] = 1; $x <<= 1 }").contains("(+= @x[1 \"a\"] 2)"));
    assert!(ok("BEGIN { for ($kv : @m) { } for ($i : 0..10) { } }").contains("(for $i 0..10"));
}

#[test]
fn preamble() {
    let src = "#!/usr/bin/env rtrace\n#include <linux/sched.h>\nconfig = { max_strlen = 16; stack_mode = perf }\nstruct Foo { int x; char name[16]; struct Bar *next, *prev; unsigned long flags : 3; };\nBEGIN { }";
    assert_eq!(
        ok(src),
        "(include \"linux/sched.h\")\n(config max_strlen 16)\n(config stack_mode perf)\n(struct Foo\n  (field int x)\n  (field char name[16])\n  (field struct Bar* next)\n  (field struct Bar* prev)\n  (field unsigned long flags :3)\n)\n(probe [BEGIN]\n)\n"
    );
}

#[test]
fn literals() {
    assert_eq!(
        ok("BEGIN { $x = 0x10 + 010 + 1e3 + 1_000 }"),
        "(probe [BEGIN]\n  (= $x (+ (+ (+ 16 8) 1000) 1000))\n)\n"
    );
    assert_eq!(ok("BEGIN { $s = \"a\\tb\\x41\\101\" }"), "(probe [BEGIN]\n  (= $s \"a\\tbAA\")\n)\n");
    assert_eq!(
        ok("BEGIN { printf(\"%d %s\", $1, $#) } // c\n/* d */"),
        "(probe [BEGIN]\n  (printf \"%d %s\" $1 $#)\n)\n"
    );
}

#[test]
fn errors_are_readable() {
    assert_eq!(err("BEGIN { printf(\"x\") "), "syntax error: unexpected end of input: `{` is never closed");
    assert_eq!(err("BEGIN { printf(\"x\" }"), "syntax error: expected `)`, found `}`");
    assert_eq!(err("BEGIN { @x[1 = 2 }"), "syntax error: expected `]`, found `=`");
    assert_eq!(err("BEGIN { $x = ; }"), "syntax error: expected an expression, found `;`");
    assert_eq!(err("BEGIN { printf(\"abc); }"), "unterminated string literal");
    assert_eq!(err("BEGIN { $x = \"\\q\"; }"), "unknown escape sequence `\\q`");
    assert_eq!(
        err("BEGIN { $x = 99999999999999999999; }"),
        "integer literal `99999999999999999999` does not fit in 64 bits"
    );
    assert_eq!(err("BEGIN { /* x }"), "unterminated comment");
}

#[test]
fn attach_points_hold_no_control_characters() {
    // Found by fuzzing: a NUL reached an ELF section name (`fexit/a\0b`).
    assert_eq!(
        err("kretfunc:a\0b { @ = count(); }"),
        "syntax error: expected `<`, `{` or a predicate `/.../`, found the control character U+0000"
    );
    assert!(parse("uprobe:./bin:\"a\x01\" { }").is_err());
}

#[test]
fn spans_point_at_the_text() {
    let p = parse("BEGIN { @x = pid + 1; }").unwrap();
    let StmtKind::Assign { value, .. } = &p.probes[0].body.stmts[0].kind else { panic!() };
    assert_eq!((value.span.start, value.span.end), (13, 20));
}

#[test]
fn no_input_makes_it_panic() {
    let src = "#include <x.h>\nstruct S { int a[2]; };\nuprobe:./f:g, t:a:b /pid > 1 && comm == \"x\"/ { @m[$1, str(arg0)] = count(); $x = (uint8)(1 ? -2 : ~3); if ($x) { unroll (2) { print(@m) } } else { exit() } } END < printf(\"%d\\n\", $x++); >";
    for end in 0..=src.len() {
        if src.is_char_boundary(end) {
            let _ = parse(&src[..end]);
        }
    }
}
