//! Building the file list the sender announces: the client's paths are
//! sanitised and resolved inside the module, then walked (recursively with
//! `-r`), filtered, and turned into [`FileEntry`]s with the module-relative
//! path each one is read from.
//!
//! Containment: every path is sanitised and module-relative, and every
//! access goes through [`ModuleRoot`], which resolves it as if the module
//! were a chroot (see [`crate::transfer::fs::module_root`]). Symlinks are only
//! followed when the client asked (`-L`, `-k`, `--copy-unsafe-links`), and
//! then inside the module: a target that does not exist there has no
//! referent.
//!
//! - [`walker`]: the walker's settings and what a walk yields.
//! - [`args`]: the entry points, one requested path at a time.
//! - [`tree`]: one path, and a directory's contents, recursively.
//! - [`relative`]: `-R`, with its implied directories.

pub(crate) mod args;
pub(crate) mod relative;
pub(crate) mod tree;
pub(crate) mod walker;
