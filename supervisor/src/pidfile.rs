//! The `pid file`: written once the daemon is up (after detaching), removed
//! on a clean exit, and handed over on a binary upgrade as nginx does:
//! the old supervisor renames it to `<pid file>.oldbin` before it starts
//! the new binary, the new one writes its own, and the old one renames
//! `.oldbin` back if the new one fails (or removes it when it exits after
//! a successful upgrade).
//!
//! A supervisor only ever removes a file that still holds its own pid, so
//! two supervisors sharing the path during an upgrade never delete each
//! other's.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A written pid file, removed on drop.
pub struct PidFile {
    /// The configured path.
    path: PathBuf,
    /// True while our pid lives at `<path>.oldbin` (an upgrade is under way
    /// or succeeded); drop then removes that file instead.
    renamed: bool,
}

/// The pid file could not be written or moved.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} pid file {path}: {source}")]
pub struct PidFileError {
    action: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

impl PidFile {
    /// Write our pid to `path` (replacing a stale file; a symlink is replaced, never followed).
    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        let err = |source| PidFileError {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        writeln!(f, "{}", std::process::id()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(PidFile {
            path: path.to_path_buf(),
            renamed: false,
        })
    }

    /// `<path>.oldbin`, where the old supervisor's pid waits during an upgrade.
    pub fn oldbin_path(&self) -> PathBuf {
        oldbin_of(&self.path)
    }

    /// The pid written in `<path>.oldbin`, if that file exists and holds one.
    pub fn oldbin_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.oldbin_path()).ok()?.trim().parse().ok()
    }

    /// The configured path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Before starting a new binary: move our pid file to `.oldbin`.
    pub fn rename_to_oldbin(&mut self) -> Result<(), PidFileError> {
        if self.renamed {
            return Ok(());
        }
        std::fs::rename(&self.path, self.oldbin_path()).map_err(|source| PidFileError {
            action: "rename to .oldbin",
            path: self.path.clone(),
            source,
        })?;
        self.renamed = true;
        Ok(())
    }

    /// The new binary failed: put `.oldbin` back (over whatever the new one wrote).
    pub fn restore_from_oldbin(&mut self) -> Result<(), PidFileError> {
        if !self.renamed {
            return Ok(());
        }
        std::fs::rename(self.oldbin_path(), &self.path).map_err(|source| PidFileError {
            action: "restore .oldbin as",
            path: self.path.clone(),
            source,
        })?;
        self.renamed = false;
        Ok(())
    }
}

fn oldbin_of(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".oldbin");
    PathBuf::from(name)
}

/// Remove `path` if it names this process.
fn remove_if_ours(path: &Path) {
    let ours = std::fs::read_to_string(path).is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if self.renamed {
            remove_if_ours(&self.oldbin_path());
        } else {
            remove_if_ours(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldbin_round_trip_and_drop_removes_only_our_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pid");
        let mut pid = PidFile::create(&path).unwrap();
        let me = format!("{}\n", std::process::id());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), me);

        pid.rename_to_oldbin().unwrap();
        assert!(!path.exists());
        assert_eq!(std::fs::read_to_string(pid.oldbin_path()).unwrap(), me);
        // The new supervisor writes its own.
        std::fs::write(&path, "999999\n").unwrap();
        pid.restore_from_oldbin().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), me);
        assert!(!pid.oldbin_path().exists());

        // Success: the new one owns the path; our drop removes only .oldbin.
        pid.rename_to_oldbin().unwrap();
        std::fs::write(&path, "999999\n").unwrap();
        let oldbin = pid.oldbin_path();
        drop(pid);
        assert!(!oldbin.exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "999999\n");
    }

    #[test]
    fn drop_leaves_a_file_that_names_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pid");
        let pid = PidFile::create(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(pid);
        assert!(path.exists());
    }
}
