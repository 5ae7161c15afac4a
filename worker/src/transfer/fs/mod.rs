//! The file system as a session sees it: the module as a root nothing
//! escapes ([`module_root`] to read, [`module_dir`] to change), what one
//! entry's stat says, `fake super`'s stored attributes, the symlink
//! rules, and sanitising the paths a client or operator names.

pub mod entry_stat;
pub mod fake_super;
pub mod module_dir;
pub mod module_root;
pub mod paths;
pub mod symlinks;
