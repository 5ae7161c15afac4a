//! Short byte strings in shared memory (module names, user names): kept as
//! words of atomics, so a reader in another process never races a plain
//! write, with the length stored beside them by the caller.

use std::sync::atomic::{AtomicU64, Ordering};

/// Store `bytes` in `words`, zero-padded; bytes past the words' room are
/// cut. Returns how many were stored.
pub(crate) fn store(words: &[AtomicU64], bytes: &[u8]) -> usize {
    let kept = bytes.len().min(words.len() * 8);
    for (i, w) in words.iter().enumerate() {
        let mut word = [0u8; 8];
        for (j, b) in word.iter_mut().enumerate() {
            *b = bytes[..kept].get(i * 8 + j).copied().unwrap_or(0);
        }
        w.store(u64::from_ne_bytes(word), Ordering::Release);
    }
    kept
}

/// The first `len` bytes held in `words` (at most their room).
pub(crate) fn load(words: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.len() * 8);
    for w in words {
        out.extend_from_slice(&w.load(Ordering::Acquire).to_ne_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_are_cut_to_the_room() {
        let words: [AtomicU64; 2] = Default::default();
        assert_eq!(store(&words, b"hello, world"), 12);
        assert_eq!(load(&words, 12), b"hello, world");
        assert_eq!(store(&words, &[b'x'; 20]), 16);
        assert_eq!(load(&words, 99), vec![b'x'; 16]);
        store(&words, b"ab");
        assert_eq!(load(&words, 2), b"ab");
    }
}
