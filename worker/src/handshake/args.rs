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
    /// Entries so far, options unescaped.
    pub entries: Vec<String>,
    /// Bytes so far, for the bound.
    bytes: usize,
    /// Index just past the lone `.`, once seen.
    dot: Option<usize>,
    /// The first entry that is not UTF-8, as text (U+FFFD for the bad
    /// bytes). Such an entry is kept that way so the session can tell the
    /// client why it is refused (see [`ArgBlock::not_utf8`]).
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
        if self.entries.len() >= MAX_ARGS {
            return Err(ArgsError::TooMany);
        }
        let lossy = String::from_utf8_lossy(raw);
        if matches!(lossy, std::borrow::Cow::Owned(_)) && self.not_utf8.is_none() {
            self.not_utf8 = Some(lossy.to_string());
        }
        let text = &*lossy;
        if self.dot.is_some() {
            self.entries.push(text.to_string());
        } else {
            let entry = if unescape_options { unbackslash(text) } else { text.to_string() };
            let is_dot = entry == ".";
            self.entries.push(entry);
            if is_dot {
                self.dot = Some(self.entries.len());
            }
        }
        Ok(false)
    }

    /// The options (everything before the lone `.`).
    pub fn options(&self) -> &[String] {
        match self.dot {
            Some(d) => &self.entries[..d - 1],
            None => &self.entries,
        }
    }

    /// The first entry that was not UTF-8, if any. Requested paths and
    /// option values are handled as text, so a session asking for such a
    /// name is refused with a message rather than served a different name.
    /// (Names inside the module are bytes and travel exactly in lists.)
    pub fn not_utf8(&self) -> Option<&str> {
        self.not_utf8.as_deref()
    }

    /// The requested paths (everything after the lone `.`).
    pub fn paths(&self) -> &[String] {
        match self.dot {
            Some(d) => &self.entries[d..],
            None => &[],
        }
    }
}

/// Undo the client's `safe_arg()` escaping of option values (3.2.4+):
/// a backslash makes the next character literal.
pub fn unbackslash(arg: &str) -> String {
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
pub fn short_cluster_letters(cluster: &str) -> &str {
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
        assert_eq!(b.paths(), ["mod/a b", "mod/c"]);
    }

    #[test]
    fn unescapes_options_not_paths() {
        let mut b = ArgBlock::default();
        b.push(br"--log-format=%i\ %n", true).unwrap();
        b.push(b".", true).unwrap();
        b.push(br"mod/x\ y", true).unwrap();
        assert_eq!(b.options(), ["--log-format=%i %n"]);
        assert_eq!(b.paths(), [r"mod/x\ y"]);
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
        assert_eq!(latin.not_utf8(), Some("mod/caf\u{fffd}"), "the first one is kept for the message");
        assert_eq!(latin.paths(), ["mod/caf\u{fffd}", "mod/\u{fffd}"]);
    }

    #[test]
    fn detects_secluded_args() {
        assert!(wants_secluded_args(&["--server".into(), "-s".into()]));
        assert!(wants_secluded_args(&["-vsre.iLsfxCIvu".into()]));
        assert!(!wants_secluded_args(&["-vre.iLsfxCIvu".into()]), "the s after e is a capability");
        assert!(wants_secluded_args(&["--protect-args".into()]));
    }
}
