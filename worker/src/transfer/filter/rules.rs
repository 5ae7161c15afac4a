//! Filter rules: the list the client sends before the file list, and how
//! a rule matches a name (upstream's exclude.c semantics: a pattern without
//! `/` matches the last component, one with an inner `/` the last N
//! components, a leading `/` anchors at the transfer root, a trailing `/`
//! matches directories only, `**` crosses directories, first match wins).

use std::io::{self, Read};

use bstr::ByteSlice;
use oxrsyncd_protocol::wire::read_int;

use crate::wildmatch::wildmatch_bytes;

/// The names CVS ignores by default, as rsync's `--cvs-exclude` documents.
const CVS_DEFAULT_IGNORES: &str = "RCS SCCS CVS CVS.adm RCSLOG cvslog.* tags TAGS .make.state .nse_depinfo *~ #* .#* ,* _$* *$ \
     *.old *.bak *.BAK *.orig *.rej .del-* *.a *.olb *.o *.obj *.so *.exe *.Z *.elc *.ln core .svn/ .git/ .hg/ .bzr/";

/// Longest rule we accept.
const MAX_RULE: usize = 4096;
/// Most rules we accept in one list: counted as they arrive, so a `!`
/// (which clears the list) does not reset the count.
const MAX_RULES: usize = 100_000;
/// Most per-directory merge rules one list may hold: each costs a file
/// lookup in every directory listed (a stock client's `-F` uses two).
pub(crate) const MAX_DIR_MERGES: usize = 32;

/// What a matching rule does on the sending side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Exclude,
    Include,
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    /// The pattern without its leading `/` and trailing `/`: bytes, as a
    /// client's rule may name files that are not UTF-8 (matched byte for
    /// byte, as upstream matches them).
    pattern: Vec<u8>,
    anchored: bool,
    directory_only: bool,
    negate: bool,
    /// Number of inner slashes (decides how many trailing components it matches).
    slash_count: usize,
    wild: bool,
    /// Contains `**`.
    wild2: bool,
    /// Starts with `**`.
    wild2_prefix: bool,
    /// Ends with `/***`: matches the directory itself too.
    wild3_suffix: bool,
    /// Matched against the path from the module root rather than the
    /// transfer name (upstream's FILTRULE_ABS_PATH: the `/` modifier, and
    /// anchored patterns of a per-directory merge file).
    module_path: bool,
    /// A dir-merge rule: the rules of merge slot N go here.
    merge_slot: Option<usize>,
}

/// A rule list, applied first-match-wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterList {
    pub rules: Vec<Rule>,
    /// The rules are read for the receiving side (a push's deletions):
    /// protect/risk rules count, sender-only ones do not.
    pub receiver_side: bool,
    /// `--delete-excluded`: on the receiving side only protect/risk and
    /// receiver-only rules count.
    pub delete_excluded: bool,
    /// The dir-merge rules, by slot (see `filter_merge`).
    pub merges: Vec<DirMerge>,
}

