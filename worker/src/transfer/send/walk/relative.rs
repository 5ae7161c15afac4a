//! `-R` (`--relative`): the sender lists each requested path with its
//! directories, as upstream's `send_file_list` does in relative mode.
//!
//! A path may carry a `/./` marker: what precedes it only locates the
//! files (`mod/base/./a/b` sends `a/b`, read from `base/a/b`). Every
//! directory on the way (`a` for `a/b`) is sent as an *implied* directory
//! (stat following symlinks, no client filters, never its contents), so
//! the client can create it with the right attributes.
//!
//! Without incremental recursion all of that goes into the one list, and
//! implied directories shared with the previous path are not repeated
//! (upstream's `lastpath`). With it, the first list holds only each path's
//! first component; the rest of the path waits on that directory's node as
//! a *relname* and is sent in the directory's own list, one level at a
//! time (upstream's `F_DIR_RELNAMES` and `send1extra`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use bstr::ByteSlice;

use crate::transfer::flist::FileEntry;
use crate::transfer::options::client::MissingArgs;
use crate::transfer::send::walk::walker::{Notice, Walked, Walker};
use oxrsyncd_protocol::message::{cat, fname_in, syserr};
use oxrsyncd_protocol::IoError;

/// State kept across the arguments of one list, as upstream's statics.
#[derive(Debug, Default)]
pub(crate) struct RelativeState {
    /// The last path whose implied directories were sent (`lastpath`),
    /// with the base directory it was found in.
    last: Option<(Vec<u8>, Vec<u8>)>,
    /// A leading `./` asks for `.` itself as an implied directory, once.
    dot_dir_sent: bool,
}

/// How a requested name ends (upstream's name types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameType {
    Normal,
    /// `.` or `dir/./`: the directory whose contents are sent.
    DotDir,
    /// `dir/`: a directory named with a trailing slash.
    SlashEnding,
}

/// Sanitise a client path for `-R`: like the daemon's usual sanitising
/// (no leading `/`, no `..` climbing out) but keeping `.` components, which
/// carry the `/./` marker. An empty result is `.`.
pub fn sanitize_keep_dots(path: &[u8]) -> Vec<u8> {
    let trailing_slash = path.ends_with(b"/");
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split_str("/") {
        match comp {
            b"" => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return b".".to_vec();
    }
    let mut out = bstr::join("/", parts);
    if trailing_slash {
        out.push(b'/');
    }
    out
}

/// Split a sanitised `-R` path at its first `/./` into the directory it is
/// read from and the name it is sent as, with the name's type and whether
/// it asked for an implied `.` (a leading `./`).
fn split_marker(path: &[u8]) -> (Vec<u8>, Vec<u8>, NameType, bool) {
    let (dir, rest) = match path.find("/./") {
        Some(i) => (path[..i].to_vec(), path[i + 3..].trim_start_with(|c| c == '/')),
        None => (Vec::new(), path),
    };
    let implied_dot = rest.starts_with(b"./") && rest.len() > 2;
    let trailing = rest.ends_with(b"/");
    let parts: Vec<&[u8]> = rest.split_str("/").filter(|c| !c.is_empty() && *c != b".").collect();
    let name = bstr::join("/", parts);
    let kind = if name.is_empty() {
        NameType::DotDir
    } else if trailing {
        NameType::SlashEnding
    } else {
        NameType::Normal
    };
    (dir, name, kind, implied_dot)
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        b.to_vec()
    } else {
        [a, b"/", b].concat()
    }
}

/// A module-relative path as bytes, for the module root's lookups.
fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

