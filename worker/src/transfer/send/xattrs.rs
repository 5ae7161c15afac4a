//! `-X` on a pull: extended attributes travel in the file list, after each
//! entry, as upstream's `send_xattr` writes them, and the values the
//! client's generator asks for follow its request (`send_xattr_request`).
//!
//! Wire format of one entry's set: `varint(index + 1)` naming a set sent
//! before, or `varint(0)`, a count, and per attribute `varint(name length
//! with its NUL)`, `varint(value length)`, the name, and either the value
//! (up to [`MAX_FULL_DATUM`] bytes) or, for longer values, a checksum of it
//! (MD5 from protocol 30; the seeded old MD4 below, never reached since
//! `-X` needs protocol 30). The client compares checksums with what it has
//! and asks only for the long values it lacks: a list of attribute numbers
//! (1-based, in name order) after the item flags of the file, answered
//! after our echo of those flags. Each abbreviated value is sent at most
//! once per set, however many files share it (upstream's XSTATE_* states).
//!
//! What is listed follows upstream's sender: every namespace but
//! `system.` (ACLs are `-A`'s); rsync's own `user.rsync.%…` attributes only
//! with `-XX`; in a `fake super` module those that hold the faked stat and
//! ACLs never, and other `user.rsync.` names go out without that prefix
//! (they stand for namespaces an unprivileged store could not hold). Reads
//! go through an `O_PATH` descriptor resolved inside the module.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::transfer::delta::{ChecksumParams, FileSum};
use crate::transfer::fs::fake_super::proc_path;
use crate::transfer::fs::module_root::ModuleRoot;
use oxrsyncd_protocol::wire::{read_varint, write_varint};

/// Longest value sent whole in the list (upstream MAX_FULL_DATUM).
pub(crate) use crate::transfer::flist::MAX_FULL_DATUM;
/// Names in this namespace are not `-X`'s (upstream skips them).
const SYSTEM_PREFIX: &[u8] = b"system.";
/// Only root may see this namespace.
const TRUSTED_PREFIX: &[u8] = b"trusted.";
/// rsync's own namespace on Linux (upstream RSYNC_PREFIX).
const RSYNC_PREFIX: &[u8] = b"user.rsync.";
/// The `fake super` attributes that hold what the file stands for.
const FAKE_SUPER_OWN: [&[u8]; 3] = [b"%stat", b"%aacl", b"%dacl"];

/// Where an abbreviated value stands (upstream XSTATE_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Only its checksum was sent.
    Abbreviated,
    /// The client asked for it; it goes with our echo of the file's flags.
    Requested,
    /// Sent in full (or asked for and not there any more).
    Sent,
}

/// One attribute of a sent set.
#[derive(Debug)]
struct Item {
    /// The name on disk, to read the value again when it is asked for.
    disk_name: Vec<u8>,
    /// Its number in the set (1-based, name order): what requests name.
    num: i32,
    /// Whether only a checksum went in the list.
    abbreviated: bool,
    state: State,
}

/// Why an entry's attributes could not be listed or a request served.
#[derive(Debug, thiserror::Error)]
pub enum XattrError {
    /// The names could not be listed (upstream's `get_xattr_names`).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A listed value could not be read (upstream's `get_xattr_data`).
    #[error("{name}: {err}")]
    Value { name: String, err: io::Error },
    /// The client's request names an attribute the set does not have or
    /// one not (or no longer) abbreviated: upstream's protocol errors.
    #[error("{0}")]
    Protocol(String),
}

/// The attribute sets sent in this session's lists (upstream's
/// `rsync_xal_l`), each referred to by its index from then on.
pub struct XattrSender {
    /// Sets by index, with the state of their abbreviated values.
    sets: Vec<Vec<Item>>,
    /// A set's wire form to its index: a set equal to one sent before
    /// goes as a reference (upstream's `find_matching_xattr`).
    by_wire: HashMap<Vec<u8>, u32>,
    /// How long values are summed (upstream `xattr_sum_nni` and seed).
    sum: ChecksumParams,
    /// `-XX`: rsync's own `%` attributes travel too.
    own_attributes: bool,
    /// A `fake super` module (upstream am_root < 0).
    fake_super: bool,
    /// The session acts as root. If not, `trusted.` attributes are not
    /// listed, as a non-root upstream daemon never sees them (the kernel
    /// shows them only with CAP_SYS_ADMIN, which a session thread keeps
    /// only for a `uid = 0` module's `-X` pull: see least_privilege.rs).
    privileged: bool,
    /// Which entry types carry attributes (upstream's `get_xattr` checks).
    links: bool,
    devices: bool,
    specials: bool,
}

