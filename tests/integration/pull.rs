//! Pulls (the daemon sends), differential: the same stock-client command
//! against stock `rsync --daemon` and oxrsyncd on the same module tree must
//! produce the same destination tree, exit code and user-visible output.

use std::path::Path;

use crate::harness::client::{clients, pull_paths, rsync_bin, ClientRun};
use crate::harness::pair::{start_pair, Pair};
use crate::harness::tree::{set_mtime, snapshot, TreeBuilder};

/// A varied module tree.
fn build_tree(root: &Path) {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let t = TreeBuilder::new(root);
    t.file("empty", b"")
        .file("small.txt", b"hello world\n")
        .file("big.bin", &big)
        .file("dir/nested/deep/file.c", b"int main() { return 0; }\n")
        .file("dir/other.o", [0u8; 10_000])
        .file("unicode/h\u{e9}llo w\u{f6}rld \u{1F600}.txt", "caf\u{e9}\n")
        .file("odd/name with spaces", b"x")
        .file("odd/-dash", b"y")
        .dir("emptydir")
        .symlink("link-in", "small.txt")
        .symlink("link-out", "../../etc/passwd")
        .symlink("dangling", "nowhere")
        .mode("small.txt", 0o640)
        .mode("dir/nested", 0o750);
    // A fifo, where one can be made (a failure is ignored).
    let _ = t.fifo("fifo", 0o644);
    // A fixed past mtime with nanoseconds on one file.
    t.mtime("small.txt", 1_600_000_000, 123_456_789);
}

fn pair() -> Pair {
    start_pair(build_tree, |root| {
        format!("[mod]\n path = {}\n comment = pull tests\n", root.display())
    })
}

/// Output lines with what legitimately differs between two daemons (byte
/// counts and speedup, which depend on framing) normalised away.
fn visible(run: &ClientRun) -> (i32, Vec<String>, Vec<String>) {
    run.visible(false)
}

/// Stock's daemon may close with unread input and so reset the connection
/// (the client then adds a read error); we close in order. Drop that line
/// from the stock side only.
fn visible_stock(run: &ClientRun) -> (i32, Vec<String>, Vec<String>) {
    run.visible(true)
}

/// Run the same pull against both daemons into fresh directories (or
/// copies of `seed`), with every stock client; returns the last client's runs
/// after checking that each client saw the same on both daemons.
fn compare(
    p: &Pair,
    options: &[&str],
    path: &str,
    seed: Option<&dyn Fn(&Path)>,
) -> (ClientRun, ClientRun, tempfile::TempDir, tempfile::TempDir) {
    let mut last = None;
    for (label, bin) in clients() {
        let runs = compare_with(&bin, p, options, path, seed);
        assert_eq!(
            visible_stock(&runs.0),
            visible(&runs.1),
            "{label} {options:?} {path}: output differs\nstock: {:?}\nours: {:?}\nlog:\n{}",
            runs.0,
            runs.1,
            p.ours.log()
        );
        assert_eq!(
            snapshot(runs.2.path()),
            snapshot(runs.3.path()),
            "{label} {options:?} {path}: trees differ"
        );
        last = Some(runs);
    }
    last.expect("at least one client")
}

fn compare_with(
    bin: &Path,
    p: &Pair,
    options: &[&str],
    path: &str,
    seed: Option<&dyn Fn(&Path)>,
) -> (ClientRun, ClientRun, tempfile::TempDir, tempfile::TempDir) {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    if let Some(seed) = seed {
        seed(d1.path());
        seed(d2.path());
    }
    let s = pull_paths(bin, p.stock.addr, options, &[path], d1.path());
    let o = pull_paths(bin, p.ours.addr, options, &[path], d2.path());
    (s, o, d1, d2)
}

fn assert_same_pull(p: &Pair, options: &[&str], path: &str) {
    compare(p, options, path, None);
}

#[test]
fn archive_pull_of_a_whole_module() {
    let p = pair();
    assert_same_pull(&p, &["-a"], "mod/");
    assert_same_pull(&p, &["-a", "--no-inc-recursive", "-v"], "mod/");
    assert_same_pull(&p, &["-rlptD", "--no-inc-recursive", "-i"], "mod/");
}

#[test]
fn pulls_at_every_protocol() {
    let p = pair();
    for proto in ["--protocol=31", "--protocol=30", "--protocol=29", "--protocol=28", "--protocol=27"] {
        assert_same_pull(&p, &["-a", "--no-inc-recursive", proto], "mod/");
    }
}

#[test]
fn checksums_and_compression() {
    let p = pair();
    for extra in [
        ["--checksum-choice=md5", "-c"],
        ["--checksum-choice=xxh64", "-W"],
        ["--checksum-choice=xxh3", "-c"],
        ["--checksum-choice=md4", "-a"],
    ] {
        let mut opts = vec!["-a", "--no-inc-recursive"];
        opts.extend_from_slice(&extra);
        assert_same_pull(&p, &opts, "mod/");
    }
    for z in [
        "--compress-choice=zlib",
        "--compress-choice=zlibx",
        "--compress-choice=zstd",
        "--compress-choice=lz4",
    ] {
        assert_same_pull(&p, &["-a", "--no-inc-recursive", "-z", z], "mod/");
    }
}

