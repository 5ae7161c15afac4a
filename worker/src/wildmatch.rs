//! Shell-style pattern matching with rsync's `wildmatch` semantics.
//!
//! This module owns the matcher used wherever rsync's daemon compares a
//! configured pattern against a name: `auth users` rules, group names and
//! `hosts allow`/`hosts deny` hostname patterns.  Matching is byte-wise and
//! locale-free (ASCII character classes), with these rules:
//!
//! * `?` matches any single byte except `/`;
//! * `*` matches any run of bytes that contains no `/`;
//! * `**` (two or more stars) matches any run of bytes, `/` included;
//! * `[...]` is a byte class: ranges `a-z`, negation with a leading `!` or
//!   `^`, POSIX names such as `[:alpha:]`, `\` escapes, and a `]` right after
//!   the opening bracket is literal.  A class never matches `/`;
//! * `\x` matches `x` literally.
//!
//! A malformed pattern (unterminated class, unknown `[:name:]`) matches
//! nothing.  Text is considered to end at its first NUL byte, as in C.

/// Whether `pattern` matches the whole of `text`, case-sensitively.
///
/// This is the matcher rsync uses for `auth users` rules and group names.
pub(crate) fn wildmatch(pattern: &str, text: &str) -> bool {
    Matcher { fold_case: false }.matches(pattern.as_bytes(), text.as_bytes())
}

/// [`wildmatch`] on bytes: a name that is not UTF-8 (a file a glob may
/// match) is matched byte for byte, as upstream does.
pub(crate) fn wildmatch_bytes(pattern: &[u8], text: &[u8]) -> bool {
    Matcher { fold_case: false }.matches(pattern, text)
}

/// Whether `pattern` matches the whole of `text`, ignoring ASCII case on
/// both sides.
///
/// This is the matcher rsync uses for `hosts allow`/`hosts deny` hostname
/// patterns: folding the pattern as well as the text keeps an upper-case
/// deny token from silently failing to match.
pub(crate) fn iwildmatch(pattern: &str, text: &str) -> bool {
    Matcher { fold_case: true }.matches(pattern.as_bytes(), text.as_bytes())
}

/// Result of matching a pattern suffix against a text suffix.
///
/// The two abort values let a `*` stop scanning early: once the text is
/// exhausted nothing further can match, and once a single `*` has hit a `/`
/// only an enclosing `**` may still try later positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    NoMatch,
    Match,
    AbortAll,
    AbortToDoubleStar,
}

/// Result of evaluating one `[...]` class against one text byte.
enum ClassOutcome {
    /// The class matched; the index is that of its closing `]`.
    Matched(usize),
    Mismatch,
    Malformed,
}

struct Matcher {
    fold_case: bool,
}

/// The byte at `index`, or NUL past the end (C-string view of a slice).
fn byte_at(bytes: &[u8], index: usize) -> u8 {
    bytes.get(index).copied().unwrap_or(0)
}

/// The slice up to (not including) its first NUL byte.
fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Membership test for a POSIX class name in the C locale, or `None` for an
/// unknown name.
fn named_class_contains(name: &[u8], byte: u8) -> Option<bool> {
    let contained = match name {
        b"alnum" => byte.is_ascii_alphanumeric(),
        b"alpha" => byte.is_ascii_alphabetic(),
        b"blank" => byte == b' ' || byte == b'\t',
        b"cntrl" => byte.is_ascii_control(),
        b"digit" => byte.is_ascii_digit(),
        b"graph" => byte.is_ascii_graphic(),
        b"lower" => byte.is_ascii_lowercase(),
        b"print" => byte.is_ascii_graphic() || byte == b' ',
        b"punct" => byte.is_ascii_punctuation(),
        // C's isspace() also counts the vertical tab, unlike Rust's helper.
        b"space" => matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b"upper" => byte.is_ascii_uppercase(),
        b"xdigit" => byte.is_ascii_hexdigit(),
        _ => return None,
    };
    Some(contained)
}

