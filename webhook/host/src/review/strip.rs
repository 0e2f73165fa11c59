//! What the guests' stripped input leaves out of a request: `managedFields`
//! and the last-applied annotation of `object` and `oldObject`. One plan for
//! both passes that cut by it: the review's shape check (the request as
//! parsed) and [`crate::input::strip_request`] (a request rebuilt around a
//! repaired object).

use tollgate_sdk::api::LAST_APPLIED;

use crate::json::{CutPlan, Member};

/// Where the cuts are, level by level.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Strip {
    Request,
    Object,
    Metadata,
    Annotations,
}

impl CutPlan for Strip {
    fn member(self, key: &str) -> Member<Self> {
        match (self, key) {
            (Strip::Request, "object" | "oldObject") => Member::Descend(Strip::Object),
            (Strip::Object, "metadata") => Member::Descend(Strip::Metadata),
            (Strip::Metadata, "managedFields") => Member::Cut,
            (Strip::Metadata, "annotations") => Member::Descend(Strip::Annotations),
            (Strip::Annotations, LAST_APPLIED) => Member::Cut,
            _ => Member::Keep,
        }
    }
}
