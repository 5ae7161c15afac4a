//! The argument block the client sends after `@RSYNCD: OK`: options up to a
//! lone `.`, then the paths it asks for. NUL-terminated from protocol 30,
//! newline-terminated before; an empty entry ends the block. With `-s`
//! (secluded args) a second, always NUL-terminated block follows with the
//! real argument list.

/// Most entries one block may hold (upstream bounds daemon args too).
pub const MAX_ARGS: usize = 10_000;
/// Most bytes one block may hold.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// Why an argument block is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("too many daemon arguments")]
    TooMany,
    #[error("daemon arguments too long")]
    TooLong,
}

/// Collects one block, entry by entry.
#[derive(Debug, Default)]
pub struct ArgBlock {
    /// Options so far (up to and including the lone `.`), unescaped.
    pub entries: Vec<String>,
    /// The requested paths (after the lone `.`), exactly as sent: a path
    /// may name a file whose name is not UTF-8.
    paths: Vec<Vec<u8>>,
    /// Bytes so far, for the bound.
    bytes: usize,
    /// Whether the lone `.` has been seen.
    dot: bool,
    /// The first option that is not UTF-8, as text (U+FFFD for the bad
    /// bytes), so the session can tell the client why it is refused (see
    /// [`ArgBlock::not_utf8`]).
    not_utf8: Option<String>,
}

impl ArgBlock {
    /// Add one entry. Returns `Ok(true)` when the block has ended.
    pub fn push(&mut self, raw: &[u8], unescape_options: bool) -> Result<bool, ArgsError> {
        if raw.is_empty() {
            return Ok(true);
        }
        self.bytes += raw.len();
        if self.bytes > MAX_BLOCK_BYTES {
            return Err(ArgsError::TooLong);
        }
        if self.entries.len() + self.paths.len() >= MAX_ARGS {
            return Err(ArgsError::TooMany);
        }
        if self.dot {
            self.paths.push(raw.to_vec());
            return Ok(false);
        }
        let lossy = String::from_utf8_lossy(raw);
        if matches!(lossy, std::borrow::Cow::Owned(_)) && self.not_utf8.is_none() {
            self.not_utf8 = Some(lossy.to_string());
        }
        let entry = if unescape_options {
            unbackslash(&lossy)
        } else {
            lossy.into_owned()
        };
        self.dot = entry == ".";
        self.entries.push(entry);
        Ok(false)
    }

    /// Whether the block holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.paths.is_empty()
    }

    /// The options (everything before the lone `.`).
    pub fn options(&self) -> &[String] {
        match self.dot {
            true => &self.entries[..self.entries.len() - 1],
            false => &self.entries,
        }
    }

    /// The first option that was not UTF-8, if any. Option values are
    /// handled as text, so a session sending one is refused with a message
    /// rather than served something else. (Paths are bytes.)
    pub fn not_utf8(&self) -> Option<&str> {
        self.not_utf8.as_deref()
    }

    /// The requested paths (everything after the lone `.`), as sent.
    pub fn paths(&self) -> &[Vec<u8>] {
        &self.paths
    }
}

/// Undo the client's `safe_arg()` escaping of option values (3.2.4+):
/// a backslash makes the next character literal.
pub(crate) fn unbackslash(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut chars = arg.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether the options ask for secluded (protected) args: `-s` inside a
/// short-option cluster, or `--secluded-args` / `--protect-args`.
pub fn wants_secluded_args(options: &[String]) -> bool {
    options.iter().any(|o| {
        if let Some(long) = o.strip_prefix("--") {
            return long == "secluded-args" || long == "protect-args";
        }
        match o.strip_prefix('-') {
            Some(cluster) => short_cluster_letters(cluster).contains('s'),
            None => false,
        }
    })
}

/// The option letters of a short cluster, stopping at `e` whose value (the
/// client's capability string) takes the rest.
pub(crate) fn short_cluster_letters(cluster: &str) -> &str {
    match cluster.find('e') {
        Some(i) => &cluster[..i],
        None => cluster,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_options_and_paths() {
        let mut b = ArgBlock::default();
        for e in ["--server", "--sender", "-vlogDtpre.iLsfxCIvu", ".", "mod/a b", "mod/c"] {
            assert!(!b.push(e.as_bytes(), true).unwrap());
        }
        assert!(b.push(b"", true).unwrap());
        assert_eq!(b.options(), ["--server", "--sender", "-vlogDtpre.iLsfxCIvu"]);
        assert_eq!(b.paths(), [b"mod/a b".to_vec(), b"mod/c".to_vec()]);
    }

    #[test]
    fn unescapes_options_not_paths() {
        let mut b = ArgBlock::default();
        b.push(br"--log-format=%i\ %n", true).unwrap();
        b.push(b".", true).unwrap();
        b.push(br"mod/x\ y", true).unwrap();
        assert_eq!(b.options(), ["--log-format=%i %n"]);
        assert_eq!(b.paths(), [br"mod/x\ y".to_vec()]);
    }

    #[test]
    fn bounds_hostile_blocks() {
        let mut b = ArgBlock::default();
        let big = vec![b'a'; 4096];
        let mut err = None;
        for _ in 0..1000 {
            if let Err(e) = b.push(&big, true) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ArgsError::TooLong));
        let mut latin = ArgBlock::default();
        for entry in [&b"--server"[..], b".", b"mod/caf\xe9", b"mod/\xff"] {
            assert_eq!(latin.push(entry, true), Ok(false));
        }
        assert_eq!(latin.not_utf8(), None, "paths are bytes");
        assert_eq!(latin.paths(), [b"mod/caf\xe9".to_vec(), b"mod/\xff".to_vec()], "kept exactly");
        let mut option = ArgBlock::default();
        for entry in [&b"--server"[..], b"--log-file-format=%n\xe9", b"--temp-dir=t\xff", b"."] {
            assert_eq!(option.push(entry, true), Ok(false));
        }
        assert_eq!(
            option.not_utf8(),
            Some("--log-file-format=%n\u{fffd}"),
            "the first one is kept for the message"
        );
    }

    #[test]
    fn detects_secluded_args() {
        assert!(wants_secluded_args(&["--server".into(), "-s".into()]));
        assert!(wants_secluded_args(&["-vsre.iLsfxCIvu".into()]));
        assert!(!wants_secluded_args(&["-vre.iLsfxCIvu".into()]), "the s after e is a capability");
        assert!(wants_secluded_args(&["--protect-args".into()]));
    }
}
