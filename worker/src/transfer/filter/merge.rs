//! Per-directory merge files (`dir-merge` / `:` rules, `-F`'s
//! `.rsync-filter`): the sender reads the named file in every directory it
//! lists and applies its rules there and below, as upstream's
//! `push_local_filters` does.
//!
//! Each dir-merge rule owns a slot. A directory's [`Frame`] holds, per slot,
//! the rules of its own file followed by those inherited from its parents
//! (unless the rule says `n`), so the most local rules win. A name given
//! with a path (`/.rsync-filter`) also collects the files of the
//! directories above the first one listed, from the module root down (the
//! parent-directory scan). `/`-anchored patterns in a merge file match
//! only below the directory that holds it. Files are read through the
//! module root, so a merge file is subject to containment like any other.

use std::cell::RefCell;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bstr::ByteSlice;

use crate::transfer::filter::rules::{Action, DirMerge, FilterList, LocalRules, Rule};
use crate::transfer::fs::module_root::ModuleRoot;

/// Largest merge file read (upstream has no limit; a hostile module file
/// must not exhaust memory).
const MAX_MERGE_FILE: u64 = 1 << 20;

/// The rules in effect for one slot: a directory's own, then its parents'.
#[derive(Debug)]
struct Level {
    rules: Vec<Rule>,
    parent: Option<Rc<Level>>,
    /// The rules' memory, held against the session's budget while the
    /// level lives (a frame per directory being listed).
    _held: crate::transfer::limits::budget::Reservation,
}

/// Every slot's rules for one directory.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    slots: Vec<Option<Rc<Level>>>,
}

impl Frame {
    /// The rules of `slot`, most local first.
    pub(crate) fn rules(&self, slot: usize) -> impl Iterator<Item = &Rule> {
        let mut level = self.slots.get(slot).and_then(|l| l.as_deref());
        std::iter::from_fn(move || {
            let l = level?;
            level = l.parent.as_deref();
            Some(l.rules.iter())
        })
        .flatten()
    }
}

impl LocalRules for Frame {
    fn first_match(&self, slot: usize, matches: &mut dyn FnMut(&Rule) -> bool) -> Option<&Rule> {
        self.rules(slot).find(|rule| matches(rule))
    }
}

/// The frames of the directories being walked (the walk is single
/// threaded; frames are shared with the incremental directory tree).
#[derive(Debug, Default)]
pub(crate) struct MergeStack {
    merges: Vec<DirMerge>,
    /// A merge file whose rules would pass the session's memory budget:
    /// its rules are left out and the walk's caller ends the session.
    over_budget: RefCell<Option<crate::transfer::limits::budget::OverBudget>>,
    /// The module's own rules: a merge file they hide is never read, or
    /// its words would tell the client what the hidden file holds.
    daemon_filters: FilterList,
    stack: RefCell<Vec<Rc<Frame>>>,
    /// The receiving side's frames by directory, once read (see
    /// [`MergeStack::frame_at`]); their rules stay charged while kept.
    frames_read: RefCell<std::collections::HashMap<Vec<u8>, Option<Rc<Frame>>>>,
}

impl MergeStack {
    /// For the dir-merge rules of a filter list (none: every call is free),
    /// in a module whose own rules are `daemon_filters`.
    pub(crate) fn new(merges: Vec<DirMerge>, daemon_filters: FilterList) -> Self {
        MergeStack {
            merges,
            over_budget: RefCell::default(),
            daemon_filters,
            stack: RefCell::default(),
            frames_read: RefCell::default(),
        }
    }

    /// Whether any dir-merge rule is in play.
    pub(crate) fn active(&self) -> bool {
        !self.merges.is_empty()
    }

    /// The frame names are matched against now.
    pub(crate) fn current(&self) -> Option<Rc<Frame>> {
        self.stack.borrow().last().cloned()
    }

    /// Start over from `frame` (incremental recursion lists a directory
    /// whose parent's frame was kept on its tree node).
    pub(crate) fn reset_to(&self, frame: Option<Rc<Frame>>) {
        let mut stack = self.stack.borrow_mut();
        stack.clear();
        stack.extend(frame);
    }