#[test]
fn delta_pull_into_an_existing_tree() {
    let p = pair();
    let src = p.src.path().to_path_buf();
    let seed = move |dst: &Path| {
        // An older copy: the big file with a few bytes changed, a stale small file.
        let mut big = std::fs::read(src.join("big.bin")).unwrap();
        big[1_000_000] ^= 0xFF;
        big.truncate(2_900_000);
        std::fs::write(dst.join("big.bin"), big).unwrap();
        std::fs::write(dst.join("small.txt"), b"old\n").unwrap();
        // Same stale times on both sides, so files the daemon may not read stay identical.
        for f in ["big.bin", "small.txt"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    let (s, o, d1, d2) = compare(&p, &["-a", "--no-inc-recursive", "--stats"], "mod/", Some(&seed));
    assert_eq!(s.code, o.code, "{s:?}\n{o:?}\n{}", p.ours.log());
    assert_eq!(snapshot(d1.path()), snapshot(d2.path()));
    let literal = |r: &ClientRun| r.stdout.lines().find(|l| l.starts_with("Literal data:")).map(str::to_string);
    assert_eq!(literal(&s), literal(&o), "the delta sends the same literal data");
}

#[test]
fn single_files_subdirs_and_listing() {
    let p = pair();
    assert_same_pull(&p, &["-a"], "mod/small.txt");
    assert_same_pull(&p, &["-a"], "mod/dir");
    assert_same_pull(&p, &["-a", "--no-inc-recursive"], "mod/dir/nested/");
    let (s, o, _, _) = compare(&p, &["--list-only", "--no-inc-recursive", "-r"], "mod/", None);
    assert_eq!(visible_stock(&s), visible(&o));
}

#[test]
fn missing_files_are_reported_like_stock() {
    let p = pair();
    let (s, o, _, _) = compare(&p, &["-a"], "mod/nosuch", None);
    assert_eq!(s.code, 23);
    assert_eq!(visible_stock(&s), visible(&o));
}

/// Following links (`-L`, `--copy-unsafe-links`) never leaves the module.
/// Stock 3.5 without chroot stats a target outside the module (leaking its
/// size and time into the file list) and only refuses at open time; we treat
/// such a target as missing, as a chroot would. Trees and exit codes match;
/// the message is ours.
#[test]
fn symlink_following_stays_inside_the_module() {
    let p = pair();
    for opts in [&["-a", "--copy-unsafe-links"][..], &["-aL"][..], &["-aL", "--no-inc-recursive"][..]] {
        for (label, bin) in clients() {
            let (s, o, d1, d2) = compare_with(&bin, &p, opts, "mod/", None);
            assert_eq!(s.code, o.code, "{label} {opts:?}: {s:?}\n{o:?}");
            assert_eq!(snapshot(d1.path()), snapshot(d2.path()), "{label} {opts:?}");
            assert!(
                o.stderr.contains("symlink has no referent: \"link-out\" (in mod)"),
                "{label} {opts:?}: {o:?}"
            );
            assert!(!d2.path().join("link-out").exists(), "a link leaving the module is never followed");
        }
    }
}

/// `-L` reads an in-module link as its target (the list already has the
/// target's metadata): the open follows it, inside the module.
#[test]
fn copy_links_reads_an_in_module_link_as_its_target() {
    let p = start_pair(
        |root| {
            std::fs::write(root.join("real"), b"symlink target content\n").unwrap();
            std::os::unix::fs::symlink("real", root.join("lnk")).unwrap();
        },
        |root| format!("[m]\n path = {}\n", root.display()),
    );
    for opts in [&["-aL"][..], &["-aL", "--no-inc-recursive"][..], &["-a", "--copy-unsafe-links"][..]] {
        for (label, bin) in clients() {
            let (s, o, d1, d2) = compare_with(&bin, &p, opts, "m/", None);
            assert_eq!((s.code, o.code), (0, 0), "{label} {opts:?}: {o:?}");
            assert_eq!(snapshot(d1.path()), snapshot(d2.path()), "{label} {opts:?}");
        }
    }
    let (_, o, _, d2) = compare_with(Path::new("rsync"), &p, &["-aL"], "m/", None);
    assert_eq!(std::fs::read(d2.path().join("lnk")).unwrap(), b"symlink target content\n", "{o:?}");
    // -c hashes a followed link's target: a destination that has it
    // already gets nothing (a digest of zeros sent the file again).
    let has_it = |d: &Path| {
        for f in ["real", "lnk"] {
            std::fs::write(d.join(f), b"symlink target content\n").unwrap();
            // Without -t the time stays as seeded: the same on both sides.
            set_mtime(&d.join(f), 1_500_000_000, 0);
        }
    };
    let (_, o, _, _) = compare(&p, &["-rLc", "-i", "--no-inc-recursive"], "m/", Some(&has_it));
    assert!(!o.stdout.contains(">f"), "{o:?}");
}

#[test]
fn wildcards_expand_on_the_server() {
    let p = pair();
    assert_same_pull(&p, &["-a"], "mod/*.txt");
    assert_same_pull(&p, &["-a"], "mod/*/");
    assert_same_pull(&p, &["-a"], "mod/nomatch*");
}

/// A file whose blocks moved, and a run of zeros, against an older copy:
/// the search an in-place receiver needs differs from the usual one.
fn moved_blocks_pair() -> (Pair, impl Fn(&Path)) {
    let block = |seed: u8| -> Vec<u8> { (0..7000u32).map(|i| (i.wrapping_mul(31) as u8) ^ seed).collect() };
    let mut old = Vec::new();
    for s in [1u8, 2, 3, 4] {
        old.extend(block(s));
    }
    old.extend(vec![0u8; 30_000]);
    old.extend(block(5));
    let mut new = Vec::new();
    for s in [2u8, 1, 3, 9, 4] {
        new.extend(block(s));
    }
    new.extend(vec![0u8; 20_000]);
    new.extend(block(5));
    new.extend(vec![0u8; 9_000]);
    let p = start_pair(
        move |root| std::fs::write(root.join("moved.bin"), &new).unwrap(),
        |root| format!("[mod]\n path = {}\n max verbosity = 2\n", root.display()),
    );
    let seed = move |dst: &Path| {
        std::fs::write(dst.join("moved.bin"), &old).unwrap();
        set_mtime(&dst.join("moved.bin"), 1_500_000_000, 0);
    };
    (p, seed)
}

#[test]
fn in_place_pulls_never_reference_overwritten_blocks() {
    let (p, seed) = moved_blocks_pair();
    for opts in [
        vec!["-a", "--inplace", "--stats", "-B", "1000"],
        vec!["-a", "--inplace", "--stats", "-B", "1000", "--protocol=28"],
        vec!["-a", "--stats", "-B", "1000"],
    ] {
        let (s, o, d1, d2) = compare(&p, &opts, "mod/", Some(&seed));
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}\n{s:?}\n{o:?}");
        assert!(!o.stderr.contains("failed verification"), "{opts:?}: {o:?}");
        assert_eq!(snapshot(d1.path()), snapshot(d2.path()));
        let line = |r: &ClientRun, label: &str| r.stdout.lines().find(|l| l.starts_with(label)).map(str::to_string);
        for label in ["Literal data:", "Matched data:"] {
            assert_eq!(line(&s, label), line(&o, label), "{opts:?}: {label}");
        }
    }
}

#[test]
fn max_verbosity_lets_the_match_report_through_like_stock() {
    let (p, seed) = moved_blocks_pair();
    // The module allows -vv: the sender's own report reaches the client,
    // with upstream's counters.
    for opts in [vec!["-a", "-vv", "-B", "1000"], vec!["-a", "-vv", "--inplace", "-B", "1000"]] {
        let (_, o, _, _) = compare(&p, &opts, "mod/", Some(&seed));
        assert!(o.stdout.contains("total: matches="), "{opts:?}: {o:?}");
    }
    // -vvv is capped to the module's 2 (the client's own -vvv debugging
    // interleaves its processes, so only our line is checked).
    let (_, o, _, _) = compare_with(Path::new("rsync"), &p, &["-a", "-vvv", "-B", "1000"], "mod/", Some(&seed));
    assert_eq!(o.stdout.matches("total: matches=").count(), 1, "{o:?}");
    let (_, o, _, _) = compare(&p, &["-a", "-v"], "mod/", Some(&seed));
    assert!(!o.stdout.contains("total: matches="), "{o:?}");
}

#[test]
fn relative_paths_like_stock() {
    // As root, so that every path is readable (dir/nested is 0750).
    let p = start_pair(build_tree, |root| {
        format!("[mod]\n path = {}\n uid = root\n gid = root\n", root.display())
    });
    for path in [
        "mod/dir/nested/deep/file.c",
        "mod/dir/./nested/deep",
        "mod/dir/nested/",
        "mod/./dir/other.o",
        "mod/",
        "mod/dir/./",
        "mod/odd/*",
        "mod/dir/nested/nosuch",
        "mod/nosuchdir/./x",
    ] {
        for opts in [
            vec!["-aR", "-i"],
            vec!["-aR", "--no-inc-recursive", "-v"],
            vec!["-aR", "--protocol=29"],
        ] {
            assert_same_pull(&p, &opts, path);
        }
    }
    // Several paths sharing directories, and -d without recursion.
    for opts in [
        vec!["-aR", "-i"],
        vec!["-aR", "--no-inc-recursive", "-i"],
        vec!["-lptR", "-d", "-i"],
    ] {
        let paths = [
            "mod/dir/nested/deep/file.c",
            "mod/odd/name with spaces",
            "mod/dir/other.o",
            "mod/dir/nested/deep",
            "mod/odd/-dash",
            "mod/unicode/",
        ];
        let (s, o, _, _) = compare_several(&p, &opts, &paths);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {s:?}\n{o:?}");
    }
}

/// Like `compare`, with several source paths on one command line.
fn compare_several(p: &Pair, options: &[&str], paths: &[&str]) -> (ClientRun, ClientRun, tempfile::TempDir, tempfile::TempDir) {
    let mut last = None;
    for (label, bin) in clients() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (s, o) = (
            pull_paths(&bin, p.stock.addr, options, paths, d1.path()),
            pull_paths(&bin, p.ours.addr, options, paths, d2.path()),
        );
        assert_eq!(
            visible_stock(&s),
            visible(&o),
            "{label} {options:?} {paths:?}\nstock: {s:?}\nours: {o:?}"
        );
        assert_eq!(
            snapshot(d1.path()),
            snapshot(d2.path()),
            "{label} {options:?} {paths:?}: trees differ"
        );
        last = Some((s, o, d1, d2));
    }
    last.expect("at least one client")
}

