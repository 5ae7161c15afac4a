//! Owners on a push (upstream's `recv_add_id`, `match_uid` and
//! `parse_name_map`): the client sends each uid and gid with its name,
//! and the file gets
//!
//! 1. what the first matching `--usermap` / `--groupmap` rule says (the
//!    client's `--chown=USER:GROUP` arrives as `*:USER` / `*:GROUP`), else
//! 2. the id its name has here, so an upload from a machine whose users
//!    have other numbers still lands with the right owners, else
//! 3. the number as sent (a name unknown here, id 0, `--numeric-ids` or
//!    the module's `numeric ids`).

use std::collections::HashMap;

use crate::transfer::flist::FileEntry;

/// What a map rule matches (the part before the colon).
#[derive(Debug, Clone, PartialEq, Eq)]
enum From {
    /// `NAME`: the sender's name for the id.
    Name(String),
    /// A pattern with `*`, `?` or `[`: matched against the name (an id the
    /// sender has no name for matches as the empty name).
    Wild(String),
    /// `N` or `LOW-HIGH`: the sender's id.
    Ids(u32, u32),
}

/// One `FROM:TO` rule of `--usermap` / `--groupmap`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    from: From,
    /// Our id for it.
    to: u32,
}

/// A parsed `--usermap` or `--groupmap`, rules in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameMap {
    rules: Vec<Rule>,
}

impl NameMap {
    /// Parse `text` (`FROM:TO,...`) for `--usermap` (`users`) or
    /// `--groupmap`, as upstream's receiver does. A malformed rule is an
    /// error with upstream's words; a `TO` unknown here is left out, with
    /// upstream's notice returned beside the map.
    pub fn parse(text: &str, users: bool) -> Result<(NameMap, Vec<String>), String> {
        Self::parse_with(text, users, LocalIds::default())
    }

    /// [`NameMap::parse`] with names turned into our ids by `ids`.
    pub(crate) fn parse_with(text: &str, users: bool, ids: LocalIds<'_>) -> Result<(NameMap, Vec<String>), String> {
        let which = if users { "user" } else { "group" };
        let mut rules = Vec::new();
        let mut notices = Vec::new();
        for item in text.split(',') {
            let Some((from, to)) = item.split_once(':') else {
                return Err(format!("No colon found in --{which}map: {item}"));
            };
            if to.is_empty() {
                return Err(format!("No name found after colon --{which}map: {item}"));
            }
            let from = if from.starts_with(|c: char| c.is_ascii_digit()) {
                let bad = || format!("Invalid number in --{which}map: {from}");
                match from.split_once('-') {
                    Some((low, high)) => {
                        let (low, high) = (low.parse().map_err(|_| bad())?, high.parse().map_err(|_| bad())?);
                        From::Ids(low, high)
                    }
                    None => {
                        let id = from.parse().map_err(|_| bad())?;
                        From::Ids(id, id)
                    }
                }
            } else if from.contains(['*', '?', '[']) {
                From::Wild(from.to_string())
            } else {
                From::Name(from.to_string())
            };
            let local = ids.id(to, users);
            match local {
                Some(to) => rules.push(Rule { from, to }),
                None => notices.push(format!("Unknown --{which}map name on receiver: {to}\n")),
            }
        }
        Ok((NameMap { rules }, notices))
    }

    /// Our id for the sender's `id` named `name`, if a rule says.
    fn lookup(&self, id: u32, name: &str) -> Option<u32> {
        self.rules
            .iter()
            .find(|r| match &r.from {
                From::Name(n) => n == name,
                From::Wild(pattern) => crate::wildmatch::wildmatch(pattern, name),
                From::Ids(low, high) => (*low..=*high).contains(&id),
            })
            .map(|r| r.to)
    }
}

/// How one kind of id (users or groups) is mapped.
struct Mapping<'a> {
    /// The sender's names, by the sender's id.
    names: HashMap<u32, &'a [u8]>,
    map: Option<&'a NameMap>,
    /// Look names up here (not with `--numeric-ids`).
    by_name: bool,
    /// Where names become our ids.
    ids: LocalIds<'a>,
    /// User names (else group names).
    users: bool,
    /// Answers so far, by the sender's id.
    seen: HashMap<u32, u32>,
}

impl Mapping<'_> {
    fn ours(&mut self, id: u32) -> u32 {
        if let Some(&ours) = self.seen.get(&id) {
            return ours;
        }
        let name = self
            .names
            .get(&id)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let ours = self
            .map
            .and_then(|m| m.lookup(id, &name))
            .or_else(|| {
                (self.by_name && id != 0 && !name.is_empty())
                    .then(|| self.ids.id(&name, self.users))
                    .flatten()
            })
            .unwrap_or(id);
        self.seen.insert(id, ours);
        ours
    }
}

/// What a push needs to give its entries our owners.
pub(crate) struct Owners<'a> {
    pub uid_names: &'a [(u32, Vec<u8>)],
    pub gid_names: &'a [(u32, Vec<u8>)],
    pub usermap: Option<&'a NameMap>,
    pub groupmap: Option<&'a NameMap>,
    /// Names are looked up here (no `--numeric-ids`, no module `numeric ids`).
    pub by_name: bool,
    /// Where names become our ids.
    pub ids: LocalIds<'a>,
}