    /// Enter `dir` (module-relative) to list it: read its merge files on
    /// top of the current frame. Returns the new frame.
    pub(crate) fn enter(&self, root: &ModuleRoot, dir: &[u8]) -> Option<Rc<Frame>> {
        if !self.active() {
            return None;
        }
        let parent = self.current();
        let mut frame = Frame::default();
        for (slot, merge) in self.merges.iter().enumerate() {
            let inherited = match &parent {
                Some(p) if !merge.no_inherit => p.slots.get(slot).cloned().flatten(),
                Some(_) => None,
                None if merge.parent_scan && !merge.no_inherit => self.scan_parents(root, merge, dir),
                None => None,
            };
            let local = read_merge_file(root, merge, dir, &self.daemon_filters);
            frame.slots.push(self.level(local, inherited));
        }
        let frame = Rc::new(frame);
        self.stack.borrow_mut().push(frame.clone());
        Some(frame)
    }

    /// `rules` on top of `parent`, charged to the session's budget (over
    /// it: left out, and remembered for [`MergeStack::take_over_budget`]).
    fn level(&self, rules: Vec<Rule>, parent: Option<Rc<Level>>) -> Option<Rc<Level>> {
        if rules.is_empty() {
            return parent;
        }
        let cost = rules.iter().map(Rule::memory_cost).sum();
        match crate::transfer::limits::budget::reserve(cost, "the per-directory merge rules") {
            Ok(held) => Some(Rc::new(Level {
                rules,
                parent,
                _held: held,
            })),
            Err(e) => {
                self.over_budget.borrow_mut().get_or_insert(e);
                parent
            }
        }
    }

    /// Whether a merge file passed the session's budget since the last call.
    pub(crate) fn take_over_budget(&self) -> Option<crate::transfer::limits::budget::OverBudget> {
        self.over_budget.borrow_mut().take()
    }

    /// The frame in force in `dir` (module-relative) on the receiving
    /// side, built afresh: the merge files of every directory from `base`
    /// (the transfer's destination) down to `dir`, each level inheriting
    /// the one above unless its rule says `n`. It is what upstream's
    /// receiver has read by the time it deletes in `dir`
    /// (`change_local_filter_dir`): the files already at the destination.
    pub(crate) fn frame_at(&self, root: &ModuleRoot, base: &[u8], dir: &[u8]) -> Option<Rc<Frame>> {
        if !self.active() {
            return None;
        }
        let rest = dir.strip_prefix(base).unwrap_or(dir);
        let mut path = base.to_vec();
        let mut frame = self.frame_of(root, &path, None);
        for component in rest.split_str("/").filter(|c| !c.is_empty() && *c != b".") {
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(component);
            frame = self.frame_of(root, &path, frame);
        }
        frame
    }

    /// The frame of `dir` on top of its parent's `parent`, read once: a
    /// directory's merge files are read the first time [`MergeStack::frame_at`]
    /// passes it, not again for each directory below it.
    fn frame_of(&self, root: &ModuleRoot, dir: &[u8], parent: Option<Rc<Frame>>) -> Option<Rc<Frame>> {
        if let Some(known) = self.frames_read.borrow().get(dir) {
            return known.clone();
        }
        self.reset_to(parent);
        let frame = self.enter(root, dir);
        self.reset_to(None);
        self.frames_read.borrow_mut().insert(dir.to_vec(), frame.clone());
        frame
    }

    /// Leave the directory entered last.
    pub(crate) fn leave(&self) {
        if self.active() {
            self.stack.borrow_mut().pop();
        }
    }

    /// The files of the directories above `dir`, from the module root down.
    fn scan_parents(&self, root: &ModuleRoot, merge: &DirMerge, dir: &[u8]) -> Option<Rc<Level>> {
        let mut level: Option<Rc<Level>> = None;
        let components: Vec<&[u8]> = dir.split_str("/").filter(|c| !c.is_empty() && *c != b".").collect();
        for depth in 0..components.len() {
            let ancestor = bstr::join("/", &components[..depth]);
            let rules = read_merge_file(root, merge, &ancestor, &self.daemon_filters);
            if !rules.is_empty() {
                level = self.level(rules, level);
            }
        }
        level
    }
}

