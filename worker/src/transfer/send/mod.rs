//! The daemon as sender (a client pull): the sender's steps, the file
//! lists it walks and announces (all at once or incrementally), the
//! whole-file checksums and their cache, ACLs and xattrs for the list,
//! and removing sources the client confirmed.

pub(crate) mod acls;
pub(crate) mod checksum_cache;
pub(crate) mod flist_checksums;
pub(crate) mod glob;
pub(crate) mod incremental;
pub(crate) mod remove_source;
pub(crate) mod sender;
pub(crate) mod walk;
pub(crate) mod xattrs;
