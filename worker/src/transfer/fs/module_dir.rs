//! Changing files inside a module, with the same confinement as reading:
//! a directory is opened through [`ModuleRoot`] (RESOLVE_IN_ROOT), and
//! every change is a `*at()` call on that directory descriptor with one
//! plain name (no `/`, never `.` or `..`), so neither a symlink in the path
//! nor one swapped in later can redirect a write out of the module.
//!
//! The attribute calls (`chmod`, `chown`, `set_times`, `open_path`) take
//! an empty name for the directory itself: how the module root, which has
//! no name inside the module, gets the attributes a push gives it.
//!
//! Final components are never followed: files are created `O_EXCL |
//! O_NOFOLLOW`, times and owners set with `AT_SYMLINK_NOFOLLOW`, modes of
//! non-links with `fchmodat2(AT_SYMLINK_NOFOLLOW)`. Everything runs with
//! the session thread's fsuid/fsgid, so files are created as the module's
//! uid and gid.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::transfer::fs::module_root::ModuleRoot;

/// How many names a temporary file may try before giving up.
const TEMP_TRIES: usize = 100;

/// A directory of the module, open for changes.
#[derive(Debug)]
pub struct ModuleDir {
    /// `O_PATH | O_DIRECTORY` descriptor, resolved inside the module;
    /// `None` only in a dry run, for a directory that does not exist (one
    /// the run would have made): looking in it finds nothing.
    fd: Option<OwnedFd>,
    /// `-n`: every change reports success and changes nothing, as
    /// upstream's system-call wrappers do in a dry run.
    dry_run: bool,
}

/// A name is one path component: anything else is refused.
fn component(name: &OsStr) -> io::Result<CString> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a file name: {name:?}")));
    }
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl ModuleRoot {
    /// Open module directory `rel` (empty: the module itself) for changes.
    /// In a dry run a missing directory opens as an empty one.
    pub fn dir(&self, rel: &Path) -> io::Result<ModuleDir> {
        match self.existing_dir(rel) {
            Err(e) if self.is_dry_run() && matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                Ok(ModuleDir { fd: None, dry_run: true })
            }
            other => other,
        }
    }

    /// Module directory `rel` only if it is really there, even in a dry
    /// run (where a push needs an existing directory to change into).
    pub fn existing_dir(&self, rel: &Path) -> io::Result<ModuleDir> {
        Ok(ModuleDir {
            fd: Some(self.resolve_fd(rel, libc::O_PATH | libc::O_DIRECTORY)?),
            dry_run: self.is_dry_run(),
        })
    }

    /// The directory holding `rel` and `rel`'s last component.
    pub fn parent_of(&self, rel: &Path) -> io::Result<(ModuleDir, OsString)> {
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no file name in {rel:?}")))?;
        Ok((self.dir(rel.parent().unwrap_or(Path::new("")))?, name.to_os_string()))
    }
}

impl ModuleRoot {
    /// Where the attribute calls reach `rel`: its directory and name, or
    /// for the module root (empty `rel`) the root and the empty name.
    pub fn attr_target(&self, rel: &Path) -> io::Result<(ModuleDir, OsString)> {
        if rel.as_os_str().is_empty() {
            return Ok((self.dir(rel)?, OsString::new()));
        }
        self.parent_of(rel)
    }
}

impl ModuleDir {
    /// The descriptor; a dry run's missing directory has none, and every
    /// call that would use it returns before (see `present`, `unchanged`).
    fn raw(&self) -> libc::c_int {
        self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }

    /// For lookups: a dry run's missing directory holds nothing.
    fn present(&self) -> io::Result<()> {
        match self.fd {
            Some(_) => Ok(()),
            None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }

    /// For changes: true in a dry run, where the change is skipped and
    /// reported as done.
    fn unchanged(&self) -> bool {
        self.dry_run
    }

    /// Whether changes here are only pretended (`-n`).
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Create a new, empty temporary file `.NAME.XXXXXX` (upstream's
    /// naming) readable and writable only by us; returns it and its name.
    pub fn create_temp(&self, for_name: &OsStr) -> io::Result<(File, OsString)> {
        let base = for_name.as_bytes();
        // Upstream trims long names so the temporary name still fits.
        let base = &base[..base.len().min(240)];
        for _ in 0..TEMP_TRIES {
            let suffix: String = (0..6)
                .map(|_| {
                    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                    SET[rand::random::<usize>() % SET.len()] as char
                })
                .collect();
            let mut name = Vec::with_capacity(base.len() + 8);
            name.push(b'.');
            name.extend_from_slice(base);
            name.push(b'.');
            name.extend_from_slice(suffix.as_bytes());
            let name = OsString::from_vec(name);
            match self.create_new(&name) {
                Ok(file) => return Ok((file, name)),
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {}
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EEXIST))
    }

    /// Create `name` here, `0600`, read-write; it must not exist yet (and a
    /// symlink there is not followed).
    fn create_new(&self, name: &OsStr) -> io::Result<File> {
        if self.dry_run {
            // Nothing receives data in a dry run; creating a file is a bug.
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no files are created in a dry run"));
        }
        let c = component(name)?;
        // SAFETY: a NUL-terminated name relative to a directory fd we own.
        let fd = unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Open an existing regular file here for writing in place (never
    /// through a symlink).
    pub fn open_for_update(&self, name: &OsStr) -> io::Result<File> {
        self.present()?;
        if self.dry_run {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no files are written in a dry run"));
        }
        let c = component(name)?;
        // SAFETY: as in create_temp.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// An `O_PATH` descriptor of `name` itself (a symlink is not followed),
    /// for reading and setting its attributes (`fake_super.rs`).
    pub fn open_path(&self, name: &OsStr) -> io::Result<OwnedFd> {
        self.present()?;
        if name.is_empty() {
            return self
                .fd
                .as_ref()
                .map_or_else(|| Err(io::Error::from_raw_os_error(libc::ENOENT)), |fd| fd.try_clone());
        }
        let c = component(name)?;
        // SAFETY: as in open_for_update.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Write `content` into a new file `name` here, `0600`, never through
    /// a symlink (a `fake super` module's symlinks and nodes).
    pub fn create_with(&self, name: &OsStr, content: &[u8]) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        use std::io::Write;
        self.create_new(name)?.write_all(content)
    }

    /// Open `name` here for updating in place (`--inplace`, `--append`),
    /// creating it `0600` if missing (upstream's `O_WRONLY|O_CREAT`, plus
    /// read access for the blocks it copies from itself); never through a
    /// symlink. Returns the file and whether it was created.
    pub fn open_in_place(&self, name: &OsStr) -> io::Result<(File, bool)> {
        match self.open_for_update(name) {
            Ok(file) => Ok((file, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((self.create_new(name)?, true)),
            Err(e) => Err(e),
        }
    }

    /// Atomically replace `to` with `from` (both in this directory).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let (f, t) = (component(from)?, component(to)?);
        // SAFETY: NUL-terminated names relative to our directory fd.
        check(unsafe { libc::renameat(self.raw(), f.as_ptr(), self.raw(), t.as_ptr()) })
    }

    /// Move `from` (here) to `to` in `to_dir`, replacing a file there.
    pub fn rename_to(&self, from: &OsStr, to_dir: &ModuleDir, to: &OsStr) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let (f, t) = (component(from)?, component(to)?);
        // SAFETY: NUL-terminated names relative to directory fds we own.
        check(unsafe { libc::renameat(self.raw(), f.as_ptr(), to_dir.raw(), t.as_ptr()) })
    }

    /// Make a subdirectory.
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let c = component(name)?;
        // SAFETY: as above.
        check(unsafe { libc::mkdirat(self.raw(), c.as_ptr(), mode as libc::mode_t) })
    }

    /// Make a symlink `name` -> `target` (the target is stored, not followed).
    pub fn symlink(&self, target: &[u8], name: &OsStr) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let c = component(name)?;
        let t = CString::new(target).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: as above.
        check(unsafe { libc::symlinkat(t.as_ptr(), self.raw(), c.as_ptr()) })
    }

    /// Hard-link `existing` (in `from_dir`) as `name` here.
    pub fn link_from(&self, from_dir: &ModuleDir, existing: &OsStr, name: &OsStr) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let (e, n) = (component(existing)?, component(name)?);
        // SAFETY: as above; flags 0 never follows a symlink at `existing`.
        check(unsafe { libc::linkat(from_dir.raw(), e.as_ptr(), self.raw(), n.as_ptr(), 0) })
    }

    /// Make a device, fifo or socket node.
    pub fn mknod(&self, name: &OsStr, mode: u32, dev: u64) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let c = component(name)?;
        // SAFETY: as above.
        check(unsafe { libc::mknodat(self.raw(), c.as_ptr(), mode as libc::mode_t, dev as libc::dev_t) })
    }

    /// Remove a non-directory.
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let c = component(name)?;
        // SAFETY: as above.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) })
    }

