//! The `pid file`: written once the daemon is up (after detaching), removed
//! on a clean exit.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A written pid file, removed on drop.
pub struct PidFile {
    path: PathBuf,
}

/// The pid file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write pid file {path}: {source}")]
pub struct PidFileError {
    path: PathBuf,
    source: std::io::Error,
}

impl PidFile {
    /// Write our pid to `path` (replacing a stale file; a symlink is replaced, never followed).
    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        let err = |source| PidFileError {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        writeln!(f, "{}", std::process::id()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(PidFile { path: path.to_path_buf() })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
