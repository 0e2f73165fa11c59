//! The request's shape, checked once before any policy sees it: no object
//! with the same key twice and no nesting deeper than [`MAX_DEPTH`].
//!
//! Why: a duplicate key is read differently by different parsers (the host's
//! raw scan keeps both, serde's typed structs in the guest SDK refuse the
//! document, `Value` keeps the last), so host and guests would disagree about
//! the same review; and serde_json refuses documents nested deeper than 128
//! levels, which would surface later as a misleading patch or guest error.
//! Refusing both here gives one clear answer naming the cause.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting of objects and arrays accepted inside `request`
/// (below serde_json's own limit of 128, so that this error comes first).
pub const MAX_DEPTH: usize = 100;

/// Checks `request` (the raw JSON of the review's `request` member).
pub fn check(request: &str) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(request);
    Level { depth: 0 }.deserialize(&mut deserializer)?;
    deserializer.end()
}

struct Level {
    depth: usize,
}

impl Level {
    fn enter<E: de::Error>(&self) -> Result<Level, E> {
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
        let inner = self.enter::<A::Error>()?;
        while seq
            .next_element_seed(Level { depth: inner.depth })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter::<A::Error>()?;
        // Objects are small (a handful of keys): a linear scan beats hashing.
        let mut keys: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<crate::json::CowStr<'de>>()? {
            let key = key.0;
            if keys.contains(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {:?} in one object",
                    &*key
                )));
            }
            map.next_value_seed(Level { depth: inner.depth })?;
            keys.push(key);
        }
        Ok(())
    }
}
