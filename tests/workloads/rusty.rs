// A Rust program: probes name its functions by demangled path
// (`uprobe:./rusty:"rusty::shapes::area"`). `rusty N` calls area N times.
mod shapes {
    #[inline(never)]
    pub fn area(w: u64, h: u64) -> u64 {
        std::hint::black_box(w * h)
    }
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let total: u64 = (1..=n).map(|i| shapes::area(i, 10)).sum();
    std::process::exit(if total > 0 { 0 } else { 1 });
}