/// A rule we cannot apply.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("filter rule too long ({0} bytes)")]
    TooLong(usize),
    #[error("too many filter rules")]
    TooMany,
    #[error("too many per-directory merge rules (at most {MAX_DIR_MERGES})")]
    TooManyMerges,
    #[error(transparent)]
    OverBudget(#[from] crate::transfer::limits::budget::OverBudget),
    #[error("unsupported filter rule {0:?}")]
    Unsupported(String),
    #[error("invalid filter rule {0:?}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl FilterList {
    /// Read the client's list: int32 length + text per rule, 0 ends it.
    pub fn receive(r: &mut impl Read, protocol: u32) -> Result<FilterList, FilterError> {
        Self::receive_into(FilterList::default(), r, protocol)
    }

    /// Read the client's list for the receiving side of a push: the rules
    /// that protect files from deletion.
    pub fn receive_for_receiver(r: &mut impl Read, protocol: u32, delete_excluded: bool) -> Result<FilterList, FilterError> {
        let list = FilterList {
            receiver_side: true,
            delete_excluded,
            ..FilterList::default()
        };
        Self::receive_into(list, r, protocol)
    }

    /// Read the client's list into `list`, after the rules it holds (the
    /// daemon's own, from its command line).
    pub fn receive_into(mut list: FilterList, r: &mut impl Read, protocol: u32) -> Result<FilterList, FilterError> {
        let mut received = list.rules.len();
        loop {
            let len = read_int(r)?;
            if len == 0 {
                return Ok(list);
            }
            let len = usize::try_from(len).map_err(|_| FilterError::Invalid(format!("length {len}")))?;
            if len > MAX_RULE {
                return Err(FilterError::TooLong(len));
            }
            received += 1;
            if received > MAX_RULES {
                return Err(FilterError::TooMany);
            }
            crate::transfer::limits::budget::charge(len + std::mem::size_of::<Rule>(), "the filter rules")?;
            let mut text = vec![0u8; len];
            r.read_exact(&mut text)?;
            list.add_wire_rule(&text, protocol)?;
        }
    }

    /// Add one rule in the wire form (`- pat`, `+ pat`, `H pat`, `-! pat`, `!`, ...).
    pub fn add_wire_rule(&mut self, text: impl AsRef<[u8]>, protocol: u32) -> Result<(), FilterError> {
        let bytes = text.as_ref();
        let text = String::from_utf8_lossy(bytes);
        if bytes == b"!" {
            // The whole list goes, its per-directory merge rules too (as
            // upstream's clear), so clearing never frees merge slots that
            // are still read in every directory.
            self.rules.clear();
            self.merges.clear();
            return Ok(());
        }
        let (head, pattern) = match bytes.split_once_str(" ") {
            Some((h, p)) => (String::from_utf8_lossy(h), p),
            None if protocol < 29 => ("-".into(), bytes),
            None => return Err(FilterError::Invalid(text.into_owned())),
        };
        let mut chars = head.chars();
        let kind = chars.next().ok_or_else(|| FilterError::Invalid(text.to_string()))?;
        let modifiers: String = chars.collect();
        let rx = self.receiver_side;
        let action = match kind {
            '-' if rx && self.delete_excluded && !modifiers.contains('r') => return Ok(()),
            '+' if rx && self.delete_excluded && !modifiers.contains('r') => return Ok(()),
            '-' => Action::Exclude,
            '+' => Action::Include,
            // Hide/show shape what is sent; protect/risk what is deleted.
            'H' | 'S' if rx => return Ok(()),
            'H' => Action::Exclude,
            'S' => Action::Include,
            'P' if rx => Action::Exclude,
            'R' if rx => Action::Include,
            'P' | 'R' => return Ok(()),
            ':' => return self.add_dir_merge(&modifiers, &pattern.to_str_lossy(), &text),
            _ => return Err(FilterError::Invalid(text.to_string())),
        };
        let mut negate = false;
        let mut module_path = false;
        for m in modifiers.chars() {
            match m {
                '!' => negate = true,
                '/' => module_path = true,
                // Rules meant for the other side do not apply here.
                'r' if !rx => return Ok(()),
                's' if rx => return Ok(()),
                'r' | 's' | 'p' => {}
                'x' => return Ok(()), // xattr-name rules
                _ => return Err(FilterError::Unsupported(text.to_string())),
            }
        }
        let rule = Rule::new(action, pattern, negate);
        self.rules.push(if module_path { rule.module_path_rule() } else { rule });
        Ok(())
    }

    /// `-C` on the sending side (upstream appends `:C` and `-C` after the
    /// client's rules): each directory's `.cvsignore` (white-space split
    /// exclude patterns, not inherited), then CVS's default ignore list.
    pub fn add_cvs_exclude(&mut self) {
        self.add_dir_merge("nw-", ".cvsignore", ":C").expect("a fixed valid rule");
        for pattern in CVS_DEFAULT_IGNORES.split_whitespace() {
            self.rules.push(Rule::new(Action::Exclude, pattern, false));
        }
    }

    /// A `:` (dir-merge) rule: its file is read in every directory listed.
    fn add_dir_merge(&mut self, modifiers: &str, file: &str, text: &str) -> Result<(), FilterError> {
        let mut merge = DirMerge {
            file: file.trim_start_matches('/').to_string(),
            parent_scan: file.contains('/'),
            no_inherit: false,
            default_action: None,
            word_split: false,
            receiver_side: self.receiver_side,
            delete_excluded: self.delete_excluded,
        };
        let mut exclude_self = false;
        // A merge rule for one side only (`s`: the sender's, `r`: the
        // receiver's) does not exist on the other.
        let other_side = if self.receiver_side { 's' } else { 'r' };
        for m in modifiers.chars() {
            match m {
                '-' => merge.default_action = Some(Action::Exclude),
                '+' => merge.default_action = Some(Action::Include),
                'n' => merge.no_inherit = true,
                'w' => merge.word_split = true,
                'e' => exclude_self = true,
                m if m == other_side => return Ok(()),
                's' | 'r' | 'p' => {}
                _ => return Err(FilterError::Unsupported(text.to_string())),
            }
        }
        if merge.file.is_empty() || merge.file.contains('/') {
            return Err(FilterError::Unsupported(text.to_string()));
        }
        if self.merges.len() >= MAX_DIR_MERGES {
            return Err(FilterError::TooManyMerges);
        }
        let slot = self.merges.len();
        let mut placeholder = Rule::new(Action::Exclude, &merge.file, false);
        placeholder.merge_slot = Some(slot);
        self.rules.push(placeholder);
        if exclude_self {
            self.rules.push(Rule::new(Action::Exclude, &merge.file, false));
        }
        self.merges.push(merge);
        Ok(())
    }

    /// The module's own rules (upstream's daemon filter list): `filter` (rules,
    /// split on white space), then `include from`, `include`, `exclude from`,
    /// `exclude` (patterns). A pattern containing `/` is anchored at the
    /// module root.
    pub fn from_module(
        filter: Option<&str>,
        include_from: Option<&std::path::Path>,
        include: Option<&str>,
        exclude_from: Option<&std::path::Path>,
        exclude: Option<&str>,
    ) -> Result<FilterList, FilterError> {
        let mut list = FilterList::default();
        if let Some(text) = filter {
            let mut words = text.split_whitespace();
            while let Some(head) = words.next() {
                if head == "!" {
                    list.rules.clear();
                    continue;
                }
                let pattern = words.next().ok_or_else(|| FilterError::Invalid(head.to_string()))?;
                list.add_module_rule(&format!("{head} {pattern}"))?;
            }
        }
        let read_lines = |path: &std::path::Path| -> Result<Vec<String>, FilterError> {
            let text = std::fs::read_to_string(path)?;
            Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
                .map(str::to_string)
                .collect())
        };
        let add_patterns = |list: &mut FilterList, action: Action, patterns: Vec<String>| {
            for p in patterns {
                list.rules.push(Rule::module_pattern(action, &p));
            }
        };
        if let Some(path) = include_from {
            add_patterns(&mut list, Action::Include, read_lines(path)?);
        }
        if let Some(text) = include {
            add_patterns(&mut list, Action::Include, text.split_whitespace().map(str::to_string).collect());
        }
        if let Some(path) = exclude_from {
            add_patterns(&mut list, Action::Exclude, read_lines(path)?);
        }
        if let Some(text) = exclude {
            add_patterns(&mut list, Action::Exclude, text.split_whitespace().map(str::to_string).collect());
        }
        Ok(list)
    }

    fn add_module_rule(&mut self, text: &str) -> Result<(), FilterError> {
        let (head, pattern) = text.split_once(' ').ok_or_else(|| FilterError::Invalid(text.to_string()))?;
        let action = match head.chars().next() {
            Some('-') | Some('H') => Action::Exclude,
            Some('+') | Some('S') => Action::Include,
            Some('P') | Some('R') => return Ok(()),
            _ => return Err(FilterError::Unsupported(text.to_string())),
        };
        let mut rule = Rule::module_pattern(action, pattern);
        rule.negate = head.contains('!');
        self.rules.push(rule);
        Ok(())
    }

    /// Whether `name` (relative to the transfer root) is excluded. For
    /// the module's own rules the name is the path from the module root.
    pub fn excludes(&self, name: impl AsRef<[u8]>, is_dir: bool) -> bool {
        let name = name.as_ref();
        self.excludes_at(name, name, is_dir, None::<&NoLocalRules>)
    }

    /// Whether `name` is excluded, with `module_path` (the same file from
    /// the module root) for module-path rules and `frame` holding the
    /// per-directory merge rules in effect where the name was found.
    pub fn excludes_at(
        &self,
        name: impl AsRef<[u8]>,
        module_path: impl AsRef<[u8]>,
        is_dir: bool,
        frame: Option<&impl LocalRules>,
    ) -> bool {
        let (name, module_path) = (name.as_ref(), module_path.as_ref());
        for rule in &self.rules {
            if let Some(slot) = rule.merge_slot {
                let Some(frame) = frame else { continue };
                if let Some(local) = frame.first_match(slot, &mut |local| local.matches_at(name, module_path, is_dir)) {
                    return local.action == Action::Exclude;
                }
                continue;
            }
            if rule.matches_at(name, module_path, is_dir) {
                return rule.action == Action::Exclude;
            }
        }
        false
    }
}

