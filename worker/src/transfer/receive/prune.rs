//! `-m` (`--prune-empty-dirs`) on a push: directories with nothing to
//! receive below them are dropped from the list before anything is made.

use crate::transfer::filter::rules::FilterList;
use crate::transfer::flist::SortedEntry;

/// `-m` (upstream's receiver-side pass in `recv_file_list`): a directory
/// with no non-directory anywhere below it is dropped from the list, unless
/// it (or a directory below it) is excluded by the client's rules, which
/// keeps it; the transfer's top (`.`) always stays.
pub(crate) fn prune_empty_dirs(files: &mut [SortedEntry], client_filters: &FilterList) {
    use std::collections::HashSet;
    let mut keep: HashSet<Vec<u8>> = HashSet::new();
    let mark_parents = |name: &[u8], keep: &mut HashSet<Vec<u8>>| {
        let mut end = name.len();
        while let Some(slash) = name[..end].iter().rposition(|&b| b == b'/') {
            if !keep.insert(name[..slash].to_vec()) {
                break;
            }
            end = slash;
        }
    };
    for f in files.iter().filter(|f| f.active) {
        let e = &f.entry;
        if !e.is_dir() {
            mark_parents(&e.name, &mut keep);
        } else if client_filters.excludes(&e.name, true) {
            keep.insert(e.name.clone());
            mark_parents(&e.name, &mut keep);
        }
    }
    for f in files.iter_mut() {
        if f.active && f.entry.is_dir() && f.entry.name != b"." && !keep.contains(&f.entry.name) {
            f.active = false;
        }
    }
}
