//! The body read down to the request's members ([`Body`]), and serde's
//! reading of it for a body the one pass ([`super::scan`]) does not vouch
//! for. Either way what follows (the envelope's checks, the routing fields)
//! reads the same [`Body`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::ReviewError;
use super::shape::Shape;
use crate::json::{CowStr, RawMembers, WS, offset_in};

/// The envelope's members Tollgate reads.
#[derive(Debug, PartialEq)]
pub(super) struct Body<'a> {
    pub api_version: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub request: Option<Request<'a>>,
}

/// The `request` object, raw.
#[derive(Debug, PartialEq)]
pub(super) struct Request<'a> {
    /// Exactly as sent.
    pub text: &'a str,
    /// Its members in document order: the key with its quotes, the value.
    pub members: Vec<(&'a str, &'a str)>,
    /// Known when the one pass read the body; else checked after the
    /// envelope (see [`super::Review::parse`]).
    pub shape: Option<Shape>,
}

/// The envelope as serde reads it. Written out rather than derived so that
/// the members it does not read are still checked as JSON: serde's skim of
/// an ignored member lets through a lone surrogate escape or a number out of
/// range, which the one pass (and the floor's `Value`) refuses. (A `Value`
/// of the whole body would check them too, but refuses a request nested
/// deeper than 128, which the shape check must name.)
#[derive(Default)]
struct Envelope<'a> {
    api_version: Option<Option<CowStr<'a>>>,
    kind: Option<Option<CowStr<'a>>>,
    request: Option<Option<RawMembers<'a>>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Envelope<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AdmissionReview object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'a>, A::Error> {
                fn once<T, E: de::Error>(
                    slot: &mut Option<T>,
                    name: &'static str,
                    value: T,
                ) -> Result<(), E> {
                    match slot.replace(value) {
                        Some(_) => Err(E::duplicate_field(name)),
                        None => Ok(()),
                    }
                }
                let mut envelope = Envelope::default();
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match &*key {
                        "apiVersion" => {
                            once(&mut envelope.api_version, "apiVersion", map.next_value()?)?
                        }
                        "kind" => once(&mut envelope.kind, "kind", map.next_value()?)?,
                        "request" => once(&mut envelope.request, "request", map.next_value()?)?,
                        // Read whole (this path is rare): checked as the floor checks it.
                        _ => map.next_value::<serde_json::Value>().map(drop)?,
                    }
                }
                Ok(envelope)
            }
        }
        // A map, so that a JSON array is not read as an envelope.
        d.deserialize_map(V(PhantomData))
    }
}

/// The body read by serde: the verdict, and an error that says where, on a
/// body the one pass does not vouch for.
pub(super) fn by_serde(text: &str) -> Result<Body<'_>, ReviewError> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(ReviewError::Json)?;
    let request = envelope.request.flatten().map(|RawMembers(members)| {
        let members: Vec<_> = members
            .into_iter()
            .map(|(k, v)| (k.get(), v.get()))
            .collect();
        Request {
            text: request_span(text, &members),
            members,
            shape: None,
        }
    });
    Ok(Body {
        api_version: envelope.api_version.flatten().map(|s| s.0),
        kind: envelope.kind.flatten().map(|s| s.0),
        request,
    })
}

/// The text of the `request` object: from its first key back to the `{`,
/// from its last value on to the `}`. serde_json has checked the structure,
/// so only whitespace lies between them.
fn request_span<'a>(text: &'a str, members: &[(&'a str, &'a str)]) -> &'a str {
    let (Some((first, _)), Some((_, last))) = (members.first(), members.last()) else {
        // Unreachable: a request without members has no uid.
        return "{}";
    };
    let start = offset_in(text, first);
    let end = offset_in(text, last) + last.len();
    let open = text[..start].trim_end_matches(WS).len() - 1;
    let close = end + (text[end..].len() - text[end..].trim_start_matches(WS).len());
    debug_assert_eq!(&text[open..=open], "{");
    debug_assert_eq!(&text[close..=close], "}");
    &text[open..=close]
}
