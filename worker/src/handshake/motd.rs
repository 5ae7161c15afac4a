//! The message of the day, sent after our greeting on every connection.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Largest motd we send; anything longer is cut (a motd is a banner, not a file server).
const MAX_MOTD: u64 = 64 * 1024;

/// The motd bytes followed by the extra newline upstream sends (the newline
/// alone when the file cannot be read), or nothing when no motd is configured. A symlink not owned by
/// root or by us is refused, so a planted link cannot leak another file.
pub(crate) fn motd_bytes(path: Option<&Path>) -> Vec<u8> {
    let Some(path) = path else { return Vec::new() };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let me = nix::unistd::geteuid().as_raw();
        if meta.file_type().is_symlink() && meta.uid() != 0 && meta.uid() != me {
            tracing::warn!("refusing motd file {}: symlink owned by uid {}", path.display(), meta.uid());
            return b"\n".to_vec();
        }
    }
    let mut out = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_MOTD).read_to_end(&mut out);
    }
    out.push(b'\n');
    out
}
