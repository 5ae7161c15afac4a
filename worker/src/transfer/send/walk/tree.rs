//! One requested path, and the contents of a directory (recursively, or
//! one level for incremental recursion): each entry stat'ed through the
//! module root, filtered, and turned into a [`FileEntry`].

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bstr::ByteSlice;
use oxrsyncd_protocol::message::{self, cat, fname_in, syserr};
use oxrsyncd_protocol::IoError;

use crate::identity;
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::entry_stat::EntryStat;
use crate::transfer::fs::module_root::{DirNames, ModuleRoot};
use crate::transfer::options::client::MissingArgs;
use crate::transfer::send::walk::walker::{Notice, Walked, Walker};

impl Walker<'_> {
    /// One directory's immediate contents (names prefixed with `prefix`),
    /// without descending: an incremental-recursion list.
    /// `parent_frame` holds the merge rules in effect in its parent.
    pub(crate) fn walk_dir_contents(
        &self,
        dir: &Path,
        prefix: &[u8],
        dev: u64,
        parent_frame: Option<std::rc::Rc<crate::transfer::filter::merge::Frame>>,
    ) -> Walked {
        let mut out = Walked::default();
        self.merge.reset_to(parent_frame);
        self.walk_dir(dir, prefix, false, dev, &mut out);
        out
    }

    /// One requested path (module-relative, sanitised). Bytes, as a glob
    /// may have matched a name that is not UTF-8; filters and messages see
    /// its text form.
    pub(crate) fn walk_arg(&self, rel: &[u8], shallow: bool, out: &mut Walked) {
        // "dir/" and "" mean the directory's contents, sent as ".".
        let dot_dir = rel.is_empty() || rel.ends_with(b"/");
        let rel = rel.trim_end_with(|c| c == '/');
        let (dir, name) = rel.rsplit_once_str("/").unwrap_or((b"", rel));
        let (base, name): (&[u8], &[u8]) = if dot_dir { (rel, b".") } else { (dir, name) };
        let base_path = PathBuf::from(OsStr::from_bytes(base));
        // Upstream chdirs into the argument's directory first; a directory
        // we may not search is reported as that chdir failing.
        if !base.is_empty() {
            if let Err(e) = self.root.stat(&base_path.join(".")) {
                let what = cat(&[b"change_dir ", &fname_in(base, self.module_name), b" failed"]);
                out.notices.push(Notice::Error(syserr("sender", &what, &e)));
                return;
            }
        }
        let local = if name == b"." {
            base_path.clone()
        } else {
            base_path.join(OsStr::from_bytes(name))
        };
        let follow = self.options.copy_links || self.options.copy_dirlinks || dot_dir;
        let meta = match self.metadata_named(&local, name, follow) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.options.missing_args == MissingArgs::Ignore => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.options.missing_args == MissingArgs::Delete => {
                // Listed with mode 0: the client deletes its copy.
                out.entries.push((FileEntry::new(name.to_vec(), 0), local.clone()));
                return;
            }
            Err(e) => {
                // A missing argument is reported but, as upstream, does not
                // set io_error (which would inhibit deletions on the client).
                if e.kind() != std::io::ErrorKind::NotFound {
                    out.io_error |= IoError::General.bit();
                }
                let what = cat(&[b"link_stat ", &fname_in(display_rel(rel, dot_dir), self.module_name), b" failed"]);
                out.notices.push(Notice::Error(syserr("sender", &what, &e)));
                return;
            }
        };
        // Filters match bytes: the module path of what is listed is `local`.
        let module_path = local.as_os_str().as_bytes();
        if self.daemon_filters.excludes(module_path, meta.is_dir()) {
            let what = cat(&[b"link_stat ", &fname_in(display_rel(rel, dot_dir), self.module_name), b" failed"]);
            let enoent = std::io::Error::from_raw_os_error(libc::ENOENT);
            out.notices.push(Notice::Error(syserr("sender", &what, &enoent)));
            return;
        }
        if !dot_dir && self.client_excludes(name, module_path, meta.is_dir()) {
            return;
        }
        if meta.is_dir() && !self.options.recursive && !self.options.dirs && !dot_dir {
            out.notices.push(Notice::Info(cat(&[b"skipping directory ", name, b"\n"])));
            return;
        }
        let mut entry = self.entry(name.to_vec(), &local, &meta);
        if meta.is_dir() && (self.options.recursive || dot_dir) {
            entry.top_dir = true;
        }
        out.entries.push((entry, local.clone()));
        if meta.is_dir() && (self.options.recursive || (self.options.dirs && dot_dir)) && (dot_dir || !shallow) {
            let prefix = if name == b"." { Vec::new() } else { [name, b"/"].concat() };
            let dev = meta.dev();
            self.walk_dir(&local, &prefix, self.options.recursive && !shallow, dev, out);
        }
    }

    /// Lists the directory `dir` (module-relative), naming its entries
    /// `prefix` + their own name. Names are bytes, as upstream sends them:
    /// a directory whose name is not UTF-8 passes its exact bytes on to
    /// everything below it, and filters and messages see those bytes too.
    pub(crate) fn walk_dir(&self, dir: &Path, prefix: &[u8], recurse: bool, dev: u64, out: &mut Walked) {
        // `dir` is module-relative: its module path, in bytes.
        let dir_bytes = dir.as_os_str().as_bytes();
        let read = match self.root.read_dir(dir) {
            // Reached through a link that leads elsewhere than inside the
            // module (or nowhere there): upstream's confined open fails so.
            Ok(r) if self.unconfined_links && self.root.leads_elsewhere(&r, dir) => Err(std::io::Error::from_raw_os_error(libc::ELOOP)),
            Err(e)
                if self.unconfined_links
                    && e.kind() == std::io::ErrorKind::NotFound
                    && self.root.stat_where_it_leads(dir).is_ok_and(|m| m.is_dir()) =>
            {
                Err(std::io::Error::from_raw_os_error(libc::ELOOP))
            }
            other => other,
        };
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                out.io_error |= IoError::General.bit();
                let name = if prefix.is_empty() {
                    b"."
                } else {
                    prefix.trim_end_with(|c| c == '/')
                };
                let shown = message::shown(name, dir_bytes);
                let what = cat(&[b"opendir ", &fname_in(shown, self.module_name), b" failed"]);
                out.notices.push(Notice::Error(syserr("sender", &what, &e)));
                return;
            }
        };
        let mut children = Vec::new();
        let mut read = read;
        for item in &mut read {
            match item {
                Ok(name) => children.push(name),
                Err(e) => {
                    out.io_error |= IoError::General.bit();
                    let shown = message::shown(prefix, dir_bytes);
                    let what = cat(&[b"readdir ", &fname_in(shown, self.module_name), b" failed"]);
                    out.notices.push(Notice::Error(syserr("sender", &what, &e)));
                }
            }
        }
        children.sort();
        let frame = self.merge.enter(self.root, dir_bytes);
        if out.dir_frame.is_none() {
            out.dir_frame = frame;
        }
        let mut subdirs = Vec::new();
        for child in children {
            let local = dir.join(&child);
            let name_bytes = [prefix, child.as_bytes()].concat();
            // Only messages show the path; most entries never need it.
            let shown = || fname_in(message::shown(&name_bytes, local.as_os_str().as_bytes()), self.module_name);
            let meta = match self.child_metadata(&read, &child, &local, &name_bytes) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let is_link = self.root.lstat(&local).map(|m| m.file_type().is_symlink()).unwrap_or(false);
                    let copying = self.options.copy_links || self.options.copy_unsafe_links || self.options.copy_dirlinks;
                    if copying && is_link {
                        out.io_error |= IoError::General.bit();
                        out.notices
                            .push(Notice::Error(cat(&[b"symlink has no referent: ", &shown(), b"\n"])));
                    } else {
                        out.io_error |= IoError::Vanished.bit();
                        let text = cat(&[b"file has vanished: ", &shown(), b"\n"]);
                        out.notices.push(if self.protocol < 28 {
                            Notice::Error(text)
                        } else {
                            Notice::Warning(text)
                        });
                    }
                    continue;
                }
                Err(e) => {
                    out.io_error |= IoError::General.bit();
                    let what = cat(&[b"readlink_stat(", &shown(), b") failed"]);
                    out.notices.push(Notice::Error(syserr("sender", &what, &e)));
                    continue;
                }
            };
            let path_bytes = local.as_os_str().as_bytes();
            if self.daemon_filters.excludes(path_bytes, meta.is_dir()) || self.client_excludes(&name_bytes, path_bytes, meta.is_dir()) {
                continue;
            }
            // -x: a mount point is listed but not entered; -xx leaves it out.
            let mount_point = self.options.one_file_system && meta.is_dir() && meta.dev() != dev;
            if mount_point && self.options.skip_mount_points {
                continue;
            }
            if self.ignore_nonreadable && !readable(self.root, &local, &meta) {
                continue;
            }
            let descend = meta.is_dir() && recurse && !mount_point;
            let subdir_prefix = descend.then(|| [name_bytes.as_slice(), b"/"].concat());
            let mut entry = self.entry(name_bytes, &local, &meta);
            // Only -r lists a subdirectory's contents (upstream FLAG_CONTENT_DIR).
            entry.no_content_dir = meta.is_dir() && (!self.options.recursive || mount_point);
            match subdir_prefix {
                Some(prefix) => {
                    out.entries.push((entry, local.clone()));
                    subdirs.push((local, prefix));
                }
                None => out.entries.push((entry, local)),
            }
        }
        // One open directory at a time, however deep the tree.
        drop(read);
        for (local, prefix) in subdirs {
            self.walk_dir(&local, &prefix, recurse, dev, out);
        }
        self.merge.leave();
    }

    /// What upstream's `readlink_stat` gives for an entry of the directory
    /// `dir` lists: the link itself, unless `-L` follows every link, `-k` a
    /// link to a directory, or `--copy-unsafe-links` a link leaving the
    /// tree. Like upstream's scan, the entry is looked up relative to the
    /// open directory; `path` is its full module-relative path.
    fn child_metadata(&self, dir: &DirNames, child: &OsStr, path: &Path, name: &[u8]) -> std::io::Result<EntryStat> {
        let meta = self.root.lstat_entry(dir, child)?;
        if !meta.is_symlink() {
            return Ok(meta);
        }
        if self.options.copy_links {
            return self
                .followed_dir_or(path, || self.root.stat_entry(dir, child, path))
                .map(EntryStat::from);
        }
        if self.options.copy_dirlinks {
            if let Ok(target) = self.followed_dir_or(path, || self.root.stat_entry(dir, child, path)) {
                if target.is_dir() {
                    return Ok(EntryStat::from(target));
                }
            }
        }
        if self.options.copy_unsafe_links
            && self
                .root
                .read_link(path)
                .map(|t| crate::transfer::fs::symlinks::is_unsafe(t.as_os_str().as_bytes(), name))
                .unwrap_or(false)
        {
            return self.root.stat(path).map(EntryStat::from);
        }
        Ok(meta)
    }

    /// lstat, or stat when following is asked for (or, with
    /// `--copy-unsafe-links`, when the link leaves the tree), resolved
    /// inside the module.
    pub(crate) fn metadata(&self, path: &Path, follow: bool) -> std::io::Result<EntryStat> {
        self.metadata_named(path, path.as_os_str().as_bytes(), follow)
    }

    /// [`Walker::metadata`] for a file the transfer calls `name` (what
    /// `--copy-unsafe-links` measures a link's depth against).
    pub(crate) fn metadata_named(&self, path: &Path, name: &[u8], follow: bool) -> std::io::Result<EntryStat> {
        let meta = EntryStat::from(self.root.lstat(path)?);
        if !meta.is_symlink() {
            return Ok(meta);
        }
        let follow = follow
            || (self.options.copy_unsafe_links
                && self
                    .root
                    .read_link(path)
                    .map(|t| crate::transfer::fs::symlinks::is_unsafe(t.as_os_str().as_bytes(), name))
                    .unwrap_or(false));
        if !follow {
            return Ok(meta);
        }
        // Followed links resolve inside the module, as in a chroot: a
        // target missing there (ENOENT) has no referent, a loop is ELOOP.
        self.followed_dir_or(path, || self.root.stat(path)).map(EntryStat::from)
    }

    /// What a followed link at `path` is: in a module that is not chrooted,
    /// a directory where it really leads is listed as that directory (its
    /// listing is refused later if it is not the same one inside the
    /// module, see [`Walker::walk_dir`]); anything else is what `inside`
    /// (the stat resolved in the module) says.
    fn followed_dir_or(
        &self,
        path: &Path,
        inside: impl FnOnce() -> std::io::Result<std::fs::Metadata>,
    ) -> std::io::Result<std::fs::Metadata> {
        if self.unconfined_links {
            if let Some(real) = self.root.stat_where_it_leads(path).ok().filter(|m| m.is_dir()) {
                return Ok(real);
            }
        }
        inside()
    }

    pub(crate) fn entry(&self, name: Vec<u8>, local: &Path, meta: &EntryStat) -> FileEntry {
        let link_target = if meta.is_symlink() && self.options.preserve_links {
            self.root.read_link(local).ok().map(|t| {
                let raw = t.as_os_str().as_bytes();
                if self.munge_symlinks {
                    crate::transfer::fs::symlinks::unmunge(raw).to_vec()
                } else {
                    raw.to_vec()
                }
            })
        } else {
            None
        };
        let rdev = meta.rdev();
        let mode = match self.outgoing_chmod {
            Some(rules) if !meta.is_symlink() => rules.apply(meta.mode()),
            _ => meta.mode(),
        };
        let mut entry = FileEntry {
            name,
            mode,
            // Devices and specials travel with size 0, as upstream's make_file.
            size: if meta.is_file() || meta.is_dir() || meta.is_symlink() {
                meta.size()
            } else {
                0
            },
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            atime: if meta.is_dir() { 0 } else { meta.atime() },
            uid: meta.uid(),
            gid: meta.gid(),
            rdev_major: libc::major(rdev),
            rdev_minor: libc::minor(rdev),
            link_target,
            dev: meta.dev(),
            ino: meta.ino(),
            nlink: meta.nlink(),
            checksum: None,
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec() as u32,
            top_dir: false,
            no_content_dir: false,
            xattr_set: None,
            acl_access: None,
            acl_default: None,
        };
        if self.fake_super && (meta.is_file() || meta.is_dir()) {
            self.fold_fake_super(&mut entry, local);
        }
        entry
    }

    /// A `fake super` module's file as its attribute describes it: type,
    /// permissions, owner, device; a kept symlink's target is its content.
    fn fold_fake_super(&self, entry: &mut FileEntry, local: &Path) {
        let Ok(Some(fake)) = crate::transfer::fs::fake_super::Seen::look(self.root, local, true).map(|s| s.fake) else {
            return;
        };
        let kind = fake.mode & libc::S_IFMT;
        entry.mode = match self.outgoing_chmod {
            Some(rules) if kind != libc::S_IFLNK => rules.apply(fake.mode),
            _ => fake.mode,
        };
        entry.uid = fake.uid;
        entry.gid = fake.gid;
        entry.rdev_major = fake.rdev_major;
        entry.rdev_minor = fake.rdev_minor;
        match kind {
            libc::S_IFLNK => {
                let target = self
                    .options
                    .preserve_links
                    .then(|| crate::transfer::fs::fake_super::read_fake_link(self.root, local).ok());
                entry.link_target = target.flatten().map(|raw| {
                    if self.munge_symlinks {
                        crate::transfer::fs::symlinks::unmunge(&raw).to_vec()
                    } else {
                        raw
                    }
                });
            }
            libc::S_IFREG | libc::S_IFDIR => {}
            _ => entry.size = 0,
        }
    }
}

