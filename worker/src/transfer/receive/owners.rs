//! Owners on a push (upstream's `recv_add_id` and `match_uid`): the
//! client sends each uid and gid with its name, and the file gets the id
//! that name has here, so an upload from a machine whose users have other
//! numbers still lands with the right owners. A name unknown here, id 0,
//! and `--numeric-ids` (or the module's `numeric ids`) keep the number.

use std::collections::HashMap;

use crate::transfer::flist::FileEntry;

/// The sender's id -> our id, for the ids whose names we know.
#[derive(Debug, Default)]
pub struct IdMap {
    users: HashMap<u32, u32>,
    groups: HashMap<u32, u32>,
}

impl IdMap {
    /// Look the names of the client's lists up here.
    pub fn from_names(uid_names: &[(u32, Vec<u8>)], gid_names: &[(u32, Vec<u8>)]) -> IdMap {
        let local = |names: &[(u32, Vec<u8>)], lookup: &dyn Fn(&str) -> Option<u32>| -> HashMap<u32, u32> {
            names
                .iter()
                .filter(|(id, name)| *id != 0 && !name.is_empty())
                .filter_map(|(id, name)| {
                    let ours = lookup(std::str::from_utf8(name).ok()?)?;
                    (ours != *id).then_some((*id, ours))
                })
                .collect()
        };
        IdMap {
            users: local(uid_names, &|n| {
                nix::unistd::User::from_name(n).ok().flatten().map(|u| u.uid.as_raw())
            }),
            groups: local(gid_names, &|n| {
                nix::unistd::Group::from_name(n).ok().flatten().map(|g| g.gid.as_raw())
            }),
        }
    }

    /// Give every entry our ids.
    pub fn apply(&self, entries: &mut [FileEntry]) {
        if self.users.is_empty() && self.groups.is_empty() {
            return;
        }
        for e in entries {
            if let Some(&uid) = self.users.get(&e.uid) {
                e.uid = uid;
            }
            if let Some(&gid) = self.groups.get(&e.gid) {
                e.gid = gid;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_here_take_our_ids_and_the_rest_keep_theirs() {
        // root and daemon exist everywhere with ids 0 and 1 (Debian, RHEL, Alpine).
        let map = IdMap::from_names(
            &[
                (4242, b"daemon".to_vec()),
                (777, b"no-such-user-here".to_vec()),
                (0, b"root".to_vec()),
            ],
            &[(4343, b"daemon".to_vec())],
        );
        let mut entries = vec![FileEntry::new(b"a".to_vec(), 0o100644), FileEntry::new(b"b".to_vec(), 0o100644)];
        (entries[0].uid, entries[0].gid) = (4242, 4343);
        (entries[1].uid, entries[1].gid) = (777, 0);
        map.apply(&mut entries);
        assert_eq!((entries[0].uid, entries[0].gid), (1, 1));
        assert_eq!((entries[1].uid, entries[1].gid), (777, 0));
    }
}
