//! The `weir` binary: runs the library and turns its outcome into an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match weir_cli::run(std::env::args().skip(1), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_silent() {
                eprintln!("{}", e.one_line());
            }
            ExitCode::from(e.exit_code())
        }
    }
}