/// An attribute's name on disk and its value.
type NameAndValue = (Vec<u8>, Vec<u8>);

/// One entry's attributes, read and encoded, not yet part of the list.
pub struct PendingSet {
    /// The set as the list carries it (count and items).
    wire: Vec<u8>,
    items: Vec<Item>,
}

/// A varint into a buffer (writing to a Vec cannot fail).
fn push_varint(out: &mut Vec<u8>, x: i32) {
    write_varint(out, x).expect("writing to memory");
}

impl XattrSender {
    pub fn new(sum: ChecksumParams, level: u8, fake_super: bool, links: bool, devices: bool, specials: bool) -> Self {
        XattrSender {
            sets: Vec::new(),
            by_wire: HashMap::new(),
            sum,
            own_attributes: level >= 2,
            fake_super,
            privileged: crate::identity::thread_fsuid() == 0,
            links,
            devices,
            specials,
        }
    }

    /// List the attributes of `rel` (an entry of type `mode`) as the list
    /// will carry them. `Err`: they could not be read (upstream leaves the
    /// file out). Nothing is recorded until [`XattrSender::send`].
    pub fn read_entry(&self, root: &ModuleRoot, rel: &Path, mode: u32) -> Result<PendingSet, XattrError> {
        let carried = match mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFDIR => true,
            libc::S_IFLNK => self.links,
            libc::S_IFCHR | libc::S_IFBLK => self.devices,
            _ => self.specials,
        };
        let mut found = if carried { self.read_all(root, rel)? } else { Vec::new() };
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut wire = Vec::new();
        push_varint(&mut wire, found.len() as i32);
        let mut items = Vec::with_capacity(found.len());
        for (num, (name, value)) in found.into_iter().enumerate() {
            let shown = self.wire_name(&name);
            push_varint(&mut wire, shown.len() as i32 + 1);
            push_varint(&mut wire, value.len() as i32);
            wire.extend_from_slice(shown);
            wire.push(0);
            let abbreviated = value.len() > MAX_FULL_DATUM;
            if abbreviated {
                let mut sum = FileSum::new(&self.sum);
                sum.update(&value);
                wire.extend_from_slice(&sum.finish());
            } else {
                wire.extend_from_slice(&value);
            }
            items.push(Item {
                disk_name: name,
                num: num as i32 + 1,
                abbreviated,
                state: State::Abbreviated,
            });
        }
        Ok(PendingSet { wire, items })
    }

    /// Append a set read by [`XattrSender::read_entry`] to the list (as a
    /// reference when an equal set went before) and return its index.
    pub fn send(&mut self, set: PendingSet, out: &mut Vec<u8>) -> u32 {
        if let Some(&index) = self.by_wire.get(&set.wire) {
            push_varint(out, index as i32 + 1);
            return index;
        }
        let index = self.sets.len() as u32;
        push_varint(out, 0);
        out.extend_from_slice(&set.wire);
        self.sets.push(set.items);
        self.by_wire.insert(set.wire, index);
        index
    }

    /// The name as the list shows it: a `fake super` module's stand-ins
    /// for other namespaces lose rsync's prefix.
    fn wire_name<'n>(&self, name: &'n [u8]) -> &'n [u8] {
        match name.strip_prefix(RSYNC_PREFIX) {
            Some(rest) if self.fake_super && rest.first() != Some(&b'%') && !rest.is_empty() => rest,
            _ => name,
        }
    }

    /// Every attribute of `rel` the list carries, with its value.
    fn read_all(&self, root: &ModuleRoot, rel: &Path) -> Result<Vec<NameAndValue>, XattrError> {
        let fd = root.resolve_fd(rel, libc::O_PATH | libc::O_NOFOLLOW)?;
        let path = proc_path(&fd);
        let names = match xattr::list_deref(&path) {
            Ok(names) => names,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut found = Vec::new();
        for name in names {
            let name = name.as_bytes().to_vec();
            if !self.carries(&name) {
                continue;
            }
            // A value removed since the listing is simply not there.
            match xattr::get_deref(&path, std::ffi::OsStr::from_bytes(&name)) {
                Ok(Some(value)) => found.push((name, value)),
                Ok(None) => {}
                Err(err) => {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    return Err(XattrError::Value { name, err });
                }
            }
        }
        Ok(found)
    }

    /// Whether the list carries the attribute `name` (upstream's
    /// `rsync_xal_get` on the sending side).
    fn carries(&self, name: &[u8]) -> bool {
        if name.starts_with(SYSTEM_PREFIX) || (!self.privileged && name.starts_with(TRUSTED_PREFIX)) {
            return false;
        }
        match name.strip_prefix(RSYNC_PREFIX) {
            Some(own) if own.first() == Some(&b'%') => self.own_attributes && !(self.fake_super && FAKE_SUPER_OWN.contains(&own)),
            _ => true,
        }
    }

    /// Read the client's request for the abbreviated values of set `index`
    /// (upstream's `recv_xattr_request` on the sender): numbers as
    /// differences, ended by 0.
    pub fn read_request(&mut self, index: Option<u32>, input: &mut impl Read, file: &str) -> Result<(), XattrError> {
        let Some(items) = index.and_then(|i| self.sets.get_mut(i as usize)) else {
            return Err(XattrError::Protocol("recv_xattr_request: internal data error!".into()));
        };
        let mut num: i32 = 0;
        loop {
            let step = read_varint(input)?;
            if step == 0 {
                return Ok(());
            }
            num = num
                .checked_add(step)
                .ok_or_else(|| XattrError::Protocol("xattr rel_pos accumulation overflow [sender]".into()))?;
            let Some(item) = items.iter_mut().find(|i| i.num == num) else {
                return Err(XattrError::Protocol(format!("[sender] could not find xattr #{num} for {file}")));
            };
            if !item.abbreviated || item.state != State::Abbreviated {
                return Err(XattrError::Protocol(format!(
                    "[sender] internal abbrev error on {file} ({})!",
                    String::from_utf8_lossy(&item.disk_name)
                )));
            }
            item.state = State::Requested;
        }
    }

    /// Send the values the client asked for (upstream's
    /// `send_xattr_request` on the sender), re-read from `rel`: number,
    /// length, value; a value that cannot be read again goes as length 0.
    /// Ends with a 0 byte. Returns the messages for values that could not
    /// be read again.
    pub fn send_requested(
        &mut self,
        index: u32,
        root: &ModuleRoot,
        rel: &Path,
        out: &mut impl Write,
        file: &str,
    ) -> io::Result<Vec<String>> {
        let mut failed = Vec::new();
        let Some(items) = self.sets.get_mut(index as usize) else {
            out.write_all(&[0])?;
            return Ok(failed);
        };
        let mut prior = 0;
        let fd = root.resolve_fd(rel, libc::O_PATH | libc::O_NOFOLLOW);
        for item in items.iter_mut().filter(|i| i.abbreviated && i.state == State::Requested) {
            item.state = State::Sent;
            write_varint(out, item.num - prior)?;
            prior = item.num;
            let value = fd.as_ref().ok().and_then(|fd| {
                xattr::get_deref(proc_path(fd), std::ffi::OsStr::from_bytes(&item.disk_name))
                    .ok()
                    .flatten()
            });
            match value {
                Some(value) => {
                    write_varint(out, value.len() as i32)?;
                    out.write_all(&value)?;
                }
                None => {
                    failed.push(format!(
                        "failed to re-read xattr {} for {file}\n",
                        String::from_utf8_lossy(&item.disk_name)
                    ));
                    write_varint(out, 0)?;
                }
            }
        }
        out.write_all(&[0])?;
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::delta::ChecksumKind;

    fn sender(level: u8, fake_super: bool) -> XattrSender {
        let sum = ChecksumParams {
            kind: ChecksumKind::Md5,
            seed: 0,
            proper_seed_order: true,
        };
        XattrSender::new(sum, level, fake_super, true, true, true)
    }

    fn list(x: &mut XattrSender, root: &ModuleRoot, mode: u32, out: &mut Vec<u8>) -> u32 {
        let set = x.read_entry(root, Path::new("f"), mode).unwrap();
        x.send(set, out)
    }

    /// A file in a fresh module with the given attributes, or None where
    /// the file system has no user attributes.
    fn module_with(attrs: &[(&str, &[u8])]) -> Option<(tempfile::TempDir, ModuleRoot)> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        for (name, value) in attrs {
            if xattr::set(&file, name, value).is_err() {
                return None;
            }
        }
        let root = ModuleRoot::open(dir.path()).unwrap();
        Some((dir, root))
    }

    #[test]
    fn sets_go_sorted_with_long_values_as_checksums_and_repeat_by_index() {
        let long = [7u8; 40];
        let Some((_dir, root)) = module_with(&[("user.b", b"short"), ("user.a", &long)]) else {
            return;
        };
        let mut x = sender(1, false);
        let mut out = Vec::new();
        assert_eq!(list(&mut x, &root, libc::S_IFREG | 0o644, &mut out), 0);
        let mut want = vec![0, 2, 7, 40];
        want.extend_from_slice(b"user.a\0");
        let mut md5 = FileSum::new(&x.sum);
        md5.update(&long);
        want.extend_from_slice(&md5.finish());
        want.extend_from_slice(&[7, 5]);
        want.extend_from_slice(b"user.b\0short");
        assert_eq!(out, want);
        // The same set again is its index + 1.
        out.clear();
        assert_eq!(list(&mut x, &root, libc::S_IFREG | 0o644, &mut out), 0);
        assert_eq!(out, [1]);
        // A fifo without -D carries an empty set, a new one.
        let mut y = sender(1, false);
        y.specials = false;
        out.clear();
        list(&mut y, &root, libc::S_IFIFO | 0o644, &mut out);
        assert_eq!(out, [0, 0]);
    }

    #[test]
    fn requested_values_go_once_and_unknown_requests_are_refused() {
        let long = [9u8; 33];
        let Some((_dir, root)) = module_with(&[("user.big", &long), ("user.small", b"s")]) else {
            return;
        };
        let mut x = sender(1, false);
        let mut sent = Vec::new();
        let set = list(&mut x, &root, libc::S_IFREG | 0o644, &mut sent);
        // Ask for #1 (user.big).
        x.read_request(Some(set), &mut &[1u8, 0][..], "f").unwrap();
        let mut out = Vec::new();
        assert!(x.send_requested(set, &root, Path::new("f"), &mut out, "f").unwrap().is_empty());
        let mut want = vec![1, 33];
        want.extend_from_slice(&long);
        want.push(0);
        assert_eq!(out, want);
        // Asked again: the value was sent already.
        assert!(matches!(
            x.read_request(Some(set), &mut &[1u8, 0][..], "f"),
            Err(XattrError::Protocol(_))
        ));
        // #2 is short (never abbreviated), #3 does not exist.
        let mut y = sender(1, false);
        let set = list(&mut y, &root, libc::S_IFREG | 0o644, &mut Vec::new());
        assert!(y.read_request(Some(set), &mut &[2u8, 0][..], "f").is_err());
        assert!(y.read_request(Some(set), &mut &[3u8, 0][..], "f").is_err());
        assert!(y.read_request(None, &mut &[0u8][..], "f").is_err());
    }

    #[test]
    fn rsync_own_attributes_need_two_x_and_fake_super_keeps_its_own() {
        let x1 = sender(1, false);
        let x2 = sender(2, false);
        let fake = sender(2, true);
        assert!(!x1.carries(b"user.rsync.%stat") && x2.carries(b"user.rsync.%stat"));
        assert!(!fake.carries(b"user.rsync.%stat") && fake.carries(b"user.rsync.%other"));
        assert!(!x2.carries(b"system.posix_acl_access") && x1.carries(b"security.selinux"));
        assert_eq!(fake.wire_name(b"user.rsync.trusted.x"), b"trusted.x");
        assert_eq!(x1.wire_name(b"user.rsync.trusted.x"), b"user.rsync.trusted.x");
        assert_eq!(fake.wire_name(b"user.rsync.%x"), b"user.rsync.%x");
    }
}
