//! The request's shape, checked once before any policy sees it: no object
//! with the same key twice and no nesting deeper than [`MAX_DEPTH`]. The
//! same pass finds what the guests' stripped input leaves out
//! (`managedFields`, the last-applied annotation), so the request is read
//! once for both.
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
use crate::json::{CowStr, CutPlan, Cuts, Member, ObjectCuts, unquote};

/// The deepest nesting of objects and arrays accepted inside `request`
/// (below serde_json's own limit of 128, so that this error comes first).
pub const MAX_DEPTH: usize = 100;

/// Checks `request` (the raw JSON of the review's `request` member) and
/// returns the byte ranges of it that [`crate::input::strip_request`]
/// removes, in order.
pub fn check(request: &str) -> Result<Vec<Range<usize>>, serde_json::Error> {
    let mut cuts = Cuts::new(request);
    let mut deserializer = serde_json::Deserializer::from_str(request);
    Level {
        depth: 0,
        strip: Some((Strip::Request, &mut cuts)),
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(cuts.into_ranges())
}

/// Checks a value cut from the stripped input (read whole, for its span)
/// as if it were read in place, `depth` levels down.
fn check_cut(value: &str, depth: usize) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(value);
    Level { depth, strip: None }.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// The message of `error` without serde_json's position, which counts
/// within the cut value rather than the request.
fn message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&position).unwrap_or(&text).to_owned()
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
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.inner::<A::Error>()?;
        while seq
            .next_element_seed(Level { depth, strip: None })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.inner::<A::Error>()?;
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        let Some((plan, cuts)) = self.strip else {
            while let Some(key) = map.next_key::<CowStr<'de>>()? {
                map.next_value_seed(Level { depth, strip: None })?;
                first_time(&mut keys, key.0)?;
            }
            return Ok(());
        };
        // A level the strip plan names: keys are read raw, for their place.
        let mut object = ObjectCuts::default();
        while let Some(raw) = map.next_key::<&'de RawValue>()? {
            let key = unquote(raw).map_err(de::Error::custom)?;
            let key_start = cuts.offset(raw.get());
            match plan.member(&key) {
                Member::Cut => {
                    let value: &'de RawValue = map.next_value()?;
                    check_cut(value.get(), depth).map_err(|e| de::Error::custom(message(&e)))?;
                    let value_end = cuts.end_of(value.get());
                    object.cut(cuts, key_start, value_end);
                }
                Member::Keep => {
                    object.keep(cuts, key_start);
                    map.next_value_seed(Level { depth, strip: None })?;
                }
                Member::Descend(inner) => {
                    object.keep(cuts, key_start);
                    map.next_value_seed(Level {
                        depth,
                        strip: Some((inner, &mut *cuts)),
                    })?;
                }
            }
            first_time(&mut keys, key)?;
        }
        object.finish(cuts);
        Ok(())
    }
}
