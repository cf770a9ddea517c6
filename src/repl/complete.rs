//! Tab completion at the prompt: commands, probe types, tracepoint
//! categories and events, functions of a uprobe's binary, builtins,
//! functions and map names. Pure text in, candidates out; the system is
//! read through `System` so the rules can be tested on their own.

use super::commands::COMMANDS;
use crate::system::tracefs;

/// Probe types, as typed before the first `:` (BEGIN and END have none).
const PROBE_TYPES: &[&str] = &[
    "tracepoint:",
    "rawtracepoint:",
    "uprobe:",
    "uretprobe:",
    "usdt:",
    "kprobe:",
    "kretprobe:",
    "kfunc:",
    "kretfunc:",
    "interval:",
    "profile:",
    "software:",
    "hardware:",
    "begin",
    "end",
    "BEGIN",
    "END",
];

/// What completion reads from the system.
pub trait System {
    /// Tracepoint categories (tracefs `events/`).
    fn categories(&self) -> Vec<String>;
    /// The events of one category.
    fn events(&self, category: &str) -> Vec<String>;
    /// Function names of the binary a uprobe names.
    fn functions(&self, target: &str) -> Vec<String>;
}

/// The real system: tracefs and ELF files.
pub struct Host;

impl System for Host {
    fn categories(&self) -> Vec<String> {
        tracefs::mounted().map(|root| tracefs::categories(&root)).unwrap_or_default()
    }

    fn events(&self, category: &str) -> Vec<String> {
        tracefs::mounted().map(|root| tracefs::events(&root, category)).unwrap_or_default()
    }

    fn functions(&self, target: &str) -> Vec<String> {
        use crate::system::binary::{locate, Binary};
        let Ok(binary) = locate(target).and_then(|p| Binary::read(&p)) else { return vec![] };
        binary.functions.into_iter().map(|f| f.demangled.map_or(f.name, |(_, short)| short)).collect()
    }
}

/// Characters of the word being completed: probe specs keep their `:`,
/// paths and wildcards; maps their `@`.
fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_:/.*@$-+".contains(c)
}

/// Where the word under the cursor starts, and what may replace it.
pub fn complete(line: &str, pos: usize, maps: &[String], system: &dyn System) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before.char_indices().rev().take_while(|(_, c)| word_char(*c)).last().map_or(pos, |(i, _)| i);
    let word = &before[start..];
    let at_line_start = before[..start].trim().is_empty();
    let mut out: Vec<String> = if word.starts_with(':') && at_line_start {
        COMMANDS.iter().map(|(c, _)| c.to_string()).collect()
    } else if word.starts_with('@') {
        maps.to_vec()
    } else if open_braces(&before[..start]) > 0 {
        body_words(maps)
    } else if let Some((provider, rest)) = word.split_once(':') {
        probe_spec(provider, rest, system)
    } else {
        let mut words: Vec<String> = PROBE_TYPES.iter().map(|s| s.to_string()).collect();
        // Statements run at the prompt too.
        words.extend(body_words(maps));
        words
    };
    out.retain(|c| c.starts_with(word) && c != word);
    out.sort();
    out.dedup();
    (start, out)
}

/// Builtins, functions (with their parenthesis) and maps.
fn body_words(maps: &[String]) -> Vec<String> {
    let builtins = crate::sema::builtin_names().iter().map(|s| s.to_string());
    let functions = crate::sema::function_names().iter().map(|f| format!("{}(", f));
    builtins.chain(functions).chain(maps.iter().cloned()).collect()
}

/// Completions of a probe spec after its provider: `tracepoint:sch` → categories, ...
fn probe_spec(provider: &str, rest: &str, system: &dyn System) -> Vec<String> {
    let parts: Vec<&str> = rest.split(':').collect();
    match (provider, parts.as_slice()) {
        ("tracepoint" | "t", [_]) => system.categories().into_iter().map(|c| format!("{}:{}:", provider, c)).collect(),
        ("tracepoint" | "t", [category, _]) => {
            system.events(category).into_iter().map(|e| format!("{}:{}:{}", provider, category, e)).collect()
        }
        ("uprobe" | "u" | "uretprobe" | "ur", [target, _]) if !target.is_empty() => {
            system.functions(target).into_iter().map(|f| format!("{}:{}:{}", provider, target, f)).collect()
        }
        ("interval" | "i" | "profile" | "p", [_]) => {
            ["s", "ms", "us", "hz"].iter().map(|u| format!("{}:{}:", provider, u)).collect()
        }
        _ => vec![],
    }
}

/// Braces opened and not closed in `text` (outside strings and comments).
pub fn open_braces(text: &str) -> i32 {
    let mut depth = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl System for Fake {
        fn categories(&self) -> Vec<String> {
            vec!["sched".into(), "syscalls".into(), "signal".into()]
        }
        fn events(&self, category: &str) -> Vec<String> {
            match category {
                "sched" => vec!["sched_switch".into(), "sched_wakeup".into()],
                _ => vec![],
            }
        }
        fn functions(&self, target: &str) -> Vec<String> {
            if target == "./add" {
                vec!["add".into(), "main".into()]
            } else {
                vec![]
            }
        }
    }

    fn words(line: &str) -> Vec<String> {
        complete(line, line.len(), &["@count".into(), "@bytes".into()], &Fake).1
    }

    #[test]
    fn completes_by_context() {
        assert_eq!(words("tracep"), ["tracepoint:"]);
        assert_eq!(words("tracepoint:s"), ["tracepoint:sched:", "tracepoint:signal:", "tracepoint:syscalls:"]);
        assert_eq!(words("t:sched:sched_s"), ["t:sched:sched_switch"]);
        assert_eq!(words("uprobe:./add:a"), ["uprobe:./add:add"]);
        assert_eq!(words("interval:m"), ["interval:ms:"]);
        assert_eq!(words(":pro"), [":probes"]);
        assert_eq!(words(":pr"), [":print", ":probes"]);
        assert_eq!(words("BEGIN { @c"), ["@count"]);
        assert_eq!(words("BEGIN { printf(\"{\"); com"), ["comm"]);
        assert_eq!(words("t:sched:sched_switch { @[comm] = cou"), ["count("]);
        assert_eq!(words("pri"), ["print(", "printf("]);
        let (start, _) = complete("BEGIN { @x = pi", 15, &[], &Fake);
        assert_eq!(start, 13);
    }

    #[test]
    fn counts_open_braces() {
        assert_eq!(open_braces("BEGIN {"), 1);
        assert_eq!(open_braces("BEGIN { printf(\"}\"); }"), 0);
        assert_eq!(open_braces("BEGIN { // }\n"), 1);
        assert_eq!(open_braces("BEGIN { /* } */ if (1) {"), 2);
    }
}
