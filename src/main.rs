fn main() {
    eprintln!("rtrace: not built yet");
    std::process::exit(64);
}
