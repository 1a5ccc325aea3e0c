//! Group commit for `PgStore`: appends made at the same moment share one transaction, so one
//! WAL flush makes all of them durable.
//!
//! PostgreSQL's own group commit merges only the commits that reach the WAL flush together; with
//! one autocommit statement per append the server bench saw 3.5 appends per flush, and every
//! act waited for a flush of its own. Here a caller that has read and hashed its append puts it
//! in a queue. While fewer than `COMMITTERS` batches are being committed, a caller takes every
//! waiting append (up to `MAX_BATCH`) and commits them together (`PgStore::commit_batch`); the
//! others sleep until their own outcome is set, each woken on its own (waking every waiter at
//! every commit costs more CPU than it saves). A committer whose own append is done hands the
//! lead to the longest waiter when more is queued.
//!
//! Generic over what is committed, so the queueing is tested without a database.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;

/// Appends committed in one transaction at most.
pub(crate) const MAX_BATCH: usize = 64;
/// Batches committed at once: while one waits for its WAL flush the next is being written.
pub(crate) const COMMITTERS: usize = 2;

struct Job<P, R> {
    input: P,
    outcome: Mutex<Option<R>>,
    waiter: Thread,
}

struct Queue<P, R> {
    waiting: VecDeque<Arc<Job<P, R>>>,
    committing: usize,
}

/// The queue of appends waiting for a commit.
pub(crate) struct Group<P, R> {
    queue: Mutex<Queue<P, R>>,
}

impl<P, R> Default for Group<P, R> {
    fn default() -> Self {
        Group { queue: Mutex::new(Queue { waiting: VecDeque::new(), committing: 0 }) }
    }
}

impl<P, R> Group<P, R> {
    fn lock(&self) -> MutexGuard<'_, Queue<P, R>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits `input` with whatever else is waiting and returns its own outcome. `commit` gets
    /// a batch and answers one outcome per input, in the batch's order.
    pub(crate) fn run(&self, input: P, commit: impl Fn(&[&P]) -> Vec<R>) -> R {
        let job = Arc::new(Job { input, outcome: Mutex::new(None), waiter: std::thread::current() });
        let mut q = self.lock();
        q.waiting.push_back(job.clone());
        loop {
            if let Some(outcome) = job.outcome.lock().unwrap_or_else(|e| e.into_inner()).take() {
                if !q.waiting.is_empty() && q.committing < COMMITTERS {
                    // Appends came in while this one was committed and nobody leads them.
                    q.waiting[0].waiter.unpark();
                }
                return outcome;
            }
            if q.committing < COMMITTERS && !q.waiting.is_empty() {
                q.committing += 1;
                let n = q.waiting.len().min(MAX_BATCH);
                let batch: Vec<Arc<Job<P, R>>> = q.waiting.drain(..n).collect();
                drop(q);
                let outcomes = commit(&batch.iter().map(|j| &j.input).collect::<Vec<_>>());
                assert_eq!(outcomes.len(), batch.len(), "a batch commit answers one outcome per append");
                for (j, outcome) in batch.iter().zip(outcomes) {
                    *j.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
                    if !Arc::ptr_eq(j, &job) {
                        j.waiter.unpark();
                    }
                }
                q = self.lock();
                q.committing -= 1;
                continue;
            }
            drop(q);
            // An unpark before the park makes it return at once: no outcome is missed.
            std::thread::park();
            q = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn every_caller_gets_its_own_outcome_and_concurrent_calls_share_commits() {
        let group = Arc::new(Group::<u64, u64>::default());
        let commits = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..32u64)
            .map(|i| {
                let (group, commits) = (group.clone(), commits.clone());
                std::thread::spawn(move || {
                    (0..20u64)
                        .map(|n| {
                            let input = i * 1000 + n;
                            let out = group.run(input, |batch| {
                                commits.fetch_add(1, Ordering::Relaxed);
                                // A commit takes a while, as a WAL flush does.
                                std::thread::sleep(Duration::from_millis(2));
                                batch.iter().map(|x| **x * 2).collect()
                            });
                            assert_eq!(out, input * 2, "an outcome reached another caller");
                        })
                        .count()
                })
            })
            .collect();
        let done: usize = threads.into_iter().map(|t| t.join().expect("a caller")).sum();
        assert_eq!(done, 32 * 20);
        let commits = commits.load(Ordering::Relaxed);
        assert!(commits < done / 2, "{commits} commits for {done} appends: they were not grouped");
    }

    #[test]
    fn a_lone_caller_commits_at_once() {
        let group = Group::<&str, usize>::default();
        assert_eq!(group.run("one", |batch| batch.iter().map(|s| s.len()).collect()), 3);
        assert_eq!(group.run("three", |batch| batch.iter().map(|s| s.len()).collect()), 5);
    }
}
