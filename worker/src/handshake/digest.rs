//! Daemon-auth digests: which one a session uses and how it hashes.
//!
//! This module owns the message digests of rsync's daemon challenge/response
//! authentication: the list our greeting advertises, the server-side choice
//! among the names a client advertises, the `password || challenge` hash in
//! rsync's unpadded base64, and fresh challenge generation.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use md4::Digest;
use rand::RngCore;

/// A digest usable for daemon authentication.
///
/// Variants are listed strongest first, which is also our preference order.
/// `Md4Old` is the legacy seeded MD4 used when a client advertised no digest
/// list below protocol 30; it is still called "md4".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthDigest {
    Sha512,
    Sha256,
    Sha1,
    Md5,
    Md4,
    Md4Old,
}

/// The client advertised digest names, none of which we implement.
///
/// Its message is the text upstream sends after `@ERROR: ` before closing the
/// connection, so the caller can write `@ERROR: {err}\n` verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("your client does not support one of our daemon-auth checksums: {ours}")]
pub struct NoCommonDigest {
    /// Our advertised list, space separated.
    pub ours: &'static str,
}

/// The negotiable digests, in preference (strongest-first) order.
const PREFERENCE: [AuthDigest; 5] = [
    AuthDigest::Sha512,
    AuthDigest::Sha256,
    AuthDigest::Sha1,
    AuthDigest::Md5,
    AuthDigest::Md4,
];

impl AuthDigest {
    /// The list our greeting advertises, strongest first, so that a client
    /// choosing by its own preference and we by ours converge.
    pub const ADVERTISED: &'static str = "sha512 sha256 sha1 md5 md4";

    /// The protocol name, as advertised and as logged.
    pub fn name(self) -> &'static str {
        match self {
            AuthDigest::Sha512 => "sha512",
            AuthDigest::Sha256 => "sha256",
            AuthDigest::Sha1 => "sha1",
            AuthDigest::Md5 => "md5",
            AuthDigest::Md4 | AuthDigest::Md4Old => "md4",
        }
    }

    /// Look a digest name up the way upstream does (ASCII case-insensitive).
    ///
    /// Returns the modern variant for "md4"; `Md4Old` is only ever chosen by
    /// [`AuthDigest::negotiate`] for a client without a digest list.
    pub fn from_name(name: &str) -> Option<AuthDigest> {
        PREFERENCE.into_iter().find(|digest| digest.name().eq_ignore_ascii_case(name))
    }

    /// Choose the digest for a session, as the server side of upstream's
    /// daemon-auth negotiation does.
    ///
    /// `client_list` is the text after the version in the client's greeting
    /// (`None` if the greeting had none).  Without a list the choice is md5
    /// at protocol 30 and later, else the old seeded MD4.  With a list we
    /// take our own most-preferred digest that the client also names
    /// (names are space separated and matched case-insensitively), so a
    /// client cannot steer us to a weaker one by ordering its list.  No
    /// common name is an error carrying our list.
    pub fn negotiate(client_list: Option<&str>, protocol: u32) -> Result<AuthDigest, NoCommonDigest> {
        let Some(list) = client_list else {
            return Ok(if protocol >= 30 { AuthDigest::Md5 } else { AuthDigest::Md4Old });
        };
        list.split(' ')
            .filter_map(AuthDigest::from_name)
            .min_by_key(|digest| digest.strength_rank())
            .ok_or(NoCommonDigest { ours: Self::ADVERTISED })
    }

    /// Rank for `auth digest` floors: 0 is the strongest, and a digest whose
    /// rank is higher than the floor's is too weak.  Old MD4 ranks as "md4".
    pub fn strength_rank(self) -> u8 {
        match self {
            AuthDigest::Sha512 => 0,
            AuthDigest::Sha256 => 1,
            AuthDigest::Sha1 => 2,
            AuthDigest::Md5 => 3,
            AuthDigest::Md4 | AuthDigest::Md4Old => 4,
        }
    }

    /// Length in bytes of the raw digest.
    pub fn output_len(self) -> usize {
        match self {
            AuthDigest::Sha512 => 64,
            AuthDigest::Sha256 => 32,
            AuthDigest::Sha1 => 20,
            AuthDigest::Md5 | AuthDigest::Md4 | AuthDigest::Md4Old => 16,
        }
    }

    /// The raw digest of the concatenation of `parts`.
    ///
    /// Old MD4 first hashes a 4-byte little-endian seed of 0, as upstream's
    /// legacy MD4 does, so it interoperates with pre-protocol-30 clients.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            AuthDigest::Sha512 => digest_of::<sha2::Sha512>(&[], parts),
            AuthDigest::Sha256 => digest_of::<sha2::Sha256>(&[], parts),
            AuthDigest::Sha1 => digest_of::<sha1::Sha1>(&[], parts),
            AuthDigest::Md5 => digest_of::<md5::Md5>(&[], parts),
            AuthDigest::Md4 => digest_of::<md4::Md4>(&[], parts),
            AuthDigest::Md4Old => digest_of::<md4::Md4>(&0u32.to_le_bytes(), parts),
        }
    }

    /// Unpadded standard base64 of [`AuthDigest::hash`]: the form in which
    /// challenges and responses travel (`H(password || challenge)` for a
    /// response).
    pub fn hash_b64(self, parts: &[&[u8]]) -> String {
        encode_b64(&self.hash(parts))
    }
}

