//! Histogram rows of `hist()` and `lhist()` maps, in bpftrace v0.26's text
//! and JSON shapes: which buckets are shown, their labels and their bars.
//!
//! As bpftrace builds them: each shown bucket has an upper bound (its
//! label; the last `lhist` bucket has none), the first one may have a lower
//! bound, and a bucket whose bounds are adjacent plain numbers is shown as
//! that one number (`[1]`).

/// Width of the `@@@@` bar of the fullest bucket.
const BAR_WIDTH: usize = 52;

/// A bucket bound: a plain number, or one written with a binary suffix
/// (`4K`), which JSON still shows as its number.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bound {
    Int(i128),
    Suffixed(String, i128),
}

impl Bound {
    fn number(&self) -> i128 {
        match self {
            Bound::Int(n) | Bound::Suffixed(_, n) => *n,
        }
    }

    fn text(&self) -> String {
        match self {
            Bound::Int(n) => n.to_string(),
            Bound::Suffixed(s, _) => s.clone(),
        }
    }
}

/// The shown buckets of one histogram.
struct Buckets {
    lower: Option<Bound>,
    /// Upper bounds of the shown buckets, in order; one fewer than `counts`
    /// when the last shown bucket is open-ended.
    labels: Vec<Bound>,
    counts: Vec<u64>,
}

/// The first and last non-empty bucket.
fn shown_range(counts: &[u64]) -> Option<(usize, usize)> {
    let first = counts.iter().position(|c| *c > 0)?;
    let last = counts.iter().rposition(|c| *c > 0).unwrap_or(first);
    Some((first, last))
}

/// The upper bound of log2 bucket `index` with `k` bits of sub-buckets per
/// power of two: `(1 << power) * (n + interval)`, with K, M, G, T, P, E for
/// powers of 1024.
fn log2_label(index: usize, k: u32) -> Bound {
    let n = 1u128 << k;
    let interval = index as u128 & (n - 1);
    let mut power = (index >> k) as u32 - 1;
    let value = (1u128 << power) * (n + interval);
    let decade = (power / 10).min(6);
    power -= 10 * decade;
    let suffix = ["", "K", "M", "G", "T", "P", "E"][decade as usize];
    Bound::Suffixed(format!("{}{}", (1u128 << power) * (n + interval), suffix), value as i128)
}

/// `hist()` buckets (index 0: negative values, then `1 << k` per power of
/// two), values divided by `div`.
fn log2_buckets(counts: &[u64], div: u64, k: u32) -> Buckets {
    let Some((first, last)) = shown_range(counts) else {
        return Buckets { lower: None, labels: vec![], counts: vec![] };
    };
    // The first two sets of buckets hold one value each: shown as numbers.
    let exact = 2usize << k;
    let label = |i: usize| if i <= exact { Bound::Int(i as i128) } else { log2_label(i, k) };
    let lower =
        (first != 0).then(|| if first - 1 <= exact { Bound::Int(first as i128 - 1) } else { log2_label(first - 1, k) });
    Buckets {
        lower,
        labels: (first..=last).map(|i| if i == 0 { Bound::Int(0) } else { label(i) }).collect(),
        counts: counts[first..=last].iter().map(|c| c / div.max(1)).collect(),
    }
}

/// An `lhist()` bound: with K or M only when the step is a multiple of 1024.
fn linear_label(n: i64, step: i64) -> Bound {
    const KILO: i64 = 1024;
    const MEGA: i64 = 1024 * 1024;
    if step % KILO != 0 {
        return Bound::Int(n as i128);
    }
    let text = if n == 0 {
        "0".to_string()
    } else if n % MEGA == 0 {
        format!("{}M", n / MEGA)
    } else if n % KILO == 0 {
        format!("{}K", n / KILO)
    } else {
        n.to_string()
    };
    Bound::Suffixed(text, n as i128)
}

/// `lhist()` buckets: below `min`, each `step` wide, from `max` on.
fn linear_buckets(counts: &[u64], min: i64, max: i64, step: i64) -> Buckets {
    let Some((first, last)) = shown_range(counts) else {
        return Buckets { lower: None, labels: vec![], counts: vec![] };
    };
    let bound = |i: usize| min + i as i64 * step;
    Buckets {
        lower: (first != 0).then(|| linear_label(bound(first - 1), step)),
        labels: (first..=last).filter(|&i| bound(i) <= max).map(|i| linear_label(bound(i), step)).collect(),
        counts: counts[first..=last].to_vec(),
    }
}

/// Two plain numbers one apart: a bucket of one value.
fn single_value(a: &Bound, b: &Bound) -> bool {
    matches!((a, b), (Bound::Int(x), Bound::Int(y)) if x + 1 == *y)
}

/// `[lo, hi)`, `[lo]`, `(..., hi)` or `[lo, ...)`.
fn row_label(b: &Buckets, i: usize) -> String {
    let range = |lo: &Bound, hi: &Bound| {
        if single_value(lo, hi) {
            format!("[{}]", lo.text())
        } else {
            format!("[{}, {})", lo.text(), hi.text())
        }
    };
    if i == 0 {
        match (&b.lower, b.labels.first()) {
            (None, Some(hi)) => format!("(..., {})", hi.text()),
            (Some(lo), None) => format!("[{}, ...)", lo.text()),
            (Some(lo), Some(hi)) => range(lo, hi),
            (None, None) => String::new(),
        }
    } else if i >= b.labels.len() {
        format!("[{}, ...)", b.labels[i - 1].text())
    } else {
        range(&b.labels[i - 1], &b.labels[i])
    }
}

