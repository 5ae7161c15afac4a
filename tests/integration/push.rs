//! Pushes (the daemon receives), differential: the same stock-client
//! upload to stock `rsync --daemon` and to oxrsyncd, each into its own
//! copy of a writable module, must leave the same tree, exit code and
//! visible output.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::harness::client::{clients, rsync_bin, ClientRun};
use crate::harness::daemon::Daemon;
use crate::harness::push_pair::{every_dir_made_by_the_run, made_by_the_run, start_push_pair, stock_redid_a_file, Normaliser, PushPair};
use crate::harness::stock::StockDaemon;
use crate::harness::tree::{set_mtime, snapshot, TreeBuilder};

/// What the client uploads.
fn build_source(root: &Path) {
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    // Mostly zeros, for -S.
    let mut img = vec![0u8; 1 << 20];
    img.extend_from_slice(b"end of image\n");
    img.extend(std::iter::repeat_n(0u8, 300_000));
    TreeBuilder::new(root)
        .file("empty", b"")
        .file("small.txt", b"hello world\n")
        .file("big.bin", &big)
        .file("dir/nested/deep/file.c", b"int main() { return 0; }\n")
        .file("dir/other.o", [0u8; 10_000])
        .file("sparse.img", &img)
        // Grows between pushes, for --append.
        .file("grow.log", b"line of a growing log\n".repeat(20_000))
        .file("unicode/h\u{e9}llo \u{1F600}.txt", "caf\u{e9}\n")
        .file("odd/name with spaces", b"x")
        .dir("emptydir")
        .symlink("link-in", "small.txt")
        .symlink("link-out", "../../etc/passwd")
        .mode("small.txt", 0o640)
        .mode("dir/nested", 0o750)
        .mtime("small.txt", 1_600_000_000, 123_456_789);
}

/// One source ([`build_source`]) pushed to two modules, each section
/// ending in `module_extra`.
fn push_pair(module_extra: &str) -> PushPair {
    start_push_pair(build_source, module_extra)
}

/// The same literal and matched byte counts (`--stats`) for both daemons.
fn assert_same_delta(s: &ClientRun, o: &ClientRun, what: &dyn std::fmt::Debug) {
    for label in ["Literal data:", "Matched data:"] {
        assert_eq!(s.stat_line(label), o.stat_line(label), "{what:?}: {label}");
    }
}

/// The redo check reads stock's `--stats` as it prints them.
#[test]
fn a_redo_is_told_from_stats() {
    let stats = |sent: &str| ClientRun {
        code: 0,
        stdout: format!("\nNumber of files: 18 (reg: 9, dir: 7, link: 2)\nNumber of regular files transferred: {sent}\n"),
        stderr: String::new(),
    };
    assert!(stock_redid_a_file(&stats("10")));
    assert!(!stock_redid_a_file(&stats("9")));
    assert!(!stock_redid_a_file(&ClientRun {
        code: 0,
        stdout: "no stats".into(),
        stderr: String::new()
    }));
}

#[test]
fn archive_push_into_an_empty_module_at_every_protocol() {
    let p = push_pair("");
    for proto in [
        "--protocol=32",
        "--protocol=31",
        "--protocol=30",
        "--protocol=29",
        "--protocol=28",
        "--protocol=27",
    ] {
        let (s, o) = p.compare(&["-a", proto], "", "w/", None);
        assert_eq!((s.code, o.code), (0, 0), "{proto}: {o:?}");
    }
    // Into a subdirectory that does not exist yet, and a single file under a new name.
    p.compare_normalised(&["-a"], "dir/", "w/new/place/", None, &made_by_the_run(&["new"]));
    p.compare(&["-a"], "small.txt", "w/renamed.txt", None);
    // Pushes are not incremental yet: compare with a non-incremental stock run.
    p.compare(&["-av", "--no-inc-recursive"], "", "w/", None);
}

