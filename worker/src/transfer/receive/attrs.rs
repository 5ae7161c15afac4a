//! The metadata a push sets, as upstream's `set_file_attrs` and
//! `dest_mode`: permissions (the sender's with `-p`, else the sender's
//! masked by the umask for new files, the existing ones kept), the
//! module's `incoming chmod`, modification times with nanoseconds (`-t`),
//! owners when the session may (`-o`/`-g` as root), and with `-A` the
//! received ACLs (`meta::acl_apply`), just before the mode, as upstream.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::transfer::flist::FileEntry;
use crate::transfer::fs::module_dir::ModuleDir;
use crate::transfer::receive::setup::ReceiveSetup;
use oxrsyncd_protocol::message::{cat, syserr};

/// Permission bits rsync transfers (upstream CHMOD_BITS).
const CHMOD_BITS: u32 = 0o7777;

/// The mode a file gets (upstream's `dest_mode`, then `incoming chmod`).
/// `existing`: the mode of what is already there, if anything.
pub(crate) fn dest_mode(setup: &ReceiveSetup<'_>, entry: &FileEntry, existing: Option<u32>) -> u32 {
    let o = setup.options;
    let mode = if o.preserve_perms {
        entry.mode & CHMOD_BITS
    } else if let Some(old) = existing {
        let mut m = old & CHMOD_BITS;
        if o.preserve_executability && entry.is_reg() {
            // -E: executable where the sender's is, readable bits permitting.
            if entry.mode & 0o111 != 0 {
                m |= (m & 0o444) >> 2;
            } else {
                m &= !0o111;
            }
        }
        m
    } else {
        entry.mode & CHMOD_BITS & !0o7000 & (0o777 & !crate::transfer::options::chmod::current_umask())
    };
    match setup.incoming_chmod {
        Some(rules) => rules.apply((entry.mode & !CHMOD_BITS) | mode) & CHMOD_BITS,
        None => mode,
    }
}

/// Which of the attribute changes failed (upstream's `set_file_attrs`
/// stops at the first and names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrOp {
    Chown,
    Chgrp,
    FakeSuper,
    Times,
    /// `-A`: the ACL of this kind (upstream's name for it).
    Acl(&'static str),
    Perms,
}

/// An attribute change that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{op:?}: {err}")]
pub struct AttrError {
    pub op: AttrOp,
    pub err: io::Error,
}

impl AttrError {
    /// Upstream's line for it, as `role` says it, about `shown` (upstream's
    /// `full_fname`).
    pub fn text(&self, role: &str, shown: &[u8]) -> Vec<u8> {
        let xattr = format!("failed to write xattr {} for ", crate::transfer::fs::fake_super::STAT_XATTR);
        let what = match self.op {
            AttrOp::Chown => cat(&[b"chown ", shown, b" failed"]),
            AttrOp::Chgrp => cat(&[b"chgrp ", shown, b" failed"]),
            AttrOp::FakeSuper => cat(&[xattr.as_bytes(), shown]),
            AttrOp::Times => cat(&[b"failed to set times on ", shown]),
            AttrOp::Perms => cat(&[b"failed to set permissions on ", shown]),
            AttrOp::Acl(kind) => cat(&[b"set_acl: xacl_set(", shown, b", ", kind.as_bytes(), b")"]),
        };
        syserr(role, &what, &self.err)
    }
}

impl From<AttrError> for io::Error {
    fn from(e: AttrError) -> io::Error {
        e.err
    }
}

/// Set owners (when allowed), times (with -t) and `mode` if given on
/// `name` in `dir`, in upstream's order, stopping at the first failure; in
/// a `fake super` module owners and mode go to the module's attribute
/// instead (`fake_super::record`).
pub(crate) fn apply(
    setup: &ReceiveSetup<'_>,
    dir: &ModuleDir,
    name: &OsStr,
    entry: &FileEntry,
    mode: Option<u32>,
) -> Result<(), AttrError> {
    apply_to(setup, Target { dir, name, open: None }, entry, mode, false)
}

/// [`apply`] on an entry that was already there with modification time
/// `old_mtime` (seconds): its time is left alone when the second is the
/// list's, as upstream's `same_mtime` judges it without
/// `--modify-window`, so the nanoseconds a list without them (below
/// protocol 31) or an older copy cannot carry are not rewritten.
pub(crate) fn apply_settled(
    setup: &ReceiveSetup<'_>,
    dir: &ModuleDir,
    name: &OsStr,
    entry: &FileEntry,
    mode: Option<u32>,
    old_mtime: i64,
) -> Result<(), AttrError> {
    apply_to(setup, Target { dir, name, open: None }, entry, mode, old_mtime == entry.mtime)
}

/// [`apply`] on a file we hold open as `file` (a temporary file just
/// written): the changes go through the descriptor, with no name to look
/// up three times; `fake super`'s record still goes by name.
pub(crate) fn apply_open(
    setup: &ReceiveSetup<'_>,
    file: &File,
    dir: &ModuleDir,
    name: &OsStr,
    entry: &FileEntry,
    mode: Option<u32>,
) -> Result<(), AttrError> {
    apply_to(
        setup,
        Target {
            dir,
            name,
            open: Some(file),
        },
        entry,
        mode,
        false,
    )
}

