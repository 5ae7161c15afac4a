//! Targets of filter rules: the list the client sends before its file
//! list (for the sending side of a pull and the receiving side of a
//! push), and a per-directory merge file's contents; the rules are then
//! matched against names the input also chooses.

use oxrsyncd_worker::fuzzing::wire::{parse_merge_text, Action, DirMerge, FilterList, NoLocalRules};

use crate::input::{protocol, Input};

/// Most names matched per input, and their longest length.
const NAMES: usize = 8;
const NAME_LEN: usize = 256;

/// Names to match: fixed ones, then lines of `extra`.
fn names(extra: &[u8]) -> Vec<&[u8]> {
    let fixed: [&[u8]; 6] = [b"a", b"dir/file.o", b".git", b"x/y/z/deep.txt", b"CVS", b"caf\xe9/\xff"];
    let mut all: Vec<&[u8]> = fixed.to_vec();
    all.extend(extra.split(|&b| b == b'\n').filter(|n| n.len() <= NAME_LEN).take(NAMES));
    all
}

/// Input: a byte for the protocol and side (0x40: the receiving side of
/// a push, 0x80: with --delete-excluded), then the rules as sent (an int
/// length and the text each, 0 ending them), then names to match.
pub fn filter(data: &[u8]) {
    let mut input = Input::new(data);
    let b = input.byte();
    let list = FilterList {
        receiver_side: b & 0x40 != 0,
        delete_excluded: b & 0x80 != 0,
        ..FilterList::default()
    };
    let mut r = input.rest();
    let Ok(list) = FilterList::receive_into(list, &mut r, protocol(b)) else {
        return;
    };
    assert!(list.rules.len() <= 100_000);
    for merge in &list.merges {
        assert!(!merge.file.is_empty() && !merge.file.contains('/'), "merge file {:?}", merge.file);
    }
    for name in names(r) {
        for dir in [false, true] {
            let _ = list.excludes(name, dir);
            let _ = list.excludes_at(name, [b"sub/", name].concat(), dir, None::<&NoLocalRules>);
        }
    }
}

const DIRS: [&str; 3] = ["", "src", "a/b c"];

/// Input: a byte for the merge rule (default action, word splitting,
/// no inheritance, parent scan, the directory), then the file's text; its
/// lines are also the names matched.
pub fn merge(data: &[u8]) {
    let mut input = Input::new(data);
    let b = input.byte();
    let merge = DirMerge {
        file: ".rsync-filter".into(),
        parent_scan: b & 0x04 != 0,
        no_inherit: b & 0x08 != 0,
        default_action: [None, Some(Action::Exclude), Some(Action::Include), None][usize::from(b) & 3],
        word_split: b & 0x10 != 0,
        receiver_side: b & 0x80 != 0,
        delete_excluded: false,
    };
    let dir = DIRS[usize::from(b >> 5) % DIRS.len()];
    let text = input.rest();
    let rules = parse_merge_text(text, &merge, dir);
    assert!(rules.len() <= text.len(), "{} rules from {} bytes", rules.len(), text.len());
    for rule in rules.iter().take(64) {
        for name in names(text) {
            for is_dir in [false, true] {
                let _ = rule.matches(name, is_dir);
                let _ = rule.matches_at(name, [dir.as_bytes(), b"/", name].concat(), is_dir);
            }
        }
    }
}
