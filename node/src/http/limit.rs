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

    /// A slot for a new connection from `ip`, or `None` if that client is at its limit. An
    /// IPv6 client is its /64 (one host usually holds a whole /64), an IPv4-mapped address
    /// its IPv4 address.
    pub fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let ip = client_key(ip);
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

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
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
        // One IPv6 /64 is one client; a mapped IPv4 address is that IPv4 client.
        let v6 = PerClient::new(1);
        let _h = v6.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(v6.admit("2001:db8::ffff:2".parse().unwrap()).is_none());
        assert!(v6.admit("2001:db8:0:1::1".parse().unwrap()).is_some());
        let _m = v6.admit("10.0.0.9".parse().unwrap()).unwrap();
        assert!(v6.admit("::ffff:10.0.0.9".parse().unwrap()).is_none());
    }
}
