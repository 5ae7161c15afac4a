//! Where a pushed file waits before it takes its name: the temporary file
//! (beside the target, or in `--temp-dir` / the module's `temp dir`), and
//! the partial dir (`--partial-dir`, `--delay-updates`) that keeps an
//! interrupted file for the next push to start from, or holds finished
//! files until they all take their names at the end (upstream's
//! `partial_dir_fname`, `handle_partial_dir`, `get_tmpname`).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::transfer::fs::module_dir::ModuleDir;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::fs::paths::{operator_path, sanitize};
use crate::transfer::options::client::TransferOptions;

/// The push's staging places.
#[derive(Debug, Default)]
pub(crate) struct Staging {
    /// `--partial-dir`: relative ones are one per directory; an absolute
    /// one is a single module-relative directory.
    partial_dir: Option<PartialDir>,
    /// The temp dir (the client's `--temp-dir`, else the module's `temp
    /// dir`), module-relative, and how upstream names it in messages.
    temp: Option<(PathBuf, String)>,
}

#[derive(Debug)]
enum PartialDir {
    /// Beside each file: `DIR/NAME` in the file's directory.
    PerDirectory(PathBuf),
    /// One place for all (module-relative).
    Single(PathBuf),
}

impl Staging {
    /// The staging settings of a push into `dest` (module-relative), in
    /// the module at `module_root`; `module_temp_dir`: the module's `temp
    /// dir`, used when the client names none.
    pub(crate) fn new(o: &TransferOptions, dest: &Path, module_root: &Path, module_temp_dir: Option<&Path>) -> Staging {
        let partial_dir = o.partial_dir.as_deref().map(|d| match d.strip_prefix('/') {
            Some(_) => PartialDir::Single(operator_path(dest, d, false)),
            None => PartialDir::PerDirectory(PathBuf::from(sanitize(d).trim_end_matches('/'))),
        });
        let given = o
            .temp_dir
            .clone()
            .or_else(|| module_temp_dir.map(|d| d.to_string_lossy().into_owned()))
            .filter(|d| !d.is_empty());
        let temp = given.map(|d| {
            let rel = operator_path(dest, &d, false);
            // Upstream shows an absolute one under the module's path.
            let shown = if d.starts_with('/') {
                module_root.join(&rel).to_string_lossy().into_owned()
            } else {
                sanitize(&d).trim_end_matches('/').to_string()
            };
            (rel, shown)
        });
        Staging { partial_dir, temp }
    }

    /// The places the client named (module-relative): its `--temp-dir`,
    /// if it gave one, and an absolute `--partial-dir`.
    pub(crate) fn client_dirs(&self, o: &TransferOptions) -> (Option<&Path>, Option<&Path>) {
        let temp = self.temp.as_ref().filter(|_| o.temp_dir.is_some()).map(|(rel, _)| rel.as_path());
        let partial = match &self.partial_dir {
            Some(PartialDir::Single(d)) => Some(d.as_path()),
            _ => None,
        };
        (temp, partial)
    }

