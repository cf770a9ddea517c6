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

/// A line starting with `:` that is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("`{0}` takes at most one argument, not `{1}`")]
    TooMany(String, String),
    #[error("unknown command `{0}`: :help lists the commands")]
    Unknown(String),
    #[error("`{0}` is ambiguous: {1}")]
    Ambiguous(String, String),
    #[error("`{0}` takes no argument, not `{1}`")]
    NoArgument(&'static str, String),
    #[error("`{0}` takes {1}, not `{2}`")]
    BadArgument(&'static str, &'static str, String),
    #[error("`{0}` takes {1}")]
    MissingArgument(&'static str, &'static str),
}

/// Parses a line that starts with `:`. A command may be shortened to any
/// prefix that names one command (`:q`, `:pr` is ambiguous).
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or(":");
    let arg = words.next();
    if let Some(extra) = words.next() {
        return Err(CommandError::TooMany(name.to_string(), extra.to_string()));
    }
    let matches: Vec<&str> =
        COMMANDS.iter().map(|(c, _)| *c).filter(|c| c.starts_with(name) && name.len() > 1).collect();
    let full = match matches.as_slice() {
        [one] => *one,
        [] => return Err(CommandError::Unknown(name.to_string())),
        many => return Err(CommandError::Ambiguous(name.to_string(), many.join(", "))),
    };
    let no_arg = |c: Command| match arg {
        None => Ok(c),
        Some(a) => Err(CommandError::NoArgument(full, a.to_string())),
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
            Some(m) => Err(CommandError::BadArgument(":clear", "a map name such as @x", m.to_string())),
        },
        ":detach" => match arg {
            Some("all") => Ok(Command::DetachAll),
            Some(n) => n
                .parse()
                .map(Command::Detach)
                .map_err(|_| CommandError::BadArgument(":detach", "a probe number or `all`", n.to_string())),
            None => Err(CommandError::MissingArgument(":detach", "a probe number (see :probes) or `all`")),
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
        assert!(parse(":p").unwrap_err().to_string().contains("ambiguous"));
        assert!(parse(":detach x").unwrap_err().to_string().contains("probe number"));
        assert!(parse(":nope").unwrap_err().to_string().contains("unknown command"));
        assert!(parse(":maps 1").unwrap_err().to_string().contains("takes no argument"));
    }
}
