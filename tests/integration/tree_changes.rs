//! A tree that changes between two re-syncs: whatever the daemon keeps
//! from one session to the next (today the `-c` digest cache, and any
//! cache of the tree's listings), the second re-sync must see every change
//! exactly as stock's daemon sees it. For each kind of change (content,
//! content behind a restored mtime under `-c`, an added file, a removed
//! file, a chmod, a new directory, a rename, a size-only change) the same
//! client run against both daemons, after warm re-syncs, must itemize the
//! same lines and leave the same tree.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::client::rsync;
use crate::harness::daemon::Daemon;
use crate::harness::stock::StockDaemon;
use crate::harness::tree::{set_mtime, snapshot, TreeBuilder};

/// A kind of change: its name, how to make it, the client's extra options.
type Change<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a [&'a str]);

fn build(root: &Path) {
    let t = TreeBuilder::new(root);
    for d in 0..4 {
        for f in 0..25 {
            t.file(format!("d{d}/f{f:02}"), format!("file {d}/{f} ").repeat(f + 1));
        }
    }
    t.file("top.txt", "top");
}

/// One re-sync against each daemon into its own copy: the itemized lines.
fn resync(args: &[&str], stock: &StockDaemon, ours: &Daemon, dst: &Path) -> (Vec<String>, Vec<String>) {
    let run = |url: String, to: &Path| {
        let mut all = vec!["-ai", "--delete"];
        all.extend_from_slice(args);
        all.push(&url);
        let to = format!("{}/", to.display());
        all.push(&to);
        let r = rsync(&all);
        assert_eq!(r.code, 0, "{}", r.stderr);
        // The copy's own path differs between the two runs.
        let mut lines: Vec<String> = r
            .stdout
            .lines()
            .filter(|l| !l.starts_with("created directory "))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    (
        run(format!("rsync://{}/m/", stock.addr), &dst.join("stock")),
        run(ours.url("m/"), &dst.join("ours")),
    )
}

#[test]
fn every_change_between_two_resyncs_is_seen_like_stock() {
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let config = format!("use chroot = no\n[m]\n path = {}\n", src.path().display());
    let stock = StockDaemon::start(&config);
    // One worker, so every re-sync finds what the earlier ones left behind.
    let ours = Daemon::start(&config, &["--workers=1"]);
    let dst = tempfile::tempdir().unwrap();

    // A first copy, then warm re-syncs with and without -c: nothing to do.
    let (s, o) = resync(&[], &stock, &ours, dst.path());
    assert_eq!(o, s);
    for args in [&[][..], &["-c"][..], &["-c"][..]] {
        let (s, o) = resync(args, &stock, &ours, dst.path());
        assert_eq!((o.clone(), s.clone()), (Vec::<String>::new(), Vec::<String>::new()), "{args:?}");
    }

    let root = src.path();
    let changes: Vec<Change> = vec![
        (
            "content and mtime",
            Box::new(|| {
                std::fs::write(root.join("d0/f03"), "new content").unwrap();
                set_mtime(&root.join("d0/f03"), 1_700_000_000, 0);
            }),
            &[],
        ),
        (
            "content behind a restored mtime and size, seen by -c",
            Box::new(|| {
                let p = root.join("d1/f07");
                let before = std::fs::symlink_metadata(&p).unwrap();
                let len = before.len() as usize;
                std::fs::write(&p, "Z".repeat(len)).unwrap();
                set_mtime(
                    &p,
                    std::os::unix::fs::MetadataExt::mtime(&before),
                    std::os::unix::fs::MetadataExt::mtime_nsec(&before),
                );
            }),
            &["-c"],
        ),
        (
            "an added file",
            Box::new(|| std::fs::write(root.join("d2/added"), "added").unwrap()),
            &[],
        ),
        (
            "a removed file",
            Box::new(|| std::fs::remove_file(root.join("d3/f10")).unwrap()),
            &[],
        ),
        (
            "a chmod",
            Box::new(|| std::fs::set_permissions(root.join("d0/f11"), std::fs::Permissions::from_mode(0o744)).unwrap()),
            &[],
        ),
        (
            "a new directory with a file",
            Box::new(|| {
                std::fs::create_dir(root.join("d4")).unwrap();
                std::fs::write(root.join("d4/inside"), "inside").unwrap();
            }),
            &[],
        ),
        (
            "a rename",
            Box::new(|| std::fs::rename(root.join("d2/f01"), root.join("d2/renamed")).unwrap()),
            &[],
        ),
        (
            "a size-only change under -c",
            Box::new(|| {
                let p = root.join("d3/f20");
                let before = std::fs::symlink_metadata(&p).unwrap();
                std::fs::write(&p, "short").unwrap();
                set_mtime(&p, std::os::unix::fs::MetadataExt::mtime(&before), 0);
            }),
            &["-c"],
        ),
    ];
    for (what, change, args) in changes {
        change();
        let (s, o) = resync(args, &stock, &ours, dst.path());
        assert!(!s.is_empty(), "{what}: stock saw nothing, the change is not a change");
        assert_eq!(o, s, "{what}: the second re-sync itemizes like stock");
        assert_eq!(snapshot(&dst.path().join("ours")), snapshot(&dst.path().join("stock")), "{what}");
        assert_eq!(snapshot(&dst.path().join("ours")), snapshot(root), "{what}: the copy is the tree");
        // And once more: nothing left to do, on either side.
        let (s, o) = resync(args, &stock, &ours, dst.path());
        assert_eq!((o, s), (Vec::<String>::new(), Vec::<String>::new()), "{what}: settled");
    }
}