    /// Upstream's check before receiving: the temp dir must be a directory.
    pub(crate) fn check_temp_dir(&self, root: &ModuleRoot) -> Result<(), (String, bool)> {
        let Some((rel, shown)) = &self.temp else { return Ok(()) };
        match root.stat(rel) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err((format!("The temp-dir is not a directory: {shown}\n"), true)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err((format!("The temp-dir does not exist: {shown}\n"), true)),
            Err(e) => {
                let errno = io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0)).to_string();
                let text = errno.split(" (os error").next().unwrap_or(&errno).to_string();
                Err((format!("Failed to stat temp-dir {shown}: {text}\n"), false))
            }
        }
    }

    /// The partial-dir path of the module-relative `rel`, if there is a
    /// partial dir.
    pub(crate) fn partial_path(&self, rel: &Path) -> Option<PathBuf> {
        let name = rel.file_name()?;
        match self.partial_dir.as_ref()? {
            PartialDir::PerDirectory(dir) => Some(rel.parent().unwrap_or(Path::new("")).join(dir).join(name)),
            PartialDir::Single(dir) => Some(dir.join(name)),
        }
    }

    /// A kept partial file for `rel`, if a regular one is there.
    pub(crate) fn existing_partial(&self, root: &ModuleRoot, rel: &Path) -> Option<PathBuf> {
        let p = self.partial_path(rel)?;
        root.lstat(&p).ok().filter(|m| m.is_file()).map(|_| p)
    }

    /// Whether the partial dir that `rel` would use is a symlink in the
    /// module: the client's path would lead wherever the link does.
    pub(crate) fn partial_dir_is_link(&self, root: &ModuleRoot, rel: &Path) -> bool {
        let Some(p) = self.partial_path(rel) else { return false };
        let dir = p.parent().unwrap_or(Path::new(""));
        !dir.as_os_str().is_empty() && root.lstat(dir).is_ok_and(|m| m.file_type().is_symlink())
    }

    /// The directory temporary files go in when it is not the target's
    /// own (`--temp-dir`, the module's `temp dir`), opened; `None`: beside
    /// the target.
    pub(crate) fn separate_temp_dir(&self, root: &ModuleRoot) -> Option<io::Result<ModuleDir>> {
        self.temp.as_ref().map(|(rel, _)| root.dir(rel))
    }

    /// Make the partial dir that `partial` (a path from [`partial_path`])
    /// goes in (`0700`; a non-directory there is replaced), and open it.
    ///
    /// [`partial_path`]: Staging::partial_path
    pub(crate) fn make_partial_dir(root: &ModuleRoot, partial: &Path) -> io::Result<(ModuleDir, OsString)> {
        let dir_rel = partial.parent().unwrap_or(Path::new(""));
        match root.lstat(dir_rel) {
            Ok(m) if m.is_dir() => {}
            found => {
                let (parent, name) = root.parent_of(dir_rel)?;
                if found.is_ok() {
                    parent.unlink(&name)?;
                }
                match parent.mkdir(&name, 0o700) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
            }
        }
        root.parent_of(partial)
    }

    /// Remove `partial` and then its partial dir if that is now empty.
    pub(crate) fn discard_partial(&self, root: &ModuleRoot, partial: &Path) {
        if let Ok((dir, name)) = root.parent_of(partial) {
            let _ = dir.unlink(&name);
        }
        self.remove_partial_dir(root, partial);
    }

    /// Remove the partial dir `partial` was in, if it is empty (a single
    /// absolute partial dir stays, as upstream's).
    pub(crate) fn remove_partial_dir(&self, root: &ModuleRoot, partial: &Path) {
        if matches!(self.partial_dir, Some(PartialDir::Single(_))) {
            return;
        }
        if let Some(dir_rel) = partial.parent() {
            if let Ok((parent, name)) = root.parent_of(dir_rel) {
                let _ = parent.rmdir(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_paths_are_per_directory_and_confined() {
        let o = TransferOptions {
            partial_dir: Some("/../.rsync-partial/".into()),
            ..TransferOptions::default()
        };
        let s = Staging::new(&o, Path::new("up"), Path::new("/m"), None);
        assert_eq!(s.partial_path(Path::new("up/d/f")), Some(PathBuf::from(".rsync-partial/f")));
        let o = TransferOptions {
            partial_dir: Some("../.rsync-partial/".into()),
            ..TransferOptions::default()
        };
        let s = Staging::new(&o, Path::new("up"), Path::new("/m"), None);
        assert_eq!(s.partial_path(Path::new("up/d/f")), Some(PathBuf::from("up/d/.rsync-partial/f")));
        assert_eq!(s.partial_path(Path::new("f")), Some(PathBuf::from(".rsync-partial/f")));
        let none = Staging::new(&TransferOptions::default(), Path::new(""), Path::new("/m"), None);
        assert_eq!(none.partial_path(Path::new("f")), None);
    }

    #[test]
    fn partial_dirs_are_made_and_removed_when_empty() {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir(top.path().join("d")).unwrap();
        let root = ModuleRoot::open(top.path()).unwrap();
        let p = Path::new("d/.p/f");
        let (dir, name) = Staging::make_partial_dir(&root, p).unwrap();
        let (file, temp) = dir.create_temp(&name).unwrap();
        drop(file);
        dir.rename(&temp, &name).unwrap();
        assert!(top.path().join("d/.p/f").is_file());
        Staging::default().discard_partial(&root, p);
        assert!(!top.path().join("d/.p").exists());
    }
}