#[test]
fn delta_push_into_an_older_tree() {
    let p = push_pair("");
    let src = p.src.path().to_path_buf();
    let seed = move |dst: &Path| {
        let mut big = std::fs::read(src.join("big.bin")).unwrap();
        big[1_000_000] ^= 0xFF;
        big.truncate(1_900_000);
        std::fs::write(dst.join("big.bin"), big).unwrap();
        std::fs::write(dst.join("small.txt"), b"old\n").unwrap();
        std::fs::write(dst.join("stale"), b"stays: no --delete\n").unwrap();
        for f in ["big.bin", "small.txt", "stale"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-a", "--stats"],
        vec!["-a", "--stats", "--protocol=29"],
        vec!["-a", "-i"],
        vec!["-a", "-c", "-i"],
        vec!["-a", "-W", "--stats"],
        vec!["-a", "-z", "--stats"],
        vec!["-a", "--compress-choice=zstd", "--stats"],
        vec!["-a", "--checksum-choice=xxh128", "--stats"],
        vec!["-a", "--size-only", "-i"],
        vec!["-a", "-I", "-i"],
        vec!["-a", "--ignore-existing", "-i"],
        vec!["-a", "--existing", "-i"],
        vec!["-a", "-u", "-i"],
    ] {
        let (s, o) = p.compare(&opts, "", "w/", Some(&seed));
        assert_same_delta(&s, &o, &opts);
    }
}

/// The receiver's ways of writing: in place, appending, sparse.
#[test]
fn in_place_append_and_sparse_pushes_like_stock() {
    let p = push_pair("");
    let src = p.src.path().to_path_buf();
    let seed = move |dst: &Path| {
        let mut big = std::fs::read(src.join("big.bin")).unwrap();
        big[1_000_000] ^= 0xFF;
        big[10] ^= 0xFF;
        big.truncate(1_900_000);
        std::fs::write(dst.join("big.bin"), big).unwrap();
        // A prefix of the log, and one with a changed first line.
        let log = std::fs::read(src.join("grow.log")).unwrap();
        std::fs::write(dst.join("grow.log"), &log[..300_001]).unwrap();
        std::fs::create_dir(dst.join("dir")).unwrap();
        let mut other = log[..1000].to_vec();
        other[0] = b'X';
        std::fs::write(dst.join("dir/other.o"), other).unwrap();
        // Longer here than in the source: --append leaves it.
        std::fs::write(dst.join("small.txt"), b"a longer old file\n").unwrap();
        for f in ["big.bin", "grow.log", "dir/other.o", "small.txt", "dir"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-a", "--inplace", "--stats"],
        vec!["-a", "--inplace", "-i", "--protocol=29"],
        vec!["-a", "--inplace", "-W"],
        vec!["-a", "--append", "--stats"],
        vec!["-a", "--append", "-i", "--protocol=30"],
        vec!["-a", "--append-verify", "--stats"],
        vec!["-aS", "--stats"],
        vec!["-aS", "--inplace"],
    ] {
        let (s, o) = p.compare(&opts, "", "w/", Some(&seed));
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
        assert_same_delta(&s, &o, &opts);
        if opts[1].starts_with("--append") {
            // --append keeps what was there (even where it differs) and adds
            // the rest; --append-verify notices and sends the file again.
            let got = std::fs::read(p.ours_dst.path().join("dir/other.o")).unwrap();
            assert_eq!(got.len(), 10_000);
            assert_eq!(got[0], if opts[1] == "--append" { b'X' } else { 0 }, "{opts:?}");
        }
    }
    // -S leaves holes: no more space taken than stock's copy takes.
    p.compare(&["-aS"], "", "w/", None);
    let used = |d: &Path| std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(d.join("sparse.img")).unwrap()) * 512;
    let (stock_used, ours_used) = (used(p.stock_dst.path()), used(p.ours_dst.path()));
    assert!(
        ours_used <= stock_used + 8192 && ours_used < 200_000,
        "stock {stock_used} ours {ours_used}"
    );
}

/// -b, --backup-dir, --suffix: what a push replaces or deletes is kept,
/// where and under the name stock keeps it.
#[test]
fn backups_like_stock() {
    let p = push_pair("");
    let seed = |dst: &Path| {
        std::fs::write(dst.join("big.bin"), b"an older big file\n").unwrap();
        std::fs::write(dst.join("small.txt"), b"old\n").unwrap();
        std::fs::write(dst.join("stale"), b"deleted with --delete\n").unwrap();
        std::fs::write(dst.join("stale~"), b"an old backup: protected\n").unwrap();
        std::fs::write(dst.join("link-in"), b"a file where a link comes\n").unwrap();
        std::fs::create_dir_all(dst.join("dir/nested")).unwrap();
        std::fs::write(dst.join("dir/nested/gone.c"), b"deleted deeper down\n").unwrap();
        std::fs::write(dst.join("dir/other.o"), b"older object\n").unwrap();
        for f in [
            "big.bin",
            "small.txt",
            "stale",
            "stale~",
            "link-in",
            "dir/nested/gone.c",
            "dir/other.o",
        ] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    // Directories get the time of the run: -b without a backup dir leaves
    // directory times alone (upstream implies --omit-dir-times), and the
    // backup dir's are made then.
    let made_now = every_dir_made_by_the_run;
    for opts in [
        vec!["-ab", "-i"],
        vec!["-ab", "--delete", "--stats"],
        vec!["-ab", "--suffix=.old", "--delete-after"],
        // (Deletions during the run overtake queued requests, so where a
        // "*deleting" line lands among -i lines is timing: -i goes with
        // --delete-before, as in deletions_like_stock.)
        vec!["-a", "--backup-dir=bak", "--delete-before", "-i"],
        vec!["-a", "--backup-dir=bak", "--delete", "--stats"],
        vec!["-a", "--backup-dir=/../bak2/x", "--suffix=,v"],
        vec!["-ab", "--inplace"],
        vec!["-ab", "--protocol=28"],
    ] {
        let (s, o) = p.compare_normalised(&opts, "", "w/", Some(&seed), &made_now);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
    }
    // Into a subdirectory: the backup dir is relative to the destination.
    p.compare_normalised(&["-a", "--backup-dir=bak"], "dir/", "w/dir/", Some(&seed), &made_now);
}

/// Directories standing where files, links or nodes come: removed when
/// empty, with their contents only under --force or --delete; otherwise
/// upstream's two lines and exit 23.
#[test]
fn directories_in_the_way_like_stock() {
    let p = push_pair("");
    let seed = |dst: &Path| {
        std::fs::create_dir_all(dst.join("small.txt/inner")).unwrap();
        std::fs::write(dst.join("small.txt/inner/f"), b"in the way\n").unwrap();
        std::fs::create_dir(dst.join("link-in")).unwrap();
        std::fs::create_dir_all(dst.join("empty/a/b")).unwrap();
        std::fs::write(dst.join("link-out"), b"a file where a link comes\n").unwrap();
        // Fixed times: what stays is compared, and a second may tick
        // between seeding stock's module and ours.
        for f in [
            "small.txt/inner/f",
            "small.txt/inner",
            "small.txt",
            "link-in",
            "empty/a/b",
            "empty/a",
            "empty",
            "link-out",
        ] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-a"],
        vec!["-a", "--force", "-i"],
        vec!["-a", "--delete", "--stats"],
        vec!["-a", "--force", "--protocol=29"],
    ] {
        let (s, o) = p.compare(&opts, "", "w/", Some(&seed));
        assert_eq!(s.code, o.code, "{opts:?}");
    }
    // With -i: stock's notices overtake its queued requests, ours follow
    // them, so the same lines are compared in order of their text.
    for (label, bin) in clients() {
        p.reset(Some(&seed));
        let (s, o) = p.push_with(&bin, &["-a", "-i"], "", "w/");
        let sorted = |r: &ClientRun, drop_reset: bool| {
            let (code, mut out, err) = r.visible(drop_reset);
            out.sort();
            (code, out, err)
        };
        assert_eq!(sorted(&s, true), sorted(&o, false), "{label}");
        assert_eq!(snapshot(p.stock_dst.path()), snapshot(p.ours_dst.path()), "{label}");
    }
}

/// --partial-dir (a kept partial file is the basis, then goes away),
/// --delay-updates (all files take their names at the end), --temp-dir.
#[test]
fn staging_options_like_stock() {
    let p = push_pair("");
    let src = p.src.path().to_path_buf();
    let seed = move |dst: &Path| {
        let big = std::fs::read(src.join("big.bin")).unwrap();
        std::fs::create_dir(dst.join(".rsync-partial")).unwrap();
        std::fs::write(dst.join(".rsync-partial/big.bin"), &big[..1_200_000]).unwrap();
        std::fs::write(dst.join("small.txt"), b"old\n").unwrap();
        std::fs::create_dir(dst.join("tmp")).unwrap();
        for f in ["small.txt", ".rsync-partial/big.bin"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
        set_mtime(&dst.join(".rsync-partial"), 1_500_000_000, 0);
        set_mtime(&dst.join("tmp"), 1_500_000_000, 0);
    };
    for opts in [
        vec!["-a", "--partial-dir=.rsync-partial", "--stats"],
        vec!["-a", "--partial-dir=.rsync-partial", "-i", "--protocol=29"],
        vec!["-a", "--delay-updates", "-i"],
        vec!["-a", "--delay-updates", "--stats", "--protocol=28"],
        vec!["-a", "--delay-updates", "--partial-dir=.rsync-partial", "--stats"],
        vec!["-a", "--temp-dir=tmp", "--stats"],
        vec!["-a", "--temp-dir=/../tmp/", "-i"],
    ] {
        // The temp dir's time is when the last temporary file left it.
        let temp_time = made_by_the_run(&["tmp"]);
        let (s, o) = p.compare_normalised(&opts, "", "w/", Some(&seed), &temp_time);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
        assert_same_delta(&s, &o, &opts);
    }
    // A temp dir that is not there: refused before anything is written.
    let (s, o) = p.compare(&["-a", "--temp-dir=missing"], "", "w/", None);
    assert_eq!((s.code, o.code), (1, 1), "{o:?}");
}

/// The module's `temp dir` is a path inside the module (upstream's daemon
/// roots an absolute one at the module); a missing one refuses the push.
#[test]
fn module_temp_dir_like_stock() {
    let p = push_pair(" temp dir = /.tmp/\n");
    let with_temp = |dst: &Path| {
        std::fs::create_dir(dst.join(".tmp")).unwrap();
        set_mtime(&dst.join(".tmp"), 1_500_000_000, 0);
    };
    // The temp dir's time is when the last temporary file left it.
    let temp_time = made_by_the_run(&[".tmp"]);
    let (s, o) = p.compare_normalised(&["-a", "--stats"], "", "w/", Some(&with_temp), &temp_time);
    assert_eq!((s.code, o.code), (0, 0), "{o:?}");
    assert!(
        std::fs::read_dir(p.ours_dst.path().join(".tmp")).unwrap().next().is_none(),
        "temp dir left with files"
    );
    // Missing: upstream names it under the module path, which differs
    // between the two modules, so only the rest is compared.
    for (label, bin) in clients() {
        p.reset(None);
        let (s, o) = p.push_with(&bin, &["-a"], "", "w/");
        assert_eq!((s.code, o.code), (1, 1), "{label}: {o:?}");
        let expected = format!("The temp-dir does not exist: {}/.tmp", p.ours_dst.path().display());
        assert!(o.stderr.contains(&expected), "{label}: {o:?}");
        assert!(s.stderr.contains("The temp-dir does not exist:"), "{label}: {s:?}");
    }
}

/// -m drops directories with no file below them; -K keeps a symlink to a
/// directory where the list has that directory, and fills the directory.
#[test]
fn prune_empty_dirs_and_keep_dirlinks_like_stock() {
    let p = push_pair("");
    std::fs::create_dir_all(p.src.path().join("hollow/deeper/deepest")).unwrap();
    std::fs::create_dir_all(p.src.path().join("half/empty")).unwrap();
    std::fs::write(p.src.path().join("half/file"), b"keeps half\n").unwrap();
    for opts in [vec!["-am"], vec!["-am", "-i"], vec!["-rtm", "--protocol=29"]] {
        let (s, o) = p.compare(&opts, "", "w/", None);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
    }
    assert!(!p.ours_dst.path().join("hollow").exists() && !p.ours_dst.path().join("emptydir").exists());
    assert!(p.ours_dst.path().join("half/file").exists() && !p.ours_dst.path().join("half/empty").exists());
    let seed = |dst: &Path| {
        std::fs::create_dir_all(dst.join("elsewhere/nested")).unwrap();
        std::fs::write(dst.join("elsewhere/kept.txt"), b"was here first\n").unwrap();
        std::os::unix::fs::symlink("elsewhere", dst.join("dir")).unwrap();
        for f in ["elsewhere/kept.txt", "elsewhere/nested", "elsewhere"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    // Upstream sets the kept link's own times, not its directory's: that
    // directory's time is when the push last changed it.
    let changed_now = |t: &mut std::collections::BTreeMap<String, String>| {
        if let Some(v) = t.get_mut("elsewhere") {
            *v = v.split(" mtime").next().unwrap_or_default().to_string();
        }
    };
    for opts in [vec!["-aK", "-i"], vec!["-aK", "--delete", "--stats"], vec!["-a", "-i"], vec!["-aK"]] {
        let (s, o) = p.compare_normalised(&opts, "", "w/", Some(&seed), &changed_now);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
    }
    assert!(p.ours_dst.path().join("dir").is_symlink(), "the link is kept");
    assert!(p.ours_dst.path().join("elsewhere/other.o").exists(), "its directory is filled");
}

/// --link-dest / --compare-dest / --copy-dest: a dated-backup push next to
/// the previous one, as stock does it (links, copies, bases, outputs).
#[test]
fn alternate_destinations_like_stock() {
    use std::os::unix::fs::MetadataExt;
    let p = push_pair("");
    let src = p.src.path().to_path_buf();
    let seed = move |dst: &Path| {
        // The previous backup: some files as they are now, some not.
        for f in [
            "empty",
            "small.txt",
            "dir/other.o",
            "grow.log",
            "big.bin",
            "odd/name with spaces",
            "sparse.img",
        ] {
            let to = dst.join("prev").join(f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(src.join(f), &to).unwrap();
            let m = std::fs::metadata(src.join(f)).unwrap();
            set_mtime(&to, m.mtime(), m.mtime_nsec());
        }
        let mut big = std::fs::read(src.join("big.bin")).unwrap();
        big[500_000] ^= 1;
        std::fs::write(dst.join("prev/big.bin"), big).unwrap();
        std::fs::set_permissions(dst.join("prev/odd/name with spaces"), std::fs::Permissions::from_mode(0o600)).unwrap();
        set_mtime(&dst.join("prev/sparse.img"), 1_500_000_000, 0);
        set_mtime(&dst.join("prev/big.bin"), 1_500_000_000, 0);
        for d in ["prev/odd", "prev/dir", "prev"] {
            set_mtime(&dst.join(d), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-a", "--link-dest=../prev", "-i"],
        vec!["-a", "--link-dest=../prev", "--stats"],
        vec!["-a", "--link-dest=/prev", "-c", "-i"],
        vec!["-a", "--compare-dest=../prev", "-i"],
        vec!["-a", "--copy-dest=../prev", "-i", "--stats"],
        vec!["-a", "--link-dest=../missing", "--link-dest=../prev", "--protocol=29", "-i"],
        vec!["-a", "--copy-dest=../missing", "--copy-dest=../prev", "--stats"],
    ] {
        let (s, o) = p.compare(&opts, "", "w/today/", Some(&seed));
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
        assert_same_delta(&s, &o, &opts);
    }
    p.compare(&["-a", "--link-dest=../prev"], "", "w/today/", Some(&seed));
    let ino = |f: &str| std::fs::metadata(p.ours_dst.path().join(f)).unwrap().ino();
    assert_eq!(ino("today/small.txt"), ino("prev/small.txt"), "unchanged files are linked");
    assert_ne!(ino("today/big.bin"), ino("prev/big.bin"), "changed files are not");
}

#[test]
fn module_settings_on_a_push() {
    // incoming chmod, and files created as the module's user.
    let p = push_pair(" incoming chmod = Dg+s,Fo-rwx\n");
    p.compare(&["-a"], "", "w/", None);
    p.compare(&["-rlt"], "", "w/", None);
    // A read-only module refuses (upstream's words and exit code).
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"f").unwrap();
    let dst = tempfile::tempdir().unwrap();
    let config = format!("use chroot = no\n[ro]\n path = {}\n", dst.path().display());
    let (stock, ours) = (StockDaemon::start(&config), Daemon::start(&config, &[]));
    for (label, bin) in clients() {
        let run = |addr: std::net::SocketAddr| {
            let url = format!("rsync://{addr}/ro/");
            rsync_bin(&bin, &["-a", &format!("{}/", src.path().display()), &url], &[])
        };
        let (s, o) = (run(stock.addr), run(ours.addr));
        assert_eq!(s.visible(true), o.visible(false), "{label}");
        assert_eq!(o.code, 1, "{label}: {o:?}");
    }
    assert!(std::fs::read_dir(dst.path()).unwrap().next().is_none(), "nothing written");
}

/// --fuzzy: a new file's basis is the most similar file beside it (same
/// size and time first, then the closest name), as stock picks it.
#[test]
fn fuzzy_basis_like_stock() {
    let p = push_pair("");
    let src = p.src.path().to_path_buf();
    let seed = move |dst: &Path| {
        let mut big = std::fs::read(src.join("big.bin")).unwrap();
        big[700_000] ^= 1;
        std::fs::write(dst.join("big-v1.bin"), &big).unwrap();
        let log = std::fs::read(src.join("grow.log")).unwrap();
        std::fs::write(dst.join("grow.log.old"), &log[..200_000]).unwrap();
        std::fs::create_dir(dst.join("dir")).unwrap();
        std::fs::write(dst.join("dir/unrelated.txt"), b"nothing alike").unwrap();
        for f in ["big-v1.bin", "grow.log.old", "dir/unrelated.txt", "dir"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-ay", "--stats"],
        vec!["-ay", "-i"],
        vec!["-ay", "--protocol=29", "--stats"],
        vec!["-ayy", "--stats"],
    ] {
        let (s, o) = p.compare(&opts, "", "w/", Some(&seed));
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
        assert_same_delta(&s, &o, &opts);
        assert_ne!(o.stat_line("Matched data:").as_deref(), Some("Matched data: 0 bytes"), "{opts:?}");
    }
}

/// `-X` was refused on a push until it was built: it now runs as stock's
/// (see push_acls_xattrs.rs for the attributes themselves).
#[test]
fn xattr_pushes_run_like_stock() {
    let p = push_pair("");
    let (s, o) = p.compare(&["-aX", "--stats"], "", "w/", None);
    assert_eq!((s.code, o.code), (0, 0), "{o:?}");
}

/// Start `rsync ARGS src url` slowly, wait until its temporary file in
/// `dst` holds more than `min_len` bytes, and kill it there.
fn kill_mid_upload(args: &[&str], src: &str, url: &str, dst: &Path, min_len: u64) {
    let mut child = std::process::Command::new("rsync")
        .args(args)
        .args(["--bwlimit=4000", src, url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let grown = crate::harness::eventually(std::time::Duration::from_secs(10), || {
        std::fs::read_dir(dst).unwrap().any(|e| {
            let e = e.unwrap();
            e.file_name().to_string_lossy().starts_with(".huge.bin.") && e.metadata().map(|m| m.len() > min_len).unwrap_or(false)
        })
    });
    assert!(grown, "the upload got going ({args:?})");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn a_client_killed_mid_file_leaves_no_partial_file_and_the_worker_serves_on() {
    let p = push_pair("");
    let big: Vec<u8> = (0..64u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    std::fs::write(p.src.path().join("huge.bin"), &big).unwrap();
    p.reset(None);
    std::fs::write(p.ours_dst.path().join("huge.bin"), b"the old version\n").unwrap();
    let url = p.ours.url("w/");
    let src = format!("{}/huge.bin", p.src.path().display());
    // Let it get going, then kill it mid-file.
    kill_mid_upload(&["-a"], &src, &url, p.ours_dst.path(), 0);
    // The target is untouched and the temporary file goes away.
    let gone = crate::harness::eventually(std::time::Duration::from_secs(10), || {
        std::fs::read_dir(p.ours_dst.path()).unwrap().count() == 1
    });
    assert!(gone, "temporary file removed");
    assert_eq!(std::fs::read(p.ours_dst.path().join("huge.bin")).unwrap(), b"the old version\n");
    // The same worker serves the next push.
    let (_, o) = p.push_with(Path::new("rsync"), &["-a"], "small.txt", "w/");
    assert_eq!(o.code, 0, "{o:?}");

    // With --partial what arrived replaces the target, dated 1970.
    kill_mid_upload(&["-a", "--partial"], &src, &url, p.ours_dst.path(), 1 << 20);
    let kept = crate::harness::eventually(std::time::Duration::from_secs(10), || {
        std::fs::metadata(p.ours_dst.path().join("huge.bin"))
            .map(|m| m.len() > 1 << 20)
            .unwrap_or(false)
    });
    assert!(kept, "the partial file took the target's name");
    let partial = std::fs::read(p.ours_dst.path().join("huge.bin")).unwrap();
    assert!(partial.len() < big.len() && big.starts_with(&partial), "a prefix of the source");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(p.ours_dst.path().join("huge.bin")).unwrap().mtime(), 0);

    // With --partial-dir what arrived waits there, the target untouched,
    // and the next push starts from it (only the rest is sent).
    std::fs::write(p.ours_dst.path().join("huge.bin"), b"the old version\n").unwrap();
    kill_mid_upload(&["-a", "--partial-dir=.part"], &src, &url, p.ours_dst.path(), 1 << 20);
    let parked = crate::harness::eventually(std::time::Duration::from_secs(10), || {
        std::fs::metadata(p.ours_dst.path().join(".part/huge.bin")).is_ok_and(|m| m.len() > 1 << 20)
    });
    assert!(parked, "the partial file waits in the partial dir");
    assert_eq!(std::fs::read(p.ours_dst.path().join("huge.bin")).unwrap(), b"the old version\n");
    let partial_len = std::fs::metadata(p.ours_dst.path().join(".part/huge.bin")).unwrap().len();
    let (_, o) = p.push_with(Path::new("rsync"), &["-a", "--partial-dir=.part", "--stats"], "huge.bin", "w/");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(std::fs::read(p.ours_dst.path().join("huge.bin")).unwrap(), big);
    assert!(!p.ours_dst.path().join(".part").exists(), "partial dir removed");
    let matched: u64 = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Matched data: "))
        .and_then(|v| v.trim_end_matches(" bytes").replace(',', "").parse().ok())
        .unwrap();
    assert!(
        matched + (1 << 20) >= partial_len,
        "the partial file was the basis: matched {matched} of {partial_len}"
    );
}

/// A hand-written protocol-29 push: the daemon arguments after `--server`
/// (one per line), then `list` (the file list and what follows it) is
/// sent; `until` is asked after each read whether to stop listening.
fn hand_written_push(addr: std::net::SocketAddr, args: &str, list: &[u8], until: &dyn Fn() -> bool) -> Vec<u8> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    reader
        .get_mut()
        .write_all(format!("@RSYNCD: 29.0\nw\n--server\n{args}.\nw/\n\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("@RSYNCD: OK") {
            break;
        }
        assert!(!line.is_empty(), "closed during the handshake");
    }
    let mut seed = [0u8; 4];
    reader.read_exact(&mut seed).unwrap();
    let _ = reader.get_mut().write_all(list);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !until() {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    answer
}

/// A protocol-29 entry: flags (XMIT_TOP_DIR, harmless on a non-directory,
/// so the byte is not 0), the name, size, mtime and mode as ints.
fn entry_29(name: &[u8], mode: i32) -> Vec<u8> {
    let mut e = vec![0x01, name.len() as u8];
    e.extend_from_slice(name);
    e.extend_from_slice(&5i32.to_le_bytes());
    e.extend_from_slice(&1_600_000_000i32.to_le_bytes());
    e.extend_from_slice(&mode.to_le_bytes());
    e
}

/// A hand-written protocol-29 push whose one-file list names `name`.
fn push_hostile_list(daemon: &Daemon, name: &[u8]) -> Vec<u8> {
    let mut list = entry_29(name, 0o100644);
    // The end of the list, then the sender's io_error.
    list.push(0);
    list.extend_from_slice(&0i32.to_le_bytes());
    hand_written_push(daemon.addr, "-r\n", &list, &|| false)
}

/// Owners arrive with names, and a name known here gives our id for it
/// (a client whose "daemon" user is 4242 uploads a file for our daemon
/// user), as stock's daemon maps them; `--numeric-ids` keeps the numbers.
#[test]
fn owner_names_map_to_local_ids_like_stock() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; owners cannot be set");
        return;
    }
    let daemon_user = nix::unistd::User::from_name("daemon").unwrap().expect("a daemon user").uid.as_raw();
    let daemon_group = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .expect("a daemon group")
        .gid
        .as_raw();
    let p = push_pair("");
    for (numeric, want) in [(false, daemon_user), (true, 4242)] {
        // A symlink (-l), made and chowned by the generator at once.
        let mut list = entry_29(b"link", 0o120777);
        list.extend_from_slice(&4242i32.to_le_bytes());
        list.extend_from_slice(&4343i32.to_le_bytes());
        list.extend_from_slice(&6i32.to_le_bytes());
        list.extend_from_slice(b"target");
        list.push(0);
        if !numeric {
            for id in [4242i32, 4343] {
                // The uid list, then the gid list: id, name, 0 at the end.
                list.extend_from_slice(&id.to_le_bytes());
                list.push(6);
                list.extend_from_slice(b"daemon");
                list.extend_from_slice(&0i32.to_le_bytes());
            }
        }
        list.extend_from_slice(&0i32.to_le_bytes());
        let args = if numeric { "-rlog\n--numeric-ids\n" } else { "-rlog\n" };
        let mut owners = Vec::new();
        for (addr, dst) in [(p.stock.addr, p.stock_dst.path()), (p.ours.addr, p.ours_dst.path())] {
            p.reset(None);
            let link = dst.join("link");
            let made = || std::fs::symlink_metadata(&link).is_ok_and(|m| m.uid() != 0);
            hand_written_push(addr, args, &list, &made);
            let m = std::fs::symlink_metadata(&link).unwrap();
            owners.push((m.uid(), m.gid()));
        }
        assert_eq!(owners[0], owners[1], "numeric {numeric}: stock's and ours");
        assert_eq!(owners[1].0, want, "numeric {numeric}");
        let want_group = if numeric { 4343 } else { daemon_group };
        assert_eq!(owners[1].1, want_group, "numeric {numeric}");
    }
}

#[test]
fn hostile_file_lists_are_refused_and_write_nothing() {
    let p = push_pair("");
    for name in [&b"../escape"[..], b"/etc/evil", b"ok/../../up"] {
        let answer = push_hostile_list(&p.ours, name);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.contains("ABORTING due to unsafe pathname from sender"),
            "{:?}: {text:?}",
            String::from_utf8_lossy(name)
        );
        assert!(text.contains("(code 4)"), "{text:?}");
        assert!(std::fs::read_dir(p.ours_dst.path()).unwrap().next().is_none(), "nothing written");
        let parent = p.ours_dst.path().parent().unwrap();
        assert!(!parent.join("escape").exists() && !parent.join("up").exists());
    }
    // A name whose directory the list does not have (3.5's check): refused
    // before anything is made.
    let answer = push_hostile_list(&p.ours, b"orphan/file");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("ABORTING due to invalid path from sender: orphan/file"), "{text:?}");
    assert!(text.contains("(code 2)"), "{text:?}");
    assert!(std::fs::read_dir(p.ours_dst.path()).unwrap().next().is_none(), "nothing written");
    // The worker is still serving.
    let (_, o) = p.push_with(Path::new("rsync"), &["-a"], "small.txt", "w/");
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn a_full_disk_fails_the_push_without_damage() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; the full-disk push is skipped");
        return;
    }
    let p = push_pair("");
    let mnt = tempfile::tempdir().unwrap();
    let arg = mnt.path().to_str().unwrap().to_string();
    let ok = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", &arg]) {
        eprintln!("note: cannot mount a tmpfs; the full-disk push is skipped");
        return;
    }
    std::fs::write(mnt.path().join("big.bin"), b"the old version\n").unwrap();
    let config = format!(
        "use chroot = no\n[full]\n path = {}\n read only = no\n uid = root\n gid = root\n",
        mnt.path().display()
    );
    let (stock, ours) = (StockDaemon::start(&config), Daemon::start(&config, &["--workers=1"]));
    let src = format!("{}/big.bin", p.src.path().display());
    let push = |addr: std::net::SocketAddr| rsync_bin(Path::new("rsync"), &["-a", &src, &format!("rsync://{addr}/full/")], &[]);
    let o = push(ours.addr);
    assert_eq!(o.code, 11, "{o:?}");
    assert!(o.stderr.contains("No space left on device"), "{o:?}");
    assert_eq!(
        std::fs::read(mnt.path().join("big.bin")).unwrap(),
        b"the old version\n",
        "target untouched"
    );
    let left: Vec<_> = std::fs::read_dir(mnt.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "temporary file removed: {left:?}");
    // Stock agrees on the exit code.
    let s = push(stock.addr);
    assert_eq!(s.code, o.code, "{s:?}");
    // The worker serves the next session.
    let small = format!("{}/small.txt", p.src.path().display());
    let again = rsync_bin(Path::new("rsync"), &["-a", &small, &ours.url("full/")], &[]);
    assert_eq!(again.code, 0, "{again:?}");
    drop((stock, ours));
    // The killed daemons' processes may take a moment to be gone.
    assert!(crate::harness::eventually(std::time::Duration::from_secs(10), || ok(&[
        "umount", &arg
    ])));
}

#[test]
fn deletions_like_stock() {
    let p = push_pair(" exclude = /protected\n");
    let seed = |dst: &Path| {
        TreeBuilder::new(dst)
            .self_named_files(["extra.txt", "dir/stale.o", "gone/deep/x", "protected", "keep.tmp"])
            .symlink("oldlink", "nowhere")
            .mtimes(
                [
                    "extra.txt",
                    "dir/stale.o",
                    "gone/deep/x",
                    "protected",
                    "keep.tmp",
                    "dir",
                    "gone/deep",
                    "gone",
                ],
                1_500_000_000,
                0,
            );
    };
    for opts in [
        vec!["-a", "--delete"],
        vec!["-a", "--delete", "--stats"],
        vec!["-a", "--del", "--stats"],
        vec!["-a", "--delete-before", "-i", "--no-inc-recursive"],
        vec!["-a", "--delete-after", "--stats"],
        vec!["-a", "--delete-delay", "--stats"],
        vec!["-a", "--delete", "--exclude=*.tmp", "--stats"],
        vec!["-a", "--delete", "--delete-excluded", "--exclude=*.tmp", "--stats"],
        vec!["-a", "--delete", "--protocol=30", "--stats"],
        vec!["-a", "--delete", "--protocol=29"],
        vec!["-a", "--max-size=5k", "--min-size=1"],
    ] {
        let stops = !opts.iter().any(|o| o.starts_with("--del"));
        p.compare(&opts, "", "w/", Some(&seed));
        assert!(
            p.ours_dst.path().join("protected").exists(),
            "{opts:?}: daemon-excluded files are never deleted"
        );
        assert_eq!(p.ours_dst.path().join("extra.txt").exists(), stops, "{opts:?}");
    }
    // --max-delete stops after N (a flat tree: removing inside a directory
    // would move its time, which then differs by the clock).
    let flat = |dst: &Path| {
        for f in ["a.old", "b.old", "c.old", "d.old"] {
            std::fs::write(dst.join(f), f).unwrap();
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [vec!["-a", "--delete", "--max-delete=2"], vec!["-a", "--delete", "--max-delete=0"]] {
        let (s, o) = p.compare(&opts, "", "w/", Some(&flat));
        assert_eq!(s.code, o.code, "{opts:?}");
        assert!(o.stderr.contains("Deletions stopped due to --max-delete limit"), "{opts:?}: {o:?}");
    }
    // With -v the client prints deletions as they arrive, between the
    // names it sends: the same lines, in an order buffering decides.
    for (label, bin) in clients() {
        p.reset(Some(&seed));
        let (s, o) = p.push_with(&bin, &["-av", "--delete", "--no-inc-recursive"], "", "w/");
        let sorted = |r: &ClientRun| {
            let (code, mut out, err) = r.visible(true);
            out.sort();
            (code, out, err)
        };
        assert_eq!(sorted(&s), sorted(&o), "{label}");
        assert!(
            o.stdout.contains("deleting gone/deep/x\ndeleting gone/deep/\ndeleting gone/\n"),
            "{label}: deepest first: {o:?}"
        );
    }
}

#[test]
fn hard_links_like_stock() {
    let p = push_pair("");
    let src = p.src.path();
    std::fs::hard_link(src.join("small.txt"), src.join("small-again.txt")).unwrap();
    std::fs::hard_link(src.join("dir/other.o"), src.join("odd/other-link.o")).unwrap();
    std::fs::hard_link(src.join("dir/other.o"), src.join("unicode/third.o")).unwrap();
    let seed = |dst: &Path| {
        std::fs::create_dir_all(dst.join("odd")).unwrap();
        std::fs::write(dst.join("odd/other-link.o"), b"a different file").unwrap();
        set_mtime(&dst.join("odd/other-link.o"), 1_500_000_000, 0);
        // Pinned: with -i its 't' must not depend on the second it was made in.
        set_mtime(&dst.join("odd"), 1_500_000_000, 0);
    };
    for opts in [vec!["-aH"], vec!["-aH", "--protocol=29"], vec!["-aH", "--no-inc-recursive"]] {
        p.compare(&opts, "", "w/", None);
        p.compare(&opts, "", "w/", Some(&seed));
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(p.ours_dst.path().join("dir/other.o")).unwrap().nlink(), 3);
    // What the client shows: the group's last file transferred, the
    // others as `hf... => last` (a dry run too). The links are made as the
    // transfers land, so they interleave with other lines as timing has it.
    for opts in [
        vec!["-aHi", "--no-inc-recursive"],
        vec!["-aHv", "--no-inc-recursive", "--protocol=29"],
        vec!["-aHin", "--no-inc-recursive"],
        vec!["-aHi", "--no-inc-recursive", "--remove-source-files", "-n"],
    ] {
        let (_, o) = p.compare_unordered(&opts, "", "w/", None);
        assert!(o.stdout.contains(" => "), "{opts:?}: {o:?}");
        p.compare_unordered(&opts, "", "w/", Some(&seed));
    }
}

/// `-R` pushes: paths arrive with their directories (implied or, with
/// `--no-implied-dirs`, made on the way), and a client-side
/// `--files-from` list, which the client turns into a `-R` push.
#[test]
fn relative_pushes_like_stock() {
    let p = push_pair("");
    let list_dir = tempfile::tempdir().unwrap();
    let list = list_dir.path().join("list");
    std::fs::write(&list, b"dir/nested/deep/file.c\nsmall.txt\nodd\n").unwrap();
    let from = format!("--files-from={}", list.display());
    let seed = |dst: &Path| {
        std::fs::create_dir_all(dst.join("dir")).unwrap();
        std::fs::write(dst.join("dir/keep"), b"here before\n").unwrap();
        set_mtime(&dst.join("dir/keep"), 1_500_000_000, 0);
        set_mtime(&dst.join("dir"), 1_500_000_000, 0);
    };
    // Parents that --no-implied-dirs leaves out are made with the time of the run.
    let times = |opts: &[&str]| -> Box<Normaliser> {
        if opts.contains(&"--no-implied-dirs") {
            Box::new(every_dir_made_by_the_run)
        } else {
            Box::new(made_by_the_run(&["sub"]))
        }
    };
    for opts in [
        vec!["-aR", "-i"],
        vec!["-aR", "-i", "--protocol=29"],
        vec!["-aR", "--no-implied-dirs", "-i"],
        vec!["-aR", "--delete", "-i"],
        vec!["-aR", "--delete", "-i", "--protocol=28"],
        vec!["-aR", "--no-implied-dirs", "--delete", "-i"],
    ] {
        let (s, o) = p.compare_normalised(&opts, "./dir/nested/deep", "w/", Some(&seed), &times(&opts));
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
        assert!(
            p.ours_dst.path().join("dir/keep").exists(),
            "{opts:?}: an implied parent is not swept"
        );
        p.compare_normalised(&opts, "./dir/nested/deep/file.c", "w/sub/", None, &times(&opts));
    }
    // Below protocol 30 the daemon is not told of --no-implied-dirs, and
    // 3.5's refuses a list whose parents are missing (exit 2 at the daemon).
    let (s, o) = p.compare(
        &["-aR", "--no-implied-dirs", "--protocol=29"],
        "./dir/nested/deep",
        "w/",
        Some(&seed),
    );
    assert_eq!((s.code, o.code), (12, 12), "{o:?}");
    assert!(
        o.stderr.contains("ABORTING due to invalid path from sender: dir/nested/deep"),
        "{o:?}"
    );
    for opts in [
        vec!["-a", from.as_str(), "-i"],
        vec!["-a", from.as_str(), "-r", "-i", "--protocol=30"],
    ] {
        // The list has no "." for the module root: it keeps the time of the run.
        let (s, o) = p.compare_normalised(&opts, "", "w/", Some(&seed), &made_by_the_run(&["."]));
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
    }
}

/// A module root the module's uid does not own (a shared 0777 upload
/// directory): its time cannot be set, which gives upstream's error and
/// exit 23 while the files still arrive.
#[test]
fn a_module_root_owned_by_someone_else_like_stock() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; module uids cannot be switched");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("upload.txt"), b"data\n").unwrap();
    let from = format!("{}/", src.path().display());
    let (stock_dst, ours_dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dst: &Path| {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o777)).unwrap();
        format!(
            "use chroot = no\n[w]\n path = {}\n read only = no\n uid = 65534\n gid = 65534\n",
            dst.display()
        )
    };
    let stock = StockDaemon::start(&config(stock_dst.path()));
    let ours = Daemon::start(&config(ours_dst.path()), &["--workers=1"]);
    let push = |addr: std::net::SocketAddr| rsync_bin(Path::new("rsync"), &["-a", &from, &format!("rsync://{addr}/w/")], &[]);
    // Which of the two upstream reports (the mode or the time it could not
    // set) depends on what the root's time is when the push reaches it.
    for _ in 0..3 {
        let (s, o) = (push(stock.addr), push(ours.addr));
        assert_eq!((s.code, o.code), (23, 23), "{o:?}");
        assert!(ours_dst.path().join("upload.txt").exists());
        for r in [&s, &o] {
            let said = ["permissions", "times"].iter().any(|what| {
                r.stderr.contains(&format!(
                    "rsync: [generator] failed to set {what} on \".\" (in w): Operation not permitted (1)"
                ))
            });
            assert!(said, "{r:?}");
        }
    }
}

/// A module's directory exclude (`exclude = /excluded/`) covers what is
/// below it, as upstream widens it to `/excluded/***`: a push naming a
/// file inside is refused as stock refuses it, while a bare name
/// (`/bare`) protects only that entry.
#[test]
fn daemon_excluded_destinations_like_stock() {
    let p = push_pair(" exclude = /excluded/ /bare secret/\n");
    let seed = |dst: &Path| {
        for d in ["excluded", "bare", "sub/secret"] {
            std::fs::create_dir_all(dst.join(d)).unwrap();
        }
    };
    for target in [
        "w/excluded/x2.tx",
        "w/excluded/",
        "w/excluded",
        "w/bare/x2.tx",
        "w/sub/secret/k",
        "w/bare",
    ] {
        let (s, o) = p.compare_normalised(&["-a"], "small.txt", target, Some(&seed), &every_dir_made_by_the_run);
        let refused = target.contains("excluded") || target.contains("secret") || target.ends_with("/bare");
        assert_eq!((s.code, o.code), if refused { (3, 3) } else { (0, 0) }, "{target}: {o:?}");
        if refused {
            assert!(o.stderr.contains("ERROR: daemon has excluded destination"), "{target}: {o:?}");
        }
    }
}

/// A destination that is a symlink to a directory in the module
/// (`w/link/`, `link -> real/`) is followed as upstream follows it (it
/// changes into it): the upload lands in `real`, deletions happen there,
/// and the link stays a link, however the module's filters name `real`
/// (they match the names the client used). Before, the link was replaced
/// by a new directory.
#[test]
fn a_destination_that_is_a_symlink_is_followed_like_stock() {
    let p = push_pair(" exclude = /real/\n");
    let seed = |dst: &Path| {
        std::fs::create_dir_all(dst.join("real/sub")).unwrap();
        std::fs::write(dst.join("real/stale.txt"), b"deleted by --delete\n").unwrap();
        std::fs::write(dst.join("real/small.txt"), b"an older small.txt\n").unwrap();
        std::os::unix::fs::symlink("real/", dst.join("link")).unwrap();
        std::os::unix::fs::symlink("real/sub", dst.join("sublink")).unwrap();
        for f in ["real/stale.txt", "real/small.txt", "real/sub", "real"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for (opts, source, target) in [
        (vec!["-ai"], "", "w/link/"),
        (vec!["-ai", "--delete"], "", "w/link/"),
        (vec!["-rlt", "--delete", "--protocol=29"], "", "w/link"),
        (vec!["-ai"], "small.txt", "w/link/"),
        (vec!["-ai", "--delete"], "dir/", "w/sublink/"),
    ] {
        // A single file leaves `real` with the time it was renamed into it.
        let renamed_now = move |t: &mut std::collections::BTreeMap<String, String>| {
            if source == "small.txt" {
                if let Some(v) = t.get_mut("real") {
                    *v = v.split(" mtime").next().unwrap_or_default().to_string();
                }
            }
        };
        let (s, o) = p.compare_normalised(&opts, source, target, Some(&seed), &renamed_now);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?} {target}: {o:?}");
        assert!(p.ours_dst.path().join("link").is_symlink() && p.ours_dst.path().join("sublink").is_symlink());
    }
    assert!(
        p.ours_dst.path().join("real/sub/nested/deep/file.c").is_file(),
        "the upload is in the directory"
    );
}

/// A directory the module's uid cannot make (its parent belongs to root):
/// upstream's mkdir error and "Skipping any contents" notice, the rest of
/// the push goes on, exit 23. Before, the generator stopped at the first
/// entry below it and the session waited for data never asked for.
#[test]
fn a_directory_that_cannot_be_made_is_skipped_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; module uids cannot be switched");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("locked/sub/deeper")).unwrap();
    std::fs::write(src.path().join("locked/sub/file"), b"x\n").unwrap();
    std::fs::write(src.path().join("locked/sub/deeper/f"), b"y\n").unwrap();
    std::fs::write(src.path().join("other.txt"), b"arrives\n").unwrap();
    let from = format!("{}/", src.path().display());
    let (stock_dst, ours_dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dst: &Path| {
        std::os::unix::fs::chown(dst, Some(65534), Some(65534)).unwrap();
        std::fs::create_dir(dst.join("locked")).unwrap();
        std::fs::set_permissions(dst.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
        format!(
            "use chroot = no\n[w]\n path = {}\n read only = no\n uid = 65534\n gid = 65534\n",
            dst.display()
        )
    };
    let stock = StockDaemon::start(&config(stock_dst.path()));
    let ours = Daemon::start(&config(ours_dst.path()), &["--workers=1"]);
    for (label, bin) in clients() {
        let push = |addr: std::net::SocketAddr| rsync_bin(&bin, &["-r", "--timeout=20", &from, &format!("rsync://{addr}/w/")], &[]);
        let (s, o) = (push(stock.addr), push(ours.addr));
        assert_eq!((s.code, o.code), (23, 23), "{label}: {o:?}\nstock: {s:?}");
        assert_eq!(s.visible(true), o.visible(false), "{label}");
        assert_eq!(std::fs::read(ours_dst.path().join("other.txt")).unwrap(), b"arrives\n");
    }
}

/// `--chown` (sent as `--usermap=*:U --groupmap=*:G`), `--usermap` and
/// `--groupmap` give uploaded files the owners stock gives them.
#[test]
fn owner_maps_like_stock() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; owners cannot be set");
        return;
    }
    let p = push_pair("");
    for opts in [
        vec!["-a", "--chown=daemon:daemon", "-i"],
        vec!["-a", "--chown=:daemon"],
        vec!["-a", "--usermap=root:daemon,*:bin", "--groupmap=0-10:daemon"],
        vec!["-a", "--numeric-ids", "--usermap=0:1", "--stats"],
    ] {
        let (s, o) = p.compare(&opts, "", "w/", None);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
    }
    let m = std::fs::symlink_metadata(p.ours_dst.path().join("small.txt")).unwrap();
    assert_eq!(m.uid(), 1, "the last push mapped uid 0 to 1");
    // A malformed map is refused before anything is written, as stock refuses it.
    p.reset(None);
    let (s, o) = p.push_with(Path::new("rsync"), &["-a", "--usermap=nocolon"], "", "w/");
    assert_eq!(s.code, o.code, "{o:?}\nstock: {s:?}");
    assert!(o.stderr.contains("No colon found in --usermap: nocolon"), "{o:?}");
}

/// `--secluded-args` (`-s`): the client splits its arguments between the
/// first block and the secluded one; both count, as in upstream's daemon.
#[test]
fn secluded_args_pushes_like_stock() {
    let p = push_pair("");
    for opts in [
        vec!["-a", "-s", "-i"],
        vec!["-a", "-s", "--chown=daemon:daemon", "--stats"],
        vec!["-rgt", "-s", "--protocol=30"],
        vec!["-a", "-s", "--protocol=29"],
    ] {
        let (s, o) = p.compare(&opts, "", "w/", None);
        assert_eq!((s.code, o.code), (0, 0), "{opts:?}: {o:?}");
    }
}

/// A directory the client names for its own use (`--backup-dir`,
/// `--temp-dir`, an absolute `--partial-dir`, `--*-dest`) that the
/// module's filters exclude is refused, however `..` reached it, as
/// stock refuses it: "Your options have been rejected by the server."
#[test]
fn option_directories_in_excluded_places_are_refused_like_stock() {
    let p = push_pair(" exclude = /secret/\n");
    let seed = |dst: &Path| {
        std::fs::create_dir_all(dst.join("secret")).unwrap();
        std::fs::create_dir_all(dst.join("ok/sub")).unwrap();
        std::fs::write(dst.join("secret/f0"), b"protected\n").unwrap();
        set_mtime(&dst.join("secret/f0"), 1_500_000_000, 0);
    };
    for opts in [
        vec!["-ab", "--backup-dir=/ok/sub/../../secret/"],
        vec!["-a", "--temp-dir=/secret"],
        vec!["-a", "--delay-updates", "--partial-dir=/ok/../secret"],
        vec!["-a", "--link-dest=/secret"],
    ] {
        let (s, o) = p.compare_normalised(&opts, "", "w/", Some(&seed), &every_dir_made_by_the_run);
        // (Upstream refuses the first two while parsing options, exit 4;
        // the others once the destination is known, exit 1.)
        assert!(s.code == 4 || s.code == 1, "{opts:?}: {s:?}");
        assert!(
            o.stderr.contains("Your options have been rejected by the server."),
            "{opts:?}: {o:?}"
        );
        assert_eq!(std::fs::read(p.ours_dst.path().join("secret/f0")).unwrap(), b"protected\n");
    }
}

/// `--delete-missing-args`: an argument missing at the client arrives with
/// mode 0 and the module's copy of it goes (a directory with contents only
/// with `--delete` or `--force`), as stock does.
#[test]
fn delete_missing_args_like_stock() {
    let p = push_pair("");
    let list_dir = tempfile::tempdir().unwrap();
    let list = list_dir.path().join("list");
    std::fs::write(&list, b"small.txt\nghost.txt\nghostdir\nnever-there\n").unwrap();
    let from = format!("--files-from={}", list.display());
    let seed = |dst: &Path| {
        std::fs::write(dst.join("ghost.txt"), b"gone soon\n").unwrap();
        std::fs::create_dir(dst.join("ghostdir")).unwrap();
        std::fs::write(dst.join("ghostdir/inner"), b"x\n").unwrap();
        std::fs::write(dst.join("stays.txt"), b"not named\n").unwrap();
        for f in ["ghost.txt", "ghostdir/inner", "ghostdir", "stays.txt"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-a", "--delete-missing-args", from.as_str(), "-i"],
        vec!["-a", "--delete-missing-args", "--force", from.as_str()],
        vec!["-a", "--delete-missing-args", "--delete", from.as_str(), "--stats"],
    ] {
        let (s, o) = p.compare_normalised(&opts, "", "w/", Some(&seed), &made_by_the_run(&["."]));
        assert_eq!(s.code, o.code, "{opts:?}: {o:?}");
        assert!(!p.ours_dst.path().join("ghost.txt").exists(), "{opts:?}");
        assert!(p.ours_dst.path().join("stays.txt").exists(), "{opts:?}");
    }
}

/// `--files-from=:list` on a push: the list sits in the module, and the
/// daemon forwards it to the client, which sends what it names (framed
/// from protocol 31, unframed below), as stock's daemon does.
#[test]
fn files_from_a_list_in_the_module_like_stock() {
    let p = push_pair("");
    let seed = |dst: &Path| {
        // Blank lines, a CR line end and a name that is not there.
        std::fs::write(dst.join("list"), b"small.txt\n\ndir/nested/deep/file.c\r\nghost\n").unwrap();
        std::fs::write(dst.join("list0"), b"odd\0\0small.txt\0").unwrap();
        for f in ["list", "list0"] {
            set_mtime(&dst.join(f), 1_500_000_000, 0);
        }
    };
    for opts in [
        vec!["-a", "--files-from=:list", "-i"],
        vec!["-a", "--files-from=:list", "-i", "--protocol=30"],
        vec!["-a", "--files-from=:list", "-i", "--protocol=29"],
        vec!["-a", "--files-from=:list", "--no-relative", "-i", "--protocol=27"],
        vec!["-a", "--from0", "--files-from=:list0", "-i"],
        vec!["-a", "--files-from=:no-such-list", "-i"],
    ] {
        let (s, o) = p.compare_normalised(&opts, "", "w/", Some(&seed), &made_by_the_run(&["."]));
        assert_eq!(s.code, o.code, "{opts:?}: {o:?}");
        if !opts.contains(&"--files-from=:no-such-list") {
            assert!(p.ours_dst.path().join("small.txt").exists(), "{opts:?}: {o:?}");
        }
    }
}

/// `-U` pushes: files get the sender's access times, as stock gives them.
#[test]
fn atimes_push_like_stock() {
    let p = push_pair("");
    let src = p.src.path().join("small.txt");
    let path = std::ffi::CString::new(src.to_str().unwrap()).unwrap();
    // (Each push reads the file, which moves its access time: set it again.)
    let set_atime = || {
        let times = [
            libc::timespec {
                tv_sec: 1_577_836_800,
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: 1_600_000_000,
                tv_nsec: 0,
            },
        ];
        // SAFETY: utimensat(2) on a valid path with a two-element array.
        assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }, 0);
    };
    for opts in [vec!["-aU"], vec!["-aU", "--protocol=29"], vec!["-aUi"]] {
        for (label, bin) in clients() {
            p.reset(None);
            let mut shown = Vec::new();
            for (who, addr, dst) in [
                ("stock", p.stock.addr, p.stock_dst.path()),
                ("ours", p.ours.addr, p.ours_dst.path()),
            ] {
                set_atime();
                let mut args = opts.clone();
                let url = format!("rsync://{addr}/w/");
                let from = src.to_str().unwrap();
                args.extend([from, url.as_str()]);
                let run = rsync_bin(&bin, &args, &[]);
                assert_eq!(run.code, 0, "{label} {opts:?} {who}: {run:?}");
                let atime = std::fs::metadata(dst.join("small.txt")).unwrap().atime();
                assert_eq!(atime, 1_577_836_800, "{label} {opts:?}: {who}");
                // Again, over the copy just made: the itemized flags of an
                // unchanged file whose access time moved.
                set_atime();
                let again = rsync_bin(&bin, &args, &[]);
                shown.push(again.visible(who == "stock"));
            }
            assert_eq!(shown[0], shown[1], "{label} {opts:?}");
        }
    }
}

/// `-n` pushes change nothing in the module, whatever they would do
/// (delete, replace a directory, make links, back up, link against
/// `--link-dest`), and show what they would do exactly as stock does.
#[test]
fn dry_run_pushes_change_nothing_like_stock() {
    let p = push_pair(" exclude = /protected\n");
    let seed = |dst: &Path| {
        let t = TreeBuilder::new(dst);
        t.self_named_files([
            "extra.txt",
            "gone/deep/x",
            "protected",
            "small.txt",
            "dir/other.o/in-the-way",
            "prev/big.bin",
        ]);
        // A directory where the list has a symlink, a file where it has a directory.
        t.dir("link-in/sub")
            .file("emptydir", b"a file where a directory goes")
            .symlink("link-out", "elsewhere")
            .mtimes(
                [
                    "extra.txt",
                    "gone/deep/x",
                    "protected",
                    "small.txt",
                    "dir/other.o/in-the-way",
                    "dir/other.o",
                    "dir",
                    "gone/deep",
                    "gone",
                    "link-in/sub",
                    "link-in",
                    "link-out",
                    "emptydir",
                    "prev/big.bin",
                    "prev",
                ],
                1_500_000_000,
                0,
            );
    };
    let before = |d: &Path| {
        let mut t = snapshot(d);
        t.remove(".");
        t
    };
    for opts in [
        vec!["-ani", "--delete"],
        vec!["-an", "-v", "--delete", "--force", "--stats"],
        vec!["-ani", "--delete-after", "--protocol=29"],
        vec!["-anic", "--delete-before", "--protocol=29"],
        vec!["-ani", "-b", "--delete", "--backup-dir=bak"],
        vec!["-aniH", "--delete-excluded", "--exclude=*.o"],
        vec!["-ani", "--link-dest=prev", "--delay-updates"],
        vec!["-ani", "--inplace", "--protocol=30"],
        vec!["-ani", "--partial-dir=.p", "--fuzzy"],
    ] {
        p.reset(Some(&seed));
        let seeded = before(p.ours_dst.path());
        let mut opts = opts;
        opts.push("--no-inc-recursive");
        // (Without --delete or --force the directories in the way stay: exit 23.)
        let (_, o) = p.compare_unordered(&opts, "", "w/", Some(&seed));
        assert_eq!(before(p.ours_dst.path()), seeded, "{opts:?}: the dry run changed the module");
        assert!(o.stdout.lines().count() > 3, "{opts:?}: it shows what it would do: {o:?}");
    }
    // Into a directory that is not there: announced, not made.
    let (_, o) = p.compare(&["-ani"], "dir/", "w/new/", None);
    assert!(o.stdout.contains("created directory new"), "{o:?}");
    assert!(!p.ours_dst.path().join("new").exists());
    // A single file under a new name, and -R with its implied directories.
    p.compare(&["-ani"], "small.txt", "w/renamed.txt", None);
    p.compare_unordered(&["-aniR", "--no-inc-recursive"], "./dir/nested/deep", "w/", Some(&seed));
    assert!(!p.ours_dst.path().join("dir/nested").exists());
    // A fake super module keeps owners and modes in an attribute: a dry
    // run writes none.
    let fake = push_pair(" fake super = yes\n");
    fake.reset(Some(&seed));
    let seeded = before(fake.ours_dst.path());
    fake.compare_unordered(&["-ani", "--delete", "--no-inc-recursive"], "", "w/", Some(&seed));
    assert_eq!(before(fake.ours_dst.path()), seeded, "fake super: the dry run changed the module");
    let attrs = xattr::list(fake.ours_dst.path().join("small.txt")).map(|l| l.count()).unwrap_or(0);
    assert_eq!(attrs, 0, "no attribute written");
}

/// `--remove-source-files` (and the older `--remove-sent-files`) on a
/// push: the daemon confirms each entry once it is in place (received,
/// already up to date, linked, made), and the client removes its copy;
/// what is left of the source, the upload and the output match stock's.
#[test]
fn remove_source_files_pushes_like_stock() {
    let p = push_pair("");
    let make_source = |root: &Path| {
        let t = TreeBuilder::new(root);
        let w = |name: &str, data: &[u8]| {
            t.file(name, data).mtime(name, 1_600_000_000, 0);
        };
        w("new.txt", b"new\n");
        w("same.txt", b"already there\n");
        w("changed.bin", &vec![7u8; 100_000]);
        w("sub/deep/file", b"deep\n");
        w("linked-a", b"hard linked\n");
        t.hard_link("sub/linked-b", "linked-a").symlink("link", "new.txt");
        t.fifo("fifo", 0o644).unwrap();
        t.mtimes(["sub/deep", "sub", ""], 1_600_000_000, 0);
    };
    let seed = |dst: &Path| {
        std::fs::write(dst.join("same.txt"), b"already there\n").unwrap();
        set_mtime(&dst.join("same.txt"), 1_600_000_000, 0);
        std::fs::write(dst.join("changed.bin"), vec![8u8; 100_000]).unwrap();
        // Pinned: a dry run leaves it as seeded, and the two seeds are
        // made moments apart.
        set_mtime(&dst.join("changed.bin"), 1_700_000_000, 0);
    };
    let source_left = |root: &Path| {
        let mut t = snapshot(root);
        every_dir_made_by_the_run(&mut t);
        t
    };
    for opts in [
        vec!["-a", "--remove-source-files"],
        vec!["-a", "--remove-source-files", "-H", "-D"],
        vec!["-av", "--remove-source-files", "-D"],
        vec!["-a", "--remove-sent-files", "-D", "--info=remove"],
        vec!["-ai", "--remove-source-files", "--delay-updates", "--protocol=29"],
        vec!["-a", "--remove-source-files", "-c", "--inplace", "--protocol=30"],
        vec!["-an", "--remove-source-files", "-D"],
    ] {
        for (label, bin) in clients() {
            p.reset(Some(&seed));
            let sources = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
            let mut runs = Vec::new();
            for (src, addr) in sources.iter().zip([p.stock.addr, p.ours.addr]) {
                make_source(src.path());
                let from = format!("{}/", src.path().display());
                let url = format!("rsync://{addr}/w/");
                let mut args = opts.clone();
                args.extend(["--no-inc-recursive", &from, &url]);
                runs.push(rsync_bin(&bin, &args, &[]));
            }
            let sorted = |r: &ClientRun, drop_reset: bool| {
                let (code, mut out, err) = r.visible(drop_reset);
                out.sort();
                (code, out, err)
            };
            assert_eq!(
                sorted(&runs[0], true),
                sorted(&runs[1], false),
                "{label} {opts:?}: output differs\nours: {:?}",
                runs[1]
            );
            assert_eq!(
                snapshot(p.stock_dst.path()),
                snapshot(p.ours_dst.path()),
                "{label} {opts:?}: uploads differ"
            );
            assert_eq!(
                source_left(sources[0].path()),
                source_left(sources[1].path()),
                "{label} {opts:?}: what is left of the source differs"
            );
            let left = source_left(sources[1].path());
            let removed = !opts.contains(&"-an");
            assert_eq!(!left.contains_key("new.txt"), removed, "{label} {opts:?}: {left:?}");
        }
    }
}

/// Below protocol 29 the client itemizes only what it sends; with `-v` the
/// daemon names what it made itself (links, nodes, hard links) and what it
/// deleted, in messages, as stock's does (with `-i`, deletions as a bare
/// `*deleting`). The lines are compared sorted: messages and the client's
/// own lines interleave as timing has it. Stock also names directories
/// whose attributes it changed, by a rule this does not follow (see
/// docs/architecture.md): those lines are left out of the comparison.
#[test]
fn old_protocol_push_output_like_stock() {
    let p = push_pair("");
    std::fs::hard_link(p.src.path().join("small.txt"), p.src.path().join("small-again.txt")).unwrap();
    let seed = |dst: &Path| {
        TreeBuilder::new(dst)
            .self_named_files(["stale/deep/x", "extra.txt", "dir/old.o"])
            .dir("odd")
            .mtimes(
                ["stale/deep/x", "extra.txt", "dir/old.o", "stale/deep", "stale", "dir", "odd"],
                1_500_000_000,
                0,
            );
    };
    for proto in ["--protocol=28", "--protocol=27"] {
        for opts in [
            vec!["-av", "--delete"],
            vec!["-ai", "--delete"],
            vec!["-avi", "--delete-after"],
            vec!["-avH", "-n", "--delete"],
        ] {
            let mut opts = opts;
            opts.push(proto);
            let (_, o) = p.compare_unordered_without(&opts, "", "w/", Some(&seed), &|l: &str| {
                l.ends_with('/') && !l.starts_with("deleting ")
            });
            assert!(o.stdout.contains("deleting"), "{opts:?}: {o:?}");
        }
    }
}

/// A delta push of a basis big enough to be summed on several threads:
/// the same literal and matched data as stock, the same file.
#[test]
fn a_large_delta_push_like_stock() {
    let p = push_pair("");
    let big: Vec<u8> = (0..20_000_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8).collect();
    std::fs::write(p.src.path().join("large.bin"), &big).unwrap();
    let seed = move |dst: &Path| {
        let mut old = big.clone();
        old[12_345_678] ^= 0x5A;
        old.truncate(19_000_000);
        std::fs::write(dst.join("large.bin"), old).unwrap();
        set_mtime(&dst.join("large.bin"), 1_500_000_000, 0);
    };
    for opts in [
        vec!["-a", "--stats", "--no-whole-file"],
        vec!["-a", "--stats", "--no-whole-file", "--protocol=29"],
    ] {
        let (s, o) = p.compare(&opts, "large.bin", "w/large.bin", Some(&seed));
        assert_same_delta(&s, &o, &opts);
        assert!(o.stat_line("Matched data:").is_some_and(|l| !l.contains(" 0 bytes")), "{o:?}");
    }
}

/// Filter options given to the daemon itself on a push protect what they
/// exclude from `--delete`, as stock's do.
#[test]
fn filter_options_for_the_daemon_on_a_push_like_stock() {
    let p = push_pair("");
    let seed = |dst: &Path| {
        let t = TreeBuilder::new(dst);
        for f in ["keep.me", "drop.me", "dir/keep.me"] {
            t.file(f, f).mtime(f, 1_500_000_000, 0);
        }
        t.mtime("dir", 1_500_000_000, 0);
    };
    for opts in [
        vec!["-a", "--delete", "-M--exclude=keep.me"],
        vec!["-a", "--delete", "-M--filter=protect_/keep.me", "--no-inc-recursive", "-i"],
    ] {
        p.compare_unordered(&opts, "", "w/", Some(&seed));
        assert!(p.ours_dst.path().join("keep.me").exists(), "{opts:?}");
        assert!(!p.ours_dst.path().join("drop.me").exists(), "{opts:?}");
    }
}