#[test]
fn files_from_lists_like_stock() {
    let p = start_pair(build_tree, |root| {
        format!("[mod]\n path = {}\n uid = root\n gid = root\n", root.display())
    });
    let lists = tempfile::tempdir().unwrap();
    let list = lists.path().join("list");
    std::fs::write(
        &list,
        "small.txt\ndir/nested/deep/file.c\nodd/\n# a comment line\n\nunicode\n./dir/other.o\nnosuch\n",
    )
    .unwrap();
    let list0 = lists.path().join("list0");
    std::fs::write(&list0, "small.txt\0dir/nested\0").unwrap();
    // A list inside the module, read by the daemon (--files-from=:path).
    std::fs::write(p.src.path().join("in-module.list"), "empty\ndir/other.o\n").unwrap();
    let ff = format!("--files-from={}", list.display());
    let ff0 = format!("--files-from={}", list0.display());
    for opts in [
        vec!["-a", ff.as_str(), "-i"],
        vec!["-a", ff.as_str(), "--no-inc-recursive", "-v"],
        vec!["-a", ff.as_str(), "-r", "-i"],
        vec!["-a", ff.as_str(), "--no-relative", "-i"],
        vec!["-a", ff.as_str(), "--protocol=30", "-i"],
        vec!["-a", ff.as_str(), "--protocol=29", "-i"],
        vec!["-a", ff.as_str(), "--protocol=27"],
        vec!["-a", ff0.as_str(), "--from0", "-i"],
        vec!["-a", "--files-from=:in-module.list", "-i"],
    ] {
        let (s, _, _, _) = compare(&p, &opts, "mod/", None);
        let lists_nosuch = opts.contains(&ff.as_str());
        assert_eq!(s.code, if lists_nosuch { 23 } else { 0 }, "{opts:?}: {s:?}");
    }
    // A list the module does not have: upstream's option error, in its
    // words, and its exit code (stock 3.5 then resets the connection, exit
    // 10; we end the session in order, exit 4).
    let line = "rsync: failed to open files-from file nolist: No such file or directory\n";
    let (s, o, _, _) = compare_with(Path::new("rsync"), &p, &["-a", "--files-from=:../nolist"], "mod/", None);
    assert!(s.stderr.contains(line), "stock: {s:?}");
    assert!(o.stderr.contains(line) && o.code == 4, "{o:?}");
    // Names below a source directory.
    let sub = lists.path().join("sub");
    std::fs::write(&sub, "nested/deep\nother.o\n").unwrap();
    let ff = format!("--files-from={}", sub.display());
    compare(&p, &["-a", &ff, "-i"], "mod/nosuchdir/", None);
    // Stock 3.2.7 lists other.o but then opens it from the module root
    // instead of dir/ ("file has vanished", exit 24); we send it.
    for (label, bin) in clients() {
        for extra in ["--inc-recursive", "--no-inc-recursive"] {
            let (_, o, _, d2) = compare_with(&bin, &p, &["-a", &ff, extra, "-i"], "mod/dir/", None);
            assert_eq!(o.code, 0, "{label}: {o:?}");
            assert!(
                d2.path().join("other.o").is_file() && d2.path().join("nested/deep").is_dir(),
                "{label}"
            );
        }
    }
}

