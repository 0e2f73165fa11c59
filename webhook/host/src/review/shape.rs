//! The request's shape, checked once before any policy sees it: no object
//! with the same key twice and no nesting deeper than [`MAX_DEPTH`]. The
//! body's one pass ([`super::scan`]) judges it and finds what the guests'
//! stripped input leaves out (`managedFields`, the last-applied
//! annotation). A request that pass does not vouch for (rare) is judged
//! here, by serde's walk, and its cuts found by the standalone cutter.
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

use super::strip::Strip;
use crate::json::{CowStr, cut_ranges};

/// The deepest nesting of objects and arrays accepted inside `request`
/// (below serde_json's own limit of 128, so that this error comes first).
pub const MAX_DEPTH: usize = 100;

/// What the check learns of a request it accepts.
#[derive(Debug, PartialEq)]
pub(crate) struct Shape {
    /// The byte ranges [`crate::input::strip_request`] removes, in order.
    pub cuts: Vec<Range<usize>>,
    /// No string of the request has a `\u` or `\/` escape, so every text
    /// in it is found by a plain search (`false` when not known).
    pub plain_text: bool,
}

/// The check by serde's walk: the verdict on whatever the scan does not
/// vouch for, with an error that says where; then the cuts, by the cutter
/// that strips rebuilt requests. Two reads, for requests the scan leaves.
pub(super) fn by_serde(request: &str) -> Result<Shape, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(request);
    Level { depth: 0 }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(Shape {
        cuts: cut_ranges(request, Strip::Request)?,
        plain_text: false,
    })
}

/// One nesting level.
#[derive(Clone, Copy)]
struct Level {
    depth: usize,
}

impl Level {
    fn inner<E: de::Error>(&self) -> Result<Level, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(Level {
            depth: self.depth + 1,
        })
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

impl<'de> DeserializeSeed<'de> for Level {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level {
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
        let inner = self.inner::<A::Error>()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner::<A::Error>()?;
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            map.next_value_seed(inner)?;
            first_time(&mut keys, key.0)?;
        }
        Ok(())
    }
}
