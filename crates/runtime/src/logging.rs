//! Logging setup.

use tracing_subscriber::{EnvFilter, fmt};

use crate::{Error, Result};

/// Installs the global `tracing` subscriber: `level` is a filter (`info`, `debug`,
/// `weir=debug,kube=warn`, …; `RUST_LOG` overrides it), `format` is `json` or `text`.
pub fn init(level: &str, format: &str) -> Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .map_err(|e| Error::Logging(format!("invalid --log-level {level:?}: {e}")))?;
    let result = match format {
        "json" => fmt()
            .with_env_filter(filter)
            .json()
            .flatten_event(true)
            .try_init(),
        "text" => fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
        other => {
            return Err(Error::Logging(format!(
                "invalid --log-format {other:?}: expected json or text"
            )));
        }
    };
    result.map_err(|e| Error::Logging(e.to_string()))
}