/// A tree with per-directory filter files (.rsync-filter, .gitignore).
fn merge_tree(root: &Path) {
    let t = TreeBuilder::new(root);
    t.file(".rsync-filter", "# root rules\n- *.log\n- /top-only.txt\n")
        .self_named_files([
            "top-only.txt",
            "a.log",
            "x.tmp",
            "keep.txt",
            "sub/top-only.txt",
            "sub/b.log",
            "sub/important.log",
        ])
        .file("sub/.rsync-filter", "+ important.log\n- *.tmp\n")
        .file("sub/x.tmp", "t")
        .file("sub/deeper/.rsync-filter", "- /y\n")
        .self_named_files(["sub/deeper/y", "sub/deeper/z", "sub/y"])
        .file("c/.gitignore", "*.o\nbuild\n")
        .self_named_files(["c/m.o", "c/build/z", "c/src/n.o", "c/src/n.c"])
        .file("c/src/.gitignore", "!\n*.c\n");
    // The transfer roots get a fixed past time, so whether the client's
    // fresh destination shows "./" as changed never depends on a second
    // ticking over between making the tree and making the destination.
    t.mtimes(["", "sub"], 1_500_000_000, 0);
}

#[test]
fn per_directory_merge_files_like_stock() {
    let p = start_pair(merge_tree, |root| format!("[mod]\n path = {}\n", root.display()));
    for path in ["mod/", "mod/sub/", "mod/sub"] {
        for opts in [
            vec!["-a", "-F", "-i"],
            vec!["-a", "-FF", "-i"],
            vec!["-a", "-F", "--no-inc-recursive", "-i"],
            vec!["-a", "-F", "--protocol=29", "-i"],
            vec!["-a", "--filter=:- .gitignore", "-i"],
            vec!["-a", "--filter=dir-merge,n- .gitignore", "-i"],
            vec!["-a", "--filter=:e /.rsync-filter", "--filter=:- .gitignore", "-i"],
        ] {
            compare(&p, &opts, path, None);
        }
    }
    // The rules did act: inherited, overridden locally, anchored per directory.
    let (_, _, _, d) = compare(&p, &["-a", "-F"], "mod/", None);
    for gone in ["a.log", "top-only.txt", "sub/b.log", "sub/x.tmp", "sub/deeper/y"] {
        assert!(!d.path().join(gone).exists(), "{gone}");
    }
    for kept in ["x.tmp", "sub/top-only.txt", "sub/important.log", "sub/y", "sub/deeper/z"] {
        assert!(d.path().join(kept).exists(), "{kept}");
    }
}