impl Owners<'_> {
    /// The user and group mappings, each with its own cache of answers.
    fn mappings(&self) -> (Mapping<'_>, Mapping<'_>) {
        let mapping = |list, map, users| Mapping {
            names: names_by_id(list),
            map,
            by_name: self.by_name,
            ids: self.ids,
            users,
            seen: HashMap::new(),
        };
        (
            mapping(self.uid_names, self.usermap, true),
            mapping(self.gid_names, self.groupmap, false),
        )
    }

    /// Give every entry our ids.
    pub(crate) fn apply(&self, entries: &mut [FileEntry]) {
        if !self.by_name && self.usermap.is_none() && self.groupmap.is_none() {
            return;
        }
        let (mut users, mut groups) = self.mappings();
        for e in entries {
            e.uid = users.ours(e.uid);
            e.gid = groups.ours(e.gid);
        }
    }

    /// Give the named entries of the ACLs received since the last call
    /// our ids, by the same names and maps as the entries' owners.
    pub(crate) fn apply_to_acls(&self, store: &crate::transfer::receive::meta::MetaStore) {
        let (mut users, mut groups) = self.mappings();
        store.map_new_acl_ids(&mut |id| users.ours(id), &mut |id| groups.ours(id));
    }
}

/// The sender's names, by the sender's id.
fn names_by_id(list: &[(u32, Vec<u8>)]) -> HashMap<u32, &[u8]> {
    list.iter().map(|(id, n)| (*id, n.as_slice())).collect()
}

/// Where owner names become our ids: the module's `name converter` when
/// it has one, else the system's user and group databases. A number is
/// that number either way (upstream's `user_to_uid` with `num_ok`).
#[derive(Clone, Copy, Default)]
pub(crate) struct LocalIds<'a> {
    pub converter: Option<&'a crate::name_converter::NameConverter>,
}

impl LocalIds<'_> {
    /// Our id for user (with `users`) or group `name`.
    pub(crate) fn id(&self, name: &str, users: bool) -> Option<u32> {
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            return name.parse().ok();
        }
        match (self.converter, users) {
            (Some(c), _) => c.id_of(name, users),
            (None, true) => nix::unistd::User::from_name(name).ok().flatten().map(|u| u.uid.as_raw()),
            (None, false) => nix::unistd::Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ids: &[(u32, u32)]) -> Vec<FileEntry> {
        ids.iter()
            .map(|&(u, g)| {
                let mut e = FileEntry::new(b"f".to_vec(), 0o100644);
                (e.uid, e.gid) = (u, g);
                e
            })
            .collect()
    }

    #[test]
    fn names_known_here_take_our_ids_and_the_rest_keep_theirs() {
        // root and daemon exist everywhere with ids 0 and 1 (Debian, RHEL, Alpine).
        let uid_names = [
            (4242, b"daemon".to_vec()),
            (777, b"no-such-user-here".to_vec()),
            (0, b"root".to_vec()),
        ];
        let gid_names = [(4343, b"daemon".to_vec())];
        let owners = Owners {
            uid_names: &uid_names,
            gid_names: &gid_names,
            usermap: None,
            groupmap: None,
            by_name: true,
            ids: LocalIds::default(),
        };
        let mut e = entries(&[(4242, 4343), (777, 0)]);
        owners.apply(&mut e);
        assert_eq!([(e[0].uid, e[0].gid), (e[1].uid, e[1].gid)], [(1, 1), (777, 0)]);
    }

    #[test]
    fn maps_take_precedence_in_their_order() {
        let (users, notices) = NameMap::parse("0-99:daemon,alice:4000,w[a-z]*:4001,*:root,nosuch:no-such-user-here", true).unwrap();
        assert_eq!(notices, ["Unknown --usermap name on receiver: no-such-user-here\n"]);
        let uid_names = [(5, b"x".to_vec()), (1000, b"alice".to_vec()), (1001, b"www".to_vec())];
        let owners = Owners {
            uid_names: &uid_names,
            gid_names: &[],
            usermap: Some(&users),
            groupmap: None,
            by_name: false,
            ids: LocalIds::default(),
        };
        let mut e = entries(&[(5, 7), (1000, 7), (1001, 7), (2000, 7)]);
        owners.apply(&mut e);
        let uids: Vec<u32> = e.iter().map(|e| e.uid).collect();
        assert_eq!(uids, [1, 4000, 4001, 0], "range, name, pattern, then * (also for an unnamed id)");
        assert!(e.iter().all(|e| e.gid == 7), "no group map: groups as sent");
    }

    #[test]
    fn malformed_maps_are_refused_with_upstreams_words() {
        assert_eq!(NameMap::parse("abc", true).unwrap_err(), "No colon found in --usermap: abc");
        assert_eq!(
            NameMap::parse("abc:", false).unwrap_err(),
            "No name found after colon --groupmap: abc:"
        );
        assert_eq!(NameMap::parse("1-x:root", true).unwrap_err(), "Invalid number in --usermap: 1-x");
    }
}