/// One dir-merge rule, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMerge {
    /// The file name looked for in each directory.
    pub file: String,
    /// The name had a path (`/.rsync-filter`): scan parent directories too.
    pub parent_scan: bool,
    /// `n`: rules do not apply in subdirectories.
    pub no_inherit: bool,
    /// `-` or `+`: every line is a pattern with this action.
    pub default_action: Option<Action>,
    /// `w`: lines hold several patterns split on white space.
    pub word_split: bool,
    /// The rules are read on the receiving side, for deletion: hide and
    /// show lines do not count, protect and risk lines do.
    pub receiver_side: bool,
    /// `--delete-excluded` (receiving side): plain exclude and include
    /// lines protect nothing; only `r`-modified ones, and protect/risk.
    pub delete_excluded: bool,
}

/// The per-directory merge rules in effect where a name was found (a
/// frame of the merge stack), looked up by a dir-merge rule's slot.
pub trait LocalRules {
    /// The first of `slot`'s rules, most local first, that `matches`.
    fn first_match(&self, slot: usize, matches: &mut dyn FnMut(&Rule) -> bool) -> Option<&Rule>;
}

/// No per-directory rules (the module's own list, or no merge rules).
pub struct NoLocalRules;

impl LocalRules for NoLocalRules {
    fn first_match(&self, _slot: usize, _matches: &mut dyn FnMut(&Rule) -> bool) -> Option<&Rule> {
        None
    }
}