fn digest_of<D: Digest>(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = D::new();
    hasher.update(prefix);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// Base64 with the standard alphabet and no `=` padding, as rsync writes it.
pub(crate) fn encode_b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// A fresh unpredictable challenge for one authentication attempt.
///
/// It is the digest of 32 bytes from the OS CSPRNG followed by upstream's
/// legacy mix-in block (up to 16 bytes of the client address, the time in
/// seconds and microseconds and our pid, little-endian), in unpadded base64.
/// Its length therefore depends on the digest, as the client expects.
pub(crate) fn new_challenge(digest: AuthDigest, client_addr: &str) -> String {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let mix_in = legacy_mix_in(client_addr);
    digest.hash_b64(&[&random, &mix_in])
}

/// Upstream's 32-byte address/time/pid block, kept so the challenge input
/// never carries less than it did before random bytes were added.
fn legacy_mix_in(client_addr: &str) -> [u8; 32] {
    let mut block = [0u8; 32];
    let addr = client_addr.as_bytes();
    let addr_len = addr.len().min(16);
    block[..addr_len].copy_from_slice(&addr[..addr_len]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    block[16..20].copy_from_slice(&(now.as_secs() as u32).to_le_bytes());
    block[20..24].copy_from_slice(&now.subsec_micros().to_le_bytes());
    block[24..28].copy_from_slice(&std::process::id().to_le_bytes());
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &[u8] = b"s3cret";
    const CHALLENGE: &[u8] = b"Zm9vYmFyYmF6cXV4cXV1eA";

    // Expected responses for password "s3cret" and challenge
    // "Zm9vYmFyYmF6cXV4cXV1eA", produced independently with:
    //   python3 -c 'import hashlib,base64; print(base64.b64encode(
    //       hashlib.new(NAME, b"s3cret"+b"Zm9vYmFyYmF6cXV4cXV1eA").digest()).decode().rstrip("="))'
    // for md5/sha1/sha256/sha512, and for MD4 (which hashlib lacks here) with:
    //   printf 's3cretZm9v...' | openssl dgst -md4 -binary -provider legacy -provider default | base64
    // where the old-MD4 input is prefixed with four NUL bytes (printf '\0\0\0\0s3cret...').
    #[test]
    fn known_response_vectors() {
        let cases = [
            (AuthDigest::Md5, "EopyyqQuIuJ31khlEO9nyw"),
            (AuthDigest::Sha1, "mg78PpFwmZzXykam28SrXYOkFXg"),
            (AuthDigest::Sha256, "Fjgn/t5+npyfeOWhlhVHkWrLb1IiNYynA/+ZbGerJF8"),
            (
                AuthDigest::Sha512,
                "NUbLbwBlVDQYBpvZV4hKqySD32moAvKmJhCSVtCPIGepsD9+0DRTck9kFEURDr75RtNUIIyLCf2ca+V9KuXDRQ",
            ),
            (AuthDigest::Md4, "WnqyYV+VeJwc5l87WX7hrw"),
            (AuthDigest::Md4Old, "Bo4b3UuGCyvPIZ/z2YJnMw"),
        ];
        for (digest, expected) in cases {
            assert_eq!(digest.hash_b64(&[PASSWORD, CHALLENGE]), expected, "{digest:?}");
        }
    }

    #[test]
    fn parts_are_concatenated() {
        let joined = [PASSWORD, CHALLENGE].concat();
        assert_eq!(
            AuthDigest::Sha256.hash_b64(&[&joined]),
            AuthDigest::Sha256.hash_b64(&[PASSWORD, CHALLENGE])
        );
    }

    #[test]
    fn negotiate_prefers_our_strongest_common_name() {
        let full = Some(AuthDigest::ADVERTISED);
        assert_eq!(AuthDigest::negotiate(full, 31), Ok(AuthDigest::Sha512));
        assert_eq!(AuthDigest::negotiate(Some("md5 sha1"), 31), Ok(AuthDigest::Sha1));
        assert_eq!(AuthDigest::negotiate(Some("bogus md4"), 31), Ok(AuthDigest::Md4));
        assert_eq!(AuthDigest::negotiate(Some("SHA256"), 31), Ok(AuthDigest::Sha256));
        assert_eq!(AuthDigest::negotiate(Some("  md5 "), 31), Ok(AuthDigest::Md5));
    }

    #[test]
    fn negotiate_without_list_falls_back_by_protocol() {
        assert_eq!(AuthDigest::negotiate(None, 30), Ok(AuthDigest::Md5));
        assert_eq!(AuthDigest::negotiate(None, 31), Ok(AuthDigest::Md5));
        assert_eq!(AuthDigest::negotiate(None, 29), Ok(AuthDigest::Md4Old));
        assert_eq!(AuthDigest::Md4Old.name(), "md4");
    }

    #[test]
    fn negotiate_without_common_name_fails_with_our_list() {
        let err = AuthDigest::negotiate(Some("xxh128 blake3"), 31).unwrap_err();
        assert_eq!(
            err.to_string(),
            "your client does not support one of our daemon-auth checksums: sha512 sha256 sha1 md5 md4"
        );
        assert!(AuthDigest::negotiate(Some(""), 31).is_err());
    }

    #[test]
    fn strength_ranks_follow_the_advertised_order() {
        let ranks: Vec<u8> = AuthDigest::ADVERTISED
            .split(' ')
            .map(|name| AuthDigest::from_name(name).unwrap().strength_rank())
            .collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
        assert_eq!(AuthDigest::Md4Old.strength_rank(), 4);
    }

    #[test]
    fn challenges_are_fresh_and_sized_by_digest() {
        let first = new_challenge(AuthDigest::Md5, "127.0.0.1");
        let second = new_challenge(AuthDigest::Md5, "127.0.0.1");
        assert_ne!(first, second);
        assert_eq!(first.len(), 22);
        assert_eq!(new_challenge(AuthDigest::Sha512, "::1").len(), 86);
        assert!(!first.contains('='));
    }
}