impl Matcher {
    fn matches(&self, pattern: &[u8], text: &[u8]) -> bool {
        self.match_at(until_nul(pattern), 0, until_nul(text), 0) == Outcome::Match
    }

    fn fold(&self, byte: u8) -> u8 {
        if self.fold_case {
            byte.to_ascii_lowercase()
        } else {
            byte
        }
    }

    /// Match `pattern[pi..]` against `text[ti..]`.
    fn match_at(&self, pattern: &[u8], mut pi: usize, text: &[u8], mut ti: usize) -> Outcome {
        loop {
            let p_ch = byte_at(pattern, pi);
            if p_ch == 0 {
                break;
            }
            let raw_t_ch = byte_at(text, ti);
            if raw_t_ch == 0 && p_ch != b'*' {
                return Outcome::AbortAll;
            }
            let t_ch = self.fold(raw_t_ch);
            match p_ch {
                b'\\' => {
                    pi += 1;
                    if t_ch != self.fold(byte_at(pattern, pi)) {
                        return Outcome::NoMatch;
                    }
                }
                b'?' => {
                    if t_ch == b'/' {
                        return Outcome::NoMatch;
                    }
                }
                b'*' => return self.match_star(pattern, pi, text, ti),
                b'[' => match self.match_class(pattern, pi + 1, t_ch) {
                    ClassOutcome::Matched(close) => pi = close,
                    ClassOutcome::Mismatch => return Outcome::NoMatch,
                    ClassOutcome::Malformed => return Outcome::AbortAll,
                },
                literal => {
                    if t_ch != self.fold(literal) {
                        return Outcome::NoMatch;
                    }
                }
            }
            pi += 1;
            ti += 1;
        }
        if byte_at(text, ti) == 0 {
            Outcome::Match
        } else {
            Outcome::NoMatch
        }
    }

    /// Match a star run starting at `pattern[star]` against `text[ti..]`.
    fn match_star(&self, pattern: &[u8], star: usize, text: &[u8], ti: usize) -> Outcome {
        let mut pi = star + 1;
        let crosses_slash = byte_at(pattern, pi) == b'*';
        while byte_at(pattern, pi) == b'*' {
            pi += 1;
        }
        if byte_at(pattern, pi) == 0 {
            let rest_has_slash = text[ti.min(text.len())..].contains(&b'/');
            return if crosses_slash || !rest_has_slash {
                Outcome::Match
            } else {
                Outcome::NoMatch
            };
        }
        let mut start = ti;
        loop {
            let t_ch = byte_at(text, start);
            if t_ch == 0 {
                return Outcome::AbortAll;
            }
            let outcome = self.match_at(pattern, pi, text, start);
            if outcome != Outcome::NoMatch {
                if !crosses_slash || outcome != Outcome::AbortToDoubleStar {
                    return outcome;
                }
            } else if !crosses_slash && t_ch == b'/' {
                return Outcome::AbortToDoubleStar;
            }
            start += 1;
        }
    }

