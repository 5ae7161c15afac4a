//! The differential setup: one source tree served by stock `rsync --daemon`
//! and by oxrsyncd on the same config (for pushes into two modules, see
//! `push_pair`).

use std::path::Path;

use super::daemon::Daemon;
use super::stock::StockDaemon;

/// Both daemons over one tree, stopped and removed on drop.
pub struct Pair {
    /// The served tree.
    pub src: tempfile::TempDir,
    /// Stock `rsync --daemon`, the oracle.
    pub stock: StockDaemon,
    /// oxrsyncd, two workers.
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
