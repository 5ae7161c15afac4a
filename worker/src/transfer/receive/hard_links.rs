//! `-H` on a push: which entry of each hard-linked group is transferred
//! (the leader) and which are linked to it afterwards (the followers), as
//! upstream's generator decides it.

use crate::transfer::flist::SortedEntry;

/// `-H`: (follower, leader) pairs by sorted index. Groups are the
/// entries the list links together (from protocol 30 by naming the
/// group's first entry, before by a shared dev/ino). The leader, the one
/// transferred (or found up to date), is what upstream's generator
/// settles on going through a group in list order: the first that is
/// already a file here (`is_file_here`), else the last. The others are
/// linked to it afterwards in upstream's order: those after it in the
/// list, then those before it, nearest first.
pub(crate) fn hard_link_followers(
    files: &[SortedEntry],
    roles: &[crate::transfer::flist::HlinkRole],
    is_file_here: impl Fn(usize) -> bool,
) -> Vec<(usize, usize)> {
    use crate::transfer::flist::HlinkRole;
    use std::collections::HashMap;
    let by_origin: HashMap<usize, usize> = files.iter().enumerate().map(|(i, f)| (f.orig_index, i)).collect();
    /// What makes entries one group.
    #[derive(PartialEq, Eq, Hash)]
    enum Group {
        /// The group's first entry in the list as sent (protocol 30+).
        Named(usize),
        /// A shared device and inode (below protocol 30).
        DevIno(u64, u64),
    }
    let mut groups: HashMap<Group, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        if !f.active || !f.entry.is_reg() {
            continue;
        }
        let group = match roles.get(f.orig_index) {
            Some(HlinkRole::Follower(first)) => match by_origin.get(&(*first as usize)) {
                Some(&first) => Group::Named(first),
                None => continue,
            },
            Some(HlinkRole::Leader) => Group::Named(i),
            Some(HlinkRole::DevIno) => Group::DevIno(f.entry.dev, f.entry.ino),
            _ => continue,
        };
        groups.entry(group).or_default().push(i);
    }
    let mut groups: Vec<(usize, Vec<usize>)> = groups
        .into_values()
        .filter(|members| members.len() > 1)
        .map(|mut members| {
            members.sort_unstable();
            let at = members.iter().position(|&i| is_file_here(i)).unwrap_or(members.len() - 1);
            let leader = members[at];
            let followers: Vec<usize> = members[at + 1..].iter().chain(members[..at].iter().rev()).copied().collect();
            (leader, followers)
        })
        .collect();
    groups.sort_unstable_by_key(|(leader, _)| *leader);
    let mut out = Vec::new();
    for (leader, followers) in groups {
        out.extend(followers.iter().map(|&f| (f, leader)));
    }
    out
}