    /// Evaluate the class whose body starts at `pattern[pi]` (just after
    /// the `[`) against the (already folded) text byte `t_ch`.
    fn match_class(&self, pattern: &[u8], mut pi: usize, t_ch: u8) -> ClassOutcome {
        let mut p_ch = byte_at(pattern, pi);
        let negated = p_ch == b'!' || p_ch == b'^';
        if negated {
            pi += 1;
            p_ch = byte_at(pattern, pi);
        }
        let mut prev_ch: u8 = 0;
        let mut matched = false;
        loop {
            if p_ch == 0 {
                return ClassOutcome::Malformed;
            }
            if p_ch == b'\\' {
                pi += 1;
                p_ch = self.fold(byte_at(pattern, pi));
                if p_ch == 0 {
                    return ClassOutcome::Malformed;
                }
                matched |= t_ch == p_ch;
            } else if p_ch == b'-' && prev_ch != 0 && byte_at(pattern, pi + 1) != 0 && byte_at(pattern, pi + 1) != b']' {
                pi += 1;
                let mut high = byte_at(pattern, pi);
                if high == b'\\' {
                    pi += 1;
                    high = byte_at(pattern, pi);
                    if high == 0 {
                        return ClassOutcome::Malformed;
                    }
                }
                let high = self.fold(high);
                matched |= t_ch >= prev_ch && t_ch <= high;
                // A finished range cannot start another one.
                p_ch = 0;
            } else if p_ch == b'[' && byte_at(pattern, pi + 1) == b':' {
                match self.match_named_class(pattern, pi, t_ch) {
                    NamedClass::Literal => matched |= t_ch == b'[',
                    NamedClass::Evaluated { contains, close } => {
                        matched |= contains;
                        pi = close;
                        p_ch = 0;
                    }
                    NamedClass::Malformed => return ClassOutcome::Malformed,
                }
            } else {
                p_ch = self.fold(p_ch);
                matched |= t_ch == p_ch;
            }
            prev_ch = p_ch;
            pi += 1;
            p_ch = byte_at(pattern, pi);
            if p_ch == b']' {
                break;
            }
        }
        if matched == negated || t_ch == b'/' {
            ClassOutcome::Mismatch
        } else {
            ClassOutcome::Matched(pi)
        }
    }

    /// Evaluate a `[:name:]` item whose `[` is at `pattern[open]`.
    fn match_named_class(&self, pattern: &[u8], open: usize, t_ch: u8) -> NamedClass {
        let name_start = open + 2;
        let mut close = name_start;
        while byte_at(pattern, close) != 0 && byte_at(pattern, close) != b']' {
            close += 1;
        }
        if byte_at(pattern, close) == 0 {
            return NamedClass::Malformed;
        }
        if close == name_start || pattern[close - 1] != b':' {
            // No ":]" terminator: the `[` is an ordinary class member.
            return NamedClass::Literal;
        }
        match named_class_contains(&pattern[name_start..close - 1], t_ch) {
            Some(contains) => NamedClass::Evaluated { contains, close },
            None => NamedClass::Malformed,
        }
    }
}

/// How a `[:` inside a class was interpreted.
enum NamedClass {
    /// Not a `[:name:]` item; the `[` stands for itself.
    Literal,
    /// A known class; `close` is the index of its final `]`.
    Evaluated { contains: bool, close: usize },
    /// Unknown class name or unterminated class.
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::{iwildmatch, wildmatch};

