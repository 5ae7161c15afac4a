//! `--compare-dest`, `--copy-dest` and `--link-dest` on a push (upstream's
//! `try_dests_reg`): before asking for a file, look for it in the given
//! directories. One unchanged there (same content by the quick check, same
//! permissions, owner and times) is not transferred: with compare-dest it
//! is left out, with link-dest hard-linked, with copy-dest copied. One with
//! the same content but other attributes is copied; any other regular file
//! there becomes the basis of the delta.
//!
//! The directories are inside the module, as upstream's daemon sanitises
//! them: an absolute one from the module root, a relative one from the
//! destination (`..` may climb to the module root, not above).

use std::path::{Path, PathBuf};

use crate::transfer::fs::paths::operator_path;
use crate::transfer::options::client::{AltDest, TransferOptions};

/// The push's alternate destination directories.
#[derive(Debug)]
pub(crate) struct AltDests {
    pub kind: AltDest,
    /// Module-relative, in the order given.
    dirs: Vec<PathBuf>,
    /// The push's destination: names are relative to it.
    dest: PathBuf,
}

/// How well a file in one of the directories matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Match {
    /// A regular file of that name: a basis for the delta.
    Exists,
    /// Same content by the quick check.
    SameContent,
    /// Same content and attributes.
    Unchanged,
}

impl AltDests {
    /// The directories, module-relative, in the order given.
    pub(crate) fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub(crate) fn new(o: &TransferOptions, dest: &Path) -> Option<AltDests> {
        let kind = o.alt_dest?;
        if o.basis_dirs.is_empty() {
            return None;
        }
        let dirs = o.basis_dirs.iter().map(|d| operator_path(dest, d, true)).collect();
        Some(AltDests {
            kind,
            dirs,
            dest: dest.to_path_buf(),
        })
    }

    /// Upstream's warnings for directories that are missing or not
    /// directories (`check_alt_basis_dirs`), as the client names them (an
    /// absolute one under the module's path).
    pub(crate) fn warnings(
        &self,
        o: &TransferOptions,
        root: &crate::transfer::fs::module_root::ModuleRoot,
        module_path: &Path,
    ) -> Vec<String> {
        let opt = match self.kind {
            AltDest::Compare => "--compare-dest",
            AltDest::Copy => "--copy-dest",
            AltDest::Link => "--link-dest",
        };
        let mut out = Vec::new();
        for (dir, given) in self.dirs.iter().zip(&o.basis_dirs) {
            let shown = if given.starts_with('/') {
                module_path.join(dir).to_string_lossy().into_owned()
            } else {
                given.trim_end_matches('/').to_string()
            };
            match root.stat(dir) {
                Err(_) => out.push(format!("{opt} arg does not exist: {shown}\n")),
                Ok(m) if !m.is_dir() => out.push(format!("{opt} arg is not a dir: {shown}\n")),
                Ok(_) => {}
            }
        }
        out
    }

    /// How many directories there are.
    pub(crate) fn len(&self) -> usize {
        self.dirs.len()
    }

    /// Where module-relative `rel` would be in directory `j`.
    pub(crate) fn path(&self, j: usize, rel: &Path) -> Option<PathBuf> {
        let tail = rel.strip_prefix(&self.dest).unwrap_or(rel);
        self.dirs.get(j).map(|d| d.join(tail))
    }

    /// Upstream's search: the first directory where the file is unchanged,
    /// else the first where its content is the same, else the first where
    /// a regular file of that name exists. `rate` says how one matches.
    pub(crate) fn find(&self, rel: &Path, mut rate: impl FnMut(&Path) -> Option<Match>) -> Option<(usize, Match, PathBuf)> {
        let mut best: Option<(usize, Match, PathBuf)> = None;
        for j in 0..self.dirs.len() {
            let Some(path) = self.path(j, rel) else { continue };
            let Some(level) = rate(&path) else { continue };
            if best.as_ref().is_none_or(|(_, b, _)| level > *b) {
                best = Some((j, level, path));
            }
            if level == Match::Unchanged {
                break;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_resolve_inside_the_module_and_the_best_match_wins() {
        let o = TransferOptions {
            alt_dest: Some(AltDest::Link),
            basis_dirs: vec!["../prev".into(), "/../../snap/".into()],
            ..TransferOptions::default()
        };
        let a = AltDests::new(&o, Path::new("backups/today")).unwrap();
        assert_eq!(a.path(0, Path::new("backups/today/d/f")), Some(PathBuf::from("backups/prev/d/f")));
        assert_eq!(a.path(1, Path::new("backups/today/d/f")), Some(PathBuf::from("snap/d/f")));
        let o = TransferOptions {
            alt_dest: Some(AltDest::Compare),
            basis_dirs: vec!["../../../../x".into()],
            ..TransferOptions::default()
        };
        let a = AltDests::new(&o, Path::new("d")).unwrap();
        assert_eq!(a.path(0, Path::new("d/f")), Some(PathBuf::from("x/f")));
        let levels = [Some(Match::Exists), Some(Match::SameContent), None, Some(Match::Unchanged)];
        let o = TransferOptions {
            alt_dest: Some(AltDest::Copy),
            basis_dirs: vec!["a".into(), "b".into(), "c".into(), "e".into()],
            ..TransferOptions::default()
        };
        let a = AltDests::new(&o, Path::new("")).unwrap();
        let mut n = 0;
        let found = a.find(Path::new("f"), |_| {
            n += 1;
            levels[n - 1]
        });
        assert_eq!(found, Some((3, Match::Unchanged, PathBuf::from("e/f"))));
        let mut n = 0;
        let found = a.find(Path::new("f"), |_| {
            n += 1;
            levels[..3].get(n - 1).copied().flatten()
        });
        assert_eq!(found, Some((1, Match::SameContent, PathBuf::from("b/f"))));
    }
}