impl Rule {
    /// Roughly what keeping this rule costs in memory, for the session's budget.
    pub(crate) fn memory_cost(&self) -> usize {
        std::mem::size_of::<Rule>() + self.pattern.len()
    }

    /// A module-config pattern: one with a `/` inside is anchored at the module root.
    fn module_pattern(action: Action, pattern: &str) -> Rule {
        // Upstream's XFLG_ABS_IF_SLASH: a slash inside the pattern (a
        // trailing one aside) anchors it at the module root.
        let inner = pattern.trim_end_matches('/');
        let anchor = if inner.contains('/') && !pattern.starts_with('/') {
            "/"
        } else {
            ""
        };
        // Upstream's XFLG_DIR2WILD3: a module's directory exclude covers
        // everything below it too (`dir/` becomes `dir/***`), so a path
        // naming something inside it is excluded as well.
        let suffix = if action == Action::Exclude && pattern.len() > 1 && pattern.ends_with('/') {
            "***"
        } else {
            ""
        };
        Rule::new(action, format!("{anchor}{pattern}{suffix}"), false)
    }

    /// This rule, matched against paths from the module root.
    pub fn module_path_rule(mut self) -> Rule {
        self.module_path = true;
        self
    }

    /// Whether it matches paths from the module root.
    pub fn is_module_path_rule(&self) -> bool {
        self.module_path
    }

    /// Whether the rule is negated (`!`).
    pub fn negated(&self) -> bool {
        self.negate
    }

    /// Match `name` (from the transfer root) or, for a module-path rule,
    /// `module_path`.
    pub fn matches_at(&self, name: impl AsRef<[u8]>, module_path: impl AsRef<[u8]>, is_dir: bool) -> bool {
        self.matches(if self.module_path { module_path.as_ref() } else { name.as_ref() }, is_dir)
    }

    /// A rule for `pattern` as written.
    pub fn new(action: Action, pattern: impl AsRef<[u8]>, negate: bool) -> Rule {
        let pattern = pattern.as_ref();
        let anchored = pattern.starts_with(b"/");
        let mut p = pattern.trim_start_with(|c| c == '/').to_vec();
        let directory_only = p.ends_with(b"/") && p.len() > 1;
        while p.ends_with(b"/") && p.len() > 1 {
            p.pop();
        }
        let wild3_suffix = p.ends_with(b"/***");
        let wild = p.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        Rule {
            action,
            slash_count: p.iter().filter(|&&b| b == b'/').count(),
            wild2: p.contains_str("**"),
            wild2_prefix: p.starts_with(b"**"),
            wild,
            wild3_suffix,
            anchored,
            directory_only,
            negate,
            pattern: p,
            module_path: false,
            merge_slot: None,
        }
    }

