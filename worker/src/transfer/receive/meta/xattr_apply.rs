//! `-X` on a push against the module's files: reading a file's attributes
//! as the receiving side sees them (upstream's `rsync_xal_get` there),
//! comparing them with a received set (`xattr_diff`) and writing the set
//! (`rsync_xal_set`): every value set, long ones from the client's answer
//! or, when their checksum matches, from the basis file, and the names
//! the set lacks removed. Everything goes through the `/proc/self/fd` name
//! of an `O_PATH` descriptor the caller resolved inside the module.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::transfer::delta::{ChecksumParams, FileSum};
use crate::transfer::flist::MAX_FULL_DATUM;
use crate::transfer::receive::meta::store::ValueState;
use crate::transfer::receive::meta::xattr_wire::{XattrSet, FAKE_SUPER_OWN};

const USER_PREFIX: &[u8] = b"user.";
const SYSTEM_PREFIX: &[u8] = b"system.";

/// How the receiving side reads and writes attributes in this session.
#[derive(Clone, Debug)]
pub(crate) struct XattrRules {
    /// A module that is not root (and not `fake super`) sees `user.` only.
    pub(crate) user_only: bool,
    pub(crate) fake_super: bool,
    /// How long values are summed (upstream xattr_sum_nni).
    pub(crate) sum: ChecksumParams,
}

/// An attribute of a file: name and value.
pub(crate) type Attr = (Vec<u8>, Vec<u8>);

impl XattrRules {
    /// Whether the receiving side looks at (and may remove) `name`.
    fn considers(&self, name: &[u8]) -> bool {
        if self.user_only && !name.starts_with(USER_PREFIX) {
            return false;
        }
        if name.starts_with(SYSTEM_PREFIX) {
            return false;
        }
        !(self.fake_super && FAKE_SUPER_OWN.contains(&name))
    }

    /// The attributes of the file at `path`, sorted by name. A file system
    /// without attributes has none.
    pub(crate) fn read(&self, path: &str) -> io::Result<Vec<Attr>> {
        let names = match xattr::list_deref(path) {
            Ok(names) => names,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for name in names {
            let name = name.as_bytes().to_vec();
            if !self.considers(&name) {
                continue;
            }
            if let Some(value) = xattr::get_deref(path, OsStr::from_bytes(&name))? {
                out.push((name, value));
            }
        }
        out.sort();
        Ok(out)
    }

    fn checksum(&self, value: &[u8]) -> Vec<u8> {
        let mut sum = FileSum::new(&self.sum);
        sum.update(value);
        sum.finish()
    }

    /// Whether `ours` differs from `set` (upstream's `xattr_diff`; `None`:
    /// a new file). With `states` (the itemizing pass) every long value
    /// that differs and was never decided on is marked to be asked for.
    pub(crate) fn differs(
        &self,
        set_ndx: u32,
        set: &XattrSet,
        ours: Option<&[Attr]>,
        mut states: Option<&mut HashMap<(u32, i32), ValueState>>,
    ) -> bool {
        let ours = ours.unwrap_or(&[]);
        let mut differs = set.items.len() != ours.len();
        let mut theirs = set.items.iter().peekable();
        let mut mine = ours.iter().peekable();
        while let Some(item) = theirs.peek() {
            let cmp = mine
                .peek()
                .map_or(std::cmp::Ordering::Less, |(name, _)| item.name.as_slice().cmp(name));
            let same = match (cmp, mine.peek()) {
                (std::cmp::Ordering::Equal, Some((_, value))) if item.abbreviated() => {
                    value.len() == item.len && self.checksum(value) == item.datum
                }
                (std::cmp::Ordering::Equal, Some((_, value))) => value.len() == item.len && *value == item.datum,
                _ => false,
            };
            if !same && item.abbreviated() && cmp != std::cmp::Ordering::Greater {
                if let Some(states) = states.as_deref_mut() {
                    states.entry((set_ndx, item.num)).or_insert(ValueState::Todo);
                }
            }
            if !same {
                differs = true;
            }
            if cmp != std::cmp::Ordering::Greater {
                theirs.next();
            }
            if cmp != std::cmp::Ordering::Less {
                mine.next();
            }
        }
        differs || mine.peek().is_some()
    }

    /// Write `set` on the file at `target` (upstream's `rsync_xal_set` on
    /// the receiving side): long values come from `fetched` (the client's
    /// answers) or, when their checksum matches, from the same attribute
    /// of the file at `basis`. Returns a message for each failure; the
    /// others go on.
    pub(crate) fn write(
        &self,
        target: &str,
        set_ndx: u32,
        set: &XattrSet,
        fetched: &HashMap<(u32, i32), Vec<u8>>,
        basis: Option<&str>,
        shown: &str,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        let current = match self.read(target) {
            Ok(current) => current,
            Err(e) => {
                failures.push(format!("rsync_xal_set: llistxattr({shown}) failed: {e}"));
                return failures;
            }
        };
        for item in &set.items {
            let name = OsStr::from_bytes(&item.name);
            let value = if item.abbreviated() {
                match fetched.get(&(set_ndx, item.num)) {
                    Some(value) => value.clone(),
                    None => {
                        let local = basis.and_then(|b| xattr::get_deref(b, name).ok().flatten());
                        match local.filter(|v| v.len() == item.len && self.checksum(v) == item.datum) {
                            // Already there when the basis is the target.
                            Some(_) if basis == Some(target) => continue,
                            Some(value) => value,
                            None => {
                                failures.push(format!(
                                    "Missing abbreviated xattr value, {}, for {shown}",
                                    String::from_utf8_lossy(&item.name)
                                ));
                                continue;
                            }
                        }
                    }
                }
            } else {
                item.datum.clone()
            };
            if value.len() <= MAX_FULL_DATUM || !current.iter().any(|(n, v)| *n == item.name && *v == value) {
                if let Err(e) = xattr::set_deref(target, name, &value) {
                    failures.push(format!(
                        "rsync_xal_set: lsetxattr({shown},\"{}\") failed: {e}",
                        String::from_utf8_lossy(&item.name)
                    ));
                }
            }
        }
        for (name, _) in &current {
            if set.items.iter().any(|i| i.name == *name) {
                continue;
            }
            if let Err(e) = xattr::remove_deref(target, OsStr::from_bytes(name)) {
                failures.push(format!(
                    "rsync_xal_set: lremovexattr({shown},\"{}\") failed: {e}",
                    String::from_utf8_lossy(name)
                ));
            }
        }
        failures
    }
}
