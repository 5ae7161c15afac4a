//! The file system as a session sees it: the module as a root nothing
//! escapes ([`module_root`] to read, [`module_dir`] to change), what one
//! entry's stat says, `fake super`'s stored attributes, the symlink
//! rules, and sanitising the paths a client or operator names.

pub(crate) mod entry_stat;
pub(crate) mod fake_super;
pub(crate) mod module_dir;
pub(crate) mod module_root;
pub(crate) mod paths;
pub(crate) mod symlinks;
