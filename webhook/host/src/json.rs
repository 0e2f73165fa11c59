//! Borrowing JSON helpers: read only the members we need and keep the rest
//! as raw text, so hot paths neither allocate trees nor copy strings.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

/// JSON's insignificant whitespace.
pub(crate) const WS: [char; 4] = [' ', '\t', '\n', '\r'];

/// A JSON string borrowed from the input, owned only when it had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl std::ops::Deref for CowStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl Serialize for CowStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A JSON object's members in document order (duplicates kept as sent).
#[derive(Debug, Clone)]
pub(crate) struct Members<'a, V>(pub Vec<(CowStr<'a>, V)>);

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Members<'a, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<'a, V>(std::marker::PhantomData<(&'a (), V)>);
        impl<'de: 'a, 'a, V: Deserialize<'de>> Visitor<'de> for MapVisitor<'a, V> {
            type Value = Members<'a, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

impl<V: Serialize> Serialize for Members<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// What a [`CutPlan`] does with one member of an object.
pub(crate) enum Member<P> {
    /// Keep it verbatim; its value is skipped unread.
    Keep,
    /// Remove it: key, value and one separating comma.
    Cut,
    /// Keep it, and if its value is an object apply this plan to its members.
    Descend(P),
}

/// Which members to remove from an object, given its (unescaped) key; a plan
/// value per nesting level.
pub(crate) trait CutPlan: Copy {
    fn member(self, key: &str) -> Member<Self>;
}

/// `text` (a JSON value) without the members `plan` cuts, every other byte
/// (whitespace included) kept as sent. `text` is read once by serde_json,
/// which records the byte ranges to drop, and the rest is copied once.
/// Values of an unexpected type where the plan descends are kept as they are.
pub(crate) fn cut_members(text: &str, plan: impl CutPlan) -> Result<Vec<u8>, serde_json::Error> {
    Ok(without(text, &cut_ranges(text, plan)?))
}

/// The byte ranges of `text` that [`cut_members`] drops, in order.
pub(crate) fn cut_ranges(
    text: &str,
    plan: impl CutPlan,
) -> Result<Vec<Range<usize>>, serde_json::Error> {
    let mut cuts = Cuts::new(text);
    let mut de = serde_json::Deserializer::from_str(text);
    Walk {
        plan,
        cuts: &mut cuts,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(cuts.into_ranges())
}

/// Byte ranges of `text` to drop, in document order.
pub(crate) struct Cuts<'t> {
    text: &'t str,
    ranges: Vec<Range<usize>>,
}

impl<'t> Cuts<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
            ranges: Vec::new(),
        }
    }

    /// Where `part`, a slice borrowed from `text`, starts in it.
    fn offset(&self, part: &'t str) -> usize {
        offset_in(self.text, part)
    }

    fn end_of(&self, part: &'t str) -> usize {
        self.offset(part) + part.len()
    }

    /// Where the value before the member whose key starts at `key_start`
    /// ends: back over whitespace, the comma, and whitespace.
    fn end_of_previous_value(&self, key_start: usize) -> usize {
        let before = self.text[..key_start].trim_end_matches(WS);
        debug_assert!(before.ends_with(','), "no comma before a later member");
        before
            .strip_suffix(',')
            .unwrap_or(before)
            .trim_end_matches(WS)
            .len()
    }

    fn push(&mut self, range: Range<usize>) {
        debug_assert!(self.ranges.last().is_none_or(|r| r.end <= range.start));
        self.ranges.push(range);
    }

    pub(crate) fn into_ranges(self) -> Vec<Range<usize>> {
        self.ranges
    }
}

/// `text` without the byte `ranges` (ascending, disjoint), copied once.
pub(crate) fn without(text: &str, ranges: &[Range<usize>]) -> Vec<u8> {
    let bytes = text.as_bytes();
    let dropped: usize = ranges.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(bytes.len() - dropped);
    let mut at = 0;
    for range in ranges {
        out.extend_from_slice(&bytes[at..range.start]);
        at = range.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Turns the members cut from one object into ranges that leave valid JSON.
/// A member after a kept one goes with the comma before it; a run of
/// members at the start goes with the comma after it (up to the next kept
/// key, so that key takes the first one's place and indentation); if every
/// member goes, the braces stay with the whitespace that was inside them.
#[derive(Default)]
pub(crate) struct ObjectCuts {
    leading: Option<Range<usize>>,
    kept_one: bool,
}

impl ObjectCuts {
    pub(crate) fn cut(&mut self, cuts: &mut Cuts<'_>, key_start: usize, value_end: usize) {
        if self.kept_one {
            cuts.push(cuts.end_of_previous_value(key_start)..value_end);
        } else {
            self.leading.get_or_insert(key_start..value_end).end = value_end;
        }
    }

    pub(crate) fn keep(&mut self, cuts: &mut Cuts<'_>, key_start: usize) {
        if let Some(run) = self.leading.take() {
            cuts.push(run.start..key_start);
        }
        self.kept_one = true;
    }

    pub(crate) fn finish(self, cuts: &mut Cuts<'_>) {
        if let Some(run) = self.leading {
            cuts.push(run);
        }
    }
}

/// Reads one value with serde_json, recording the cuts `plan` asks for in
/// it. Keys and cut values are read as [`RawValue`]s borrowed from the
/// text, which gives their byte positions.
struct Walk<'c, 't, P> {
    plan: P,
    cuts: &'c mut Cuts<'t>,
}

impl<'de, P: CutPlan> DeserializeSeed<'de> for Walk<'_, 'de, P> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, P: CutPlan> Visitor<'de> for Walk<'_, 'de, P> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk { plan, cuts } = self;
        let mut object = ObjectCuts::default();
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            let key_start = cuts.offset(key.get());
            match plan.member(&unquote(key.get()).map_err(de::Error::custom)?) {
                Member::Cut => {
                    let value: &'de RawValue = map.next_value()?;
                    let value_end = cuts.end_of(value.get());
                    object.cut(cuts, key_start, value_end);
                }
                Member::Keep => {
                    object.keep(cuts, key_start);
                    map.next_value::<IgnoredAny>()?;
                }
                Member::Descend(inner) => {
                    object.keep(cuts, key_start);
                    map.next_value_seed(Walk {
                        plan: inner,
                        cuts: &mut *cuts,
                    })?;
                }
            }
        }
        object.finish(cuts);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        IgnoredAny.visit_seq(seq).map(drop)
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A JSON object's members as raw key and value slices of the input, in
/// document order: the positions of both are known (they borrow the text),
/// and nothing is parsed beyond finding where each value ends.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawMembers<'a>(pub Vec<(&'a RawValue, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawMembers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MapVisitor<'a> {
            type Value = RawMembers<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(key) = map.next_key::<&'de RawValue>()? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(RawMembers(members))
            }
        }
        d.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

/// Where `part`, a slice borrowed from `text`, starts in it.
pub(crate) fn offset_in(text: &str, part: &str) -> usize {
    let at = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    debug_assert!(at + part.len() <= text.len(), "not borrowed from text");
    at
}

/// The text of a raw JSON string (a key, with its quotes): borrowed unless
/// it has escapes.
pub(crate) fn unquote(quoted: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    let inner = &quoted[1..quoted.len() - 1];
    if inner.contains('\\') {
        serde_json::from_str::<String>(quoted).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(inner))
    }
}
