//! `-A` and `-X` on a push: what the client's list says of each entry's
//! POSIX ACLs and extended attributes, kept for both threads, compared
//! with what the module has and applied to it, as upstream's receiving
//! side (`receive_acl`, `set_acl` in acls.c; `receive_xattr`,
//! `xattr_diff`, `send_xattr_request`, `recv_xattr_request`, `set_xattr`
//! in xattrs.c).
//!
//! - `store`: the session's received ACL lists and attribute sets, and
//!   the list decoder's hook that fills them ([`store::MetaTail`]);
//! - `acl_wire` / `xattr_wire`: decoding them from hostile bytes, bounded
//!   and charged to the session's budget;
//! - `acl_apply` / `xattr_apply`: comparing with a file and writing them,
//!   through an `O_PATH` descriptor of the file inside the module;
//! - `xattr_request`: the generator's request for long values it lacks
//!   and the receiver's reading of the client's answer.

pub(crate) mod acl_apply;
pub(crate) mod acl_wire;
pub(crate) mod on_receive;
pub(crate) mod store;
pub(crate) mod xattr_apply;
pub(crate) mod xattr_request;
pub(crate) mod xattr_wire;

#[cfg(test)]
mod tests;

pub(crate) use store::{MetaStore, MetaTail};