/// The rules of `dir`'s merge file; a missing or unreadable file has none,
/// and so has one the module's rules hide (the file, or a directory above
/// it), as upstream's daemon never reads such a file.
fn read_merge_file(root: &ModuleRoot, merge: &DirMerge, dir: &[u8], daemon_filters: &FilterList) -> Vec<Rule> {
    let path: PathBuf = if dir.is_empty() {
        PathBuf::from(&merge.file)
    } else {
        Path::new(std::ffi::OsStr::from_bytes(dir)).join(&merge.file)
    };
    if daemon_hides(daemon_filters, path.as_os_str().as_bytes()) {
        return Vec::new();
    }
    let Ok(file) = root.open_read(&path) else {
        return Vec::new();
    };
    let mut text = Vec::new();
    if file.take(MAX_MERGE_FILE).read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    parse_merge_text(&text, merge, dir)
}

/// Whether the module's rules hide module-relative `path`: the file
/// itself, or any directory on the way to it.
fn daemon_hides(daemon_filters: &FilterList, path: &[u8]) -> bool {
    if daemon_filters.rules.is_empty() {
        return false;
    }
    let mut dirs = path.iter().enumerate().filter(|(_, &b)| b == b'/').map(|(at, _)| &path[..at]);
    dirs.any(|d| !d.is_empty() && d != b"." && daemon_filters.excludes(d, true)) || daemon_filters.excludes(path, false)
}

/// Parse a merge file's lines into rules; `/`-anchored patterns are tied
/// to `dir` (upstream's XFLG_ANCHORED2ABS). Lines we cannot use (nested
/// merges, receiver-only rules, `!` clears) are dropped or applied.
/// Bytes: a pattern may name files that are not UTF-8.
pub fn parse_merge_text(text: impl AsRef<[u8]>, merge: &DirMerge, dir: impl AsRef<[u8]>) -> Vec<Rule> {
    let dir = dir.as_ref();
    let mut rules: Vec<Rule> = Vec::new();
    for line in text.as_ref().lines() {
        let line = line.trim_end_with(|c| c == '\r');
        if line.is_empty() || line.starts_with(b"#") || line.starts_with(b";") {
            continue;
        }
        if let Some(action) = merge.default_action {
            let words: Vec<&[u8]> = if merge.word_split {
                line.fields_with(|c| c.is_ascii_whitespace()).collect()
            } else {
                vec![line]
            };
            for word in words {
                if word == b"!" {
                    rules.clear();
                } else {
                    rules.push(anchored_in(Rule::new(action, word, false), word, dir));
                }
            }
            continue;
        }
        if line == b"!" || line == b"clear" {
            rules.clear();
            continue;
        }
        let Some((head, pattern)) = split_rule(line) else { continue };
        let Some((action, negate)) = line_action(head, merge) else {
            continue;
        };
        rules.push(anchored_in(Rule::new(action, pattern, negate), pattern, dir));
    }
    rules
}

/// What a merge-file line's head (`-`, `+!`, `-s`, `hide`, `P`, ...) does
/// on the side `merge` is read for, and whether it is negated; `None`:
/// nothing there. The sender lists by exclude/include and hide/show; the
/// receiver protects by exclude/include (unless `--delete-excluded`) and
/// protect/risk. `s`/`r` modifiers tie a line to one side; nested merge
/// rules are not followed.
fn line_action(head: &[u8], merge: &DirMerge) -> Option<(Action, bool)> {
    let rx = merge.receiver_side;
    // `-!`, `-r`, `+s` or `exclude,r`: the rule's word, then its modifiers.
    let (word, modifiers): (&[u8], &[u8]) = match head.iter().position(|&b| b == b',') {
        Some(comma) => (&head[..comma], &head[comma + 1..]),
        None if head.first().is_some_and(|b| b"-+HSPR".contains(b)) => (&head[..1], &head[1..]),
        None => (head, b""),
    };
    let (action, both_sides) = match word {
        b"-" | b"exclude" => (Action::Exclude, true),
        b"+" | b"include" => (Action::Include, true),
        b"H" | b"hide" if !rx => (Action::Exclude, false),
        b"S" | b"show" if !rx => (Action::Include, false),
        b"P" | b"protect" if rx => (Action::Exclude, false),
        b"R" | b"risk" if rx => (Action::Include, false),
        _ => return None,
    };
    let (only_receiver, only_sender) = (modifiers.contains(&b'r'), modifiers.contains(&b's'));
    if both_sides && ((!rx && only_receiver) || (rx && only_sender) || (rx && merge.delete_excluded && !only_receiver)) {
        return None;
    }
    Some((action, modifiers.contains(&b'!')))
}

