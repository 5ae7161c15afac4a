//! The module as a chroot without chroot: every filesystem access of a pull
//! goes through one `O_PATH` descriptor of the module's directory and
//! `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`.
//!
//! Guarantee: a module-relative path handed to [`ModuleRoot`] is resolved
//! by the kernel as if the module directory were `/`. `..` stops at the
//! root, absolute symlink targets start at the root, and a symlink met on
//! the way (an intermediate component, or one swapped in by a concurrent
//! rename) is followed *inside* the root, never out of it. `/proc` magic
//! links are refused. So no session can stat, list, read or readlink
//! anything outside its module, whatever the module's symlinks say and
//! whatever changes under the walk. Mount points inside the module are
//! crossed (`-x` compares device numbers instead).
//!
//! Needs Linux 5.6 (openat2): [`ModuleRoot::open`] fails on older kernels
//! rather than fall back to unchecked paths. The session thread's fsuid and
//! fsgid (see `identity.rs`) apply to every call, as to any other syscall.

use std::ffi::{CString, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::transfer::fs::entry_stat::EntryStat;

/// How often a lookup that lost a race (EAGAIN) is retried. The kernel
/// gives up on a `..` step under RESOLVE_IN_ROOT whenever *any* rename or
/// mount happened on the system during the lookup, so a busy host needs a
/// generous bound; lookups without `..` never see it.
const EAGAIN_RETRIES: usize = 1000;

/// The kernel's `struct open_how` (linux/openat2.h): three u64 in this
/// order; the size passed to openat2 tells the kernel which version it is.
#[repr(C)]
struct OpenHow {
    /// open(2) flags.
    flags: u64,
    /// Creation mode (must be 0 without O_CREAT).
    mode: u64,
    /// RESOLVE_* flags.
    resolve: u64,
}

/// An open module directory that confines every lookup to itself.
#[derive(Debug)]
pub struct ModuleRoot {
    /// `O_PATH | O_DIRECTORY` descriptor of the module's directory.
    fd: OwnedFd,
    /// Where the module is, for messages and for the metadata-only stat
    /// by name of [`ModuleRoot::stat_where_it_leads`]: never opened again.
    path: PathBuf,
    /// The module directory's physical path as the kernel names it (no
    /// symlinks), to turn a directory descriptor back into a path inside
    /// the root (see [`ModuleRoot::stat_entry`]); `None` if unknown.
    real: Option<PathBuf>,
    /// A dry-run push (`-n`): the directories opened for changes only
    /// pretend to make them (see `ModuleDir`).
    dry_run: bool,
    /// Files are read with O_NOATIME (`--open-noatime`, the module's
    /// `open noatime`), so reading them leaves their access time alone.
    noatime: bool,
    /// `insecure links = yes`: links are followed wherever they lead.
    follow_any_link: bool,
}

/// The first symlink on the way to a module's configured `path` (its last
/// component included) that belongs to neither root nor the daemon's own
/// user, and that user's uid. Whoever owns such a link could point the
/// module anywhere, so upstream 3.5 refuses to follow one; so do we.
pub(crate) fn untrusted_link_in(path: &Path) -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let trusted = [0, nix::unistd::geteuid().as_raw()];
    let mut walked = PathBuf::new();
    for part in path.components() {
        walked.push(part);
        let meta = std::fs::symlink_metadata(&walked).ok()?;
        if meta.file_type().is_symlink() && !trusted.contains(&meta.uid()) {
            return Some((walked, meta.uid()));
        }
    }
    None
}

