//! The prompt's `:` commands.

/// Every command and what it does (`:help` prints this).
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "show this help"),
    (":probes", "list the live probes: number, input, attach points, hits"),
    (":detach", ":detach N stops probe N; :detach all stops every probe"),
    (":maps", "list the session's maps: key and value types, entries"),
    (":print", "print every map (print(@x) or @x prints one)"),
    (":clear", "clear every map (:clear @x clears one)"),
    (":quit", "detach, run END blocks, print the maps and leave (also Ctrl-D)"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Probes,
    Detach(usize),
    DetachAll,
    Maps,
    Print,
    Clear(Option<String>),
    Quit,
}

/// Parses a line that starts with `:`. A command may be shortened to any
/// prefix that names one command (`:q`, `:pr` is ambiguous).
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or(":");
    let arg = words.next();
    if let Some(extra) = words.next() {
        return Err(format!("`{}` takes at most one argument, not `{}`", name, extra));
    }
    let matches: Vec<&str> =
        COMMANDS.iter().map(|(c, _)| *c).filter(|c| c.starts_with(name) && name.len() > 1).collect();
    let full = match matches.as_slice() {
        [one] => *one,
        [] => return Err(format!("unknown command `{}`: :help lists the commands", name)),
        many => return Err(format!("`{}` is ambiguous: {}", name, many.join(", "))),
    };
    let no_arg = |c: Command| match arg {
        None => Ok(c),
        Some(a) => Err(format!("`{}` takes no argument, not `{}`", full, a)),
    };
    match full {
        ":help" => no_arg(Command::Help),
        ":probes" => no_arg(Command::Probes),
        ":maps" => no_arg(Command::Maps),
        ":print" => no_arg(Command::Print),
        ":quit" => no_arg(Command::Quit),
        ":clear" => match arg {
            None => Ok(Command::Clear(None)),
            Some(m) if m.starts_with('@') => Ok(Command::Clear(Some(m.to_string()))),
            Some(m) => Err(format!("`:clear` takes a map name such as @x, not `{}`", m)),
        },
        ":detach" => match arg {
            Some("all") => Ok(Command::DetachAll),
            Some(n) => n
                .parse()
                .map(Command::Detach)
                .map_err(|_| format!("`:detach` takes a probe number or `all`, not `{}`", n)),
            None => Err("`:detach` takes a probe number (see :probes) or `all`".into()),
        },
        _ => unreachable!("every command is matched above"),
    }
}

/// The `:help` text.
pub fn help() -> String {
    let mut out = String::from(
        "Type probes to attach them now (`tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }`),\n\
         or statements to run them once (`print(@x)`, `@x`, `clear(@x)`, `delete(@x[1])`).\n\
         Unclosed braces continue on the next line. Tab completes; history is kept.\n\n",
    );
    for (name, what) in COMMANDS {
        out.push_str(&format!("  {:<10} {}\n", name, what));
    }
    out.push_str("\n  Ctrl-C     on an empty line: stop the probes of the last input; else discard the line\n");
    out.push_str("  Ctrl-D     same as :quit\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(":probes"), Ok(Command::Probes));
        assert_eq!(parse(":q"), Ok(Command::Quit));
        assert_eq!(parse(":detach 3"), Ok(Command::Detach(3)));
        assert_eq!(parse(":detach all"), Ok(Command::DetachAll));
        assert_eq!(parse(":clear @x"), Ok(Command::Clear(Some("@x".into()))));
        assert!(parse(":p").unwrap_err().contains("ambiguous"));
        assert!(parse(":detach x").unwrap_err().contains("probe number"));
        assert!(parse(":nope").unwrap_err().contains("unknown command"));
        assert!(parse(":maps 1").unwrap_err().contains("takes no argument"));
    }
}
