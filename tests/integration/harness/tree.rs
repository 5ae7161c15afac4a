//! Test trees: writing them ([`TreeBuilder`], which every tree builder of
//! the suite uses for the trees it serves, uploads or seeds) and comparing
//! them (everything about a tree a user would notice).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes a tree below a root, one entry a call, in the order of the calls:
/// a mode, owner or time set after an entry is written sticks, and a
/// directory's time set after its last entry is kept. Paths are relative
/// to the root (`""` is the root itself); the path a call makes or changes
/// comes first (`symlink(at, target)`, `hard_link(at, existing)`). Every
/// call panics on failure, except [`TreeBuilder::fifo`], which leaves that
/// to the caller.
pub struct TreeBuilder {
    root: PathBuf,
}

impl TreeBuilder {
    /// A builder writing below `root` (which must exist).
    pub fn new(root: &Path) -> TreeBuilder {
        TreeBuilder { root: root.to_path_buf() }
    }

    /// `rel` below the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// A regular file with `data`, its missing parent directories made
    /// first (with the process's default mode and the time of the call).
    pub fn file(&self, rel: impl AsRef<Path>, data: impl AsRef<[u8]>) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
        self
    }

    /// [`TreeBuilder::file`] for each (path, contents), in order.
    pub fn files<P: AsRef<Path>, D: AsRef<[u8]>>(&self, entries: impl IntoIterator<Item = (P, D)>) -> &Self {
        for (rel, data) in entries {
            self.file(rel, data);
        }
        self
    }

    /// [`TreeBuilder::file`] for each path, each file holding its own path
    /// (as given) as its contents.
    pub fn self_named_files<'a>(&self, rels: impl IntoIterator<Item = &'a str>) -> &Self {
        for rel in rels {
            self.file(rel, rel);
        }
        self
    }

    /// A directory and its missing parents (`mkdir -p`).
    pub fn dir(&self, rel: impl AsRef<Path>) -> &Self {
        std::fs::create_dir_all(self.path(rel)).unwrap();
        self
    }

    /// A symlink at `rel` pointing at `target` (taken as it is).
    pub fn symlink(&self, rel: impl AsRef<Path>, target: impl AsRef<Path>) -> &Self {
        std::os::unix::fs::symlink(target, self.path(rel)).unwrap();
        self
    }

    /// A hard link at `rel` to `existing` (both below the root).
    pub fn hard_link(&self, rel: impl AsRef<Path>, existing: impl AsRef<Path>) -> &Self {
        std::fs::hard_link(self.path(existing), self.path(rel)).unwrap();
        self
    }

    /// A fifo (`mkfifo`, the umask applied to `mode`). Unlike the other
    /// calls it returns the result: a caller that can do without the fifo
    /// ignores a failure.
    pub fn fifo(&self, rel: impl AsRef<Path>, mode: u32) -> nix::Result<()> {
        nix::unistd::mkfifo(&self.path(rel), nix::sys::stat::Mode::from_bits_truncate(mode))
    }

    /// A node (`mknod(2)`: `mode` holds the type, `S_IFCHR | 0o666` say,
    /// with the umask applied to its permissions) for device `dev`.
    pub fn node(&self, rel: impl AsRef<Path>, mode: libc::mode_t, dev: libc::dev_t) -> &Self {
        let path = std::ffi::CString::new(self.path(&rel).to_str().unwrap()).unwrap();
        // SAFETY: mknod(2) on a fresh NUL-terminated path.
        assert_eq!(
            unsafe { libc::mknod(path.as_ptr(), mode, dev) },
            0,
            "mknod {}",
            rel.as_ref().display()
        );
        self
    }

    /// Set the permission bits (`chmod`, following a symlink).
    pub fn mode(&self, rel: impl AsRef<Path>, mode: u32) -> &Self {
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// Set the owner and group (`chown`, following a symlink).
    pub fn owner(&self, rel: impl AsRef<Path>, uid: u32, gid: u32) -> &Self {
        std::os::unix::fs::chown(self.path(rel), Some(uid), Some(gid)).unwrap();
        self
    }

    /// Set the access and modification times (of a symlink itself): see
    /// [`set_mtime`].
    pub fn mtime(&self, rel: impl AsRef<Path>, secs: i64, nsec: i64) -> &Self {
        set_mtime(&self.path(rel), secs, nsec);
        self
    }

    /// [`TreeBuilder::mtime`] for each path, in order.
    pub fn mtimes<P: AsRef<Path>>(&self, rels: impl IntoIterator<Item = P>, secs: i64, nsec: i64) -> &Self {
        for rel in rels {
            self.mtime(rel, secs, nsec);
        }
        self
    }

    /// Set the extended attribute `name` to `value`.
    pub fn xattr(&self, rel: impl AsRef<Path>, name: &str, value: &[u8]) -> &Self {
        xattr::set(self.path(rel), name, value).unwrap();
        self
    }
}

/// Set a path's atime and mtime (not following a symlink).
pub fn set_mtime(path: &Path, secs: i64, nsec: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, nsec);
    nix::sys::stat::utimensat(None, path, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
}

/// Everything about a tree a user would notice: type, content, mode, mtime, owner, link target.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let rel = shown_name(path.strip_prefix(root).unwrap());
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            let what = if ft.is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if ft.is_dir() {
                format!(
                    "dir {:o} {}:{} mtime {}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    meta.mtime()
                )
            } else if ft.is_file() {
                let data = std::fs::read(&path).unwrap();
                format!(
                    "file {:o} {}:{} mtime {}.{:09} nlink {} len {} sum {:x}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    meta.nlink(),
                    data.len(),
                    data.iter()
                        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
                )
            } else {
                format!("special {:o}", meta.mode())
            };
            // Extended attributes (a `fake super` module's record of what
            // the file really is among them), the link's own for a link.
            let mut what = what;
            let mut names: Vec<_> = xattr::list(&path).map(|l| l.collect()).unwrap_or_default();
            names.sort();
            for name in names {
                let value = xattr::get(&path, &name).ok().flatten().unwrap_or_default();
                what += &format!(" {}={}", name.to_string_lossy(), String::from_utf8_lossy(&value));
            }
            out.insert(rel, what);
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// A path as text, bytes that are not UTF-8 as `\xNN` (so two names that
/// differ only there stay apart).
fn shown_name(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// `cp -a FROM/. TO`: contents, modes (ACLs with them), owners, times.
pub fn copy_tree(from: &Path, to: &Path) {
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(copied.success(), "cp -a {} {}", from.display(), to.display());
}
