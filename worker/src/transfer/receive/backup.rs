//! `-b` / `--backup-dir` / `--suffix` on a push (upstream's backup.c): what
//! a push replaces or deletes is kept first, as `NAME~` (the suffix) beside
//! it, or under the backup directory at the same relative path.
//!
//! Every step goes through the module root like any other write: the
//! backup directory is a path inside the destination (sanitised as
//! upstream's daemon does: no leading `/`, no `..` above it), its missing
//! directories are made with the modes of the directories they mirror,
//! and the kept copy is a hard link (a file being replaced stays in use
//! until the new one is renamed over it) or a rename (a file being
//! deleted). A file changed in place is copied instead.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::transfer::fs::module_dir::ModuleDir;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::fs::paths::operator_path;
use crate::transfer::options::client::TransferOptions;

/// Upstream's BACKUP_SUFFIX, used without a backup directory.
const DEFAULT_SUFFIX: &str = "~";

/// Where backups go.
#[derive(Debug, Clone)]
pub(crate) struct Backups {
    /// The push's destination directory (module-relative): names are
    /// relative to it, and so is the backup directory.
    dest: PathBuf,
    /// `--backup-dir`, module-relative (see `walk::operator_path`);
    /// `None`: beside the file.
    dir: Option<PathBuf>,
    /// Appended to every backup's name.
    suffix: Vec<u8>,
}

/// What [`Backups::keep`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Nothing to keep (no such file).
    Nothing,
    /// Hard-linked or copied: the original is still there.
    Duplicated,
    /// Renamed: the original is gone.
    Moved,
}

impl Backups {
    /// `--backup-dir` (module-relative), if the client named one.
    pub(crate) fn client_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The backup settings of a push into `dest`, if it makes backups.
    pub(crate) fn new(o: &TransferOptions, dest: &Path) -> Option<Backups> {
        if !o.make_backups {
            return None;
        }
        let dir = o
            .backup_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(|d| operator_path(dest, d, false))
            .filter(|d| *d != dest);
        let suffix = match (&o.backup_suffix, &dir) {
            (Some(s), _) => s.clone(),
            (None, Some(_)) => String::new(),
            (None, None) => DEFAULT_SUFFIX.to_string(),
        };
        Some(Backups {
            dest: dest.to_path_buf(),
            dir,
            suffix: suffix.into_bytes(),
        })
    }

    /// Whether `name` is itself a backup (beside-the-file backups only):
    /// deleting one does not back it up again.
    pub(crate) fn is_backup_file(&self, name: &[u8]) -> bool {
        self.dir.is_none() && !self.suffix.is_empty() && name.ends_with(&self.suffix)
    }

    /// The module-relative backup path of the module-relative `rel`.
    fn backup_path(&self, rel: &Path) -> PathBuf {
        let mut name = rel.file_name().unwrap_or_default().as_bytes().to_vec();
        name.extend_from_slice(&self.suffix);
        let name = OsStr::from_bytes(&name);
        match &self.dir {
            None => rel.with_file_name(name),
            Some(dir) => {
                let tail = rel.strip_prefix(&self.dest).unwrap_or(rel);
                dir.join(tail).with_file_name(name)
            }
        }
    }

