//! The `weir-apply-controller` binary: parses flags and runs the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match weir_apply_controller::Config::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = weir_runtime::logging::init(&config.log_level, &config.log_format) {
        eprintln!("weir-apply-controller: {e}");
        return ExitCode::from(2);
    }
    match weir_apply_controller::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-apply-controller: {e:#}");
            ExitCode::FAILURE
        }
    }
}
