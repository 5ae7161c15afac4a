//! The metadata a push sets, as upstream's `set_file_attrs` and
//! `dest_mode`: permissions (the sender's with `-p`, else the sender's
//! masked by the umask for new files, the existing ones kept), the
//! module's `incoming chmod`, modification times with nanoseconds (`-t`),
//! and owners when the session may (`-o`/`-g` as root).

use std::ffi::OsStr;
use std::io;

use crate::transfer::flist::FileEntry;
use crate::transfer::module_dir::ModuleDir;
use crate::transfer::receive::ReceiveSetup;

/// Permission bits rsync transfers (upstream CHMOD_BITS).
const CHMOD_BITS: u32 = 0o7777;

/// The mode a file gets (upstream's `dest_mode`, then `incoming chmod`).
/// `existing`: the mode of what is already there, if anything.
pub fn dest_mode(setup: &ReceiveSetup<'_>, entry: &FileEntry, existing: Option<u32>) -> u32 {
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
        entry.mode & CHMOD_BITS & !0o7000 & (0o777 & !crate::transfer::chmod::current_umask())
    };
    match setup.incoming_chmod {
        Some(rules) => rules.apply((entry.mode & !CHMOD_BITS) | mode) & CHMOD_BITS,
        None => mode,
    }
}

/// Set times (with -t) and owners (when allowed) on `name` in `dir`, and
/// `mode` if given; in a `fake super` module owners and mode go to the
/// module's attribute instead (`fake_super::record`).
pub fn apply(setup: &ReceiveSetup<'_>, dir: &ModuleDir, name: &OsStr, entry: &FileEntry, mode: Option<u32>) -> io::Result<()> {
    let o = setup.options;
    if setup.fake_super {
        // Owners and modes go to the module's attribute, not the file.
        let wanted = crate::transfer::fake_super::Wanted {
            file_type: entry.mode & libc::S_IFMT,
            perms: if entry.is_symlink() { Some(entry.mode & CHMOD_BITS) } else { mode },
            rdev: (entry.rdev_major, entry.rdev_minor),
            uid: o.preserve_uid.then_some(entry.uid),
            gid: o.preserve_gid.then_some(entry.gid),
        };
        crate::transfer::fake_super::record(dir, name, wanted)?;
    } else if setup.may_chown && (o.preserve_uid || o.preserve_gid) {
        let uid = o.preserve_uid.then_some(entry.uid);
        let gid = o.preserve_gid.then_some(entry.gid);
        dir.chown(name, uid, gid)?;
    }
    if let Some(mode) = mode.filter(|_| !setup.fake_super) {
        dir.chmod(name, mode)?;
    }
    let skip_time = (entry.is_dir() && o.omit_dir_times) || (entry.is_symlink() && o.omit_link_times);
    if o.preserve_times && !skip_time {
        let now = now();
        dir.set_times(name, now, (entry.mtime, i64::from(entry.mtime_nsec)))?;
    }
    Ok(())
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, i64::from(d.subsec_nanos()))
}