#[test]
fn one_file_system_and_copy_dirlinks_like_stock() {
    let p = start_pair(
        |root| {
            build_tree(root);
            TreeBuilder::new(root).symlink("dirlink", "dir").dir("mnt");
        },
        |root| format!("[mod]\n path = {}\n uid = root\n gid = root\n", root.display()),
    );
    // Without -i: with the fifo skipped, the 3.2.7 client prints that and
    // the "./" itemize line from two of its processes, in either order.
    for opts in [vec!["-rlkt"], vec!["-rlkt", "--no-inc-recursive"]] {
        compare(&p, &opts, "mod/", None);
    }
    // A mount point inside the module (needs root to mount).
    let mnt = p.src.path().join("mnt");
    let mount = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .is_ok_and(|s| s.success())
    };
    let mnt_arg = mnt.to_str().unwrap();
    let mounted = nix::unistd::geteuid().is_root() && mount(&["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt_arg]);
    if !mounted {
        eprintln!("note: not root or cannot mount tmpfs; the -x cases are skipped");
        return;
    }
    std::fs::write(mnt.join("inside"), b"on another file system").unwrap();
    for opts in [vec!["-ax", "-i"], vec!["-axx", "-i"], vec!["-ax", "--no-inc-recursive", "-i"]] {
        compare(&p, &opts, "mod/", None);
    }
    assert!(mount(&["umount", mnt_arg]));
}

#[test]
fn append_and_append_verify_like_stock() {
    let p = pair();
    let src = p.src.path().to_path_buf();
    // The destination holds a prefix of big.bin (append sends the rest), a
    // prefix that differs (append-verify notices and redoes it), and a
    // longer small.txt (left alone).
    let seed = move |dst: &Path| {
        let big = std::fs::read(src.join("big.bin")).unwrap();
        std::fs::write(dst.join("big.bin"), &big[..1_234_567]).unwrap();
        let mut other = big[..100_000].to_vec();
        other[50] ^= 1;
        std::fs::create_dir_all(dst.join("dir")).unwrap();
        std::fs::write(dst.join("dir/other.o"), &other[..5_000]).unwrap();
        std::fs::write(dst.join("small.txt"), b"longer than the source file is\n").unwrap();
        for f in ["big.bin", "dir/other.o", "small.txt"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-a", "--append", "--stats", "-i"],
        // (No -i: whether the redo line shows `t` depends on whether the
        // client's receiver set the retained file's time before its
        // generator itemizes the redo, a race inside the client.)
        vec!["-a", "--append-verify", "--stats"],
        vec!["-a", "--append", "--no-inc-recursive", "--protocol=29", "--stats"],
    ] {
        let (s, o, _, _) = compare(&p, &opts, "mod/", Some(&seed));
        assert_eq!(s.code, o.code, "{opts:?}");
        let line = |r: &ClientRun| r.stdout.lines().find(|l| l.starts_with("Literal data:")).map(str::to_string);
        assert_eq!(line(&s), line(&o), "{opts:?}");
    }
}

#[test]
fn ignore_missing_args_and_bwlimit() {
    let p = pair();
    for opts in [
        vec!["-a", "--ignore-missing-args", "-i"],
        vec!["-aR", "--ignore-missing-args", "-i"],
    ] {
        let (s, o, _, _) = compare_several(&p, &opts, &["mod/nosuch", "mod/odd/-dash", "mod/dir/nosuch"]);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
    }
    // The client's --bwlimit (KiB/s) paces what we send: 3 MB at 2 MB/s.
    for (label, bin) in clients() {
        let started = std::time::Instant::now();
        let (_, o, _, d) = compare_with(&bin, &p, &["-a", "--bwlimit=2000"], "mod/big.bin", None);
        let took = started.elapsed();
        assert_eq!(o.code, 0, "{label}: {o:?}");
        assert!(d.path().join("big.bin").is_file());
        // Both daemons ran; ours alone must have taken over a second.
        assert!(took >= std::time::Duration::from_millis(2000), "{label}: {took:?} for both pulls");
    }
}

#[test]
fn the_daemons_bwlimit_caps_every_session() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let config = format!("use chroot = no\n[mod]\n path = {}\n", src.path().display());
    let ours = crate::harness::daemon::Daemon::start(&config, &["--bwlimit=1500"]);
    let dst = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let url = ours.url("mod/big.bin");
    let run = rsync_bin(Path::new("rsync"), &["-a", &url, &format!("{}/", dst.path().display())], &[]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    // 3,000,000 bytes at 1500 KiB/s: about two seconds.
    assert!(took >= std::time::Duration::from_millis(1500), "{took:?}");
    assert_eq!(std::fs::metadata(dst.path().join("big.bin")).unwrap().len(), 3_000_000);
}

#[test]
fn cvs_exclude_like_stock() {
    let p = start_pair(
        |root| {
            merge_tree(root);
            TreeBuilder::new(root)
                .self_named_files([
                    "x.o",
                    "core",
                    ".git/HEAD",
                    "notes~",
                    "keep.c",
                    "sub/y.bak",
                    "sub/z.local",
                    "sub/deeper/z.local",
                ])
                .file("sub/.cvsignore", "*.local  *.tmp2\n*.local2\n")
                .file(".cvsignore", "*.local\n");
        },
        |root| format!("[mod]\n path = {}\n", root.display()),
    );
    for opts in [
        vec!["-aC", "-i"],
        vec!["-aC", "--no-inc-recursive", "-i"],
        vec!["-aC", "--protocol=28", "-i"],
    ] {
        compare(&p, &opts, "mod/", None);
    }
}

#[test]
fn more_checksums_dry_runs_and_partial_into_an_older_tree() {
    let p = pair();
    for choice in ["--checksum-choice=xxh128", "--checksum-choice=sha1"] {
        assert_same_pull(&p, &["-a", "--no-inc-recursive", "-c", choice], "mod/");
    }
    let src = p.src.path().to_path_buf();
    let seed = move |dst: &Path| {
        let mut big = std::fs::read(src.join("big.bin")).unwrap();
        big[10] ^= 1;
        std::fs::write(dst.join("big.bin"), big).unwrap();
        std::fs::write(dst.join("stale.txt"), b"stale\n").unwrap();
        for f in ["big.bin", "stale.txt"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-ani", "--no-inc-recursive"],
        vec!["-ani", "--delete"],
        vec!["-avn", "--delete", "--no-inc-recursive"],
        vec!["-a", "--partial", "--stats"],
        vec!["-a", "--partial-dir=.rsync-partial", "-i"],
    ] {
        compare(&p, &opts, "mod/", Some(&seed));
    }
}

/// `--secluded-args` pulls: `--sender` and the short options arrive in the
/// first block, the paths in the secluded one.
#[test]
fn secluded_args_pulls_like_stock() {
    let p = pair();
    for opts in [
        &["-a", "-s"][..],
        &["-ai", "-s", "--no-inc-recursive"][..],
        &["-rlpt", "-s", "--protocol=29"][..],
    ] {
        assert_same_pull(&p, opts, "mod/");
    }
    assert_same_pull(&p, &["-a", "-s"], "mod/odd name with spaces");
}

/// `--delete-missing-args` pulls: a requested path missing in the module
/// is listed with mode 0, and the client deletes its own copy, as with
/// stock (plain and with -R).
#[test]
fn delete_missing_args_pulls_like_stock() {
    let p = pair();
    for opts in [&["-a", "--delete-missing-args"][..], &["-aR", "--delete-missing-args"][..]] {
        for (label, bin) in clients() {
            let mut runs = Vec::new();
            for addr in [p.stock.addr, p.ours.addr] {
                let dst = tempfile::tempdir().unwrap();
                std::fs::write(dst.path().join("nosuch.txt"), b"the client's copy\n").unwrap();
                set_mtime(&dst.path().join("nosuch.txt"), 1_500_000_000, 0);
                std::fs::write(dst.path().join("other.txt"), b"not named\n").unwrap();
                set_mtime(&dst.path().join("other.txt"), 1_500_000_000, 0);
                let run = pull_paths(&bin, addr, opts, &["mod/small.txt", "mod/nosuch.txt"], dst.path());
                runs.push((run, snapshot(dst.path()), dst));
            }
            let (ours, stock) = (runs.pop().unwrap(), runs.pop().unwrap());
            assert_eq!(visible_stock(&stock.0), visible(&ours.0), "{label} {opts:?}");
            assert_eq!(stock.1, ours.1, "{label} {opts:?}");
            // (3.2.7's client keeps its copy with either daemon; 3.5's deletes it.)
            if !label.contains("3.2.7") {
                assert!(!ours.2.path().join("nosuch.txt").exists(), "{label} {opts:?}");
            }
            assert!(ours.2.path().join("other.txt").exists(), "{label} {opts:?}");
        }
    }
}

/// `-U`: access times travel in the list (non-directories), so a listing
/// shows them as stock's does.
#[test]
fn atimes_list_like_stock() {
    let p = start_pair(
        |root| {
            for (name, when) in [("a", 1_577_836_800), ("b", 1_622_505_600)] {
                std::fs::write(root.join(name), name).unwrap();
                let path = std::ffi::CString::new(root.join(name).to_str().unwrap()).unwrap();
                let times = [
                    libc::timespec { tv_sec: when, tv_nsec: 0 },
                    libc::timespec {
                        tv_sec: 1_600_000_000,
                        tv_nsec: 0,
                    },
                ];
                // SAFETY: utimensat(2) on a fresh path with a two-element array.
                assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }, 0);
            }
        },
        |root| format!("[m]\n path = {}\n", root.display()),
    );
    for opts in [&["-rU", "--list-only"][..], &["-rU", "--list-only", "--protocol=29"][..]] {
        for (label, bin) in clients() {
            let list = |addr: std::net::SocketAddr| {
                let url = format!("rsync://{addr}/m/");
                let mut args = opts.to_vec();
                args.push(&url);
                rsync_bin(&bin, &args, &[])
            };
            let (s, o) = (list(p.stock.addr), list(p.ours.addr));
            assert_eq!(visible_stock(&s), visible(&o), "{label} {opts:?}");
            assert!(o.stdout.contains("2020/01/01"), "{label} {opts:?}: {o:?}");
        }
    }
    // Protocol 27 cannot carry them (stock's daemon hangs): refused by name.
    let url = format!("rsync://{}/m/", p.ours.addr);
    let o = rsync_bin(Path::new("rsync"), &["-rU", "--list-only", "--protocol=27", &url], &[]);
    // (At protocol 27 the client reports the close, exit 12.)
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("--atimes (-U) below protocol 28"), "{o:?}");
}

