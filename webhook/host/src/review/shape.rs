//! The request's shape, checked once before any policy sees it: no object
//! with the same key twice and no nesting deeper than [`MAX_DEPTH`]. The
//! same pass finds what the guests' stripped input leaves out
//! (`managedFields`, the last-applied annotation), so the request is read
//! once for both: a cut member's value ends where the next member's key
//! begins or, for an object's last member, where the object ends, which the
//! enclosing level learns when it reads on.
//!
//! Why: a duplicate key is read differently by different parsers (the host's
//! raw scan keeps both, serde's typed structs in the guest SDK refuse the
//! document, `Value` keeps the last), so host and guests would disagree about
//! the same review; and serde_json refuses documents nested deeper than 128
//! levels, which would surface later as a misleading patch or guest error.
//! Refusing both here gives one clear answer naming the cause.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::Strip;
use crate::json::{CowStr, CutPlan, Cuts, Member, ObjectCuts, WS, unquote};

/// The deepest nesting of objects and arrays accepted inside `request`
/// (below serde_json's own limit of 128, so that this error comes first).
pub const MAX_DEPTH: usize = 100;

mod scan;

/// What the check learns of a request it accepts.
pub(crate) struct Shape {
    /// The byte ranges [`crate::input::strip_request`] removes, in order.
    pub cuts: Vec<Range<usize>>,
    /// No string of the request has a `\u` or `\/` escape, so every text
    /// in it is found by a plain search (`false` when not known).
    pub plain_text: bool,
}

/// Checks `request` (the raw JSON of the review's `request` member, which
/// the envelope pass has read as valid JSON).
pub(crate) fn check(request: &str) -> Result<Shape, serde_json::Error> {
    match scan::scan(request) {
        Some(shape) => Ok(shape),
        None => Ok(Shape {
            cuts: by_serde(request)?,
            plain_text: false,
        }),
    }
}

/// Whether the fast scan agrees with serde's walk on `request` (valid
/// JSON): what the scan accepts, the walk accepts with the same cuts.
pub fn scan_agrees(request: &str) -> bool {
    scan::scan(request).is_none_or(|shape| by_serde(request).is_ok_and(|c| c == shape.cuts))
}

/// The check by serde's walk: the verdict on whatever the scan does not
/// vouch for, with an error that says where.
fn by_serde(request: &str) -> Result<Vec<Range<usize>>, serde_json::Error> {
    let mut cuts = Cuts::new(request);
    let mut deserializer = serde_json::Deserializer::from_str(request);
    let open = Level {
        depth: 0,
        strip: Some((Strip::Request, &mut cuts)),
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    if let Some(open) = open {
        open.close(&mut cuts, request.trim_end_matches(WS).len());
    }
    Ok(cuts.into_ranges())
}

/// An object of the plan whose last member's value has no known end yet:
/// that member is cut, or is such an object itself.
struct Open {
    object: ObjectCuts,
    /// Where the cut last member's key starts.
    cut_from: Option<usize>,
    /// The last member's value, open itself.
    last: Option<Box<Open>>,
}

impl Open {
    /// The object ended at `end` (just past its `}`): its last member's
    /// value ended before the brace.
    fn close(self, cuts: &mut Cuts<'_>, end: usize) {
        let value_end = cuts.end_of_last_value(end);
        if let Some(last) = self.last {
            last.close(cuts, value_end);
        }
        let mut object = self.object;
        if let Some(key_start) = self.cut_from {
            object.cut(cuts, key_start, value_end);
        }
        object.finish(cuts);
    }
}

/// One nesting level, and where in the strip plan it is (`None` below the
/// members the plan names).
struct Level<'c, 't> {
    depth: usize,
    strip: Option<(Strip, &'c mut Cuts<'t>)>,
}

impl Level<'_, '_> {
    fn inner<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(self.depth + 1)
    }
}

/// Objects are small (a handful of keys): a linear scan beats hashing.
fn first_time<'k, E: de::Error>(keys: &mut Vec<Cow<'k, str>>, key: Cow<'k, str>) -> Result<(), E> {
    if keys.contains(&key) {
        return Err(E::custom(format_args!(
            "duplicate key {:?} in one object",
            &*key
        )));
    }
    keys.push(key);
    Ok(())
}

impl<'de> DeserializeSeed<'de> for Level<'_, 'de> {
    type Value = Option<Open>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Open>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_, 'de> {
    type Value = Option<Open>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Open>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Open>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Open>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Open>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<Open>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Open>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Open>, A::Error> {
        let depth = self.inner::<A::Error>()?;
        while seq
            .next_element_seed(Level { depth, strip: None })?
            .is_some()
        {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Open>, A::Error> {
        let depth = self.inner::<A::Error>()?;
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        let Some((plan, cuts)) = self.strip else {
            while let Some(key) = map.next_key::<CowStr<'de>>()? {
                map.next_value_seed(Level { depth, strip: None })?;
                first_time(&mut keys, key.0)?;
            }
            return Ok(None);
        };
        // A level the strip plan names: keys are read raw, for their place;
        // the previous member's value ended before the next key.
        let mut object = ObjectCuts::default();
        let mut cut_from: Option<usize> = None;
        let mut last: Option<Box<Open>> = None;
        while let Some(raw) = map.next_key::<&'de RawValue>()? {
            let key = unquote(raw).map_err(de::Error::custom)?;
            let key_start = cuts.offset(raw.get());
            if cut_from.is_some() || last.is_some() {
                let value_end = cuts.end_of_previous_value(key_start);
                if let Some(open) = last.take() {
                    open.close(cuts, value_end);
                }
                if let Some(from) = cut_from.take() {
                    object.cut(cuts, from, value_end);
                }
            }
            match plan.member(&key) {
                Member::Cut => {
                    map.next_value_seed(Level { depth, strip: None })?;
                    cut_from = Some(key_start);
                }
                Member::Keep => {
                    object.keep(cuts, key_start);
                    map.next_value_seed(Level { depth, strip: None })?;
                }
                Member::Descend(inner) => {
                    object.keep(cuts, key_start);
                    last = map
                        .next_value_seed(Level {
                            depth,
                            strip: Some((inner, &mut *cuts)),
                        })?
                        .map(Box::new);
                }
            }
            first_time(&mut keys, key)?;
        }
        if cut_from.is_none() && last.is_none() {
            object.finish(cuts);
            return Ok(None);
        }
        Ok(Some(Open {
            object,
            cut_from,
            last,
        }))
    }
}