/// Whether the session may read an entry, as upstream's
/// `access(R_OK)` as the module's user (`ignore nonreadable`): a regular
/// file or a directory is tried for real (access(2) would check the real
/// uid, not the session's); a device or FIFO, which opening could disturb,
/// by its permission bits against the thread's file-system identity; a
/// symlink always is.
fn readable(root: &ModuleRoot, path: &Path, meta: &EntryStat) -> bool {
    if meta.is_dir() {
        return root.read_dir(path).is_ok();
    }
    if meta.is_symlink() {
        return true;
    }
    if !meta.is_file() {
        return readable_by_mode(meta, identity::thread_fsuid(), identity::thread_fsgid(), &identity::thread_groups());
    }
    root.open_read(path).is_ok()
}

/// The kernel's read check by mode bits for a session acting as `fsuid`,
/// `fsgid` and `groups` (root reads everything: a module run as uid 0 keeps
/// CAP_DAC_OVERRIDE, see `least_privilege.rs`).
fn readable_by_mode(meta: &EntryStat, fsuid: u32, fsgid: u32, groups: &[u32]) -> bool {
    let mode = meta.mode();
    if fsuid == 0 {
        return true;
    }
    if meta.uid() == fsuid {
        mode & 0o400 != 0
    } else if meta.gid() == fsgid || groups.contains(&meta.gid()) {
        mode & 0o040 != 0
    } else {
        mode & 0o004 != 0
    }
}

