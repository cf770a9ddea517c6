//! A small regular-expression subset for test expectations (the tests may
//! use only std): literals, `.`, `^`, `$`, `*`, `+`, `?`, classes `[a-z]`
//! `[^0-9]`, and `\d \w \s \D \W \S` plus `\` escapes. No groups or `|`.

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Char(char),
    Class { negated: bool, items: Vec<ClassItem> },
}

#[derive(Debug, Clone)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rep {
    One,
    Star,
    Plus,
    Opt,
}

#[derive(Debug, Clone)]
pub struct Regex {
    items: Vec<(Atom, Rep)>,
    anchored_start: bool,
    anchored_end: bool,
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let mut chars: Vec<char> = pattern.chars().collect();
        let anchored_start = chars.first() == Some(&'^');
        if anchored_start {
            chars.remove(0);
        }
        let anchored_end = chars.last() == Some(&'$') && !(chars.len() >= 2 && chars[chars.len() - 2] == '\\');
        if anchored_end {
            chars.pop();
        }
        let mut items = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let atom = match chars[i] {
                '.' => Atom::Any,
                '\\' => {
                    i += 1;
                    let c = *chars.get(i).ok_or("pattern ends with `\\`")?;
                    match escape_class(c) {
                        Some(item) => Atom::Class { negated: false, items: vec![item] },
                        None => Atom::Char(unescape(c)),
                    }
                }
                '[' => {
                    let (atom, next) = class(&chars, i + 1)?;
                    i = next;
                    atom
                }
                c => Atom::Char(c),
            };
            i += 1;
            let rep = match chars.get(i) {
                Some('*') => Rep::Star,
                Some('+') => Rep::Plus,
                Some('?') => Rep::Opt,
                _ => Rep::One,
            };
            if rep != Rep::One {
                i += 1;
            }
            items.push((atom, rep));
        }
        Ok(Regex { items, anchored_start, anchored_end })
    }

    pub fn is_match(&self, text: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        let starts: Vec<usize> = if self.anchored_start { vec![0] } else { (0..=t.len()).collect() };
        starts.into_iter().any(|s| self.match_at(&t, s, 0))
    }

    fn match_at(&self, t: &[char], pos: usize, item: usize) -> bool {
        let Some((atom, rep)) = self.items.get(item) else {
            return !self.anchored_end || pos == t.len();
        };
        let one = |p: usize| p < t.len() && atom_matches(atom, t[p]);
        match rep {
            Rep::One => one(pos) && self.match_at(t, pos + 1, item + 1),
            Rep::Opt => (one(pos) && self.match_at(t, pos + 1, item + 1)) || self.match_at(t, pos, item + 1),
            Rep::Star | Rep::Plus => {
                let mut end = pos;
                while one(end) {
                    end += 1;
                }
                let min = if *rep == Rep::Plus { pos + 1 } else { pos };
                (min..=end).rev().any(|p| p >= min && self.match_at(t, p, item + 1))
            }
        }
    }
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        other => other,
    }
}

fn escape_class(c: char) -> Option<ClassItem> {
    Some(match c {
        'd' => ClassItem::Digit(true),
        'D' => ClassItem::Digit(false),
        'w' => ClassItem::Word(true),
        'W' => ClassItem::Word(false),
        's' => ClassItem::Space(true),
        'S' => ClassItem::Space(false),
        _ => return None,
    })
}

/// Parses `[...]` starting after the `[`; returns the atom and the index of `]`.
fn class(chars: &[char], mut i: usize) -> Result<(Atom, usize), String> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    while i < chars.len() && (chars[i] != ']' || items.is_empty()) {
        let mut c = chars[i];
        if c == '\\' {
            i += 1;
            let e = *chars.get(i).ok_or("unterminated class")?;
            if let Some(item) = escape_class(e) {
                items.push(item);
                i += 1;
                continue;
            }
            c = unescape(e);
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|n| *n != ']') {
            items.push(ClassItem::Range(c, chars[i + 2]));
            i += 3;
        } else {
            items.push(ClassItem::Range(c, c));
            i += 1;
        }
    }
    if i >= chars.len() {
        return Err("unterminated `[`".into());
    }
    Ok((Atom::Class { negated, items }, i))
}

fn atom_matches(atom: &Atom, c: char) -> bool {
    match atom {
        Atom::Any => c != '\n',
        Atom::Char(x) => *x == c,
        Atom::Class { negated, items } => {
            let hit = items.iter().any(|it| match it {
                ClassItem::Range(a, b) => (*a..=*b).contains(&c),
                ClassItem::Digit(yes) => c.is_ascii_digit() == *yes,
                ClassItem::Word(yes) => (c.is_alphanumeric() || c == '_') == *yes,
                ClassItem::Space(yes) => c.is_whitespace() == *yes,
            });
            hit != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    #[test]
    fn subset_works() {
        let r = |p: &str, t: &str| Regex::new(p).unwrap().is_match(t);
        assert!(r(r"^@\[\d+, \d+\]: \d+$", "@[12, 0]: 7"));
        assert!(!r(r"^@\[\d+, \d+\]: \d+$", "@[12, x]: 7"));
        assert!(r("exec by [0-9]+", "  exec by 123"));
        assert!(r("^a.*c$", "abbbc"));
        assert!(!r("^a.*c$", "abbbcd"));
        assert!(r("colou?r", "color"));
        assert!(r("[^ ]+ ms$", "12 ms"));
        assert!(r(r"\$x", "$x"));
    }
}