/// A tree whose files carry extended attributes: short values (sent whole
/// in the list), long ones (sent as checksums, then on request), one set
/// shared by two files, a directory's, root-only `trusted.` ones and
/// rsync's own `%` names (only with `-XX`). None on a file system
/// without user attributes.
fn build_xattr_tree(root: &Path) {
    let t = TreeBuilder::new(root);
    // A directory (a name ending in `/`) or a file holding its own name,
    // then its attributes.
    let w = |p: &str, attrs: &[(&str, &[u8])]| {
        if p.ends_with('/') {
            t.dir(p);
        } else {
            t.file(p, p);
        }
        for (name, value) in attrs {
            t.xattr(p, name, value);
        }
    };
    let long = [b'L'; 100];
    w("a", &[("user.short", b"v1"), ("user.long", &long)]);
    w("b", &[("user.short", b"v1"), ("user.long", &long)]);
    w("dir/", &[("user.dirattr", &[b'D'; 40])]);
    w("dir/c", &[("trusted.t", &[b'T'; 50]), ("user.rsync.%own", b"x")]);
    w("dir/sub/d", &[("user.rsync.security.label", b"kept")]);
    w("plain", &[]);
    t.symlink("link", "a")
        .mtimes(["a", "b", "dir/c", "dir/sub/d", "plain", "dir/sub", "dir"], 1_600_000_000, 0);
}

/// `-X` pulls: the same attributes arrive as from stock, with `-XX`,
/// without incremental recursion, at protocol 30, for a subdirectory, in a
/// `fake super` module (whose `user.rsync.` names stand for other
/// namespaces), and into an older copy, where only changed values travel
/// and the itemized `x` shows it.
#[test]
fn xattr_pulls_like_stock() {
    let probe = tempfile::tempdir().unwrap();
    if xattr::set(probe.path(), "user.probe", b"1").is_err() {
        eprintln!("note: no user xattrs on this file system; -X pulls not tested");
        return;
    }
    let p = start_pair(build_xattr_tree, |root| {
        format!(
            "uid = root\ngid = root\n[mod]\n path = {0}\n[fake]\n path = {0}\n fake super = yes\n",
            root.display()
        )
    });
    for opts in [
        vec!["-aX", "-i"],
        vec!["-aXX", "-i"],
        vec!["-aX", "-i", "--no-inc-recursive"],
        vec!["-aX", "-i", "--protocol=30"],
    ] {
        compare(&p, &opts, "mod/", None);
    }
    compare(&p, &["-aX", "-i"], "mod/dir/", None);
    compare(&p, &["-aX", "-i"], "fake/", None);
    // An older copy: one long value changed, one attribute too many.
    let seed = |d: &Path| {
        let src = p.src.path();
        for f in ["a", "b", "plain"] {
            std::fs::copy(src.join(f), d.join(f)).unwrap();
            set_mtime(&d.join(f), 1_600_000_000, 0);
        }
        xattr::set(d.join("a"), "user.long", &[b'Z'; 100]).unwrap();
        xattr::set(d.join("a"), "user.short", b"v1").unwrap();
        xattr::set(d.join("b"), "user.long", &[b'L'; 100]).unwrap();
        xattr::set(d.join("b"), "user.short", b"v1").unwrap();
        xattr::set(d.join("plain"), "user.stale", b"old").unwrap();
    };
    let (s, o, _, d) = compare(&p, &["-aX", "-i"], "mod/", Some(&seed));
    assert_eq!((s.code, o.code), (0, 0), "{o:?}");
    assert!(o.stdout.contains(".f........x a\n") && !o.stdout.contains(" b\n"), "{o:?}");
    assert_eq!(xattr::get(d.path().join("a"), "user.long").unwrap().unwrap(), [b'L'; 100]);
}

/// Filter options given to the daemon itself (`-M--exclude=...`): they
/// shape what is sent as stock's do, before the client's own rules, and a
/// file they name is read inside the module.
#[test]
fn filter_options_for_the_daemon_like_stock() {
    let p = pair();
    std::fs::write(p.src.path().join("rules.txt"), "# not sent\n*.o\n+ keep.log\n").unwrap();
    for opts in [
        vec!["-a", "-M--exclude=*.txt"],
        vec!["-a", "-M--filter=-_*.o", "--exclude=*.c"],
        vec!["-a", "-M--include=*.c", "-M--exclude=file.*", "-M--exclude=*.bin"],
        vec!["-a", "-M--filter=exclude_small.txt", "--include=small.txt"],
        vec!["-a", "-M--exclude-from=/rules.txt"],
        vec!["-a", "-M--exclude-from=../../rules.txt", "--protocol=29"],
        vec!["-a", "-M--filter=dir-merge_.keep"],
    ] {
        // (The module runs as nobody: a 0750 directory is unreadable, exit 23 on both.)
        let (_, _, _, d) = compare(&p, &opts, "mod/", None);
        let sent = snapshot(d.path());
        assert!(sent.contains_key("dir"), "{opts:?}: {sent:?}");
    }
    // A missing file: upstream's words, and nothing is sent.
    for (_, bin) in clients() {
        let d = tempfile::tempdir().unwrap();
        let o = pull_paths(&bin, p.ours.addr, &["-a", "-M--exclude-from=/no/such/list"], &["mod/"], d.path());
        assert_ne!(o.code, 0, "{o:?}");
        assert!(o.stderr.contains("failed to open exclude file"), "{o:?}");
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none());
    }
}

