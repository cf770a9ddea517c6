//! Command-line arguments and program text that are not UTF-8: taken as
//! bytes where bpftrace takes them (string literals, comments, `str($N)`),
//! a clear error elsewhere, and never a panic.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};

fn rtrace(args: &[&[u8]]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtrace"))
        .args(args.iter().map(|a| OsStr::from_bytes(a)))
        .env_remove("BPFTRACE_NOTIFY_PROBES_ATTACHED")
        .output()
        .expect("run rtrace")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_byte_outside_strings_is_a_syntax_error_at_it() {
    let o = rtrace(&[b"-d", b"ast", b"-e", b"BEGIN { @\xff = 1; }"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "stdin:1:10-11: ERROR: syntax error: expected `;` or `}`, found the byte 0xff, which is not UTF-8 text\n \
         1 | BEGIN { @\u{fffd} = 1; }\n   |          ^\n"
    );
}

#[test]
fn bytes_in_string_literals_and_comments_are_kept() {
    let o = rtrace(&[b"-d", b"ast", b"-e", b"// caf\xe9\nBEGIN { printf(\"caf\xe9\"); }"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "(probe [BEGIN]\n  (printf \"caf\u{fffd}\")\n)\n");
}

#[test]
fn an_option_value_that_is_not_text_is_a_usage_error() {
    let o = rtrace(&[b"-c", b"./x\xff", b"-e", b"BEGIN { exit(); }"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(stderr(&o).starts_with("ERROR: the value of -c is not valid UTF-8: './x\u{fffd}'\n"), "{}", stderr(&o));
}

#[test]
fn a_parameter_that_is_not_text_is_a_string_of_its_bytes() {
    // A parameter that is not a number is a string (v0.26): not for `%d`.
    let o = rtrace(&[b"--emit", b"asm", b"-e", b"BEGIN { printf(\"%d\\n\", $1); }", b"\xff"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("this argument should be an integer, but it is string"), "{}", stderr(&o));
    if !common::require_root("printing a parameter's bytes") {
        return;
    }
    // As a string, and bytes in a literal: printed as the bytes they are, as bpftrace does.
    let o = rtrace(&[b"-q", b"-e", b"BEGIN { printf(\"%s|\xe9|\\n\", str($1)); exit(); }", b"a\xffb"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.starts_with(b"a\xffb|\xe9|\n"), "{:?}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn a_script_file_that_is_not_utf8_runs() {
    let dir = std::env::temp_dir().join(format!("rtrace-arguments-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join(OsStr::from_bytes(b"caf\xe9.rt"));
    std::fs::write(&script, b"BEGIN { printf(\"\xe9\\n\"); }\n").unwrap();
    let o = rtrace(&[b"-d", b"ast", script.as_os_str().as_bytes()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "(probe [BEGIN]\n  (printf \"\u{fffd}\\n\")\n)\n");
}
