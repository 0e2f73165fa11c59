//! What `/readyz` waits for besides the admission service's own readiness
//! (policies compiled, cluster context synced): conditions other parts of
//! the server open once (the self-managed certificate in place), and the
//! shutdown that closes it for good.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tollgate_certs::Gate;

/// Every gate of the server, and whether it is shutting down.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    gates: Vec<Gate>,
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    pub fn with(mut self, gate: Gate) -> Self {
        self.gates.push(gate);
        self
    }

    /// From now on `/readyz` says 503, so that endpoints and load balancers
    /// stop sending new connections.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Why the server is not ready, if it is not.
    pub fn waiting_for(&self) -> Option<&'static str> {
        if self.stopping.load(Ordering::Acquire) {
            return Some("shutting down");
        }
        self.gates
            .iter()
            .find(|g| !g.is_open())
            .map(Gate::waiting_for)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_every_gate_is_open_and_not_stopping() {
        let cert = Gate::closed("the certificate");
        let readiness = Readiness::default().with(cert.clone());
        assert_eq!(readiness.waiting_for(), Some("the certificate"));
        cert.open();
        assert_eq!(readiness.waiting_for(), None);
        readiness.stopping();
        assert_eq!(readiness.waiting_for(), Some("shutting down"));
        assert_eq!(Readiness::default().waiting_for(), None);
    }
}