    /// (expected, text, pattern), transcribed from the facts in rsync's
    /// `wildtest.txt` table.
    const CASES: &[(bool, &str, &str)] = &[
        (true, "foo", "foo"),
        (false, "foo", "bar"),
        (true, "", ""),
        (true, "foo", "???"),
        (false, "foo", "??"),
        (true, "foo", "*"),
        (true, "foo", "f*"),
        (false, "foo", "*f"),
        (true, "foo", "*foo*"),
        (true, "foobar", "*ob*a*r*"),
        (true, "aaaaaaabababab", "*ab"),
        (true, "foo*", "foo\\*"),
        (false, "foobar", "foo\\*bar"),
        (true, "f\\oo", "f\\\\oo"),
        (true, "ball", "*[al]?"),
        (false, "ten", "[ten]"),
        (true, "ten", "**[!te]"),
        (false, "ten", "**[!ten]"),
        (true, "ten", "t[a-g]n"),
        (false, "ten", "t[!a-g]n"),
        (true, "ton", "t[!a-g]n"),
        (true, "ton", "t[^a-g]n"),
        (true, "a]b", "a[]]b"),
        (true, "a-b", "a[]-]b"),
        (true, "a]b", "a[]-]b"),
        (false, "aab", "a[]-]b"),
        (true, "aab", "a[]a-]b"),
        (true, "]", "]"),
        (false, "foo/baz/bar", "foo*bar"),
        (true, "foo/baz/bar", "foo**bar"),
        (false, "foo/bar", "foo?bar"),
        (false, "foo/bar", "foo[/]bar"),
        (false, "foo/bar", "f[^eiu][^eiu][^eiu][^eiu][^eiu]r"),
        (true, "foo-bar", "f[^eiu][^eiu][^eiu][^eiu][^eiu]r"),
        (false, "foo", "**/foo"),
        (true, "/foo", "**/foo"),
        (true, "bar/baz/foo", "**/foo"),
        (false, "bar/baz/foo", "*/foo"),
        (false, "foo/bar/baz", "**/bar*"),
        (true, "deep/foo/bar/baz", "**/bar/*"),
        (false, "deep/foo/bar/baz/", "**/bar/*"),
        (true, "deep/foo/bar/baz/", "**/bar/**"),
        (false, "deep/foo/bar", "**/bar/*"),
        (true, "deep/foo/bar/", "**/bar/**"),
        (true, "foo/bar/baz", "**/bar**"),
        (true, "foo/bar/baz/x", "*/bar/**"),
        (false, "deep/foo/bar/baz/x", "*/bar/**"),
        (true, "deep/foo/bar/baz/x", "**/bar/*/*"),
        (false, "acrt", "a[c-c]st"),
        (true, "acrt", "a[c-c]rt"),
        (false, "]", "[!]-]"),
        (true, "a", "[!]-]"),
        (false, "", "\\"),
        (false, "\\", "\\"),
        (false, "/\\", "*/\\"),
        (true, "/\\", "*/\\\\"),
        (true, "foo", "foo"),
        (true, "@foo", "@foo"),
        (false, "foo", "@foo"),
        (true, "[ab]", "\\[ab]"),
        (true, "[ab]", "[[]ab]"),
        (true, "[ab]", "[[:]ab]"),
        (false, "[ab]", "[[::]ab]"),
        (true, "[ab]", "[[:digit]ab]"),
        (true, "[ab]", "[\\[:]ab]"),
        (true, "?a?b", "\\??\\?b"),
        (true, "abc", "\\a\\b\\c"),
        (false, "foo", ""),
        (true, "foo/bar/baz/to", "**/t[o]"),
        (true, "a1B", "[[:alpha:]][[:digit:]][[:upper:]]"),
        (false, "a", "[[:digit:][:upper:][:space:]]"),
        (true, "A", "[[:digit:][:upper:][:space:]]"),
        (true, "1", "[[:digit:][:upper:][:space:]]"),
        (false, "1", "[[:digit:][:upper:][:spaci:]]"),
        (true, " ", "[[:digit:][:upper:][:space:]]"),
        (false, ".", "[[:digit:][:upper:][:space:]]"),
        (true, ".", "[[:digit:][:punct:][:space:]]"),
        (true, "5", "[[:xdigit:]]"),
        (true, "f", "[[:xdigit:]]"),
        (true, "D", "[[:xdigit:]]"),
        (
            true,
            "_",
            "[[:alnum:][:alpha:][:blank:][:cntrl:][:digit:][:graph:][:lower:][:print:][:punct:][:space:][:upper:][:xdigit:]]",
        ),
        (
            true,
            "\x7f",
            "[^[:alnum:][:alpha:][:blank:][:digit:][:graph:][:lower:][:print:][:punct:][:space:][:upper:][:xdigit:]]",
        ),
        (
            true,
            ".",
            "[^[:alnum:][:alpha:][:blank:][:cntrl:][:digit:][:lower:][:space:][:upper:][:xdigit:]]",
        ),
        (true, "5", "[a-c[:digit:]x-z]"),
        (true, "b", "[a-c[:digit:]x-z]"),
        (true, "y", "[a-c[:digit:]x-z]"),
        (false, "q", "[a-c[:digit:]x-z]"),
        (true, "]", "[\\\\-^]"),
        (false, "[", "[\\\\-^]"),
        (true, "-", "[\\-_]"),
        (true, "]", "[\\]]"),
        (false, "\\]", "[\\]]"),
        (false, "\\", "[\\]]"),
        (false, "ab", "a[]b"),
        (false, "a[]b", "a[]b"),
        (false, "ab[", "ab["),
        (false, "ab", "[!"),
        (false, "ab", "[-"),
        (true, "-", "[-]"),
        (false, "-", "[a-"),
        (false, "-", "[!a-"),
        (true, "-", "[--A]"),
        (true, "5", "[--A]"),
        (true, " ", "[ --]"),
        (true, "$", "[ --]"),
        (true, "-", "[ --]"),
        (false, "0", "[ --]"),
        (true, "-", "[---]"),
        (true, "-", "[------]"),
        (false, "j", "[a-e-n]"),
        (true, "-", "[a-e-n]"),
        (true, "a", "[!------]"),
        (false, "[", "[]-a]"),
        (true, "^", "[]-a]"),
        (false, "^", "[!]-a]"),
        (true, "[", "[!]-a]"),
        (true, "^", "[a^bc]"),
        (true, "-b]", "[a-]b]"),
        (false, "\\", "[\\]"),
        (true, "\\", "[\\\\]"),
        (false, "\\", "[!\\\\]"),
        (true, "G", "[A-\\\\]"),
        (false, "aaabbb", "b*a"),
        (false, "aabcaa", "*ba*"),
        (true, ",", "[,]"),
        (true, ",", "[\\\\,]"),
        (true, "\\", "[\\\\,]"),
        (true, "-", "[,-.]"),
        (false, "+", "[,-.]"),
        (false, "-.]", "[,-.]"),
        (true, "2", "[\\1-\\3]"),
        (true, "3", "[\\1-\\3]"),
        (false, "4", "[\\1-\\3]"),
        (true, "\\", "[[-\\]]"),
        (true, "[", "[[-\\]]"),
        (true, "]", "[[-\\]]"),
        (false, "-", "[[-\\]]"),
        (
            true,
            "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        ),
        (
            false,
            "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        ),
        (
            false,
            "-adobe-courier-bold-o-normal--12-120-75-75-/-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        ),
        (
            true,
            "/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1",
            "/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
        ),
        (
            false,
            "/adobe/courier/bold/o/normal//12/120/75/75/X/70/iso8859/1",
            "/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
        ),
        (true, "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", "**/*a*b*g*n*t"),
        (false, "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", "**/*a*b*g*n*t"),
    ];

    #[test]
    fn upstream_table() {
        let failures: Vec<String> = CASES
            .iter()
            .filter(|(expected, text, pattern)| wildmatch(pattern, text) != *expected)
            .map(|(expected, text, pattern)| format!("{pattern:?} vs {text:?}: expected {expected}"))
            .collect();
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn single_star_stops_at_slash_double_star_crosses() {
        assert!(wildmatch("*", "abc"));
        assert!(!wildmatch("*", "a/b"));
        assert!(wildmatch("**", "a/b"));
        assert!(wildmatch("a/*/c", "a/b/c"));
        assert!(!wildmatch("a/*/c", "a/b/x/c"));
        assert!(wildmatch("a/**/c", "a/b/x/c"));
        assert!(wildmatch("*", ""));
        assert!(!wildmatch("?", ""));
        assert!(!wildmatch("?", "/"));
    }

    #[test]
    fn classes_never_match_slash() {
        assert!(!wildmatch("a[!x]b", "a/b"));
        assert!(!wildmatch("a[/]b", "a/b"));
        assert!(wildmatch("a[^x]b", "a-b"));
    }

    #[test]
    fn case_sensitivity() {
        assert!(!wildmatch("Joe", "joe"));
        assert!(iwildmatch("*.EXAMPLE.com", "host.example.COM"));
        assert!(iwildmatch("[A-Z]x", "qX"));
        assert!(!iwildmatch("[[:upper:]]", "Q"), "text is folded before class tests");
        assert!(iwildmatch("unknown", "UNKNOWN"));
    }

    #[test]
    fn malformed_patterns_match_nothing() {
        assert!(!wildmatch("[abc", "a"));
        assert!(!wildmatch("[[:nope:]]", "a"));
        assert!(!wildmatch("a\\", "a\\"));
    }

    #[test]
    fn text_ends_at_nul() {
        assert!(wildmatch("ab", "ab\0cd"));
    }
}
