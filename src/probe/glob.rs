//! Shell-style wildcard matching (`*`, `?`) for attach points.

pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("sys_enter_*", "sys_enter_openat"));
        assert!(matches("*open*", "sys_enter_openat"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("sys_exit_*", "sys_enter_openat"));
        assert!(matches("*", ""));
        assert!(!matches("a", ""));
    }
}
