//! Upstream's file-list order (f_name_cmp, protocol dependent) and the
//! sort both sides run after the list has been exchanged, so that an index
//! (ndx) means the same entry on both ends.
//!
//! Index agreement does not come from removing duplicates: upstream's
//! sender (without inc_recurse) keeps every entry, and its receiver only
//! *marks* duplicates inactive in place. Slots never move after the sort.

use std::cmp::Ordering;

use crate::transfer::flist::entry::FileEntry;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Item,
    Path,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Dir,
    Slash,
    Base,
    Trailing,
}

/// One side of a name comparison: walks dirname, "/", basename and (for
/// directories at protocol >= 29) an assumed trailing "/".
struct Side<'a> {
    base: &'a [u8],
    is_dir: bool,
    cur: &'a [u8],
    pos: usize,
    st: St,
    ty: Ty,
    t_path: Ty,
}

impl<'a> Side<'a> {
    fn new(name: &'a [u8], is_dir: bool, t_path: Ty) -> Self {
        let (dirname, base) = match name.iter().rposition(|&b| b == b'/') {
            Some(i) => (Some(&name[..i]), &name[i + 1..]),
            None => (None, name),
        };
        let mut s = Side {
            base,
            is_dir,
            cur: b"",
            pos: 0,
            st: St::Dir,
            ty: t_path,
            t_path,
        };
        match dirname {
            Some(d) => s.set(d),
            None => s.enter_base(),
        }
        s
    }
    fn set(&mut self, s: &'a [u8]) {
        self.cur = s;
        self.pos = 0;
    }
    fn enter_base(&mut self) {
        self.ty = if self.is_dir { self.t_path } else { Ty::Item };
        self.set(self.base);
        if self.ty == Ty::Path && self.base == b"." {
            // "." sorts before everything at its level
            self.ty = Ty::Item;
            self.st = St::Trailing;
            self.set(b"");
        } else {
            self.st = St::Base;
        }
    }
    fn at_end(&self) -> bool {
        self.pos >= self.cur.len()
    }
    fn take(&mut self) -> u8 {
        let b = self.cur.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
}

fn by_type(t1: Ty) -> Ordering {
    if t1 == Ty::Path {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

/// Upstream's `f_name_cmp`: byte order (unsigned) of the full path, except
/// that from protocol 29 a directory compares as if it had a trailing
/// slash, directories sort after non-directories at the same depth, and a
/// directory named "." sorts first.
pub fn f_name_cmp(a: &[u8], a_is_dir: bool, b: &[u8], b_is_dir: bool, protocol: u32) -> Ordering {
    let t_path = if protocol >= 29 { Ty::Path } else { Ty::Item };
    let mut s1 = Side::new(a, a_is_dir, t_path);
    let mut s2 = Side::new(b, b_is_dir, t_path);
    if s1.ty != s2.ty {
        return by_type(s1.ty);
    }
    loop {
        if s1.at_end() {
            match s1.st {
                St::Dir => {
                    s1.st = St::Slash;
                    s1.set(b"/");
                }
                St::Slash => s1.enter_base(),
                St::Base => {
                    s1.st = St::Trailing;
                    if s1.ty == Ty::Path {
                        s1.set(b"/");
                    } else {
                        s1.ty = Ty::Item;
                    }
                }
                St::Trailing => s1.ty = Ty::Item,
            }
            if !s2.at_end() && s1.ty != s2.ty {
                return by_type(s1.ty);
            }
        }
        if s2.at_end() {
            match s2.st {
                St::Dir => {
                    s2.st = St::Slash;
                    s2.set(b"/");
                }
                St::Slash => s2.enter_base(),
                St::Base if s2.ty == Ty::Path => {
                    s2.st = St::Trailing;
                    s2.set(b"/");
                }
                St::Base | St::Trailing => {
                    s2.st = St::Trailing;
                    if s1.at_end() {
                        return Ordering::Equal;
                    }
                    s2.ty = Ty::Item;
                }
            }
            if s1.ty != s2.ty {
                return by_type(s1.ty);
            }
        }
        let (c1, c2) = (s1.take(), s2.take());
        if c1 != c2 {
            return c1.cmp(&c2);
        }
    }
}

fn cmp_entries(a: &FileEntry, b: &FileEntry, protocol: u32) -> Ordering {
    f_name_cmp(&a.name, a.is_dir(), &b.name, b.is_dir(), protocol)
}

/// Sender side (no inc_recurse), which is what the daemon does on a pull:
/// a stable sort in upstream's order; every entry keeps its slot, so the
/// result's positions are the ndx values. Upstream's sender removes no
/// duplicates here (its receiver only marks them, see
/// `sort_and_mark_duplicates`), so neither do we: dropping one would shift
/// every later index.
#[cfg(test)]
pub(crate) fn sort_and_clean(entries: Vec<FileEntry>, protocol: u32) -> Vec<FileEntry> {
    sort_with_origin(entries, protocol).into_iter().map(|s| s.entry).collect()
}

/// An entry in sorted position, with where it was in sending order and
/// whether the receiver keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortedEntry {
    pub entry: FileEntry,
    /// Position in sending order (hard-link leader indexes refer to it).
    pub orig_index: usize,
    /// False when the receiver's clean pass dropped it as a duplicate; the
    /// slot still counts for ndx.
    pub active: bool,
}

fn sort_with_origin(entries: Vec<FileEntry>, protocol: u32) -> Vec<SortedEntry> {
    let mut v: Vec<SortedEntry> = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| SortedEntry {
            entry,
            orig_index: i,
            active: true,
        })
        .collect();
    // slice::sort_by is stable, like upstream's merge sort.
    v.sort_by(|a, b| cmp_entries(&a.entry, &b.entry, protocol));
    v
}

/// Receiver side (upstream flist_sort_and_clean when !am_sender): stable
/// sort, then mark duplicate names inactive in place. Of two equal names
/// the first is kept, except that a directory beats a non-directory (at
/// protocol >= 29 a directory also knocks out an earlier non-directory of
/// the same name, which sorts elsewhere).
pub fn sort_and_mark_duplicates(entries: Vec<FileEntry>, protocol: u32) -> Vec<SortedEntry> {
    let mut v = sort_with_origin(entries, protocol);
    if v.is_empty() {
        return v;
    }
    // Active entries in order; binary-searchable because they are sorted.
    let mut kept: Vec<usize> = vec![0];
    let mut prev_i = 0usize;
    for i in 1..v.len() {
        let j = if cmp_entries(&v[i].entry, &v[prev_i].entry, protocol) == Ordering::Equal {
            Some(prev_i)
        } else if protocol >= 29 && v[i].entry.is_dir() {
            let name = &v[i].entry.name;
            kept.binary_search_by(|&k| {
                let e = &v[k].entry;
                f_name_cmp(&e.name, e.is_dir(), name, false, protocol)
            })
            .ok()
            .map(|pos| kept[pos])
        } else {
            None
        };
        match j {
            Some(j) => {
                let keep_new = v[i].entry.is_dir() && !v[j].entry.is_dir();
                let drop = if keep_new { j } else { i };
                v[drop].active = false;
                if keep_new {
                    kept.retain(|&k| k != j);
                    kept.push(i);
                    prev_i = i;
                }
            }
            None => {
                kept.push(i);
                prev_i = i;
            }
        }
    }
    v
}