    /// Keep `rel` before it is replaced (`move_it`: false, a hard link) or
    /// deleted (`move_it`: true, a rename); a symlink is kept as a new link
    /// to its target. A directory is never kept.
    pub(crate) fn keep(&self, root: &ModuleRoot, rel: &Path, move_it: bool) -> io::Result<Kept> {
        let Ok(meta) = root.lstat(rel) else { return Ok(Kept::Nothing) };
        if meta.is_dir() {
            return Ok(Kept::Nothing);
        }
        let backup = self.backup_path(rel);
        self.make_parents(root, &backup)?;
        let (from_dir, from) = root.parent_of(rel)?;
        let (to_dir, to) = root.parent_of(&backup)?;
        let attempt = |to_dir: &ModuleDir| {
            if meta.file_type().is_symlink() {
                // As upstream's `keep_backup`: a new link to the same
                // target, made by the receiving user; moving removes the
                // old one.
                let target = root.read_link(rel)?;
                to_dir.symlink(target.as_os_str().as_bytes(), &to)?;
                if !move_it {
                    return Ok(Kept::Duplicated);
                }
                from_dir.unlink(&from)?;
                return Ok(Kept::Moved);
            }
            if move_it {
                from_dir.rename_to(&from, to_dir, &to).map(|()| Kept::Moved)
            } else {
                to_dir.link_from(&from_dir, &from, &to).map(|()| Kept::Duplicated)
            }
        };
        match attempt(&to_dir) {
            Ok(kept) => Ok(kept),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::EISDIR) => {
                // An older backup holds the name: it goes (upstream deletes it too).
                remove_tree(root, &backup)?;
                attempt(&to_dir)
            }
            Err(e) => Err(e),
        }
    }

    /// `--inplace`: the file is about to change under its own name, so the
    /// backup is a copy (content, mode and times).
    pub(crate) fn copy(&self, root: &ModuleRoot, rel: &Path) -> io::Result<Kept> {
        let Ok(meta) = root.lstat(rel) else { return Ok(Kept::Nothing) };
        if !meta.is_file() {
            return self.keep(root, rel, false);
        }
        let backup = self.backup_path(rel);
        self.make_parents(root, &backup)?;
        let (to_dir, to) = root.parent_of(&backup)?;
        let (out, temp) = to_dir.create_temp(&to)?;
        let copied = (|| {
            let mut src = root.open_read(rel)?;
            copy_all(&mut src, &out)?;
            to_dir.chmod(&temp, meta.mode() & 0o7777)?;
            to_dir.set_times(&temp, (meta.atime(), meta.atime_nsec()), (meta.mtime(), meta.mtime_nsec()))?;
            to_dir.rename(&temp, &to)
        })();
        if copied.is_err() {
            let _ = to_dir.unlink(&temp);
        }
        copied.map(|()| Kept::Duplicated)
    }

    /// Make the backup directory and the directories below it that
    /// `backup` needs, each with the mode of the directory it mirrors.
    fn make_parents(&self, root: &ModuleRoot, backup: &Path) -> io::Result<()> {
        let Some(base) = &self.dir else { return Ok(()) };
        let mut made = PathBuf::new();
        for part in backup.parent().unwrap_or(Path::new("")).components() {
            made.push(part);
            if root.lstat(&made).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let (parent, name) = root.parent_of(&made)?;
            match parent.mkdir(&name, 0o777) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            // Below the backup directory, copy the mirrored directory's mode.
            if let Ok(tail) = made.strip_prefix(base) {
                if !tail.as_os_str().is_empty() {
                    let mirrored = self.dest.join(tail);
                    if let Some(m) = root.lstat(&mirrored).ok().filter(|m| m.is_dir()) {
                        let _ = parent.chmod(&name, m.mode() & 0o7777);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Copy everything from `src` to `out`.
fn copy_all(src: &mut File, mut out: &File) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            return out.flush();
        }
        out.write_all(&buf[..n])?;
    }
}

/// Remove `rel` and, if a directory, everything in it.
pub(crate) fn remove_tree(root: &ModuleRoot, rel: &Path) -> io::Result<()> {
    let meta = root.lstat(rel)?;
    let (dir, name) = root.parent_of(rel)?;
    if !meta.is_dir() {
        return dir.unlink(&name);
    }
    let children: Vec<_> = root.read_dir(rel)?.collect::<io::Result<_>>()?;
    for child in children {
        remove_tree(root, &rel.join(child))?;
    }
    dir.rmdir(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(backup_dir: Option<&str>, suffix: Option<&str>) -> TransferOptions {
        TransferOptions {
            make_backups: true,
            backup_dir: backup_dir.map(String::from),
            backup_suffix: suffix.map(String::from),
            ..TransferOptions::default()
        }
    }

    #[test]
    fn names_beside_the_file_or_under_the_backup_dir() {
        let b = Backups::new(&options(None, None), Path::new("up")).unwrap();
        assert_eq!(b.backup_path(Path::new("up/d/f")), PathBuf::from("up/d/f~"));
        assert!(b.is_backup_file(b"f~") && !b.is_backup_file(b"f"));
        let b = Backups::new(&options(Some("/../bak/"), None), Path::new("up")).unwrap();
        assert_eq!(b.backup_path(Path::new("up/d/f")), PathBuf::from("bak/d/f"));
        let b = Backups::new(&options(Some("../bak/"), None), Path::new("up")).unwrap();
        assert_eq!(b.backup_path(Path::new("up/d/f")), PathBuf::from("up/bak/d/f"));
        assert!(!b.is_backup_file(b"f~"));
        let b = Backups::new(&options(Some("bak"), Some(".old")), Path::new("")).unwrap();
        assert_eq!(b.backup_path(Path::new("d/f")), PathBuf::from("bak/d/f.old"));
    }

    #[test]
    fn keeps_by_link_rename_or_copy_and_replaces_old_backups() {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir(top.path().join("d")).unwrap();
        std::fs::write(top.path().join("d/f"), b"one").unwrap();
        let root = ModuleRoot::open(top.path()).unwrap();
        let b = Backups::new(&options(Some("bak"), None), Path::new("")).unwrap();
        assert_eq!(b.keep(&root, Path::new("d/f"), false).unwrap(), Kept::Duplicated);
        assert_eq!(std::fs::read(top.path().join("bak/d/f")).unwrap(), b"one");
        std::fs::write(top.path().join("d/f2"), b"two").unwrap();
        std::fs::rename(top.path().join("d/f2"), top.path().join("d/f")).unwrap();
        assert_eq!(b.keep(&root, Path::new("d/f"), true).unwrap(), Kept::Moved);
        assert_eq!(std::fs::read(top.path().join("bak/d/f")).unwrap(), b"two");
        assert!(!top.path().join("d/f").exists());
        assert_eq!(b.keep(&root, Path::new("d/f"), true).unwrap(), Kept::Nothing);
        std::fs::write(top.path().join("d/g"), b"three").unwrap();
        assert_eq!(b.copy(&root, Path::new("d/g")).unwrap(), Kept::Duplicated);
        assert_eq!(std::fs::read(top.path().join("bak/d/g")).unwrap(), b"three");
        assert_eq!(std::fs::metadata(top.path().join("d/g")).unwrap().nlink(), 1);
    }

    /// A symlink is kept as upstream keeps it: a new link to the same
    /// target, made by the receiving user, not the old link moved (whose
    /// owner may be anyone's).
    #[test]
    fn a_symlink_is_kept_as_a_new_link_by_the_receiving_user() {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir(top.path().join("d")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", top.path().join("d/l")).unwrap();
        let old_ino = std::fs::symlink_metadata(top.path().join("d/l")).unwrap().ino();
        let root = ModuleRoot::open(top.path()).unwrap();
        let b = Backups::new(&options(Some("bak"), None), Path::new("")).unwrap();
        assert_eq!(b.keep(&root, Path::new("d/l"), true).unwrap(), Kept::Moved);
        let kept = top.path().join("bak/d/l");
        assert_eq!(std::fs::read_link(&kept).unwrap(), Path::new("/elsewhere"));
        assert_ne!(std::fs::symlink_metadata(&kept).unwrap().ino(), old_ino, "a new link");
        assert!(std::fs::symlink_metadata(top.path().join("d/l")).is_err(), "the old one is gone");
    }
}