    /// Whether the rule matches `name` (a path relative to the transfer
    /// root), byte for byte.
    pub fn matches(&self, name: impl AsRef<[u8]>, is_dir: bool) -> bool {
        let hit = self.matches_positive(name.as_ref(), is_dir);
        if self.negate {
            !hit
        } else {
            hit
        }
    }

    fn matches_positive(&self, name: &[u8], is_dir: bool) -> bool {
        let name = name.trim_start_with(|c| c == '/');
        if name.is_empty() || name == b"." {
            return false;
        }
        if self.directory_only && !is_dir {
            return false;
        }
        // Borrowed from `name` unless the rule needs a `/` added: this runs
        // for every listed file and every rule.
        let base: &[u8] = if self.slash_count == 0 && !self.wild2 && !self.anchored {
            name.rsplit_str("/").next().unwrap_or(name)
        } else {
            name
        };
        let subject: std::borrow::Cow<[u8]> = match (self.wild2_prefix, is_dir && self.wild3_suffix) {
            (false, false) => base.into(),
            (prefix, suffix) => [if prefix { &b"/"[..] } else { b"" }, base, if suffix { b"/" } else { b"" }]
                .concat()
                .into(),
        };
        let matches = |s: &[u8]| {
            if self.wild {
                wildmatch_bytes(&self.pattern, s)
            } else {
                s == self.pattern.as_slice()
            }
        };
        if self.anchored || self.wild2_prefix || (self.slash_count == 0 && !self.wild2) {
            // Anchored rules see the whole path; name-only rules the last component.
            return matches(&subject);
        }
        if !self.wild2 {
            // The last slash_count + 1 components.
            return last_components(&subject, self.slash_count + 1).is_some_and(matches);
        }
        // An inner or trailing `**`: try after every slash.
        if matches(&subject) {
            return true;
        }
        subject
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == b'/')
            .any(|(i, _)| matches(&subject[i + 1..]))
    }
}

