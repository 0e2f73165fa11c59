//! Structured logs on stderr (`RUST_LOG` filters; default `info` for the
//! server, `warn` for the commands whose output is their report).

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Connection-level noise of the Kubernetes client, kept out unless
/// `RUST_LOG` asks for it: rustls' alert lines (a `close_notify` missing or
/// received when an API server goes away, several per dropped connection),
/// and kube's own line for every failed request ("failed with error client
/// error (Connect)", once per watch retry, with neither the server nor the
/// cause), which the caller's own error line already says in full (the
/// watch names the server and every cause).
const QUIET: &str = "rustls=error,kube_client::client::builder=off";

/// The filter without `RUST_LOG`: `default` for everything, [`QUIET`] for
/// connection-level TLS noise.
pub fn default_filter(default: &str) -> String {
    format!("{default},{QUIET}")
}

/// Installs the global subscriber with [`default_filter`] of `default` as
/// the filter when `RUST_LOG` is unset. Called once by `main`.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(default)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Which of the two events got through the filter.
    fn passes(filter: &str) -> (bool, bool) {
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = seen.clone();
        let writer = move || Capture(sink.clone());
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new(filter))
            .with(tracing_subscriber::fmt::layer().with_writer(writer));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "rustls::common_state", "TLS alert warning received: close_notify");
            tracing::error!(target: "kube_client::client::builder", "failed with error client error (Connect)");
            tracing::warn!(target: "tollgate_context::watch", "watch failed");
        });
        let seen = seen.lock().unwrap().concat();
        (
            seen.contains("close_notify") || seen.contains("(Connect)"),
            seen.contains("watch failed"),
        )
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tls_connection_noise_is_below_the_default_filter() {
        for default in ["info", "warn"] {
            assert_eq!(passes(&default_filter(default)), (false, true), "{default}");
        }
        // RUST_LOG can still ask for it.
        assert_eq!(passes("info"), (true, true));
    }
}
