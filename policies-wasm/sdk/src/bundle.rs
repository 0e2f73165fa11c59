//! Parse once per evaluation (ABI v2): each distinct view `T` of
//! `object`/`oldObject` once, shared by every rule of the bundle that reads
//! the same `T`. The first view reads the whole request in one pass; the
//! envelope (the request with its objects as raw JSON) is read only when a
//! second view or the raw JSON is asked for.

use std::any::TypeId;
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Arc;

use serde::Deserialize;

use crate::request::{Request, RequestError, Source};

/// A request parsed for one evaluation, handing out typed views on demand.
///
/// Views are keyed by `typeid::of::<T>()`, which (unlike `TypeId::of`)
/// accepts the borrowed, non-`'static` views rules use. Two types that
/// differ only in lifetimes share a key; that is sound here because every
/// view is deserialized from the same `'a` input by the same generic
/// `Deserialize` impl, so a value valid for one of them is valid for the
/// other.
pub struct ParsedRequest<'a> {
    source: Arc<Source<'a>>,
    /// Boxed `Request<'a, T>`s, never moved or freed before `self` drops, so
    /// references to them may outlive the `RefCell` borrow.
    views: RefCell<Vec<(TypeId, NonNull<dyn Erased + 'a>)>>,
}

/// Any type, behind a pointer that remembers how to drop it.
trait Erased {}
impl<T: ?Sized> Erased for T {}

impl<'a> ParsedRequest<'a> {
    /// Wraps a request; nothing is read until a rule asks for its view, so
    /// an unreadable request is the error of the first [`Self::view`].
    pub fn new(json: &'a [u8]) -> Self {
        Self {
            source: Source::new(json),
            views: RefCell::default(),
        }
    }

    /// The request read as view `T`, parsed on the first call for `T` and
    /// shared afterwards.
    pub fn view<T: Deserialize<'a> + 'a>(&self) -> Result<&Request<'a, T>, RequestError> {
        let key = typeid::of::<T>();
        if let Some(found) = self.find(key) {
            // SAFETY: stored under `T`'s key, so it is a `Request<'a, T>`
            // (up to lifetimes, see the type's docs), alive as long as `self`.
            return Ok(unsafe { found.cast::<Request<'a, T>>().as_ref() });
        }
        let view = self.source.view::<T>()?;
        let raw: NonNull<dyn Erased + 'a> = NonNull::from(Box::leak(Box::new(view)));
        self.views.borrow_mut().push((key, raw));
        // SAFETY: just stored; freed only in `drop`.
        Ok(unsafe { raw.cast::<Request<'a, T>>().as_ref() })
    }

    /// How many distinct views have been parsed.
    pub fn views_parsed(&self) -> usize {
        self.views.borrow().len()
    }

    fn find(&self, key: TypeId) -> Option<NonNull<dyn Erased + 'a>> {
        let views = self.views.borrow();
        views.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl Drop for ParsedRequest<'_> {
    fn drop(&mut self) {
        for (_, view) in self.views.get_mut().drain(..) {
            // SAFETY: every pointer came from `Box::leak` in `view` and is
            // dropped exactly once, here, after the last borrow of `self`.
            drop(unsafe { Box::from_raw(view.as_ptr()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::views::{Object, Pod};

    const UPDATE: &[u8] = br#"{"uid": "u", "operation": "UPDATE", "namespace": "ns",
        "object": {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "new"}]}},
        "oldObject": {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "old"}]}}}"#;

    #[test]
    fn each_view_is_built_once_and_shared() {
        let parsed = ParsedRequest::new(UPDATE);
        assert_eq!(parsed.views_parsed(), 0);
        let a: *const Request<'_, Pod<'_>> = parsed.view::<Pod<'_>>().unwrap();
        let b: *const Request<'_, Pod<'_>> = parsed.view::<Pod<'_>>().unwrap();
        assert_eq!(a, b);
        assert_eq!(parsed.views_parsed(), 1);
        let object = parsed.view::<Object<'_>>().unwrap();
        assert_eq!(parsed.views_parsed(), 2);
        assert_eq!(object.subject().unwrap().name(), "p");
        let pod = parsed.view::<Pod<'_>>().unwrap();
        assert_eq!(pod.object.as_ref().unwrap().spec.containers[0].name, "new");
        assert_eq!(
            pod.old_object.as_ref().unwrap().spec.containers[0].name,
            "old"
        );
        assert_eq!(pod.namespace.as_deref(), Some("ns"));
    }

    #[test]
    fn owned_views_and_raw_access() {
        let parsed = ParsedRequest::new(UPDATE);
        let value = parsed.view::<serde_json::Value>().unwrap();
        assert_eq!(
            value.object.as_ref().unwrap()["spec"]["containers"][0]["name"],
            "new"
        );
        let raw = parsed.view::<&RawValue>().unwrap();
        assert_eq!(raw.object.unwrap().get(), value.raw_object().unwrap().get());
        assert!(
            raw.raw_old_object()
                .unwrap()
                .get()
                .contains(r#""name": "old""#)
        );
        let none = parsed.view::<serde::de::IgnoredAny>().unwrap();
        assert_eq!(none.operation, crate::Operation::Update);
        assert_eq!(parsed.views_parsed(), 3);
    }

    #[test]
    fn a_view_that_does_not_fit_is_an_error_naming_field_and_view() {
        let parsed = ParsedRequest::new(br#"{"object": {"spec": {"containers": 5}}}"#);
        let RequestError::View(e) = parsed.view::<Pod<'_>>().unwrap_err() else {
            panic!("not a view error")
        };
        assert_eq!(e.field, "object");
        assert!(
            e.to_string()
                .starts_with("cannot read request.object as tollgate_sdk::views::pod::Pod"),
            "{e}"
        );
        assert_eq!(parsed.views_parsed(), 0, "a failed view is not kept");
        for unreadable in [&br#"{"object": {"#[..], b"[]", b"{not json"] {
            let e = ParsedRequest::new(unreadable)
                .view::<Pod<'_>>()
                .unwrap_err();
            assert!(matches!(e, RequestError::Envelope(_)), "{e}");
        }
    }
}
