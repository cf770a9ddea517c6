//! Histogram rows of `hist()` and `lhist()` maps, in bpftrace's text and
//! JSON shapes: which buckets are shown, their labels and their bars.

/// Width of the `@@@@` bar of the fullest bucket.
const BAR_WIDTH: usize = 52;

/// One shown bucket: its text label, JSON bounds and count.
struct Row {
    label: String,
    json_bounds: String,
    count: u64,
}

/// `1`, `2`, ... `512`, `1K`, ... `512K`, `1M` ... with K/M/G/T/P/E suffixes.
fn pow2_label(power: u32) -> String {
    const SUFFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let unit = (power / 10).min(6);
    format!("{}{}", 1u64 << (power - unit * 10), SUFFIXES[unit as usize])
}

/// `0`, exact multiples of 1M as `NM` and of 1024 as `NK`, else the number.
fn linear_label(n: i64) -> String {
    const KILO: i64 = 1024;
    const MEGA: i64 = 1024 * 1024;
    if n == 0 {
        "0".into()
    } else if n % MEGA == 0 {
        format!("{}M", n / MEGA)
    } else if n % KILO == 0 {
        format!("{}K", n / KILO)
    } else {
        n.to_string()
    }
}

/// Log2 buckets from the first to the last non-empty one.
fn log2_rows(counts: &[u64]) -> Vec<Row> {
    let Some(first) = counts.iter().position(|c| *c > 0) else { return vec![] };
    let last = counts.iter().rposition(|c| *c > 0).unwrap_or(first);
    (first..=last)
        .map(|i| {
            let (label, json_bounds) = match i {
                0 => ("(..., 0)".to_string(), "\"max\": -1, ".to_string()),
                1 => ("[0]".to_string(), "\"min\": 0, \"max\": 0, ".to_string()),
                2 => ("[1]".to_string(), "\"min\": 1, \"max\": 1, ".to_string()),
                _ => {
                    let p = (i - 2) as u32;
                    let low = 1u128 << p;
                    let high = (1u128 << (p + 1)) - 1;
                    (
                        format!("[{}, {})", pow2_label(p), pow2_label(p + 1)),
                        format!("\"min\": {}, \"max\": {}, ", low, high),
                    )
                }
            };
            Row { label, json_bounds, count: counts[i] }
        })
        .collect()
}

/// Linear buckets from the first to the last non-empty one.
fn linear_rows(counts: &[u64], min: i64, max: i64, step: i64) -> Vec<Row> {
    let Some(first) = counts.iter().position(|c| *c > 0) else { return vec![] };
    let last = counts.iter().rposition(|c| *c > 0).unwrap_or(first);
    let buckets = ((max - min) / step) as usize;
    (first..=last)
        .map(|i| {
            let (label, json_bounds) = if i == 0 {
                (format!("(..., {})", linear_label(min)), format!("\"max\": {}, ", min - 1))
            } else if i == buckets + 1 {
                (format!("[{}, ...)", linear_label(max)), format!("\"min\": {}, ", max))
            } else {
                let low = (i as i64 - 1) * step + min;
                let high = i as i64 * step + min;
                (
                    format!("[{}, {})", linear_label(low), linear_label(high)),
                    format!("\"min\": {}, \"max\": {}, ", low, high - 1),
                )
            };
            Row { label, json_bounds, count: counts[i] }
        })
        .collect()
}

fn text(rows: &[Row], div: u64) -> String {
    let top = rows.iter().map(|r| r.count).max().unwrap_or(0);
    let mut out = String::new();
    for r in rows {
        // bpftrace computes the bar in single precision and truncates.
        let bar = if top == 0 { 0 } else { (r.count as f32 / top as f32 * BAR_WIDTH as f32) as usize };
        out.push_str(&format!(
            "{:<16}{:>8} |{:<width$}|\n",
            r.label,
            r.count / div.max(1),
            "@".repeat(bar),
            width = BAR_WIDTH
        ));
    }
    out
}

fn json(rows: &[Row], div: u64) -> String {
    let items: Vec<String> =
        rows.iter().map(|r| format!("{{{}\"count\": {}}}", r.json_bounds, r.count / div.max(1))).collect();
    format!("[{}]", items.join(", "))
}

/// The text rows of a `hist()` value, each ending in a newline.
pub fn log2_text(counts: &[u64], div: u64) -> String {
    text(&log2_rows(counts), div)
}

pub fn log2_json(counts: &[u64], div: u64) -> String {
    json(&log2_rows(counts), div)
}

/// The text rows of an `lhist()` value, each ending in a newline.
pub fn linear_text(counts: &[u64], min: i64, max: i64, step: i64) -> String {
    text(&linear_rows(counts, min, max, step), 1)
}

pub fn linear_json(counts: &[u64], min: i64, max: i64, step: i64) -> String {
    json(&linear_rows(counts, min, max, step), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_binary_suffixes() {
        assert_eq!(pow2_label(0), "1");
        assert_eq!(pow2_label(9), "512");
        assert_eq!(pow2_label(10), "1K");
        assert_eq!(pow2_label(21), "2M");
        assert_eq!(pow2_label(63), "8E");
        assert_eq!(linear_label(2048), "2K");
        assert_eq!(linear_label(3 * 1024 * 1024), "3M");
        assert_eq!(linear_label(100), "100");
    }

    #[test]
    fn log2_rows_match_bpftrace() {
        let mut counts = vec![0u64; 66];
        counts[1] = 1; // a zero
        counts[2] = 2; // two ones
        counts[4] = 4; // four values in [2, 4)... index 4 is [4, 8)
        let t = log2_text(&counts, 1);
        assert_eq!(
            t,
            "[0]                    1 |@@@@@@@@@@@@@                                       |\n\
             [1]                    2 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
             [2, 4)                 0 |                                                    |\n\
             [4, 8)                 4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n"
        );
        assert_eq!(
            log2_json(&counts, 1),
            "[{\"min\": 0, \"max\": 0, \"count\": 1}, {\"min\": 1, \"max\": 1, \"count\": 2}, \
             {\"min\": 2, \"max\": 3, \"count\": 0}, {\"min\": 4, \"max\": 7, \"count\": 4}]"
        );
    }

    #[test]
    fn linear_rows_have_open_ends() {
        // lhist(n, 0, 100, 10): 12 buckets.
        let mut counts = vec![0u64; 12];
        counts[0] = 1;
        counts[11] = 1;
        let t = linear_text(&counts, 0, 100, 10);
        assert!(t.starts_with("(..., 0)               1 |"), "{t}");
        assert!(t.contains("\n[10, 20)               0 |"), "{t}");
        assert!(
            t.ends_with("[100, ...)             1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n"),
            "{t}"
        );
        assert!(linear_json(&counts, 0, 100, 10)
            .starts_with("[{\"max\": -1, \"count\": 1}, {\"min\": 0, \"max\": 9, \"count\": 0}"));
    }
}