/// What the attribute changes land on.
struct Target<'a> {
    dir: &'a ModuleDir,
    name: &'a OsStr,
    /// The same file, open: used instead of the name when present.
    open: Option<&'a File>,
}

impl Target<'_> {
    fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        match self.open {
            Some(f) => nix::unistd::fchown(f.as_raw_fd(), uid.map(Into::into), gid.map(Into::into)).map_err(io::Error::from),
            None => self.dir.chown(self.name, uid, gid),
        }
    }

    fn set_times(&self, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
        match self.open {
            Some(f) => {
                use nix::sys::time::TimeSpec;
                let spec = |(s, ns): (i64, i64)| TimeSpec::new(s as _, ns as _);
                nix::sys::stat::futimens(f.as_raw_fd(), &spec(atime), &spec(mtime)).map_err(io::Error::from)
            }
            None => self.dir.set_times(self.name, atime, mtime),
        }
    }

    /// `-A`: the entry's received ACLs, for the file about to get `mode`
    /// (its own mode kept when None).
    fn set_acls(&self, setup: &ReceiveSetup<'_>, entry: &FileEntry, mode: Option<u32>) -> Result<(), AttrError> {
        let store = &setup.meta;
        let access = entry.acl_access.and_then(|n| store.access_acl(n));
        let default = entry.acl_default.and_then(|n| store.default_acl(n));
        if access.is_none() && default.is_none() {
            return Ok(());
        }
        let failed = |err: io::Error| AttrError {
            op: AttrOp::Acl("ACL_TYPE_ACCESS"),
            err,
        };
        // A descriptor of the file itself: the one open, or an O_PATH one.
        let held;
        let (path, old_mode) = match self.open {
            Some(f) => (format!("/proc/self/fd/{}", f.as_raw_fd()), f.metadata().map_err(failed)?.mode()),
            None => {
                held = self.dir.open_path(self.name).map_err(failed)?;
                let meta = File::from(held.try_clone().map_err(failed)?).metadata().map_err(failed)?;
                (crate::transfer::fs::fake_super::proc_path(&held), meta.mode())
            }
        };
        let change = crate::transfer::receive::meta::acl_apply::AclChange {
            path: &path,
            old_mode,
            new_mode: (entry.mode & libc::S_IFMT) | mode.unwrap_or(old_mode & CHMOD_BITS),
            is_dir: entry.is_dir(),
            fake_super: setup.fake_super,
        };
        change
            .apply(access.as_ref(), default.as_ref(), true)
            .map(|_| ())
            .map_err(|e| AttrError {
                op: AttrOp::Acl(e.kind),
                err: e.err,
            })
    }

    fn chmod(&self, mode: u32) -> io::Result<()> {
        match self.open {
            Some(f) => f.set_permissions(std::fs::Permissions::from_mode(mode & CHMOD_BITS)),
            None => self.dir.chmod(self.name, mode),
        }
    }
}

fn apply_to(setup: &ReceiveSetup<'_>, target: Target<'_>, entry: &FileEntry, mode: Option<u32>, keep_time: bool) -> Result<(), AttrError> {
    let (dir, name) = (target.dir, target.name);
    let o = setup.options;
    let fail = |op: AttrOp| move |err: io::Error| AttrError { op, err };
    if setup.fake_super {
        // Owners and modes go to the module's attribute, not the file.
        let wanted = crate::transfer::fs::fake_super::Wanted {
            file_type: entry.mode & libc::S_IFMT,
            perms: if entry.is_symlink() { Some(entry.mode & CHMOD_BITS) } else { mode },
            rdev: (entry.rdev_major, entry.rdev_minor),
            uid: o.preserve_uid.then_some(entry.uid),
            gid: o.preserve_gid.then_some(entry.gid),
        };
        crate::transfer::fs::fake_super::record(dir, name, wanted).map_err(fail(AttrOp::FakeSuper))?;
    } else if setup.may_chown && (o.preserve_uid || o.preserve_gid) {
        let uid = o.preserve_uid.then_some(entry.uid);
        let gid = o.preserve_gid.then_some(entry.gid);
        let op = if o.preserve_uid { AttrOp::Chown } else { AttrOp::Chgrp };
        target.chown(uid, gid).map_err(fail(op))?;
    }
    let skip_time = keep_time || (entry.is_dir() && o.omit_dir_times) || (entry.is_symlink() && o.omit_link_times);
    if o.preserve_times && !skip_time {
        // -U: non-directories get the sender's access time too.
        let atime = if o.preserve_atimes && !entry.is_dir() {
            (entry.atime, 0)
        } else {
            now()
        };
        target
            .set_times(atime, (entry.mtime, i64::from(entry.mtime_nsec)))
            .map_err(fail(AttrOp::Times))?;
    }
    if o.preserve_acls && !entry.is_symlink() && !dir.is_dry_run() {
        target.set_acls(setup, entry, mode)?;
    }
    if let Some(mode) = mode.filter(|_| !setup.fake_super) {
        target.chmod(mode).map_err(fail(AttrOp::Perms))?;
    }
    Ok(())
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, i64::from(d.subsec_nanos()))
}
