#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    formgate::cli::run()
}
