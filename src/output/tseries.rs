//! `tseries()` maps as bpftrace v0.26 prints them: a text graph of one
//! row per interval (its start time, a `*` placed between the smallest and
//! the largest value, the value), or a JSON array of
//! `{"interval_start", "value"}`.

use super::value::{TsRow, Value};

const GRAPH_WIDTH: usize = 53;
const PADDING: usize = 21;

/// A value of a series: an integer (`tseries()` takes integers only).
fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bool(b) => (*b as u8).to_string(),
        _ => String::new(),
    }
}

/// Digits after the seconds that times of rows `interval` ns apart show:
/// none from a second on, then milli-, micro- and nanoseconds.
pub fn fraction_digits(interval: u64) -> u32 {
    match interval {
        1_000_000_000.. => 0,
        1_000_000.. => 3,
        1_000.. => 6,
        _ => 9,
    }
}

fn as_i128(v: &Value) -> i128 {
    match v {
        Value::Int(i) => *i as i128,
        Value::UInt(u) => *u as i128,
        _ => 0,
    }
}

/// The value `v` moved by `delta`, within its type's range.
fn nudged(v: &Value, delta: i64) -> Value {
    match v {
        Value::Int(i) => Value::Int(i.saturating_add(delta)),
        Value::UInt(u) => Value::UInt(u.saturating_add_signed(delta)),
        other => other.clone(),
    }
}

/// The graph of a series, each line ending with a newline.
pub fn text(rows: &[TsRow]) -> String {
    let present: Vec<&Value> = rows.iter().filter_map(|r| r.value.as_ref()).collect();
    let Some(first) = present.first() else { return "<no data>".into() };
    let mut min = (*first).clone();
    let mut max = (*first).clone();
    for v in &present {
        if as_i128(v) < as_i128(&min) {
            min = (*v).clone();
        }
        if as_i128(v) > as_i128(&max) {
            max = (*v).clone();
        }
    }
    if as_i128(&min) == as_i128(&max) {
        // Room on both sides of the points.
        min = nudged(&min, -1);
        max = nudged(&max, 1);
    }
    let (lo, hi) = (as_i128(&min), as_i128(&max));
    let time_size = rows.first().map_or(8, |r| r.time.len());
    let label = match time_size {
        12 => "hh:mm:ss.ms",
        15 => "hh:mm:ss.μs",
        18 => "hh:mm:ss.ns",
        _ => "hh:mm:ss",
    };
    let bounds = format!(
        "{:w$}{:<p$}{:>r$}\n",
        "",
        value_text(&min),
        value_text(&max),
        w = time_size + 1,
        p = PADDING,
        r = GRAPH_WIDTH - PADDING
    );
    let mut out = bounds.clone();
    out.push_str(&format!("{:<w$}|{}|\n", label, "_".repeat(GRAPH_WIDTH - 2), w = time_size + 1));
    let zero = if lo < 0 && hi > 0 { (GRAPH_WIDTH as f32 * (-lo) as f32 / (hi - lo) as f32) as usize } else { 0 };
    for row in rows {
        let mut line = vec![b' '; GRAPH_WIDTH];
        line[0] = b'|';
        line[GRAPH_WIDTH - 1] = b'|';
        if zero > 0 {
            line[zero] = b'.';
        }
        out.push_str(&row.time);
        out.push(' ');
        match &row.value {
            Some(v) => {
                let at = if lo == hi {
                    GRAPH_WIDTH / 2
                } else {
                    ((GRAPH_WIDTH - 1) as f32 * (as_i128(v) - lo) as f32 / (hi - lo) as f32) as usize
                };
                line[at.min(GRAPH_WIDTH - 1)] = b'*';
                out.push_str(&String::from_utf8_lossy(&line));
                out.push(' ');
                out.push_str(&value_text(v));
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&line));
                out.push_str(" -");
            }
        }
        out.push('\n');
    }
    out.push_str(&format!("{:w$} v{}v\n", "", "_".repeat(GRAPH_WIDTH - 2), w = time_size));
    out.push_str(&bounds);
    out
}

/// `[{"interval_start": "...", "value": v}, ...]` of the intervals with a value.
pub fn json(rows: &[TsRow]) -> String {
    let items: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.value.as_ref().map(|v| format!("{{\"interval_start\": \"{}\", \"value\": {}}}", r.utc, value_text(v)))
        })
        .collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time: &str, v: Option<i64>) -> TsRow {
        TsRow { time: time.into(), utc: String::new(), value: v.map(Value::Int) }
    }

    #[test]
    fn graph_of_a_constant_series_has_room_on_both_sides() {
        let t = text(&[row("00:00:00.500", Some(9)), row("00:00:00.600", Some(9))]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("{}8{}10", " ".repeat(13), " ".repeat(50)));
        assert_eq!(lines[1], format!("hh:mm:ss.ms  |{}|", "_".repeat(51)));
        assert_eq!(lines[2], format!("00:00:00.500 |{}*{}| 9", " ".repeat(25), " ".repeat(25)));
        assert_eq!(lines[4], format!("{} v{}v", " ".repeat(12), "_".repeat(51)));
        assert_eq!(lines[5], format!("{}8{}10", " ".repeat(13), " ".repeat(50)));
    }

    #[test]
    fn zero_line_and_missing_values() {
        let t = text(&[row("00:00:00.100", Some(-5)), row("00:00:00.200", None), row("00:00:00.300", Some(5))]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[2], format!("00:00:00.100 *{}.{}|", " ".repeat(25), " ".repeat(25)).to_string() + " -5");
        assert_eq!(lines[3], format!("00:00:00.200 |{}.{}| -", " ".repeat(25), " ".repeat(25)));
    }
}
