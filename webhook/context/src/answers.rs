//! Whole answers to lookups, kept until the objects of their type change.
//!
//! A rule that scans a type (R9 reads every Namespace and NetworkPolicy on a
//! calico-node upgrade) asks the same query on every review; between watch
//! events its answer cannot change, so it is computed once and shared.

use std::collections::HashMap;
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
    answers: HashMap<LookupQuery, Answer>,
    bytes: usize,
}

impl AnswerCache {
    /// The answer to `query`, computed by `compute` unless it is kept.
    /// Kept answers are served while another is computed.
    pub fn get_or_compute(&self, query: &LookupQuery, compute: impl FnOnce() -> Vec<u8>) -> Answer {
        if let Some(answer) = self.lock().answers.get(query) {
            return Arc::clone(answer);
        }
        let _computing = self
            .computing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(answer) = self.lock().answers.get(query) {
            return Arc::clone(answer);
        }
        let answer: Answer = compute().into();
        if answer.len() <= MAX_ANSWER_BYTES {
            let mut kept = self.lock();
            if kept.answers.len() >= MAX_ENTRIES || kept.bytes + answer.len() > MAX_TOTAL_BYTES {
                kept.clear();
            }
            if kept
                .answers
                .insert(query.clone(), Arc::clone(&answer))
                .is_none()
            {
                kept.bytes += answer.len();
            }
        }
        answer
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
            let answer = cache.get_or_compute(&query(0), || {
                computed += 1;
                b"[1]".to_vec()
            });
            assert_eq!(&*answer, b"[1]");
        }
        assert_eq!(computed, 1);
        cache.clear();
        let answer = cache.get_or_compute(&query(0), || b"[2]".to_vec());
        assert_eq!(&*answer, b"[2]");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = AnswerCache::default();
        for n in 0..MAX_ENTRIES * 3 {
            cache.get_or_compute(&query(n), || b"[]".to_vec());
            assert!(cache.len() <= MAX_ENTRIES);
        }
        let big = vec![b' '; MAX_ANSWER_BYTES + 1];
        let answer = cache.get_or_compute(&query(usize::MAX), || big.clone());
        assert_eq!(answer.len(), big.len(), "a large answer is answered");
        let mut again = false;
        cache.get_or_compute(&query(usize::MAX), || {
            again = true;
            big.clone()
        });
        assert!(again, "but not kept");
        let chunk = MAX_ANSWER_BYTES;
        for n in 0..(MAX_TOTAL_BYTES / chunk) * 2 {
            cache.get_or_compute(&query(n), || vec![b' '; chunk]);
            assert!(cache.lock().bytes <= MAX_TOTAL_BYTES);
        }
    }
}