impl Walker<'_> {
    /// One requested path in relative mode. `shallow`: incremental
    /// recursion's first list.
    pub(crate) fn walk_relative_arg(&self, sanitized: &[u8], shallow: bool, state: &mut RelativeState, out: &mut Walked) {
        let (dir, name, kind, implied_dot) = split_marker(sanitized);
        let base = as_path(&dir).to_path_buf();
        let searchable = || self.root.stat(&base.join("."));
        if !dir.is_empty() && (self.daemon_filters.excludes(&dir, true) || searchable().is_err()) {
            let err = searchable()
                .err()
                .unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT));
            out.io_error |= IoError::General.bit();
            let what = cat(&[b"change_dir ", &fname_in(&dir, self.module_name), b" failed"]);
            out.notices.push(Notice::Error(syserr("sender", &what, &err)));
            return;
        }
        if implied_dot && !state.dot_dir_sent {
            state.dot_dir_sent = true;
            if let Some(entry) = self.implied_dir(b".", &base, &dir) {
                out.entries.push(entry);
            }
        }
        let (name, kind) = if name.is_empty() {
            (b".".to_vec(), NameType::DotDir)
        } else {
            (name, kind)
        };
        let shown = if dir.is_empty() {
            name.clone()
        } else {
            cat(&[b"/", &dir, b"/", &name])
        };
        let local = if name == b"." { base.clone() } else { base.join(as_path(&name)) };
        let module_path = if name == b"." { dir.clone() } else { join(&dir, &name) };
        let follow = self.options.copy_dirlinks || kind != NameType::Normal;
        let meta = match self.metadata(&local, follow) {
            Ok(meta) if !self.daemon_filters.excludes(&module_path, meta.is_dir()) => meta,
            result => {
                let err = result.err().unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT));
                if err.kind() == std::io::ErrorKind::NotFound && self.options.missing_args == MissingArgs::Ignore {
                    return;
                }
                if err.kind() == std::io::ErrorKind::NotFound && self.options.missing_args == MissingArgs::Delete {
                    // Listed with mode 0: the client deletes its copy.
                    out.entries.push((FileEntry::new(name.clone(), 0), local.clone()));
                    return;
                }
                if err.kind() != std::io::ErrorKind::NotFound {
                    out.io_error |= IoError::General.bit();
                }
                let what = cat(&[b"link_stat ", &fname_in(&shown, self.module_name), b" failed"]);
                out.notices.push(Notice::Error(syserr("sender", &what, &err)));
                return;
            }
        };
        if kind != NameType::DotDir && self.client_excludes(&name, &module_path, meta.is_dir()) {
            return;
        }
        if meta.is_dir() && !self.options.recursive && !self.options.dirs {
            out.notices.push(Notice::Info(cat(&[b"skipping directory ", &name, b"\n"])));
            return;
        }
        if shallow && name != b"." {
            // Incremental recursion: only the first component now.
            if let Some((first, rest)) = name.split_once_str("/") {
                self.first_implied(first, rest, &base, &dir, state, out);
                return;
            }
        } else if self.implied_dirs() {
            if let Some((parents, _)) = name.rsplit_once_str("/") {
                self.implied_dirs_of(parents, &base, &dir, state, out);
            }
        }
        let content = self.options.recursive || (self.options.dirs && kind != NameType::Normal);
        let mut entry = self.entry(name.clone(), &local, &meta);
        if meta.is_dir() && content {
            entry.top_dir = true;
        } else if meta.is_dir() {
            entry.no_content_dir = true;
        }
        out.entries.push((entry, local.clone()));
        if meta.is_dir() && content && (!shallow || kind == NameType::DotDir) {
            let prefix = if name == b"." {
                Vec::new()
            } else {
                [name.as_slice(), b"/"].concat()
            };
            let recurse = self.options.recursive && !shallow;
            self.walk_dir(&local, &prefix, recurse, meta.dev(), out);
        }
    }

    /// Whether implied directories are sent: always from protocol 30,
    /// before that unless the client said `--no-implied-dirs`.
    fn implied_dirs(&self) -> bool {
        self.protocol >= 30 || !self.options.no_implied_dirs
    }

    /// Non-incremental: the implied directories of `parents` not already
    /// sent for the previous path.
    fn implied_dirs_of(&self, parents: &[u8], base: &Path, dir: &[u8], state: &mut RelativeState, out: &mut Walked) {
        let components: Vec<&[u8]> = parents.split_str("/").collect();
        let shared = match &state.last {
            Some((last_dir, last)) if last_dir == dir => components.iter().zip(last.split_str("/")).take_while(|(a, b)| **a == *b).count(),
            _ => 0,
        };
        if shared == components.len() {
            return;
        }
        for depth in shared..components.len() {
            let name = bstr::join("/", &components[..=depth]);
            if let Some(entry) = self.implied_dir(&name, base, dir) {
                out.entries.push(entry);
            }
        }
        state.last = Some((dir.to_vec(), parents.to_vec()));
    }

    /// Incremental: send `first` as an implied directory (unless it was the
    /// last one sent) and leave `rest` for its own list.
    fn first_implied(&self, first: &[u8], rest: &[u8], base: &Path, dir: &[u8], state: &mut RelativeState, out: &mut Walked) {
        let same = matches!(&state.last, Some((d, l)) if d == dir && l == first);
        if !same {
            state.last = None;
            let Some(entry) = self.implied_dir(first, base, dir) else { return };
            if !entry.0.is_dir() {
                return;
            }
            out.entries.push(entry);
            state.last = Some((dir.to_vec(), first.to_vec()));
        }
        out.relnames.entry(first.to_vec()).or_default().push(rest.to_vec());
    }

    /// An implied directory entry: stat following symlinks (inside the
    /// module), no client filters, the module's filters still apply.
    fn implied_dir(&self, name: &[u8], base: &Path, dir: &[u8]) -> Option<(FileEntry, std::path::PathBuf)> {
        let local = if name == b"." {
            base.to_path_buf()
        } else {
            base.join(as_path(name))
        };
        let meta = self.metadata(&local, true).ok()?;
        let module_path = if name == b"." { dir.to_vec() } else { join(dir, name) };
        if self.daemon_filters.excludes(&module_path, meta.is_dir()) {
            return None;
        }
        let mut entry = self.entry(name.to_vec(), &local, &meta);
        if meta.is_dir() {
            entry.no_content_dir = true;
            entry.top_dir = self.protocol >= 30;
        }
        Some((entry, local))
    }

    /// Incremental recursion: what waits below directory `dir_name` (read
    /// from `local`, module-relative): each relname one level down, in its
    /// own list.
    pub(crate) fn walk_relnames(&self, dir_name: &[u8], local: &Path, relnames: &[Vec<u8>], out: &mut Walked) {
        let mut state = RelativeState::default();
        for rel in relnames {
            if let Some((first, rest)) = rel.split_once_str("/") {
                let name = join(dir_name, first);
                let same = matches!(&state.last, Some((_, l)) if *l == name);
                if !same {
                    let Some(entry) = self.implied_dir_at(&name, &local.join(as_path(first))) else {
                        continue;
                    };
                    if !entry.0.is_dir() {
                        continue;
                    }
                    out.entries.push(entry);
                    state.last = Some((Vec::new(), name.clone()));
                }
                out.relnames.entry(name).or_default().push(rest.to_vec());
                continue;
            }
            let name = join(dir_name, rel);
            let child = local.join(as_path(rel));
            let module_path = child.as_os_str().as_bytes();
            let meta = match self.metadata(&child, self.options.copy_dirlinks) {
                Ok(meta) => meta,
                Err(e) => {
                    out.io_error |= IoError::General.bit();
                    let what = cat(&[b"link_stat ", &fname_in(&name, self.module_name), b" failed"]);
                    out.notices.push(Notice::Error(syserr("sender", &what, &e)));
                    continue;
                }
            };
            if self.daemon_filters.excludes(module_path, meta.is_dir()) || self.client_excludes(&name, module_path, meta.is_dir()) {
                continue;
            }
            let mut entry = self.entry(name.clone(), &child, &meta);
            if meta.is_dir() {
                entry.top_dir = true;
            }
            out.entries.push((entry, child));
        }
    }

    fn implied_dir_at(&self, name: &[u8], local: &Path) -> Option<(FileEntry, std::path::PathBuf)> {
        let meta = self.metadata(local, true).ok()?;
        if self.daemon_filters.excludes(local.as_os_str().as_bytes(), meta.is_dir()) {
            return None;
        }
        let mut entry = self.entry(name.to_vec(), local, &meta);
        entry.no_content_dir = true;
        entry.top_dir = self.protocol >= 30;
        Some((entry, local.to_path_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_keeps_the_marker() {
        let sanitize = |p: &str| String::from_utf8(sanitize_keep_dots(p.as_bytes())).unwrap();
        assert_eq!(sanitize("/"), ".");
        assert_eq!(sanitize("/a/./b"), "a/./b");
        assert_eq!(sanitize("/./a/b/"), "./a/b/");
        assert_eq!(sanitize("/a/../../etc"), "etc");
        assert_eq!(sanitize("//a//b"), "a/b");
        assert_eq!(sanitize_keep_dots(b"/d\xff/../../caf\xe9/"), b"caf\xe9/", "bytes are kept");
    }

    #[test]
    fn marker_splits_location_from_name() {
        let split = |p: &str| {
            let (dir, name, kind, dot) = split_marker(p.as_bytes());
            (String::from_utf8(dir).unwrap(), String::from_utf8(name).unwrap(), kind, dot)
        };
        assert_eq!(split("a/b/c"), ("".into(), "a/b/c".into(), NameType::Normal, false));
        assert_eq!(split("base/./a/b"), ("base".into(), "a/b".into(), NameType::Normal, false));
        assert_eq!(split("base/./"), ("base".into(), "".into(), NameType::DotDir, false));
        assert_eq!(split("a/b/"), ("".into(), "a/b".into(), NameType::SlashEnding, false));
        assert_eq!(split("./a/b"), ("".into(), "a/b".into(), NameType::Normal, true));
        assert_eq!(split("."), ("".into(), "".into(), NameType::DotDir, false));
        assert_eq!(
            split_marker(b"b\xff/./c\xe9/d"),
            (b"b\xff".to_vec(), b"c\xe9/d".to_vec(), NameType::Normal, false),
            "bytes that are not UTF-8 are kept"
        );
    }
}
