//! Single flight: concurrent requests for the same key share one execution of the work.
//!
//! The work runs in its own task, so a client that disconnects does not cancel a fill that
//! others are waiting on. Waiters block until the result is ready (no short lock timeouts);
//! the caller bounds the work itself with upstream timeouts.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// A table of in-flight executions keyed by `K`, each producing a cloneable `V`.
pub struct Flights<K, V> {
    inflight: Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>,
    /// Label for metrics (`version`, `zip`, `list`, ...).
    kind: &'static str,
}

impl<K, V> Flights<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty table whose metrics carry `kind`.
    pub fn new(kind: &'static str) -> Self {
        Self {
            inflight: Arc::new(Mutex::new(HashMap::new())),
            kind,
        }
    }

    /// Runs `work` for `key` unless it is already running, and returns its result; `gone` is
    /// returned if the work task died without producing one (a bug or a panic).
    pub async fn run<F, W>(&self, key: K, work: W, gone: V) -> V
    where
        W: FnOnce() -> F,
        F: Future<Output = V> + Send + 'static,
    {
        let mut rx = self.join_or_start(key, work);
        loop {
            if let Some(v) = rx.borrow_and_update().clone() {
                return v;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone().unwrap_or(gone);
            }
        }
    }

    fn join_or_start<F, W>(&self, key: K, work: W) -> watch::Receiver<Option<V>>
    where
        W: FnOnce() -> F,
        F: Future<Output = V> + Send + 'static,
    {
        let mut map = match self.inflight.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(rx) = map.get(&key) {
            metrics::counter!(super::metrics::FLIGHT_WAITERS_TOTAL, "kind" => self.kind)
                .increment(1);
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), rx.clone());
        drop(map);
        let fut = work();
        let table = self.inflight.clone();
        let kind = self.kind;
        metrics::gauge!(super::metrics::FLIGHTS_INFLIGHT, "kind" => kind).increment(1.0);
        tokio::spawn(async move {
            let v = fut.await;
            let _ = tx.send(Some(v));
            let mut map = match table.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.remove(&key);
            metrics::gauge!(super::metrics::FLIGHTS_INFLIGHT, "kind" => kind).decrement(1.0);
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_execution() {
        let flights: Arc<Flights<&'static str, u32>> = Arc::new(Flights::new("test"));
        let runs = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = watch::channel(false);
        let mut handles = Vec::new();
        for _ in 0..50 {
            let (flights, runs, mut release_rx) =
                (flights.clone(), runs.clone(), release_rx.clone());
            handles.push(tokio::spawn(async move {
                flights
                    .run(
                        "k",
                        move || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            let _ = release_rx.wait_for(|r| *r).await;
                            7
                        },
                        0,
                    )
                    .await
            }));
        }
        tokio::task::yield_now().await;
        release_tx.send(true).unwrap();
        for h in handles {
            assert_eq!(h.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn dropped_caller_does_not_cancel_the_work() {
        let flights: Arc<Flights<u8, u8>> = Arc::new(Flights::new("test"));
        let (tx, rx) = watch::channel(false);
        let f2 = flights.clone();
        let first = tokio::spawn(async move {
            f2.run(
                1,
                move || async move {
                    let mut rx = rx;
                    let _ = rx.wait_for(|r| *r).await;
                    5
                },
                0,
            )
            .await
        });
        tokio::task::yield_now().await;
        first.abort();
        let second = {
            let f3 = flights.clone();
            tokio::spawn(async move { f3.run(1, || async { 9 }, 0).await })
        };
        tokio::task::yield_now().await;
        tx.send(true).unwrap();
        assert_eq!(
            second.await.unwrap(),
            5,
            "joined the original, still-running flight"
        );
    }
}
