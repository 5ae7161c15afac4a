//! The item flags the generator sends with an entry (upstream's
//! `itemize`): what changed, as `-i` shows it.

use std::os::unix::fs::MetadataExt;

use crate::transfer::fs::fake_super::Seen;

use crate::transfer::flist::FileEntry;
use oxrsyncd_protocol::item;

/// Upstream's `itemize()` (protocol >= 29 itemizes everything): how `e`
/// differs from what is there (`old`; None: it is new), on top of `base`.
pub(super) fn item_flags(setup: &crate::transfer::receive::setup::ReceiveSetup<'_>, e: &FileEntry, old: Option<&Seen>, base: u16) -> u16 {
    let o = setup.options;
    let mut f = base;
    let Some(st) = old else {
        return f | item::IS_NEW;
    };
    let keep_time = o.preserve_times
        && if e.is_dir() {
            !o.omit_dir_times
        } else if e.is_symlink() {
            !o.omit_link_times
        } else {
            true
        };
    if e.is_reg() && e.size != st.len() {
        f |= item::REPORT_SIZE;
    }
    if keep_time {
        if st.mtime() != e.mtime {
            f |= item::REPORT_TIME;
        }
    } else if f & (item::TRANSFER | item::LOCAL_CHANGE) != 0 {
        f |= item::REPORT_TIME;
    }
    if o.preserve_atimes && !e.is_dir() && st.atime() != e.atime {
        f |= item::REPORT_ATIME;
    }
    // Linux cannot chmod a symlink: its permissions never differ.
    if !e.is_symlink() {
        if o.preserve_perms {
            if st.mode() & 0o7777 != e.mode & 0o7777 {
                f |= item::REPORT_PERMS;
            }
        } else if o.preserve_executability && ((st.mode() & 0o111 != 0) ^ (e.mode & 0o111 != 0)) {
            f |= item::REPORT_PERMS;
        }
    }
    if o.preserve_uid && (setup.may_chown || setup.fake_super) && st.uid() != e.uid {
        f |= item::REPORT_OWNER;
    }
    if o.preserve_gid && st.gid() != e.gid {
        f |= item::REPORT_GROUP;
    }
    f
}

/// Flags worth telling the client (upstream's SIGNIFICANT_ITEM_FLAGS).
pub(super) fn significant(iflags: u16) -> bool {
    iflags & !(item::BASIS_TYPE_FOLLOWS | item::XNAME_FOLLOWS | item::LOCAL_CHANGE) != 0
}
