//! The daemon as sender (a client pull): the sender's steps, the file
//! lists it walks and announces (all at once or incrementally), the
//! whole-file checksums and their cache, ACLs and xattrs for the list,
//! and removing sources the client confirmed.

pub mod acls;
pub mod checksum_cache;
pub mod flist_checksums;
pub mod glob;
pub mod incremental;
pub mod remove_source;
pub mod sender;
pub mod walk;
pub mod xattrs;
