//! Ports for the processes this crate starts (workers' REST listeners and metrics exporters, the
//! embedded broker): the one place a free port is picked.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::Mutex;

/// How many ports [`free_port`] remembers having handed out.
const RECENT_PORTS: usize = 4096;

/// A port that is free on `host` right now and that this process has not handed out among its
/// last `RECENT_PORTS`. The port is released before the caller's process binds it, so without
/// the memory two workers picked a moment apart (one department, or departments in one process)
/// could be given the same port and one of them would fail to listen on every restart.
pub fn free_port(host: &str) -> std::io::Result<u16> {
    static RECENT: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());
    for _ in 0..64 {
        let port = TcpListener::bind((host, 0))?.local_addr()?.port();
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        if !recent.contains(&port) {
            if recent.len() == RECENT_PORTS {
                recent.pop_front();
            }
            recent.push_back(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("the OS offered only ports already handed out on {host}"),
    ))
}

/// Whether `port` can be bound on `host` right now (a configured port is checked before use).
pub fn is_free(host: &str, port: u16) -> bool {
    TcpListener::bind((host, port)).is_ok()
}

/// A [`free_port`] that is none of `taken` (ports handed to processes that have not bound them
/// yet); `None` when 50 picks all hit one.
pub fn free_port_except(host: &str, taken: &[u16]) -> Option<u16> {
    (0..50)
        .filter_map(|_| free_port(host).ok())
        .find(|p| !taken.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        // About 14,000 ports are candidates for bind(0); 2,000 draws without the memory repeat
        // one with near certainty (birthday bound: about 140 expected repeats).
        let ports: Vec<u16> = (0..2000)
            .map(|_| free_port("127.0.0.1").expect("free port"))
            .collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    }

    #[test]
    fn a_bound_port_is_not_free_and_taken_ports_are_avoided() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let bound = listener.local_addr().unwrap().port();
        assert!(!is_free("127.0.0.1", bound));
        let taken: Vec<u16> = (0..20)
            .filter_map(|_| free_port("127.0.0.1").ok())
            .collect();
        let port = free_port_except("127.0.0.1", &taken).expect("a port");
        assert!(!taken.contains(&port));
        drop(listener);
        assert!(is_free("127.0.0.1", bound));
    }
}