/// Names that are not UTF-8 (a Latin-1 tree, say) travel as their exact
/// bytes, as upstream sends them: a directory's name reaches every entry
/// below it unchanged, with and without incremental recursion, in every
/// list mode, and such names may be asked for (paths, globs, `-R`,
/// `--files-from`) or pushed to. (Before, such a directory's entries went
/// out with U+FFFD in their path and the client aborted with "invalid
/// path from sender".)
#[test]
fn names_that_are_not_utf8_pull_like_stock() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let p = start_pair(
        |root| {
            let at = |name: &'static [u8]| OsStr::from_bytes(name);
            let t = TreeBuilder::new(root);
            t.dir(at(b"latin/d\xff/sub\xe0"))
                .file(at(b"latin/caf\xe9.txt"), b"x")
                .file(at(b"latin/d\xff/in\xfe"), b"y")
                .file(at(b"latin/d\xff/sub\xe0/deep"), b"z")
                .symlink(at(b"latin/l\xe9"), at(b"caf\xe9.txt"));
            // What the `ro` module's uid (nobody) may not read, for messages
            // that name such files.
            t.dir(at(b"latin/priv\xe8"))
                .file(at(b"latin/priv\xe8/f"), b"p")
                .file(at(b"latin/secret\xe9"), b"s")
                .mode(at(b"latin/priv\xe8"), 0o700)
                .mode(at(b"latin/secret\xe9"), 0o600)
                .mtimes(
                    [&b"latin/d\xff/sub\xe0"[..], b"latin/d\xff", b"latin/priv\xe8", b"latin"].map(at),
                    1_600_000_000,
                    0,
                );
        },
        |root| {
            format!(
                "[mod]\n path = {0}\n read only = no\n uid = root\n gid = root\n[ro]\n path = {0}\n",
                root.display()
            )
        },
    );
    for opts in [
        vec!["-a"],
        vec!["-a", "--no-inc-recursive", "-i"],
        vec!["-ai", "--protocol=29"],
        vec!["-r", "--list-only"],
        vec!["-ai", "--exclude=*.txt", "--exclude=deep"],
        vec!["-aic"],
    ] {
        let (_, _, _, d) = compare(&p, &opts, "mod/latin/", None);
        if !opts.contains(&"--list-only") {
            let sent = snapshot(d.path());
            assert!(sent.contains_key("d\\xff/in\\xfe"), "{opts:?}: {sent:?}");
        }
    }
    // Globs match such names byte for byte and send them exactly, with and
    // without -R (whose implied directories carry the bytes too).
    for (opts, path) in [
        (vec!["-ai"], "mod/latin/*"),
        (vec!["-ai"], "mod/latin/d?/"),
        (vec!["-ai", "--no-inc-recursive"], "mod/latin/*/sub?"),
        (vec!["-aiR"], "mod/latin/d*/sub?"),
        (vec!["-aiR", "--no-inc-recursive"], "mod/latin/d?/*"),
        (vec!["-aiR"], "mod/latin/./d?/sub*/deep"),
    ] {
        let (_, _, _, d) = compare(&p, &opts, path, None);
        let sent = snapshot(d.path());
        assert!(sent.keys().any(|k| k.contains("\\x")), "{opts:?} {path}: {sent:?}");
    }
    // Asked for by such a name, in a path, with -R, or in a --files-from
    // list (the client's or one in the module), a file is served as stock
    // serves it.
    let list = tempfile::NamedTempFile::new().unwrap();
    // (Below the module root: stock 3.5 fails any --files-from below a
    // subdirectory of an unchrooted module, "file has vanished".)
    std::fs::write(list.path(), b"latin/caf\xe9.txt\nlatin/d\xff/sub\xe0/deep\nlatin/l\xe9\n").unwrap();
    std::fs::write(p.src.path().join("names.list"), std::fs::read(list.path()).unwrap()).unwrap();
    let list_option = format!("--files-from={}", list.path().display());
    // And the client's filters match such names byte for byte (`?` is one
    // byte; `caf\xe9` is not `caf\xe8`), in rules and in merge files.
    std::fs::write(p.src.path().join(OsStr::from_bytes(b"latin/caf\xe8.txt")), b"w").unwrap();
    std::fs::write(p.src.path().join(OsStr::from_bytes(b"latin/d\xff/.rsync-filter")), b"- in\xfe\n").unwrap();
    // Fixed directory times, so "./" itemizes the same whatever the clock.
    for dir in [&b"latin/d\xff"[..], b"latin", b""] {
        set_mtime(&p.src.path().join(OsStr::from_bytes(dir)), 1_600_000_000, 0);
    }
    for (opts, path) in [
        (vec![&b"-ai"[..]], &b"mod/latin/caf\xe9.txt"[..]),
        (vec![b"-ai"], b"mod/latin/d\xff/"),
        (vec![b"-aiR"], b"mod/latin/d\xff/sub\xe0"),
        (vec![b"-aiR", b"--no-inc-recursive"], b"mod/latin/./d\xff/in\xfe"),
        (vec![b"-ai", list_option.as_bytes()], b"mod/"),
        (vec![b"-ai", b"--no-inc-recursive", b"--files-from=:names.list"], b"mod"),
        (vec![b"-ai", b"--exclude=caf?.txt"], b"mod/latin/"),
        (vec![b"-ai", b"--exclude=caf\xe9.txt"], b"mod/latin/"),
        (
            vec![b"-ai", b"--no-inc-recursive", b"--exclude=*\xe8*", b"--exclude=sub?"],
            b"mod/latin/",
        ),
        (vec![b"-ai", b"--include=*\xe9*", b"--include=d?/", b"--exclude=*"], b"mod/latin/"),
        (vec![b"-aiF"], b"mod/latin/"),
        // Messages name unreadable files by their bytes.
        (vec![b"-ai"], b"ro/latin/"),
        (vec![b"-ai", b"--no-inc-recursive"], b"ro/latin/"),
        (vec![b"-ai", b"--protocol=27"], b"ro/latin/"),
    ] {
        for (label, bin) in clients() {
            let runs: Vec<_> = [p.stock.addr, p.ours.addr]
                .iter()
                .map(|addr| {
                    let d = tempfile::tempdir().unwrap();
                    let mut url = format!("rsync://{addr}/").into_bytes();
                    url.extend_from_slice(path);
                    let mut args: Vec<&OsStr> = opts.iter().map(|o| OsStr::from_bytes(o)).collect();
                    args.extend([OsStr::from_bytes(&url), d.path().as_os_str()]);
                    (rsync_bin(&bin, &args, &[]), d)
                })
                .collect();
            let shown = String::from_utf8_lossy(path);
            let opts: Vec<_> = opts.iter().map(|o| String::from_utf8_lossy(o)).collect();
            assert_eq!(visible_stock(&runs[0].0), visible(&runs[1].0), "{label} {opts:?} {shown}");
            let ours = snapshot(runs[1].1.path());
            assert_eq!(snapshot(runs[0].1.path()), ours, "{label} {opts:?} {shown}: trees differ");
            assert!(ours.keys().any(|k| k.contains("\\x")), "{label} {opts:?} {shown}: {ours:?}");
        }
    }
    // Pushed to such a destination, the upload lands there as with stock,
    // whose "created directory" line names it by its bytes.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"x").unwrap();
    set_mtime(src.path(), 1_600_000_000, 0);
    let made = p.src.path().join(OsStr::from_bytes(b"latin/new\xe9"));
    // The same push to `mod/latin/new\xe9/` on both daemons, each after
    // `seed`: each run's output and the tree it left there.
    let push_both = |bin: &Path, options: &[&str], seed: &dyn Fn()| -> Vec<(ClientRun, _)> {
        [p.stock.addr, p.ours.addr]
            .iter()
            .map(|addr| {
                seed();
                let mut url = format!("rsync://{addr}/mod/latin/").into_bytes();
                url.extend_from_slice(b"new\xe9/");
                let src_arg = format!("{}/", src.path().display());
                let mut args: Vec<&OsStr> = options.iter().map(OsStr::new).collect();
                args.extend([OsStr::new("--no-inc-recursive"), OsStr::new(&src_arg), OsStr::from_bytes(&url)]);
                let run = rsync_bin(bin, &args, &[]);
                let tree = snapshot(&made);
                std::fs::remove_dir_all(&made).unwrap();
                (run, tree)
            })
            .collect()
    };
    for (label, bin) in clients() {
        let runs = push_both(&bin, &["-av"], &|| {});
        assert_eq!(visible_stock(&runs[0].0), visible(&runs[1].0), "{label}: push output");
        assert_eq!(runs[0].1, runs[1].1, "{label}: pushed trees differ");
        assert!(
            runs[1].0.stdout.contains("created directory latin/new\\#351"),
            "{label}: {:?}",
            runs[1].0
        );
    }
    // A push's deletions name such files by their bytes too, in the
    // daemon's own messages below protocol 29.
    let seed = || {
        std::fs::create_dir_all(made.join(OsStr::from_bytes(b"gone\xe8"))).unwrap();
        std::fs::write(made.join(OsStr::from_bytes(b"old\xe9")), b"o").unwrap();
    };
    for (label, bin) in clients() {
        for protocol in ["--protocol=28", "--protocol=31"] {
            let runs = push_both(&bin, &["-rtOv", "--delete", protocol], &seed);
            assert_eq!(visible_stock(&runs[0].0), visible(&runs[1].0), "{label} {protocol}: push output");
            assert_eq!(runs[0].1, runs[1].1, "{label} {protocol}: pushed trees differ");
            assert!(runs[1].0.stdout.contains("deleting old\\#351"), "{label}: {:?}", runs[1].0);
        }
    }
    compare(&p, &["-a"], "mod/latin/", None);
}

