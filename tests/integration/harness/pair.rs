//! The differential setup: one source tree served by stock `rsync --daemon`
//! and by oxrsyncd on the same config.

use std::path::Path;

use super::daemon::Daemon;
use super::stock::StockDaemon;

/// Both daemons over one tree, stopped and removed on drop.
pub struct Pair {
    /// The served tree.
    pub src: tempfile::TempDir,
    pub stock: StockDaemon,
    pub ours: Daemon,
}

/// Build a tree with `build`, then start both daemons on the config that
/// `modules` returns for the tree's path (module sections only).
pub fn start_pair(build: impl Fn(&Path), modules: impl Fn(&Path) -> String) -> Pair {
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let config = format!("use chroot = no\n{}", modules(src.path()));
    let stock = StockDaemon::start(&config);
    let ours = Daemon::start(&config, &["--workers=2"]);
    Pair { src, stock, ours }
}

/// Set a path's atime and mtime (not following a symlink).
pub fn set_mtime(path: &Path, secs: i64, nsec: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, nsec);
    nix::sys::stat::utimensat(None, path, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
}
