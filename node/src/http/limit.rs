//! Per-client-address connection limits: one address (a misbehaving client, a slow-header
//! attack) cannot take every connection slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open connections per client address, bounded by `max` (0 = unbounded).
#[derive(Debug)]
pub struct PerClient {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection; releases its slot when dropped.
#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    open: Option<Arc<Mutex<HashMap<IpAddr, usize>>>>,
}

impl PerClient {
    /// A limit of `max` connections per address (0 = none).
    pub fn new(max: usize) -> PerClient {
        PerClient {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for a new connection from `ip`, or `None` if that address is at its limit.
    pub fn admit(&self, ip: IpAddr) -> Option<Slot> {
        if self.max == 0 {
            return Some(Slot { ip, open: None });
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            open: Some(self.open.clone()),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(open) = &self.open else { return };
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_released() {
        let limit = PerClient::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let s1 = limit.admit(a).unwrap();
        let _s2 = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none(), "third from one address");
        assert!(limit.admit(b).is_some(), "another address is not affected");
        drop(s1);
        assert!(limit.admit(a).is_some(), "a released slot is reusable");
        assert!(PerClient::new(0).admit(a).is_some());
    }
}
