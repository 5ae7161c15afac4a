//! `fake super = yes` modules, differential: an unprivileged module user
//! keeps owners, special permission bits, devices, fifos and symlinks in
//! the `user.rsync.%stat` attribute. The same push must leave the same
//! files and attributes as stock's daemon, a repeated push must find
//! nothing to change, and a pull must give the original tree back.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::harness::client::{clients, rsync_bin};
use crate::harness::daemon::Daemon;
use crate::harness::stock::StockDaemon;
use crate::harness::tree::{snapshot, TreeBuilder};

/// What root's backup holds: owners, odd modes, a device, a fifo, links.
fn build_source(root: &Path) {
    let t = TreeBuilder::new(root);
    // A file, then its owner, mode (after the owner, as chown may clear
    // set-id bits) and time.
    let w = |p: &str, data: &[u8], mode: u32, owner: (u32, u32)| {
        t.file(p, data).owner(p, owner.0, owner.1).mode(p, mode).mtime(p, 1_600_000_000, 0);
    };
    w("plain.txt", b"plain\n", 0o644, (0, 0));
    w("setuid-tool", b"#!/bin/sh\n", 0o4755, (0, 0));
    w("secret", b"key\n", 0o600, (1234, 5678));
    w("readonly", b"ro\n", 0o444, (0, 0));
    w("home/alice/notes", b"alice's\n", 0o640, (1001, 1001));
    t.dir("shared")
        .mode("shared", 0o1777)
        .owner("home/alice", 1001, 1001)
        .symlink("link", "plain.txt")
        .symlink("abs-link", "/etc/hostname")
        .node("null-dev", libc::S_IFCHR | 0o666, libc::makedev(1, 3))
        .node("fifo", libc::S_IFIFO | 0o620, 0)
        .mtimes(
            ["link", "abs-link", "null-dev", "fifo", "home/alice", "home", "shared"],
            1_600_000_000,
            0,
        );
}

/// A module owned by `nobody` (the module's uid), fake super on.
fn module(dir: &Path) -> String {
    std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    format!(
        "use chroot = no\n[f]\n path = {}\n read only = no\n uid = 65534\n gid = 65534\n fake super = yes\n",
        dir.display()
    )
}

/// Directory times: the module root's is the time of the run.
fn without_root_time(mut t: std::collections::BTreeMap<String, String>) -> std::collections::BTreeMap<String, String> {
    t.remove("");
    t
}

#[test]
fn fake_super_keeps_owners_modes_and_nodes_like_stock() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; the fake super test is skipped");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    build_source(src.path());
    for (label, bin) in clients() {
        let (stock_dst, ours_dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let stock = StockDaemon::start(&module(stock_dst.path()));
        let ours = Daemon::start(&module(ours_dst.path()), &["--workers=1"]);
        let from = format!("{}/", src.path().display());
        let push = |addr: std::net::SocketAddr, extra: &[&str]| {
            let url = format!("rsync://{addr}/f/");
            let mut args = vec!["-a", "--numeric-ids", "-i"];
            args.extend_from_slice(extra);
            args.extend([from.as_str(), url.as_str()]);
            rsync_bin(&bin, &args, &[])
        };
        for round in ["first", "again", "again at protocol 29"] {
            let extra: &[&str] = if round.ends_with("29") { &["--protocol=29"] } else { &[] };
            let (s, o) = (push(stock.addr, extra), push(ours.addr, extra));
            assert_eq!((s.code, o.code), (0, 0), "{label} {round}: {o:?}\nstock: {s:?}\n{}", ours.log());
            assert_eq!(s.visible(true), o.visible(false), "{label} {round}: output differs");
            assert_eq!(
                without_root_time(snapshot(stock_dst.path())),
                without_root_time(snapshot(ours_dst.path())),
                "{label} {round}: trees differ"
            );
            if round != "first" {
                assert!(o.stdout.trim().is_empty(), "{label} {round}: nothing to change: {o:?}");
            }
        }
        // The module user owns everything; what root would have set is in the attribute.
        let kept = snapshot(ours_dst.path());
        assert!(kept["setuid-tool"].contains("user.rsync.%stat=104755 0,0 0:0"), "{kept:?}");
        assert!(
            kept["null-dev"].starts_with("file 644 65534:65534") && kept["null-dev"].contains("user.rsync.%stat=20644 1,3 0:0"),
            "{kept:?}"
        );
        assert!(kept["link"].contains("user.rsync.%stat=120777 0,0 0:0"), "{kept:?}");
        // (Munged: the module is not chrooted.)
        assert_eq!(std::fs::read(ours_dst.path().join("link")).unwrap(), b"/rsyncd-munged/plain.txt");

        // Pulled back as root, the tree is the original, from either daemon.
        let pull = |addr: std::net::SocketAddr| {
            let dst = tempfile::tempdir().unwrap();
            let o = rsync_bin(
                &bin,
                &[
                    "-a",
                    "--numeric-ids",
                    &format!("rsync://{addr}/f/"),
                    &format!("{}/", dst.path().display()),
                ],
                &[],
            );
            assert_eq!(o.code, 0, "{label}: {o:?}");
            dst
        };
        let (back_stock, back_ours) = (pull(stock.addr), pull(ours.addr));
        let original = without_root_time(snapshot(src.path()));
        assert_eq!(
            without_root_time(snapshot(back_stock.path())),
            original,
            "{label}: stock's round trip"
        );
        assert_eq!(without_root_time(snapshot(back_ours.path())), original, "{label}: our round trip");
        let meta = std::fs::symlink_metadata(back_ours.path().join("null-dev")).unwrap();
        assert_eq!((meta.mode() & libc::S_IFMT, meta.rdev()), (libc::S_IFCHR, libc::makedev(1, 3)));
        // The listing a client sees is the original's too.
        let list = |addr: std::net::SocketAddr| rsync_bin(&bin, &["--list-only", "-r", &format!("rsync://{addr}/f/")], &[]);
        let (s, o) = (list(stock.addr), list(ours.addr));
        assert_eq!(s.visible(true), o.visible(false), "{label}: listings differ");
    }
}