/// `--open-noatime` and the module's `open noatime`: reading a file for a
/// pull leaves its access time alone exactly when stock's daemon does
/// (the client's option, unless the module says yes or no). The stock
/// 3.2 client has no such option, so the system client is used. The
/// modules read as root: O_NOATIME needs the file's owner or CAP_FOWNER.
#[test]
fn open_noatime_like_stock() {
    use std::os::unix::fs::MetadataExt;
    let p = start_pair(
        |root| {
            std::fs::create_dir(root.join("d")).unwrap();
            std::fs::write(root.join("d/f"), b"read me").unwrap();
        },
        |root| {
            let d = root.join("d");
            format!(
                "uid = root\ngid = root\n[mod]\n path = {0}\n[yes]\n path = {0}\n open noatime = yes\n[no]\n path = {0}\n open noatime = no\n",
                d.display()
            )
        },
    );
    let file = p.src.path().join("d/f");
    let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    let mut seen = std::collections::BTreeSet::new();
    for (opts, module) in [
        (vec!["-a"], "mod/"),
        (vec!["-a", "--open-noatime"], "mod/"),
        (vec!["-a"], "yes/"),
        (vec!["-a", "--open-noatime"], "no/"),
        (vec!["-ac", "--open-noatime"], "mod/"),
        (vec!["-ac"], "mod/"),
    ] {
        let kept: Vec<bool> = [p.stock.addr, p.ours.addr]
            .iter()
            .map(|addr| {
                // An access time older than a day: relatime updates it on a read.
                nix::sys::stat::utimensat(
                    None,
                    &file,
                    &old,
                    &nix::sys::time::TimeSpec::UTIME_OMIT,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .unwrap();
                let d = tempfile::tempdir().unwrap();
                let run = pull_paths(Path::new("rsync"), *addr, &opts, &[module], d.path());
                assert_eq!(run.code, 0, "{opts:?} {module}: {run:?}");
                std::fs::metadata(&file).unwrap().atime() == 1_000_000_000
            })
            .collect();
        assert_eq!(kept[0], kept[1], "{opts:?} {module}: stock kept the access time: {}", kept[0]);
        seen.insert(kept[1]);
    }
    assert_eq!(seen.len(), 2, "both outcomes were seen (the file system updates access times)");
}

/// `-k` / `-L` over a link that leads out of a module that is not
/// chrooted: stock stats where the link leads (a directory there is
/// listed as one, with that directory's attributes) but its confined open
/// fails (ELOOP, exit 23), so nothing outside is listed; so do we. We used
/// to send the link itself, which the client could then follow on its own
/// side (upstream's daemon-scan-dir-escape).
#[test]
fn links_leading_out_of_the_module_are_not_listed_like_stock() {
    let outside = tempfile::tempdir().unwrap();
    TreeBuilder::new(outside.path())
        .file("secret", "outside the module\n")
        .symlink("xfil_link", "MARKER")
        .mtimes(["secret", "."], 1_600_000_000, 0);
    let target = outside.path().to_path_buf();
    let p = start_pair(
        move |root| {
            TreeBuilder::new(root)
                .file("real/in.txt", "in\n")
                .symlink("escape", &target)
                .symlink("inside", "real")
                .mtimes(["real/in.txt", "real", "."], 1_600_000_000, 0);
        },
        |root| format!("[mod]\n path = {}\n uid = root\n gid = root\n", root.display()),
    );
    for opts in [vec!["-ai", "-k"], vec!["-ai", "-L"], vec!["-ai", "-k", "--no-inc-recursive"]] {
        let (_, ours, _, dest) = compare(&p, &opts, "mod/", None);
        assert_eq!(ours.code, 23, "{opts:?}: {ours:?}");
        assert!(
            ours.stderr
                .contains("opendir \"escape\" (in mod) failed: Too many levels of symbolic links"),
            "{ours:?}"
        );
        assert!(dest.path().join("escape").is_dir() && !dest.path().join("escape").is_symlink());
        assert!(!dest.path().join("escape/secret").exists() && !dest.path().join("escape/xfil_link").exists());
        // A link to a directory inside the module is followed as before.
        assert!(dest.path().join("inside/in.txt").is_file(), "{opts:?}");
    }
}