impl ModuleRoot {
    /// Open the module directory and check that the kernel has openat2.
    pub fn open(path: &Path) -> io::Result<ModuleRoot> {
        use std::os::unix::fs::OpenOptionsExt;
        let fd = File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)
            .map_err(|e| with_context(e, "cannot open module directory", path))?;
        let fd = OwnedFd::from(fd);
        let real = fd_path(fd.as_raw_fd());
        let root = ModuleRoot {
            fd,
            path: path.to_path_buf(),
            real,
            dry_run: false,
            noatime: false,
            follow_any_link: false,
        };
        // The probe: ENOSYS here means a kernel older than 5.6.
        root.resolve(Path::new(""), libc::O_PATH | libc::O_DIRECTORY).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOSYS) {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "openat2(2) is not available (Linux >= 5.6 is required to confine a module)",
                )
            } else {
                with_context(e, "cannot resolve module directory", path)
            }
        })?;
        Ok(root)
    }

    /// Another handle on the same open directory.
    pub fn try_clone(&self) -> io::Result<ModuleRoot> {
        Ok(ModuleRoot {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
            real: self.real.clone(),
            dry_run: self.dry_run,
            noatime: self.noatime,
            follow_any_link: self.follow_any_link,
        })
    }

    /// The module's `insecure links = yes`: paths resolve as they would
    /// by name, symlinks followed wherever they lead, out of the module
    /// too (upstream 3.5's per-module opt-out, for a trusted host only).
    /// Magic links (`/proc/*/fd`) stay refused.
    pub fn with_insecure_links(mut self, on: bool) -> ModuleRoot {
        self.follow_any_link = on;
        self
    }

    /// This root for a dry run (`-n`): changes through it are pretended.
    pub fn for_dry_run(mut self, dry_run: bool) -> ModuleRoot {
        self.dry_run = dry_run;
        self
    }

    /// This root reading files with O_NOATIME (or not).
    pub fn with_noatime(mut self, noatime: bool) -> ModuleRoot {
        self.noatime = noatime;
        self
    }

    /// Whether changes through this root are pretended.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The module directory as configured (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// lstat: the final component is not followed.
    pub fn lstat(&self, rel: &Path) -> io::Result<Metadata> {
        File::from(self.resolve(rel, libc::O_PATH | libc::O_NOFOLLOW)?).metadata()
    }

    /// stat: symlinks are followed all the way, inside the root.
    pub fn stat(&self, rel: &Path) -> io::Result<Metadata> {
        File::from(self.resolve(rel, libc::O_PATH)?).metadata()
    }

    /// stat of `rel` by its path, followed wherever its links lead, also
    /// out of the module: what upstream's daemon sees for a link it follows
    /// (`-k`, `-L`) in a module that is not chrooted. Metadata only: what
    /// is opened is still resolved inside the root, and
    /// [`ModuleRoot::leads_elsewhere`] tells whether the two disagree.
    pub fn stat_where_it_leads(&self, rel: &Path) -> io::Result<Metadata> {
        std::fs::metadata(self.path.join(rel))
    }

    /// Whether `rel` by its path leads to another directory than `dir`,
    /// which was opened inside the root as `rel` (a link on the way leaves
    /// the module, or resolves in it otherwise than it does outside it).
    /// A path this identity may not stat by name (a private parent of the
    /// module) tells nothing: false.
    pub fn leads_elsewhere(&self, dir: &DirNames, rel: &Path) -> bool {
        let Ok(opened) = nix::sys::stat::fstat(dir.raw_fd()) else {
            return false;
        };
        self.stat_where_it_leads(rel).is_ok_and(|m| {
            std::os::unix::fs::MetadataExt::dev(&m) != opened.st_dev || std::os::unix::fs::MetadataExt::ino(&m) != opened.st_ino
        })
    }

    /// The target of the symlink `rel` (its final component is not followed).
    pub fn read_link(&self, rel: &Path) -> io::Result<PathBuf> {
        let link = self.resolve(rel, libc::O_PATH | libc::O_NOFOLLOW)?;
        // An empty path reads the link an O_PATH|O_NOFOLLOW descriptor names.
        nix::fcntl::readlinkat(Some(link.as_raw_fd()), "")
            .map(PathBuf::from)
            .map_err(io::Error::from)
    }

    /// The names in directory `rel` (symlinks followed inside the root),
    /// without `.` and `..`, in the order the kernel gives them.
    pub fn read_dir(&self, rel: &Path) -> io::Result<DirNames> {
        let fd = self.resolve(rel, libc::O_RDONLY | libc::O_DIRECTORY)?;
        DirNames::new(fd)
    }

    /// lstat of `name`, an entry of the directory `dir` lists: looked up as
    /// one component of the open directory, as upstream's scan does
    /// (`fstatat(dirfd, name)`), so the links met on the way to `dir` do
    /// not count again towards the kernel's symlink limit.
    pub fn lstat_entry(&self, dir: &DirNames, name: &std::ffi::OsStr) -> io::Result<EntryStat> {
        let st = nix::sys::stat::fstatat(Some(dir.raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
        Ok(EntryStat::from(&st))
    }

    /// stat of `name` in the directory `dir` lists, following links inside
    /// the root: the entry is resolved from the directory's physical place
    /// in the module (upstream stats relative to the open directory), not
    /// by walking `logical` (its path through the links that led there)
    /// again. Falls back to `logical` if the directory's place is unknown.
    pub fn stat_entry(&self, dir: &DirNames, name: &std::ffi::OsStr, logical: &Path) -> io::Result<Metadata> {
        match self.inside_path(dir.raw_fd()) {
            Some(parent) => self.stat(&parent.join(name)),
            None => self.stat(logical),
        }
    }

    /// Where directory `rel` physically is below the root, its symlinks
    /// resolved (inside the root); `None` if that cannot be told.
    pub fn physical_dir(&self, rel: &Path) -> Option<PathBuf> {
        let fd = self.resolve(rel, libc::O_PATH | libc::O_DIRECTORY).ok()?;
        self.inside_path(fd.as_raw_fd())
    }

    /// Where the open directory `fd` is below the root, from the kernel's
    /// name for it; `None` if that name is unknown or not below the root
    /// (then the caller uses its own path, which is confined all the same).
    fn inside_path(&self, fd: libc::c_int) -> Option<PathBuf> {
        let real = self.real.as_ref()?;
        let here = fd_path(fd)?;
        if here == *real {
            return Some(PathBuf::new());
        }
        here.strip_prefix(real)
            .ok()
            .filter(|rest| !rest.as_os_str().is_empty())
            .map(Path::to_path_buf)
    }

    /// Open a regular file for reading, as the sender does: not through a
    /// symlink at its name, never as a controlling terminal, without
    /// blocking on a FIFO swapped in, and without touching its atime when
    /// asked ([`ModuleRoot::with_noatime`]) and permitted. Anything but a
    /// regular file is handed back in blocking
    /// mode (a regular file's reads never block, whatever the flag says).
    pub fn open_read(&self, rel: &Path) -> io::Result<File> {
        self.open_read_with_metadata(rel).map(|(file, _)| file)
    }

    /// [`ModuleRoot::open_read`] in one system call: no stat, so whatever
    /// is at the name is opened (non-blocking, never as a controlling
    /// terminal, following a final symlink, inside the root, only when
    /// `follow`). For a caller that reads a bounded amount and treats a
    /// failed read as unreadable (`-c` hashing).
    pub fn open_read_unchecked(&self, rel: &Path, follow: bool) -> io::Result<File> {
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        let base = libc::O_RDONLY | nofollow | libc::O_NOCTTY | libc::O_NONBLOCK;
        let fd = match self.resolve(rel, base | if self.noatime { libc::O_NOATIME } else { 0 }) {
            // O_NOATIME needs ownership or CAP_FOWNER: without it the file
            // is read all the same (upstream would fail to open it).
            Err(e) if self.noatime && e.raw_os_error() == Some(libc::EPERM) => self.resolve(rel, base)?,
            other => other?,
        };
        Ok(File::from(fd))
    }

    /// [`ModuleRoot::open_read`] and the opened file's metadata, in two
    /// system calls for a regular file (a read of a regular file never
    /// blocks, so its non-blocking flag is left as it is; anything else
    /// is switched back to blocking mode).
    pub fn open_read_with_metadata(&self, rel: &Path) -> io::Result<(File, Metadata)> {
        self.open_read_following(rel, false)
    }

    /// [`ModuleRoot::open_read_with_metadata`], following a final symlink
    /// when `follow` (`-L`: the list has the link's target, which is
    /// still resolved inside the root).
    pub fn open_read_following(&self, rel: &Path, follow: bool) -> io::Result<(File, Metadata)> {
        let file = self.open_read_unchecked(rel, follow)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            let flags = nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
            let flags = nix::fcntl::OFlag::from_bits_retain(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
            nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        }
        Ok((file, meta))
    }

    /// Remove the file `rel` if `still_same` accepts its current metadata
    /// (looked up through the same parent descriptor, so the check and the
    /// removal see the same directory). `Ok(false)`: left in place.
    pub fn unlink_file_if(&self, rel: &Path, still_same: impl FnOnce(&nix::sys::stat::FileStat) -> bool) -> io::Result<bool> {
        let name = rel.file_name().ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let parent = self.resolve(rel.parent().unwrap_or(Path::new("")), libc::O_PATH | libc::O_DIRECTORY)?;
        let st = nix::sys::stat::fstatat(Some(parent.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
        if !still_same(&st) {
            return Ok(false);
        }
        nix::unistd::unlinkat(Some(parent.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
        Ok(true)
    }

    /// An `O_PATH`-style descriptor of `rel` resolved inside the root, for
    /// the write side (`module_dir.rs`).
    pub(crate) fn resolve_fd(&self, rel: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
        self.resolve(rel, flags)
    }

    /// openat2 of `rel` (empty: the root itself) below the root, retrying
    /// the EAGAIN a concurrent rename can cause.
    fn resolve(&self, rel: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
        let bytes = rel.as_os_str().as_bytes();
        let name =
            CString::new(if bytes.is_empty() { b"." as &[u8] } else { bytes }).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let how = OpenHow {
            flags: (flags | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: if self.follow_any_link {
                libc::RESOLVE_NO_MAGICLINKS
            } else {
                libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS
            },
        };
        let mut tries = 0;
        loop {
            match openat2(self.fd.as_fd().as_raw_fd(), &name, &how) {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < EAGAIN_RETRIES => {
                    tries += 1;
                    // Let the renaming thread finish before we look again.
                    std::thread::yield_now();
                }
                other => return other,
            }
        }
    }
}

/// The one unsafe call: `openat2(dirfd, name, how, sizeof how)`.
fn openat2(dirfd: libc::c_int, name: &CString, how: &OpenHow) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and `how` is a live `#[repr(C)]`
    // open_how; the kernel only reads both for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            name.as_ptr(),
            how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

/// The entries of a directory opened through the root (readdir(3) on a
/// descriptor we own).
pub struct DirNames {
    /// The stream fdopendir(3) made of the descriptor (closed on drop).
    dir: std::ptr::NonNull<libc::DIR>,
}

impl DirNames {
    /// The descriptor the stream reads (still owned by the stream).
    fn raw_fd(&self) -> libc::c_int {
        // SAFETY: `dir` is the open stream we own.
        unsafe { libc::dirfd(self.dir.as_ptr()) }
    }

    fn new(fd: OwnedFd) -> io::Result<DirNames> {
        // SAFETY: fdopendir takes over a valid descriptor; on success the
        // stream owns it (closedir closes it), so it is released from `fd`.
        let dir = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        match std::ptr::NonNull::new(dir) {
            Some(dir) => {
                std::mem::forget(fd);
                Ok(DirNames { dir })
            }
            None => Err(io::Error::last_os_error()),
        }
    }
}

impl Iterator for DirNames {
    type Item = io::Result<OsString>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            nix::errno::Errno::clear();
            // SAFETY: `dir` is the open stream we own; the entry it returns
            // stays valid until the next readdir on it, and we copy the name out first.
            let entry = unsafe { libc::readdir64(self.dir.as_ptr()) };
            if entry.is_null() {
                let errno = nix::errno::Errno::last_raw();
                return (errno != 0).then(|| Err(io::Error::from_raw_os_error(errno)));
            }
            // SAFETY: d_name is NUL-terminated inside the entry.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
            if name != b"." && name != b".." {
                return Some(Ok(OsString::from_vec(name.to_vec())));
            }
        }
    }
}

impl Drop for DirNames {
    fn drop(&mut self) {
        // SAFETY: the stream is ours and closed exactly once.
        unsafe { libc::closedir(self.dir.as_ptr()) };
    }
}

/// The kernel's name for what `fd` refers to (`/proc/self/fd`), if it is
/// a plain path (not a deleted or detached one).
fn fd_path(fd: libc::c_int) -> Option<PathBuf> {
    let name = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    (name.is_absolute() && !name.as_os_str().as_bytes().ends_with(b" (deleted)")).then_some(name)
}

/// `e` with what we were doing and where (the error kind is kept).
fn with_context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;
    use std::os::unix::fs::FileTypeExt;

    /// `<tmp>/outside/secret` and the root `<tmp>/m` with `f`, `d/g`.
    fn tree() -> (tempfile::TempDir, ModuleRoot) {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(top.path().join("outside")).unwrap();
        std::fs::write(top.path().join("outside/secret"), "secret").unwrap();
        std::fs::create_dir_all(top.path().join("m/d")).unwrap();
        std::fs::write(top.path().join("m/f"), "inside").unwrap();
        std::fs::write(top.path().join("m/d/g"), "g").unwrap();
        let root = ModuleRoot::open(&top.path().join("m")).unwrap();
        (top, root)
    }

    fn read(root: &ModuleRoot, rel: &str) -> io::Result<String> {
        let mut s = String::new();
        root.open_read(Path::new(rel))?.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn intermediate_link_to_outside_resolves_inside() {
        let (top, root) = tree();
        symlink(top.path().join("outside"), top.path().join("m/out")).unwrap();
        let err = root.lstat(Path::new("out/secret")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(read(&root, "out/secret").unwrap_err().raw_os_error(), Some(libc::ENOENT));
        assert!(root.read_dir(Path::new("out")).is_err());
        // The same absolute target, created inside the module, is what it names.
        let inside = top.path().join("m").join(top.path().strip_prefix("/").unwrap()).join("outside");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("secret"), "decoy").unwrap();
        assert_eq!(read(&root, "out/secret").unwrap(), "decoy");
    }

    #[test]
    fn dot_dot_cannot_climb() {
        let (_top, root) = tree();
        assert_eq!(read(&root, "../outside/secret").unwrap_err().raw_os_error(), Some(libc::ENOENT));
        assert_eq!(read(&root, "d/../../../f").unwrap(), "inside", "`..` stops at the root");
        symlink("../../outside", root.path().join("d/up")).unwrap();
        assert_eq!(read(&root, "d/up/secret").unwrap_err().raw_os_error(), Some(libc::ENOENT));
        symlink("../..", root.path().join("top")).unwrap();
        assert_eq!(read(&root, "top/f").unwrap(), "inside", "a climbing link is the root");
    }

    #[test]
    fn absolute_target_resolves_within_the_root() {
        let (_top, root) = tree();
        symlink("/d/g", root.path().join("abs")).unwrap();
        assert_eq!(root.stat(Path::new("abs")).unwrap().len(), 1);
        assert!(root.stat(Path::new("abs")).unwrap().is_file());
        symlink("/etc/passwd", root.path().join("pw")).unwrap();
        assert_eq!(root.stat(Path::new("pw")).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn final_symlink_is_not_followed_by_lstat_or_open() {
        let (_top, root) = tree();
        symlink("f", root.path().join("l")).unwrap();
        let meta = root.lstat(Path::new("l")).unwrap();
        assert!(meta.file_type().is_symlink());
        assert_eq!(root.read_link(Path::new("l")).unwrap(), Path::new("f"));
        assert_eq!(read(&root, "l").unwrap_err().raw_os_error(), Some(libc::ELOOP));
        assert!(root.stat(Path::new("l")).unwrap().is_file());
    }

    #[test]
    fn fifos_open_without_blocking_and_come_back_blocking_and_dirs_list() {
        let (top, root) = tree();
        nix::unistd::mkfifo(&top.path().join("m/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        // No writer: a blocking open would hang here.
        let (f, meta) = root.open_read_with_metadata(Path::new("fifo")).unwrap();
        assert!(meta.file_type().is_fifo());
        let flags = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0, "a non-file is handed back blocking");
        let (_, meta) = root.open_read_with_metadata(Path::new("f")).unwrap();
        assert!(meta.is_file());
        assert_eq!(read(&root, "d/g").unwrap(), "g");
        let mut names: Vec<_> = root.read_dir(Path::new("")).unwrap().map(|n| n.unwrap()).collect();
        names.sort();
        assert_eq!(names, ["d", "f", "fifo"]);
        let names: Vec<_> = root.read_dir(Path::new("d")).unwrap().map(|n| n.unwrap()).collect();
        assert_eq!(names, ["g"]);
        assert!(root.read_dir(Path::new("f")).is_err());
        assert!(root.lstat(Path::new("")).unwrap().is_dir());
    }
}
