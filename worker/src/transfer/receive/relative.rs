//! `-R` on a push: which directories of the client's list are *content*
//! directories (the ones `--delete` may sweep), which are only *implied*
//! parents, and the missing parents a `--no-implied-dirs` list leaves for
//! the receiver to make (upstream's FLAG_CONTENT_DIR / FLAG_IMPLIED_DIR
//! handling in `recv_file_entry` and `make_path` in the generator).
//!
//! From protocol 30 the sender flags both on the wire (XMIT_NO_CONTENT_DIR,
//! with XMIT_TOP_DIR for an implied parent). Before 30 only the top
//! directories are flagged, and the receiver works out the rest from the
//! order the names arrive in, as upstream does.

use std::io;
use std::path::{Path, PathBuf};

use crate::transfer::flist::sort::SortedEntry;
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::receive::setup::ReceiveError;

/// Protocols below 30: mark the directories that are not content
/// directories (`no_content_dir`), in the order received. A top directory
/// is one, and with `-r` so is every directory that follows it below its
/// name (with `-R`) or anywhere (without).
pub fn mark_content_dirs_before_30(entries: &mut [FileEntry], recursive: bool, relative: bool) {
    let mut in_hierarchy = false;
    let mut hierarchy_len = 0usize;
    let mut previous: Vec<u8> = Vec::new();
    for e in entries.iter_mut() {
        // Upstream compares with the previous name's shared prefix (at most 255 bytes).
        let shared = e.name.iter().zip(&previous).take_while(|(a, b)| a == b).count().min(255);
        if e.is_dir() {
            let name = e.name.as_slice();
            let content = if e.top_dir {
                in_hierarchy = recursive;
                hierarchy_len = if name == b"." { 0 } else { name.len() };
                if relative && name.ends_with(b"/.") {
                    hierarchy_len -= 2;
                }
                true
            } else if in_hierarchy {
                let below = !relative || hierarchy_len == 0 || (shared >= hierarchy_len && name.get(hierarchy_len) == Some(&b'/'));
                in_hierarchy = below;
                below
            } else {
                false
            };
            e.no_content_dir = !content;
        }
        previous.clone_from(&e.name);
    }
}

/// Whether `e` is a parent the sender added only to carry `-R` paths
/// (protocol 30 and later flag these).
pub(crate) fn is_implied_dir(e: &FileEntry, protocol: u32) -> bool {
    protocol >= 30 && e.is_dir() && e.top_dir && e.no_content_dir
}

/// Make the missing directories above module-relative `rel`, as
/// upstream's `make_path` does for `-R` lists without implied parents:
/// silently, with the umask's default mode.
pub(crate) fn make_parents(root: &ModuleRoot, rel: &Path) -> io::Result<()> {
    let Some(parent) = rel.parent() else { return Ok(()) };
    if parent.as_os_str().is_empty() || root.lstat(parent).is_ok() {
        return Ok(());
    }
    let mode = 0o777 & !crate::transfer::options::chmod::current_umask();
    let mut path = PathBuf::new();
    for part in parent.components() {
        path.push(part);
        if root.lstat(&path).is_ok() {
            continue;
        }
        let (dir, name) = root.parent_of(&path)?;
        match dir.mkdir(&name, mode) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Every entry's directory must be a directory of the list itself, or the
/// list is bad (upstream's generator aborts at such an entry; this checks
/// before anything is written). Entries at the top are exempt.
pub fn check_parents_listed(files: &[SortedEntry]) -> Result<(), ReceiveError> {
    let dirs: std::collections::HashSet<&[u8]> = files.iter().filter(|f| f.entry.is_dir()).map(|f| f.entry.name.as_slice()).collect();
    // (A missing argument's directory need not be listed: upstream warns.)
    for f in files.iter().filter(|f| f.active && f.entry.mode != 0) {
        let name = f.entry.name.as_slice();
        let Some(slash) = name.iter().rposition(|&b| b == b'/') else {
            continue;
        };
        let parent = &name[..slash];
        if parent != b"." && !dirs.contains(parent) {
            return Err(ReceiveError::InvalidPath(String::from_utf8_lossy(name).into_owned()));
        }
    }
    Ok(())
}
