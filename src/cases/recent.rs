//! The cases acted on lately, replayed, so that the next act on a case (the approval after a
//! submission, the act after its signing payload) does not read and replay every event again.
//!
//! An entry is the replay of a case's events up to a version, keyed by the case id and checked
//! against the stored head (version and last event hash) before it is used: events are never
//! changed, so a case at the version and hash the store names now is exactly what a replay would
//! give. Anything else (another server appended, a restore) is a miss and is read from the store.
//!
//! Bounded by two generations of at most `CAPACITY` entries each: when the young one is full it
//! becomes the old one and the older is dropped; a hit in the old generation moves back to the
//! young. A small map does this; no crate of ours offers a bounded map, and an LRU crate would be
//! a dependency for twenty lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries per generation.
pub const CAPACITY: usize = 4096;

/// The replayed cases (`Recent<Case>` in `CaseService`).
pub type RecentCases = Recent<crate::workflow::Case>;

struct Entry<T> {
    version: u64,
    last_hash: String,
    case: Arc<T>,
}

struct Generations<T> {
    young: HashMap<String, Arc<Entry<T>>>,
    old: HashMap<String, Arc<Entry<T>>>,
}

pub struct Recent<T> {
    inner: Mutex<Generations<T>>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent { inner: Mutex::new(Generations { young: HashMap::new(), old: HashMap::new() }) }
    }
}

impl<T> Recent<T> {
    /// The case at exactly this version and last event hash, if it is kept.
    pub fn get(&self, case_id: &str, version: u64, last_hash: &str) -> Option<Arc<T>> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = match g.young.get(case_id) {
            Some(e) => e.clone(),
            None => {
                let e = g.old.remove(case_id)?;
                Self::insert_young(&mut g, case_id.to_string(), e.clone());
                e
            }
        };
        (entry.version == version && entry.last_hash == last_hash).then(|| entry.case.clone())
    }

    /// Keeps the case as replayed at `version`, whose last event has `last_hash`.
    pub fn put(&self, case_id: &str, version: u64, last_hash: &str, case: Arc<T>) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.old.remove(case_id);
        Self::insert_young(&mut g, case_id.to_string(), Arc::new(Entry { version, last_hash: last_hash.to_string(), case }));
    }

    fn insert_young(g: &mut Generations<T>, id: String, entry: Arc<Entry<T>>) {
        if g.young.len() >= CAPACITY && !g.young.contains_key(&id) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(id, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.young.len() + g.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(_id: &str, version: u64) -> Arc<u64> {
        Arc::new(version)
    }

    #[test]
    fn a_kept_case_answers_only_at_its_version_and_hash() {
        let r = Recent::<u64>::default();
        r.put("C-1", 2, "h2", case("C-1", 2));
        assert_eq!(r.get("C-1", 2, "h2").map(|c| *c), Some(2));
        assert!(r.get("C-1", 3, "h3").is_none(), "another server appended: a miss");
        assert!(r.get("C-1", 2, "other").is_none(), "same version, other history (a restore): a miss");
        assert!(r.get("C-2", 2, "h2").is_none());
    }

    #[test]
    fn it_never_holds_more_than_two_generations_and_keeps_what_is_used() {
        let r = Recent::<u64>::default();
        r.put("hot", 1, "h", case("hot", 1));
        for i in 0..(3 * CAPACITY) {
            r.put(&format!("C-{i}"), 1, "h", case("x", 1));
            if i % 1000 == 0 {
                assert!(r.get("hot", 1, "h").is_some(), "a case in use stays kept");
            }
        }
        assert!(r.len() <= 2 * CAPACITY, "{}", r.len());
        assert!(r.get("C-0", 1, "h").is_none(), "the oldest are dropped");
    }
}
