//! The receiver's part of `-X` (upstream's `recv_files` around
//! `recv_xattr_request` and `set_xattr`): the client's answer to our
//! request read after its echo of an item, and the received set written
//! on a file just rebuilt (before it takes its name) or, for an item
//! without data whose attributes differ, on the file in place.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oxrsyncd_protocol::item;
use oxrsyncd_protocol::message::fname_in;
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::IoError;

use crate::transfer::delta::{ChecksumKind, ChecksumParams};
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::fake_super::proc_path;
use crate::transfer::receive::meta::{xattr_apply, xattr_request};
use crate::transfer::receive::setup::ReceiveError;
use crate::transfer::receive::setup::ReceiveSetup;
use crate::transfer::receive::shared::Shared;

/// After the client's echo of an item with `iflags` for `entry`: read the
/// long values it sends with it, and for an item without data write the
/// set on the file. Returns io_error bits for what failed.
pub(crate) fn after_item<R: Read, W: Write>(
    s: &Shared<'_, W>,
    input: &mut R,
    entry: Option<&FileEntry>,
    iflags: u16,
) -> Result<i32, ReceiveError> {
    let o = s.setup.options;
    if o.preserve_xattrs == 0 || o.dry_run || !xattr_request::request_follows(iflags, xattr_optim(s.setup)) {
        return Ok(0);
    }
    let Some(e) = entry else {
        return Err(ReceiveError::Violation("recv_xattr_request: internal data error!\n".into()));
    };
    xattr_request::read_answer(input, &s.setup.meta, e.xattr_set, &e.name)?;
    if iflags & item::TRANSFER != 0 || (iflags & item::XNAME_FOLLOWS != 0 && iflags & item::LOCAL_CHANGE != 0) {
        return Ok(0);
    }
    let rel = s.dest.path_of(&e.name);
    let Ok(fd) = s.root.resolve_fd(&rel, libc::O_PATH | libc::O_NOFOLLOW) else {
        return Ok(0);
    };
    let path = proc_path(&fd);
    write_set(s, e, &path, Some(&path), &rel)
}

/// Write the set of `e` on the file named by `target` (a `/proc/self/fd`
/// name), long values the client did not send taken from `basis` when
/// they match. Failures are reported; returns their io_error bits.
pub(crate) fn write_set<W: Write>(
    s: &Shared<'_, W>,
    e: &FileEntry,
    target: &str,
    basis: Option<&str>,
    rel: &Path,
) -> Result<i32, ReceiveError> {
    let Some((n, set)) = e.xattr_set.and_then(|n| s.setup.meta.xattr_set(n).map(|set| (n, set))) else {
        return Ok(0);
    };
    let shown = String::from_utf8_lossy(&fname_in(rel.as_os_str().as_bytes(), s.setup.module_name)).into_owned();
    let fetched = s.setup.meta.fetched.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let failures = xattr_rules(s.setup, &s.params).write(target, n, &set, &fetched, basis, &shown);
    for text in &failures {
        s.message(MsgTag::ErrorXfer, format!("rsync: [receiver] {text}\n"))?;
    }
    Ok(if failures.is_empty() { 0 } else { IoError::General.bit() })
}

/// [`write_set`] on a file we hold open, its long values matched against
/// the basis at module-relative `basis_rel` (if there is one).
pub(crate) fn write_set_open<W: Write>(
    s: &Shared<'_, W>,
    e: &FileEntry,
    file: &std::fs::File,
    basis_rel: &Path,
    rel: &Path,
) -> Result<i32, ReceiveError> {
    if s.setup.options.preserve_xattrs == 0 {
        return Ok(0);
    }
    let target = format!("/proc/self/fd/{}", file.as_raw_fd());
    let basis_fd = s.root.resolve_fd(basis_rel, libc::O_PATH | libc::O_NOFOLLOW).ok();
    let basis = basis_fd.as_ref().map(proc_path);
    write_set(s, e, &target, basis.as_deref(), rel)
}

/// How this push reads, compares and writes attributes (`params`: the
/// session's checksum agreement, whose seed long values are summed with).
pub(crate) fn xattr_rules(setup: &ReceiveSetup<'_>, params: &ChecksumParams) -> xattr_apply::XattrRules {
    xattr_apply::XattrRules {
        user_only: !setup.may_chown && !setup.fake_super,
        fake_super: setup.fake_super,
        sum: ChecksumParams {
            kind: ChecksumKind::implied(setup.protocol),
            ..*params
        },
    }
}

/// Whether the protocol 31 attribute optimisation is on (no request for
/// a hard link's local change; upstream's `want_xattr_optim`).
pub(crate) fn xattr_optim(setup: &ReceiveSetup<'_>) -> bool {
    setup.protocol >= 31 && !setup.has_compat(oxrsyncd_protocol::setup::compat::AVOID_XATTR_OPTIM)
}
