//! The shutdown sequence: a signal; with SIGTERM, `--shutdown-delay` of
//! serving while `/readyz` says 503 (a pod's endpoints and any load
//! balancer take a moment to stop sending it connections); then no new
//! connections while in-flight reviews are answered.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use super::ready::Readiness;

pub(super) struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers (before serving, so an early signal is not lost).
    pub(super) fn listen() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for a signal and runs the sequence; `drain` turns true when
    /// the server must stop accepting.
    pub(super) async fn wait(
        mut self,
        readiness: Readiness,
        delay: Duration,
        drain: watch::Sender<bool>,
    ) {
        let name = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        readiness.stopping();
        // SIGINT is someone at a terminal: no delay. A second signal cuts
        // the delay short.
        if name == "SIGTERM" && !delay.is_zero() {
            tracing::info!(signal = name, delay = ?delay, "shutting down: /readyz is 503, still serving new connections");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
        }
        tracing::info!(signal = name, "shutting down: no new connections");
        let _ = drain.send(true);
    }
}
