//! Pulls with incremental recursion (the stock client's default with `-r`):
//! the daemon sends the top level first and every directory's contents in
//! a list of its own, interleaved with the transfer. Differential: the same
//! stock-client command against stock `rsync --daemon` and oxrsyncd on the
//! same module tree must give the same exit code, the same user-visible
//! output (`receiving incremental file list`, the order of -v/-i lines,
//! errors) and the same destination tree.

use std::path::Path;

use crate::harness::client::{clients, pull_paths, ClientRun};
use crate::harness::pair::{start_pair, Pair};
use crate::harness::tree::{set_mtime, snapshot, TreeBuilder};

/// Directories under `tree/`: with four files each, more entries than the
/// sender's look-ahead (1000), so lists go out in several batches while
/// files are transferred, and the client releases lists as it goes.
const DIRS: usize = 250;

/// A tree with several levels, many directories, empty and unreadable
/// directories, hard links within and across lists, symlinks.
fn build_tree(root: &Path) {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let t = TreeBuilder::new(root);
    t.file("small.txt", b"hello world\n").file("empty", b"").file("big.bin", &big);
    for d in 0..DIRS {
        for f in 0..4 {
            t.file(format!("tree/d{d:03}/f{f}.txt"), format!("{d}-{f}\n").repeat(d % 7 + 1));
        }
        if d % 25 == 0 {
            t.file(format!("tree/d{d:03}/sub/deeper/x"), b"x")
                .dir(format!("tree/d{d:03}/emptysub"));
        }
    }
    t.file("chain/a/b/c/d/e/f/leaf", b"leaf\n").dir("emptydir").dir("chain/a/b/empty");
    // Root-owned 0750: sessions run as `nobody` (stock's default as root),
    // so its contents cannot be listed: an opendir error in its own list.
    t.file("locked/inner/secret", b"secret\n").mode("locked", 0o750);
    // Hard links: a group inside one directory, and one across lists.
    t.file("hl/m", b"linked\n");
    for n in ["a", "z", "c", "k"] {
        t.hard_link(format!("hl/{n}"), "hl/m");
    }
    t.hard_link(format!("tree/d{:03}/hl", DIRS - 1), "tree/d000/f0.txt")
        .hard_link("chain/a/b/c/small-link", "small.txt")
        .symlink("link-in", "small.txt")
        .symlink("tree/d001/sub-link", "../f0.txt")
        .mtime("small.txt", 1_600_000_000, 123_456_789);
}

fn pair() -> Pair {
    start_pair(build_tree, |root| {
        format!(
            "[mod]\n path = {0}\n comment = incremental\n[tree]\n path = {0}/tree\n",
            root.display()
        )
    })
}

/// Run one client command (`paths` inside the module, one URL each)
/// against both daemons with every stock client, into fresh directories or
/// copies of `seed`; check everything a user sees is the same. Returns our
/// last run.
fn compare_seeded(p: &Pair, options: &[&str], paths: &[&str], seed: Option<&dyn Fn(&Path)>) -> ClientRun {
    let mut last = None;
    for (label, bin) in clients() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        if let Some(seed) = seed {
            seed(d1.path());
            seed(d2.path());
        }
        let stock = pull_paths(&bin, p.stock.addr, options, paths, d1.path());
        let ours = pull_paths(&bin, p.ours.addr, options, paths, d2.path());
        let (vs, vo) = (stock.visible(true), ours.visible(false));
        assert!(
            vs == vo,
            "{label} {options:?} {paths:?}: output differs (exit {} vs {})\nstdout: {}\nstderr: {}\nlog:\n{}",
            vs.0,
            vo.0,
            first_difference(&vs.1, &vo.1),
            first_difference(&vs.2, &vo.2),
            p.ours.log()
        );
        let (s1, s2) = (snapshot(d1.path()), snapshot(d2.path()));
        let differing: Vec<_> = s1
            .keys()
            .chain(s2.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| s1.get(*k) != s2.get(*k) && !touched_by_the_run(s1.get(*k), s2.get(*k)))
            .map(|k| format!("{k}: stock {:?}, ours {:?}", s1.get(k), s2.get(k)))
            .collect();
        assert!(
            differing.is_empty(),
            "{label} {options:?} {paths:?}: trees differ:\n{}",
            differing.join("\n")
        );
        last = Some(ours);
    }
    last.expect("at least one client")
}