/// `- pat`, `-! pat`, `exclude pat`, `+,s pat` ... into head and pattern.
fn split_rule(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let cut = line.iter().position(|&b| b == b' ' || b == b'_')?;
    let (head, pattern) = (&line[..cut], &line[cut + 1..]);
    let head = head.trim_end_with(|c| c == ',');
    (!pattern.is_empty()).then_some((head, pattern))
}

/// A pattern anchored with `/` in the merge file of `dir` matches only
/// below `dir`: it becomes a module-path rule.
fn anchored_in(rule: Rule, pattern: &[u8], dir: &[u8]) -> Rule {
    if !pattern.starts_with(b"/") {
        return rule;
    }
    let full = if dir.is_empty() {
        pattern.to_vec()
    } else {
        [b"/", dir, pattern].concat()
    };
    Rule::new(rule.action, &full, rule.negated()).module_path_rule()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(file: &str) -> DirMerge {
        DirMerge {
            file: file.trim_start_matches('/').to_string(),
            parent_scan: file.starts_with('/'),
            no_inherit: false,
            default_action: None,
            word_split: false,
            receiver_side: false,
            delete_excluded: false,
        }
    }

    #[test]
    fn lines_become_rules_with_local_anchors() {
        let rules = parse_merge_text(
            "# c\n- *.o\n\n+ keep.o\n- /build\n-r ignored\nP prot\n",
            &merge(".rsync-filter"),
            "src",
        );
        assert_eq!(rules.len(), 3);
        assert!(rules[0].matches("a/b.o", false));
        assert!(rules[1].matches("x/keep.o", false));
        assert!(rules[2].is_module_path_rule() && rules[2].matches("src/build", true) && !rules[2].matches("build", true));
    }

    #[test]
    fn each_side_reads_its_own_lines() {
        let text = "- a\nH b\nP c\n-s d\n-r e\nexclude f\nprotect g\n";
        let names = |m: &DirMerge| -> Vec<String> {
            parse_merge_text(text, m, "")
                .iter()
                .map(|r| {
                    ["a", "b", "c", "d", "e", "f", "g"]
                        .into_iter()
                        .find(|n| r.matches(n, false))
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(names(&merge(".f")), ["a", "b", "d", "f"], "the sender lists by exclude and hide");
        let receiver = DirMerge {
            receiver_side: true,
            ..merge(".f")
        };
        assert_eq!(
            names(&receiver),
            ["a", "c", "e", "f", "g"],
            "the receiver protects by exclude and protect"
        );
        let delete_excluded = DirMerge {
            delete_excluded: true,
            ..receiver
        };
        assert_eq!(
            names(&delete_excluded),
            ["c", "e", "g"],
            "--delete-excluded: only receiver rules protect"
        );
    }

    #[test]
    fn no_prefix_word_split_files() {
        let m = DirMerge {
            default_action: Some(Action::Exclude),
            word_split: true,
            ..merge(".cvsignore")
        };
        let rules = parse_merge_text("*.tmp  core\n", &m, "");
        assert_eq!(rules.len(), 2);
        assert!(rules[1].matches("x/core", false));
    }

    #[test]
    fn frames_stack_local_rules_over_inherited_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join(".rsync-filter"), "- *.log\n").unwrap();
        std::fs::write(dir.path().join("a/.rsync-filter"), "+ keep.log\n").unwrap();
        std::fs::write(dir.path().join("a/b/.rsync-filter"), "- /x\n").unwrap();
        let root = ModuleRoot::open(dir.path()).unwrap();
        let stack = MergeStack::new(vec![merge("/.rsync-filter")], FilterList::default());
        // Entering a/b first scans the module root and a.
        let frame = stack.enter(&root, b"a/b").unwrap();
        let names: Vec<String> = frame.rules(0).map(|r| format!("{r:?}")).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(frame.rules(0).next().unwrap().is_module_path_rule(), "a/b's own rule first");
        stack.leave();
        assert!(stack.current().is_none());
        // Without a path in the name, no parent scan.
        let local_only = MergeStack::new(vec![merge(".rsync-filter")], FilterList::default());
        assert_eq!(local_only.enter(&root, b"a/b").unwrap().rules(0).count(), 1);
    }

    #[test]
    fn a_merge_file_the_module_hides_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pub/private")).unwrap();
        for d in ["", "pub", "pub/private"] {
            std::fs::write(dir.path().join(d).join("secret"), "- a.txt\n").unwrap();
        }
        let root = ModuleRoot::open(dir.path()).unwrap();
        let mut daemon = FilterList::default();
        daemon.add_wire_rule("- /secret", 31).unwrap();
        daemon.add_wire_rule("- private/", 31).unwrap();
        let stack = MergeStack::new(vec![merge("/secret")], daemon);
        // The root's file is hidden by name, pub/private's by its directory;
        // only pub/secret is the module's to show.
        let frame = stack.enter(&root, b"pub/private").unwrap();
        assert_eq!(frame.rules(0).count(), 1, "only pub/secret is read");
        let mut all = FilterList::default();
        all.add_wire_rule("- secret", 31).unwrap();
        let stack = MergeStack::new(vec![merge("secret")], all);
        assert_eq!(stack.enter(&root, b"pub").unwrap().rules(0).count(), 0);
    }

    #[test]
    fn merge_rules_are_charged_while_their_directory_is_listed() {
        use crate::transfer::limits::budget::{self, Budget};
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("big")).unwrap();
        std::fs::write(dir.path().join(".f"), "- a\n").unwrap();
        let many: String = (0..20_000).map(|i| format!("- pattern-{i}\n")).collect();
        std::fs::write(dir.path().join("big/.f"), many).unwrap();
        let root = ModuleRoot::open(dir.path()).unwrap();
        let budget = Budget::new(256 << 10);
        let previous = budget::install(Some(budget.clone()));
        let stack = MergeStack::new(vec![merge(".f")], FilterList::default());
        let top = stack.enter(&root, b"").unwrap();
        assert_eq!(top.rules(0).count(), 1);
        let held = budget.used();
        assert!(held > 0);
        let big = stack.enter(&root, b"big").unwrap();
        assert_eq!(big.rules(0).count(), 1, "the big file's rules are left out");
        assert!(stack.take_over_budget().is_some());
        stack.leave();
        drop(big);
        stack.leave();
        drop(top);
        assert_eq!(budget.used(), 0, "leaving gives the rules' memory back");
        assert!(held < 256 << 10);
        budget::install(previous);
    }

    /// The receiving side's frames: every merge file from the destination
    /// down, each read once however many directories below it are
    /// cleaned, and a file past the budget flagged (the deleter then ends
    /// the push rather than delete what its rules would have protected).
    #[test]
    fn receiver_frames_inherit_are_read_once_and_flag_the_budget() {
        use crate::transfer::limits::budget::{self, Budget};
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
        std::fs::write(dir.path().join(".f"), "- top\n").unwrap();
        std::fs::write(dir.path().join("d/.f"), "- mid\n").unwrap();
        let root = ModuleRoot::open(dir.path()).unwrap();
        let stack = MergeStack::new(vec![merge(".f")], FilterList::default());
        let deep = stack.frame_at(&root, b"", b"d/e").unwrap();
        assert_eq!(deep.rules(0).count(), 2, "d/e inherits d's and the top's rules");
        std::fs::write(dir.path().join("d/.f"), "- changed\n- more\n").unwrap();
        let again = stack.frame_at(&root, b"", b"d").unwrap();
        assert_eq!(again.rules(0).count(), 2, "d's file was read once, when first passed");

        let many: String = (0..20_000).map(|i| format!("- pattern-{i}\n")).collect();
        std::fs::write(dir.path().join("d/e/.f"), many).unwrap();
        let previous = budget::install(Some(Budget::new(64 << 10)));
        let fresh = MergeStack::new(vec![merge(".f")], FilterList::default());
        fresh.frame_at(&root, b"", b"d/e");
        assert!(fresh.take_over_budget().is_some());
        budget::install(previous);
    }
}