    /// Remove an empty directory.
    pub fn rmdir(&self, name: &OsStr) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let c = component(name)?;
        // SAFETY: as above.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), libc::AT_REMOVEDIR) })
    }

    /// lstat of an entry.
    pub fn lstat(&self, name: &OsStr) -> io::Result<nix::sys::stat::FileStat> {
        self.present()?;
        let c = component(name)?;
        nix::sys::stat::fstatat(Some(self.raw()), c.as_c_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io::Error::from)
    }

    /// Set access and modification times (seconds, nanoseconds) without
    /// following a symlink.
    pub fn set_times(&self, name: &OsStr, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let ts = [
            libc::timespec {
                tv_sec: atime.0 as libc::time_t,
                tv_nsec: atime.1 as _,
            },
            libc::timespec {
                tv_sec: mtime.0 as libc::time_t,
                tv_nsec: mtime.1 as _,
            },
        ];
        if name.is_empty() {
            // This directory: its /proc name leads to exactly this inode.
            let itself = CString::new(self.proc_name()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: a valid path and a two-element timespec array.
            return check(unsafe { libc::utimensat(libc::AT_FDCWD, itself.as_ptr(), ts.as_ptr(), 0) });
        }
        let c = component(name)?;
        // SAFETY: a valid name and a two-element timespec array.
        check(unsafe { libc::utimensat(self.raw(), c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
    }

    /// The kernel's name for this directory (`/proc/self/fd/N`), for the
    /// calls that take no descriptor of an `O_PATH` directory.
    fn proc_name(&self) -> String {
        format!("/proc/self/fd/{}", self.raw())
    }

    /// Set owner and group (-1: leave) without following a symlink.
    pub fn chown(&self, name: &OsStr, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
        if name.is_empty() {
            // SAFETY: the empty path names the descriptor itself (AT_EMPTY_PATH).
            return check(unsafe { libc::fchownat(self.raw(), c"".as_ptr(), u, g, libc::AT_EMPTY_PATH) });
        }
        let c = component(name)?;
        // SAFETY: as above.
        check(unsafe { libc::fchownat(self.raw(), c.as_ptr(), u, g, libc::AT_SYMLINK_NOFOLLOW) })
    }

    /// Set the mode of a non-symlink, never through a symlink: a symlink
    /// here is refused (ELOOP/EOPNOTSUPP), not followed.
    pub fn chmod(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        if name.is_empty() {
            return std::fs::set_permissions(self.proc_name(), std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777));
        }
        let c = component(name)?;
        // SAFETY: the fchmodat2 system call (Linux 6.6) with a valid name.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fchmodat2,
                self.raw(),
                c.as_ptr(),
                (mode & 0o7777) as libc::mode_t,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
        // Older kernels: open without following, then chmod the open file
        // through its /proc descriptor link (what the C library does).
        // SAFETY: as in open_for_update.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let meta = File::from(fd.try_clone()?).metadata()?;
        if meta.file_type().is_symlink() {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        std::fs::set_permissions(
            format!("/proc/self/fd/{}", fd.as_raw_fd()),
            std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, ModuleRoot) {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(top.path().join("m/sub")).unwrap();
        std::fs::create_dir_all(top.path().join("outside")).unwrap();
        std::os::unix::fs::symlink("../../outside", top.path().join("m/sub/escape")).unwrap();
        std::os::unix::fs::symlink("/", top.path().join("m/rootlink")).unwrap();
        let root = ModuleRoot::open(&top.path().join("m")).unwrap();
        (top, root)
    }

    #[test]
    fn a_dry_run_changes_nothing_and_opens_missing_directories_empty() {
        let (top, root) = setup();
        std::fs::write(top.path().join("m/sub/f"), b"keep").unwrap();
        let root = root.for_dry_run(true);
        let sub = root.dir(Path::new("sub")).unwrap();
        sub.unlink(OsStr::new("f")).unwrap();
        sub.chmod(OsStr::new("f"), 0o777).unwrap();
        sub.rename(OsStr::new("f"), OsStr::new("g")).unwrap();
        sub.mkdir(OsStr::new("new"), 0o755).unwrap();
        sub.symlink(b"/", OsStr::new("l")).unwrap();
        assert!(sub.create_temp(OsStr::new("t")).is_err(), "no data is written in a dry run");
        assert_eq!(std::fs::read(top.path().join("m/sub/f")).unwrap(), b"keep");
        let names: Vec<_> = std::fs::read_dir(top.path().join("m/sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A directory the run would have made: nothing in it, changes pretended.
        let missing = root.dir(Path::new("sub/new/deeper")).unwrap();
        assert_eq!(missing.lstat(OsStr::new("x")).unwrap_err().raw_os_error(), Some(libc::ENOENT));
        missing.mkdir(OsStr::new("x"), 0o755).unwrap();
        assert!(!top.path().join("m/sub/new").exists());
        // Other errors still count, and without -n a missing directory is one.
        assert!(root.dir(Path::new("sub/f/x")).is_ok(), "ENOTDIR: the file would have been replaced");
        assert!(root.for_dry_run(false).dir(Path::new("sub/new")).is_err());
    }

    #[test]
    fn temp_files_rename_into_place_inside_the_module() {
        let (top, root) = setup();
        let dir = root.dir(Path::new("sub")).unwrap();
        let (mut f, tmp) = dir.create_temp(OsStr::new("file.txt")).unwrap();
        assert!(tmp.as_bytes().starts_with(b".file.txt."));
        f.write_all(b"data").unwrap();
        dir.chmod(&tmp, 0o644).unwrap();
        dir.rename(&tmp, OsStr::new("file.txt")).unwrap();
        let mut text = String::new();
        File::open(top.path().join("m/sub/file.txt"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "data");
        let mode = std::fs::metadata(top.path().join("m/sub/file.txt")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn links_in_the_path_resolve_inside_and_names_are_single_components() {
        let (top, root) = setup();
        // "sub/escape" is ../../outside: resolved inside, that is the
        // module's own "outside", missing until the module has one.
        assert!(root.dir(Path::new("sub/escape")).is_err());
        std::fs::create_dir(top.path().join("m/outside")).unwrap();
        let via_link = root.dir(Path::new("sub/escape")).unwrap();
        via_link.mkdir(OsStr::new("made"), 0o755).unwrap();
        assert!(top.path().join("m/outside/made").is_dir(), "created inside the module");
        assert!(!top.path().join("outside/made").exists());
        let via_root = root.dir(Path::new("rootlink")).unwrap();
        via_root.symlink(b"/etc/passwd", OsStr::new("l")).unwrap();
        assert!(std::fs::symlink_metadata(top.path().join("m/l")).unwrap().file_type().is_symlink());
        for bad in ["..", ".", "a/b", ""] {
            assert!(via_root.mkdir(OsStr::new(bad), 0o755).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn final_symlinks_are_never_followed() {
        let (top, root) = setup();
        std::fs::write(top.path().join("outside/victim"), b"keep").unwrap();
        std::os::unix::fs::symlink(top.path().join("outside/victim"), top.path().join("m/trap")).unwrap();
        let dir = root.dir(Path::new("")).unwrap();
        assert!(dir.open_for_update(OsStr::new("trap")).is_err(), "no write through a link");
        assert!(dir.chmod(OsStr::new("trap"), 0o777).is_err(), "no chmod through a link");
        dir.set_times(OsStr::new("trap"), (1, 0), (1, 0)).unwrap();
        let victim = std::fs::metadata(top.path().join("outside/victim")).unwrap();
        assert_ne!(victim.permissions().mode() & 0o777, 0o777);
        assert_ne!(
            std::os::unix::fs::MetadataExt::mtime(&victim),
            1,
            "the link's own time changed, not the target's"
        );
        dir.unlink(OsStr::new("trap")).unwrap();
        assert!(top.path().join("outside/victim").exists());
    }

    #[test]
    fn hard_links_nodes_and_removal() {
        let (top, root) = setup();
        let dir = root.dir(Path::new("sub")).unwrap();
        let (_, tmp) = dir.create_temp(OsStr::new("a")).unwrap();
        dir.rename(&tmp, OsStr::new("a")).unwrap();
        let other = root.dir(Path::new("")).unwrap();
        other.link_from(&dir, OsStr::new("a"), OsStr::new("b")).unwrap();
        assert_eq!(dir.lstat(OsStr::new("a")).unwrap().st_nlink, 2);
        dir.mknod(OsStr::new("fifo"), libc::S_IFIFO | 0o644, 0).unwrap();
        assert!(std::fs::symlink_metadata(top.path().join("m/sub/fifo")).is_ok());
        other.mkdir(OsStr::new("d"), 0o700).unwrap();
        other.rmdir(OsStr::new("d")).unwrap();
        assert!(!top.path().join("m/d").exists());
    }
}
