//! The generator's part of `-A` and `-X` (upstream's `itemize`): an
//! item's `a` and `x` flags, found by comparing the entry's received ACLs
//! and attribute set with the file there, and after an item whose
//! attributes differ, the request for the long values we lack
//! (`send_xattr_request`). The ACLs and attributes themselves are written
//! with the other attributes (`attrs.rs`) and by the receiver.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;

use oxrsyncd_protocol::item;

use crate::transfer::flist::FileEntry;
use crate::transfer::fs::fake_super::proc_path;
use crate::transfer::fs::fake_super::Seen;
use crate::transfer::receive::generator::state::Generator;
use crate::transfer::receive::meta::acl_apply::AclChange;
use crate::transfer::receive::meta::on_receive::{xattr_optim, xattr_rules};
use crate::transfer::receive::meta::xattr_request;

impl<W: Write> Generator<'_, '_, W> {
    /// `iflags` with the ACL and attribute flags of `e` added.
    pub(super) fn with_meta_flags(&self, e: &FileEntry, mut iflags: u16) -> u16 {
        let s = self.shared;
        let o = s.setup.options;
        if !o.preserve_acls && o.preserve_xattrs == 0 {
            return iflags;
        }
        let set = e.xattr_set.and_then(|n| s.setup.meta.xattr_set(n).map(|set| (n, set)));
        let rules = xattr_rules(s.setup, &s.params);
        if iflags & item::IS_NEW != 0 {
            if let Some((n, set)) = set.filter(|(_, set)| !set.items.is_empty()) {
                let mut states = s.setup.meta.states.lock().unwrap_or_else(|e| e.into_inner());
                rules.differs(n, &set, None, Some(&mut states));
                iflags |= item::REPORT_XATTR;
            }
            return iflags;
        }
        let rel = s.dest.path_of(&e.name);
        let Ok(fd) = s.root.resolve_fd(&rel, libc::O_PATH | libc::O_NOFOLLOW) else {
            return iflags;
        };
        let path = proc_path(&fd);
        let Ok(meta) = fd.try_clone().and_then(|fd| std::fs::File::from(fd).metadata()) else {
            return iflags;
        };
        if o.preserve_acls && !e.is_symlink() {
            let store = &s.setup.meta;
            let access = e.acl_access.and_then(|n| store.access_acl(n));
            let default = e.acl_default.and_then(|n| store.default_acl(n));
            let change = AclChange {
                path: &path,
                old_mode: meta.mode(),
                new_mode: e.mode,
                is_dir: e.is_dir(),
                fake_super: s.setup.fake_super,
            };
            if change.apply(access.as_ref(), default.as_ref(), false).unwrap_or(false) {
                iflags |= item::REPORT_ACL;
            }
        }
        if let Some((n, set)) = set {
            let ours = if meta.is_file() || meta.is_dir() {
                rules.read(&path).unwrap_or_default()
            } else {
                Vec::new()
            };
            let mut states = s.setup.meta.states.lock().unwrap_or_else(|e| e.into_inner());
            if rules.differs(n, &set, Some(&ours), Some(&mut states)) {
                iflags |= item::REPORT_XATTR;
            }
        }
        iflags
    }

    /// An up-to-date file's flags as upstream itemizes them after setting
    /// its attributes: a differing access ACL written with the new mode's
    /// bits leaves only the special bits to report as changed permissions.
    pub(super) fn perms_after_acl(&self, e: &FileEntry, old: Option<&Seen>, iflags: u16) -> u16 {
        let s = self.shared;
        let (Some(old), Some(theirs)) = (old, e.acl_access.and_then(|n| s.setup.meta.access_acl(n))) else {
            return iflags;
        };
        if iflags & item::REPORT_PERMS == 0 || s.setup.fake_super || !s.setup.options.preserve_acls {
            return iflags;
        }
        let rel = s.dest.path_of(&e.name);
        let Ok(fd) = s.root.resolve_fd(&rel, libc::O_PATH | libc::O_NOFOLLOW) else {
            return iflags;
        };
        let ours = crate::transfer::receive::meta::acl_apply::read(&proc_path(&fd), false, old.mode(), false);
        if ours.is_ok_and(|ours| !crate::transfer::receive::meta::acl_apply::access_equal(&ours, &theirs, e.mode))
            && old.mode() & 0o7000 == e.mode & 0o7000
        {
            return iflags & !item::REPORT_PERMS;
        }
        iflags
    }

    /// After the item of `e` with `iflags` went out: the request for the
    /// long values it lacks, when one follows (states settled otherwise).
    pub(super) fn xattr_request(&self, out: &mut impl Write, e: &FileEntry, iflags: u16) -> io::Result<()> {
        let s = self.shared;
        if s.setup.options.preserve_xattrs == 0 || s.setup.options.dry_run || iflags & (item::REPORT_XATTR | item::TRANSFER) == 0 {
            return Ok(());
        }
        let Some((n, set)) = e.xattr_set.and_then(|n| s.setup.meta.xattr_set(n).map(|set| (n, set))) else {
            // No set (a hostile list cannot get here: every entry has one).
            return Ok(());
        };
        xattr_request::write_request(out, &s.setup.meta, n, &set, iflags, xattr_optim(s.setup))
    }
}
