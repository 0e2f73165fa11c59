//! What a write carries: the object of a CREATE or UPDATE, the old and new
//! object of an UPDATE. A subresource write (`scale`) carries neither: its
//! object is a `Scale`, not the workload.

use tollgate_sdk::{Object, Operation, Request};

/// The object of a CREATE or UPDATE (not a subresource write).
pub(crate) fn written<'r, 'a>(req: &'r Request<'a>) -> Option<&'r Object<'a>> {
    match req.operation {
        Operation::Create | Operation::Update if !req.is_scale() => req.object.as_ref(),
        _ => None,
    }
}

/// The old and new object of an UPDATE (not a subresource write).
pub(crate) fn updated<'r, 'a>(req: &'r Request<'a>) -> Option<(&'r Object<'a>, &'r Object<'a>)> {
    match (req.operation, req.is_scale()) {
        (Operation::Update, false) => req.old_object.as_ref().zip(req.object.as_ref()),
        _ => None,
    }
}