/// Two snapshots of one directory that differ only in an mtime the run
/// itself set (the client deleting or making something in it, seconds
/// apart in the two runs): not a difference between the daemons.
fn touched_by_the_run(stock: Option<&String>, ours: Option<&String>) -> bool {
    let (Some(a), Some(b)) = (stock, ours) else { return false };
    let split = |v: &str| {
        v.starts_with("dir ")
            .then(|| v.rsplit_once(" mtime "))
            .flatten()
            .map(|(head, t)| (head.to_string(), t.parse::<i64>().ok()))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match (split(a), split(b)) {
        (Some((ha, Some(ta))), Some((hb, Some(tb)))) => ha == hb && (ta - tb).abs() <= 2 && now - ta.min(tb) < 600,
        _ => false,
    }
}

/// Where two outputs part, with a little context (outputs are long).
fn first_difference(stock: &[String], ours: &[String]) -> String {
    let Some(i) = (0..stock.len().max(ours.len())).find(|&i| stock.get(i) != ours.get(i)) else {
        return "same".into();
    };
    let from = i.saturating_sub(3);
    let show = |v: &[String]| v.iter().skip(from).take(i - from + 4).cloned().collect::<Vec<_>>().join("\n  ");
    format!("differs at line {i}\n stock:\n  {}\n ours:\n  {}", show(stock), show(ours))
}

fn compare(p: &Pair, options: &[&str], paths: &[&str]) -> ClientRun {
    compare_seeded(p, options, paths, None)
}

#[test]
fn whole_module_at_every_incremental_protocol() {
    let p = pair();
    for proto in [None, Some("--protocol=31"), Some("--protocol=30")] {
        for base in [&["-a"][..], &["-av"], &["-avi"], &["--list-only", "-r"]] {
            let mut opts = base.to_vec();
            opts.extend(proto);
            let ours = compare(&p, &opts, &["mod/"]);
            if opts.contains(&"-av") || opts.contains(&"-avi") {
                assert!(
                    ours.stdout.starts_with("receiving incremental file list\n"),
                    "{opts:?}: not incremental?\n{}",
                    ours.stdout
                );
            }
            // The unreadable directory is reported from its own list (only
            // unreadable when the daemons run sessions as `nobody`, as root).
            if is_root() && !opts.contains(&"--list-only") {
                assert_eq!(ours.code, 23, "{opts:?}: {ours:?}");
                assert!(
                    ours.stderr.contains("opendir \"locked\" (in mod) failed: Permission denied (13)"),
                    "{opts:?}: {ours:?}"
                );
            }
        }
    }
}

#[test]
fn hard_links_checksums_compression_and_stats() {
    let p = pair();
    for proto in [None, Some("--protocol=30")] {
        // -H without -v: the client prints a hard-link group's "=>" lines
        // when its receiver reports the leader done, a race between the
        // client's own processes (stock against stock differs run to run).
        for base in [
            &["-aH"][..],
            &["-aH", "--stats"],
            &["-avc"],
            &["-avz"],
            &["-a", "--stats"],
            &["-avn"],
        ] {
            let mut opts = base.to_vec();
            opts.extend(proto);
            compare(&p, &opts, &["mod/"]);
        }
    }
}

#[test]
fn sub_paths_and_several_arguments() {
    let p = pair();
    // A single directory (the first list has one entry, so the sender
    // sends the next list at once), its contents, nested paths, a file,
    // empty and unreadable directories, something missing.
    for path in [
        "mod/tree",
        "mod/tree/",
        "mod/chain/a/b",
        "mod/tree/d025/sub",
        "mod/small.txt",
        "mod/emptydir",
        "mod/emptydir/",
        "mod/locked",
        "mod/nosuch",
    ] {
        compare(&p, &["-avi"], &[path]);
        compare(&p, &["-aH"], &[path]);
    }
    // Several arguments, the same directory twice (one list for both),
    // directories of the same name under different parents, wildcards.
    for paths in [
        &["mod/tree/d000", "mod/tree/d001"][..],
        &["mod/tree/d000", "mod/tree/d000"],
        &["mod/tree/d000/sub", "mod/tree/d025/sub"],
        &["mod/hl/", "mod/chain/"],
        &["mod/small.txt", "mod/chain"],
        &["mod/tree/d01*"],
    ] {
        compare(&p, &["-avi"], paths);
    }
}

#[test]
fn deleting_into_an_existing_tree() {
    let p = pair();
    let src = p.src.path().join("tree");
    // An older copy of `tree/` (module `tree`, or `tree/` inside `mod`): a
    // changed file, a stale file, an extra directory, missing directories.
    let seed_at = |prefix: &'static str| {
        let src = src.clone();
        move |dst: &Path| {
            let dst = dst.join(prefix);
            for d in [0, 7, 100] {
                let dir = dst.join(format!("d{d:03}"));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::copy(src.join(format!("d{d:03}/f1.txt")), dir.join("f1.txt")).unwrap();
            }
            std::fs::write(dst.join("d007/f1.txt"), b"changed\n").unwrap();
            std::fs::write(dst.join("d100/stale"), b"stale\n").unwrap();
            std::fs::create_dir_all(dst.join("extra")).unwrap();
            std::fs::write(dst.join("extra/zz"), b"zz\n").unwrap();
            for f in ["d000/f1.txt", "d007/f1.txt", "d100/f1.txt", "d100/stale", "extra/zz"] {
                set_mtime(&dst.join(f), 1_500_000_000, 0);
            }
        }
    };
    let seed = seed_at("");
    // Without -v during the transfer: the client's generator prints
    // deletions while its receiver prints transfers, a race in stock too.
    for opts in [
        &["-a", "--delete"][..],
        &["-a", "--delete-after"],
        &["-a", "--delete-delay", "-H"],
        &["-avi", "--delete-after"],
        &["-a", "--delete", "--protocol=30"],
    ] {
        compare_seeded(&p, opts, &["tree/"], Some(&seed));
    }
    // With the unreadable directory the client skips deletions once it
    // knows of the I/O error. At protocol 30 that is MSG_IO_ERROR, which
    // (as stock's) overtakes the lists, so it knows before deleting
    // anything; from 31 it learns it from a list's end, and what it deleted
    // by then is a race between the client's processes.
    let seed = seed_at("tree");
    compare_seeded(&p, &["-a", "--delete", "--protocol=30"], &["mod/"], Some(&seed));
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