/// The last `keep` `/`-separated components of `path`, or `None` if it
/// has fewer.
fn last_components(path: &[u8], keep: usize) -> Option<&[u8]> {
    let mut end = path.len();
    for _ in 1..keep {
        end = path[..end].iter().rposition(|&b| b == b'/')?;
    }
    Some(match path[..end].iter().rposition(|&b| b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_directory_exclude_covers_what_is_below_it() {
        let list = FilterList::from_module(None, None, None, None, Some("/excluded/ secret/ /bare")).unwrap();
        assert!(list.excludes("excluded", true));
        assert!(list.excludes("excluded/x2.tx", false));
        assert!(!list.excludes("a/excluded/x", false), "anchored at the module root");
        assert!(list.excludes("secret/key", false));
        assert!(list.excludes("a/b/secret/key", false), "unanchored: at any depth");
        assert!(list.excludes("bare", false) && list.excludes("bare", true));
        assert!(!list.excludes("bare/inside", false), "a bare name protects only that entry");
        assert!(!list.excludes("excludedx", false));
    }

    #[test]
    fn last_components_cut_at_slashes() {
        assert_eq!(last_components(b"a/b/c", 1), Some(&b"c"[..]));
        assert_eq!(last_components(b"a/b/c", 2), Some(&b"b/c"[..]));
        assert_eq!(last_components(b"a/b/c", 3), Some(&b"a/b/c"[..]));
        assert_eq!(last_components(b"a/b/c", 4), None);
    }

    fn list(rules: &[&str]) -> FilterList {
        let mut l = FilterList::default();
        for r in rules {
            l.add_wire_rule(r, 31).unwrap();
        }
        l
    }

    #[test]
    fn name_only_patterns_match_any_depth() {
        let l = list(&["- *.o", "- core"]);
        assert!(l.excludes("a.o", false));
        assert!(l.excludes("src/deep/b.o", false));
        assert!(l.excludes("x/core", true));
        assert!(!l.excludes("core.c", false));
    }

    #[test]
    fn anchoring_slashes_and_directories() {
        let l = list(&["- /top", "- sub/leaf", "- cache/"]);
        assert!(l.excludes("top", false));
        assert!(!l.excludes("x/top", false), "anchored");
        assert!(l.excludes("a/sub/leaf", false));
        assert!(!l.excludes("a/leaf", false));
        assert!(l.excludes("y/cache", true));
        assert!(!l.excludes("y/cache", false), "directory-only");
    }

    #[test]
    fn first_match_wins_and_include_overrides() {
        let l = list(&["+ keep.log", "- *.log", "H secret", "S *"]);
        assert!(!l.excludes("keep.log", false));
        assert!(l.excludes("other.log", false));
        assert!(l.excludes("secret", false));
        assert!(!l.excludes("anything", false));
    }

    #[test]
    fn double_star_and_triple_star() {
        let l = list(&["- **/tmp/**", "- /build/***"]);
        assert!(l.excludes("a/tmp/x", false));
        assert!(l.excludes("tmp/x/y", false));
        assert!(l.excludes("build", true));
        assert!(l.excludes("build/obj/x.o", false));
        assert!(!l.excludes("src/build", true));
    }

    #[test]
    fn receiver_only_and_clear_rules() {
        let mut l = list(&["-r *.bak", "P keep", "- x"]);
        assert!(!l.excludes("a.bak", false));
        assert_eq!(l.rules.len(), 1);
        l.add_wire_rule("!", 31).unwrap();
        assert!(l.rules.is_empty());
        assert!(matches!(
            FilterList::default().add_wire_rule(":C", 31),
            Err(FilterError::Invalid(_) | FilterError::Unsupported(_))
        ));
        let mut merges = FilterList::default();
        merges.add_wire_rule(":e /.rsync-filter", 31).unwrap();
        merges.add_wire_rule(":n- .ignore", 31).unwrap();
        assert_eq!(merges.merges.len(), 2);
        assert!(merges.merges[0].parent_scan && !merges.merges[1].parent_scan && merges.merges[1].no_inherit);
        assert!(merges.excludes(".rsync-filter", false), "e: the merge file itself is excluded");
    }

    #[test]
    fn module_rules_anchor_paths_with_slashes() {
        let l = FilterList::from_module(Some("- *.tmp + keep/ - secret"), None, None, None, Some("private/data *.key")).unwrap();
        assert!(l.excludes("x/y.tmp", false));
        assert!(l.excludes("secret", true));
        assert!(l.excludes("private/data", false));
        assert!(
            !l.excludes("other/private/data", false),
            "a pattern with a slash is anchored at the module root"
        );
        assert!(l.excludes("deep/id.key", false));
        assert!(!l.excludes("keep", true));
    }

    #[test]
    fn receives_the_wire_list() {
        let mut wire = Vec::new();
        for r in ["- *.o", "+ dir/"] {
            wire.extend_from_slice(&(r.len() as i32).to_le_bytes());
            wire.extend_from_slice(r.as_bytes());
        }
        wire.extend_from_slice(&0i32.to_le_bytes());
        let l = FilterList::receive(&mut &wire[..], 31).unwrap();
        assert_eq!(l.rules.len(), 2);
        let huge = (1_000_000i32).to_le_bytes();
        assert!(matches!(FilterList::receive(&mut &huge[..], 31), Err(FilterError::TooLong(_))));
    }

    /// `!` clears the merge rules too, and the count of rules received
    /// does not start over with it: neither cap can be stepped around.
    #[test]
    fn clearing_does_not_reset_the_caps() {
        let mut list = FilterList::default();
        for i in 0..MAX_DIR_MERGES {
            list.add_wire_rule(format!(": m{i}"), 31).unwrap();
        }
        assert!(matches!(list.add_wire_rule(": one-more", 31), Err(FilterError::TooManyMerges)));
        list.add_wire_rule("!", 31).unwrap();
        assert!(list.merges.is_empty() && list.rules.is_empty());
        list.add_wire_rule(": again", 31).unwrap();
        assert_eq!(list.merges.len(), 1);

        let mut wire = Vec::new();
        for _ in 0..(MAX_RULES / 2 + 1) {
            for rule in [&b"- x"[..], b"!"] {
                wire.extend_from_slice(&(rule.len() as i32).to_le_bytes());
                wire.extend_from_slice(rule);
            }
        }
        wire.extend_from_slice(&0i32.to_le_bytes());
        let got = FilterList::receive(&mut &wire[..], 31);
        assert!(matches!(got, Err(FilterError::TooMany)), "{got:?}");
    }
}
