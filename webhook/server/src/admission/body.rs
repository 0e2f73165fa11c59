//! The request body and its review, parsed once.

use bytes::Bytes;
use tollgate_host::{Parsed, Review};

self_cell::self_cell!(
    /// A request body and its review, parsed once: the review borrows the
    /// body, and both move to a blocking thread together if the review's
    /// guests run long.
    pub(super) struct ReviewBody {
        owner: Bytes,
        #[covariant]
        dependent: Parsed,
    }
);

impl ReviewBody {
    /// The valid review (a `ReviewBody` is only built around one).
    pub(super) fn review(&self) -> &Review<'_> {
        match self.borrow_dependent() {
            Parsed::Review(review) => review,
            Parsed::InvalidRequest { .. } => unreachable!("only valid reviews are judged"),
        }
    }
}
