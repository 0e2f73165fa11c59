//! A condition the server's `/readyz` waits on until it opens: the
//! self-managed certificate in place (read from its Secret, its CA in the
//! webhook configurations). The server holds it with its other readiness
//! conditions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One condition, closed until opened.
#[derive(Debug, Clone)]
pub struct Gate(Arc<GateState>);

#[derive(Debug)]
struct GateState {
    open: AtomicBool,
    waiting_for: &'static str,
}

impl Gate {
    /// A closed gate; `/readyz` says `not ready: {waiting_for}` until it opens.
    pub fn closed(waiting_for: &'static str) -> Self {
        Self(Arc::new(GateState {
            open: AtomicBool::new(false),
            waiting_for,
        }))
    }

    pub fn open(&self) {
        self.0.open.store(true, Ordering::Release);
    }

    pub fn is_open(&self) -> bool {
        self.0.open.load(Ordering::Acquire)
    }

    /// What `/readyz` names while the gate is closed.
    pub fn waiting_for(&self) -> &'static str {
        self.0.waiting_for
    }
}
