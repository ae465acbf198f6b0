//! A bounded, per-node memory of recent not-found answers, so that the go command's probing of
//! every path prefix does not reach the upstream each time. Upstream errors are never stored here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers keys that the upstream reported as not found, for `ttl`.
pub struct NegativeCache {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl NegativeCache {
    /// A cache holding at most `max` entries for `ttl` each.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max: max.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, String)>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The remembered not-found message for `key`, if still fresh.
    pub fn get(&self, key: &str) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut map = self.lock();
        match map.get(key) {
            Some((at, msg)) if at.elapsed() < self.ttl => Some(msg.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers that `key` was not found, with the upstream's message.
    pub fn insert(&self, key: String, message: String) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.max {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.max {
                if let Some(k) = map.keys().next().cloned() {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, (Instant::now(), message));
        metrics::gauge!(super::metrics::NEGATIVE_ENTRIES).set(map.len() as f64);
    }

    /// Forgets `key` (after a successful fill).
    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_then_forgets_and_stays_bounded() {
        let c = NegativeCache::new(Duration::from_secs(60), 2);
        c.insert("a".into(), "no a".into());
        assert_eq!(c.get("a").as_deref(), Some("no a"));
        c.insert("b".into(), "x".into());
        c.insert("c".into(), "x".into());
        assert!(c.lock().len() <= 2);
        c.remove("c");
        assert_eq!(c.get("c"), None);
        let off = NegativeCache::new(Duration::ZERO, 2);
        off.insert("a".into(), "x".into());
        assert_eq!(off.get("a"), None);
    }
}
