//! Whole answers to lookups, kept until the objects of their type change.
//!
//! A rule that scans a type (R9 reads every Namespace and NetworkPolicy on a
//! calico-node upgrade) asks the same query on every review; between watch
//! events its answer cannot change, so it is computed once and shared.
//!
//! An answer with `except` also depends on another query's answer, perhaps
//! of another type, whose cache this one does not see. It is kept with the
//! answer it was computed after and served only while that is still the
//! one its cache hands out: the same allocation, which the entry holds, so
//! its address cannot be reused meanwhile. A change of either type then
//! recomputes it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Answer, LookupQuery};

/// At most this many answers per type: a pack asks a handful of distinct
/// queries of one type, so more means queries that vary per review (a
/// namespace or name taken from the request), which gain little from a
/// cache and must not grow it without bound.
const MAX_ENTRIES: usize = 32;
/// An answer larger than this is not kept: holding a second copy of a
/// type's objects would double the store's memory for one query.
const MAX_ANSWER_BYTES: usize = 4 << 20;
/// The bytes all kept answers of one type may hold.
const MAX_TOTAL_BYTES: usize = 16 << 20;

#[derive(Debug, Default)]
pub(crate) struct AnswerCache {
    kept: Mutex<Kept>,
    /// Held while an answer is computed: the reviews that arrive meanwhile
    /// (a burst after a watch event) wait for it instead of each computing
    /// it again, at the same CPU and memory.
    computing: Mutex<()>,
}

#[derive(Debug, Default)]
struct Kept {
    answers: HashMap<LookupQuery, Entry>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    /// The answer of `except` this one was computed after.
    after: Option<Answer>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.answer.len() + self.after.as_ref().map_or(0, |a| a.len())
    }
}

impl AnswerCache {
    /// The kept answer to `query`, if it was computed after `after` (the
    /// current answer of its `except`; `None` without one).
    pub fn get(&self, query: &LookupQuery, after: Option<&Answer>) -> Option<Answer> {
        let kept = self.lock();
        let entry = kept.answers.get(query)?;
        let current = match (&entry.after, after) {
            (None, None) => true,
            (Some(was), Some(is)) => Arc::ptr_eq(was, is),
            _ => false,
        };
        current.then(|| Arc::clone(&entry.answer))
    }

    /// The answer to `query`, computed by `compute` unless it is kept (see
    /// [`AnswerCache::get`]). Kept answers are served while another is
    /// computed. `compute` must not ask this cache.
    pub fn get_or_compute(
        &self,
        query: &LookupQuery,
        after: Option<&Answer>,
        compute: impl FnOnce() -> Vec<u8>,
    ) -> Answer {
        match self.try_get_or_compute(query, after, || Ok::<_, Infallible>(compute())) {
            Ok(answer) => answer,
            Err(never) => match never {},
        }
    }

    /// [`AnswerCache::get_or_compute`] with a `compute` that may fail
    /// (nothing is kept then).
    pub fn try_get_or_compute<E>(
        &self,
        query: &LookupQuery,
        after: Option<&Answer>,
        compute: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Answer, E> {
        if let Some(answer) = self.get(query, after) {
            return Ok(answer);
        }
        let _computing = self
            .computing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(answer) = self.get(query, after) {
            return Ok(answer);
        }
        let answer: Answer = compute()?.into();
        let entry = Entry {
            answer: Arc::clone(&answer),
            after: after.cloned(),
        };
        if answer.len() <= MAX_ANSWER_BYTES {
            let mut kept = self.lock();
            if kept.answers.len() >= MAX_ENTRIES || kept.bytes + entry.bytes() > MAX_TOTAL_BYTES {
                kept.clear();
            }
            kept.bytes += entry.bytes();
            if let Some(old) = kept.answers.insert(query.clone(), entry) {
                kept.bytes -= old.bytes();
            }
        }
        Ok(answer)
    }

    /// Forgets every answer: the objects changed.
    pub fn clear(&mut self) {
        self.kept
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().answers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Kept {
    fn clear(&mut self) {
        self.answers.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(n: usize) -> LookupQuery {
        LookupQuery::list("v1", "Pod").in_namespace(&format!("ns-{n}"))
    }

    #[test]
    fn an_answer_is_computed_once_until_cleared() {
        let mut cache = AnswerCache::default();
        let mut computed = 0;
        for _ in 0..3 {
            let answer = cache.get_or_compute(&query(0), None, || {
                computed += 1;
                b"[1]".to_vec()
            });
            assert_eq!(&*answer, b"[1]");
        }
        assert_eq!(computed, 1);
        cache.clear();
        let answer = cache.get_or_compute(&query(0), None, || b"[2]".to_vec());
        assert_eq!(&*answer, b"[2]");
    }

    /// An answer with `except` is kept only while the answer it was
    /// computed after is current.
    #[test]
    fn an_answer_after_another_is_kept_while_that_one_is() {
        let cache = AnswerCache::default();
        let (first, second): (Answer, Answer) =
            (b"[1]".as_slice().into(), b"[1]".as_slice().into());
        let mut computed = 0;
        let mut ask = |after: Option<&Answer>| {
            cache.get_or_compute(&query(0), after, || {
                computed += 1;
                b"[]".to_vec()
            });
        };
        ask(Some(&first));
        ask(Some(&first));
        // Equal bytes, but a new answer: the other type changed.
        ask(Some(&second));
        ask(None);
        ask(Some(&second));
        assert_eq!(computed, 4);
        assert_eq!(
            cache.get(&query(0), Some(&second)).as_deref(),
            Some(b"[]".as_slice())
        );
        assert_eq!(cache.get(&query(0), Some(&first)), None);
        assert_eq!(cache.lock().bytes, 2 + 3);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = AnswerCache::default();
        for n in 0..MAX_ENTRIES * 3 {
            cache.get_or_compute(&query(n), None, || b"[]".to_vec());
            assert!(cache.len() <= MAX_ENTRIES);
        }
        let big = vec![b' '; MAX_ANSWER_BYTES + 1];
        let answer = cache.get_or_compute(&query(usize::MAX), None, || big.clone());
        assert_eq!(answer.len(), big.len(), "a large answer is answered");
        let mut again = false;
        cache.get_or_compute(&query(usize::MAX), None, || {
            again = true;
            big.clone()
        });
        assert!(again, "but not kept");
        let chunk = MAX_ANSWER_BYTES;
        for n in 0..(MAX_TOTAL_BYTES / chunk) * 2 {
            cache.get_or_compute(&query(n), None, || vec![b' '; chunk]);
            assert!(cache.lock().bytes <= MAX_TOTAL_BYTES);
        }
    }
}