fn text(b: &Buckets) -> String {
    let top = b.counts.iter().copied().max().unwrap_or(0);
    let mut out = String::new();
    for (i, count) in b.counts.iter().enumerate() {
        // bpftrace computes the bar in single precision and truncates.
        let bar = if top == 0 { 0 } else { (*count as f32 / top as f32 * BAR_WIDTH as f32) as usize };
        out.push_str(&format!(
            "{:<16}{:>8} |{:<width$}|\n",
            row_label(b, i),
            count,
            "@".repeat(bar),
            width = BAR_WIDTH
        ));
    }
    out
}

/// JSON buckets: closed intervals, `min` and `max` left out at the open ends.
fn json(b: &Buckets) -> String {
    let items: Vec<String> = b
        .counts
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let mut item = String::from("{");
            let lower = if i == 0 { b.lower.as_ref() } else { b.labels.get(i - 1) };
            if let Some(lo) = lower {
                item.push_str(&format!("\"min\": {}, ", super::value::json_number(lo.number())));
            }
            if let Some(hi) = b.labels.get(i) {
                item.push_str(&format!("\"max\": {}, ", super::value::json_number(hi.number() - 1)));
            }
            item.push_str(&format!("\"count\": {}}}", count));
            item
        })
        .collect();
    // Arrays are unspaced in bpftrace's JSON.
    format!("[{}]", items.join(","))
}

/// The text rows of a `hist()` value, each ending in a newline.
pub fn log2_text(counts: &[u64], div: u64) -> String {
    text(&log2_buckets(counts, div, 0))
}

pub fn log2_json(counts: &[u64], div: u64) -> String {
    json(&log2_buckets(counts, div, 0))
}

/// The text rows of an `lhist()` value, each ending in a newline.
pub fn linear_text(counts: &[u64], min: i64, max: i64, step: i64) -> String {
    text(&linear_buckets(counts, min, max, step))
}

pub fn linear_json(counts: &[u64], min: i64, max: i64, step: i64) -> String {
    json(&linear_buckets(counts, min, max, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_binary_suffixes() {
        let l = |i| log2_label(i, 0).text();
        assert_eq!(l(3), "4");
        assert_eq!(l(11), "1K");
        assert_eq!(l(23), "4M");
        assert_eq!(l(65), "16E");
        assert_eq!(linear_label(2048, 1024).text(), "2K");
        assert_eq!(linear_label(3 * 1024 * 1024, 1024).text(), "3M");
        // Only a step of whole KiBs gets suffixes (bpftrace v0.26).
        assert_eq!(linear_label(2048, 512), Bound::Int(2048));
    }

    // bpftrace v0.26.1's tests/runtime/outputs/hist.txt:
    // begin { @=hist(-1); @=hist(2); @=hist(3); @=hist(7); @=hist(20); }
    #[test]
    fn log2_rows_match_bpftrace() {
        let mut counts = vec![0u64; 66];
        counts[0] = 1;
        counts[3] = 2;
        counts[4] = 1;
        counts[6] = 1;
        assert_eq!(
            log2_text(&counts, 1),
            "(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
             [0]                    0 |                                                    |\n\
             [1]                    0 |                                                    |\n\
             [2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\
             [4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
             [8, 16)                0 |                                                    |\n\
             [16, 32)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n"
        );
        assert!(
            log2_json(&counts, 1).starts_with("[{\"max\": -1, \"count\": 1},{\"min\": 0, \"max\": 0, \"count\": 0},")
        );
        let mut ones = vec![0u64; 66];
        ones[1] = 1;
        ones[2] = 2;
        assert_eq!(
            log2_json(&ones, 1),
            "[{\"min\": 0, \"max\": 0, \"count\": 1},{\"min\": 1, \"max\": 1, \"count\": 2}]"
        );
        // A first shown bucket past [1] takes its lower bound from the one before.
        let mut big = vec![0u64; 66];
        big[12] = 1;
        assert!(log2_text(&big, 1).starts_with("[1K, 2K)"), "{}", log2_text(&big, 1));
        assert_eq!(log2_json(&big, 1), "[{\"min\": 1024, \"max\": 2047, \"count\": 1}]");
    }

    // bpftrace v0.26.1's tests/runtime/outputs/lhist.txt:
    // lhist(2|3|7|-1|11, 0, 10, 2)
    #[test]
    fn linear_rows_have_open_ends() {
        let mut counts = vec![0u64; 7];
        counts[0] = 1;
        counts[2] = 2;
        counts[4] = 1;
        counts[6] = 1;
        assert_eq!(
            linear_text(&counts, 0, 10, 2),
            "(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
             [0, 2)                 0 |                                                    |\n\
             [2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\
             [4, 6)                 0 |                                                    |\n\
             [6, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
             [8, 10)                0 |                                                    |\n\
             [10, ...)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n"
        );
        assert!(linear_json(&counts, 0, 10, 2)
            .starts_with("[{\"max\": -1, \"count\": 1},{\"min\": 0, \"max\": 1, \"count\": 0}"));
        assert!(linear_json(&counts, 0, 10, 2).ends_with(",{\"min\": 10, \"count\": 1}]"));
        // Only the bucket from `max` on.
        let mut top = vec![0u64; 7];
        top[6] = 3;
        assert!(linear_text(&top, 0, 10, 2).starts_with("[10, ...)              3 |"));
        // A step of 1: each bucket is one value.
        let mut unit = vec![0u64; 5];
        unit[1] = 1;
        unit[2] = 1;
        assert!(
            linear_text(&unit, 0, 3, 1).starts_with("[0]                    1 |"),
            "{}",
            linear_text(&unit, 0, 3, 1)
        );
    }
}