fn display_rel(rel: &[u8], dot_dir: bool) -> Vec<u8> {
    if rel.is_empty() {
        b".".to_vec()
    } else if dot_dir {
        cat(&[rel, b"/."])
    } else {
        rel.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(mode: u32, uid: u32, gid: u32) -> EntryStat {
        // SAFETY: libc::stat is plain data; all zeros is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mode = libc::S_IFIFO | mode;
        st.st_uid = uid;
        st.st_gid = gid;
        EntryStat::from(&st)
    }

    #[test]
    fn nodes_are_readable_by_their_mode_bits_as_the_kernel_checks() {
        assert!(readable_by_mode(&node(0o600, 0, 0), 0, 0, &[]), "root reads everything");
        assert!(!readable_by_mode(&node(0o600, 0, 0), 65534, 65534, &[]));
        assert!(readable_by_mode(&node(0o400, 7, 0), 7, 65534, &[]), "the owner's bits");
        assert!(
            !readable_by_mode(&node(0o044, 7, 0), 7, 0, &[]),
            "the owner's bits only, for the owner"
        );
        assert!(readable_by_mode(&node(0o040, 0, 9), 7, 8, &[9]), "a supplementary group");
        assert!(!readable_by_mode(&node(0o040, 0, 9), 7, 8, &[]));
        assert!(readable_by_mode(&node(0o004, 0, 9), 7, 8, &[]), "others");
    }
}
