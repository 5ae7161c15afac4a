//! Why a session failed, by class: what an operator needs to tell a full
//! accept queue (refused) from a crash (reset) from a slow daemon (timeout).

use std::collections::BTreeMap;
use std::io;

use serde::Serialize;

/// A failure class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// The connection was refused (nothing listening, or the queue full).
    Refused,
    /// Reset or broken pipe: the peer went away abruptly.
    Reset,
    /// The daemon closed the connection early.
    Eof,
    /// No answer in time.
    Timeout,
    /// The daemon answered, but not what the protocol says (or data was wrong).
    Protocol,
    /// Anything else (local resource limits and the like).
    Other,
}

impl Failure {
    /// Classify an I/O error.
    pub fn of(e: &io::Error) -> Failure {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => Failure::Refused,
            ConnectionReset | ConnectionAborted | BrokenPipe => Failure::Reset,
            UnexpectedEof => Failure::Eof,
            TimedOut | WouldBlock => Failure::Timeout,
            InvalidData => Failure::Protocol,
            _ => Failure::Other,
        }
    }
}

/// Failure counts by class.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Failures(pub BTreeMap<Failure, u64>);

impl Failures {
    pub fn add(&mut self, f: Failure) {
        *self.0.entry(f).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Failures) {
        for (k, v) in &other.0 {
            *self.0.entry(*k).or_default() += v;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fall_into_classes() {
        let e = |k| io::Error::from(k);
        assert_eq!(Failure::of(&e(io::ErrorKind::ConnectionRefused)), Failure::Refused);
        assert_eq!(Failure::of(&e(io::ErrorKind::BrokenPipe)), Failure::Reset);
        assert_eq!(Failure::of(&e(io::ErrorKind::UnexpectedEof)), Failure::Eof);
        assert_eq!(Failure::of(&e(io::ErrorKind::WouldBlock)), Failure::Timeout);
        assert_eq!(Failure::of(&e(io::ErrorKind::InvalidData)), Failure::Protocol);
        let mut f = Failures::default();
        f.add(Failure::Reset);
        f.add(Failure::Reset);
        let mut g = Failures::default();
        g.add(Failure::Eof);
        f.merge(&g);
        assert_eq!(f.total(), 3);
        assert_eq!(f.0[&Failure::Reset], 2);
    }
}
