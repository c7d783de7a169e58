fn main() {
    eprintln!("otatool: not built yet");
    std::process::exit(2);
}
