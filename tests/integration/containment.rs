//! A pull never leaves the module, whatever its symlinks say: links to
//! outside and `..`-climbing links resolve inside the module as in a
//! chroot (or have no referent), also while a directory is swapped for a
//! link to outside during the walk.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::harness::client::{rsync, ClientRun};
use crate::harness::daemon::Daemon;
use crate::harness::stock::StockDaemon;
use crate::harness::tree::snapshot;

/// The race test renames in a tight loop, which makes every `..` lookup
/// on the host retry (EAGAIN): the tests here run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the file outside the module holds; it must never reach a client.
const SECRET: &str = "OUTSIDE-SECRET-3b9f1c";

/// The pulls every test makes.
const CASES: &[(&[&str], &str)] = &[
    (&[], "mod/link/secret"),
    (&["-r"], "mod/link/secret"),
    (&["-r"], "mod/link/"),
    (&["-r"], "mod/link/sub/"),
    (&["-r"], "mod/d/up/"),
    (&[], "mod/d/up/secret"),
    (&["-r"], "mod/dirlink/"),
    (&["-rL"], "mod/"),
    (&["-rk"], "mod/"),
    (&["-rl", "--copy-unsafe-links"], "mod/"),
    (&["-rL", "--no-inc-recursive"], "mod/"),
    (&["-rL"], "mod/link/*"),
    (&["-rc"], "mod/link/secret"),
];

/// A scratch dir with `outside/secret` (+ `outside/sub/secret2`) and the
/// module `m/` holding `a.txt`, `d/b.txt`, `link -> <abs outside>`,
/// `dirlink -> ../..`, `d/up -> ../../outside`.
fn setup() -> (tempfile::TempDir, Daemon) {
    let top = build();
    let config = format!("use chroot = no\n[mod]\n path = {}\n", top.path().join("m").display());
    let ours = Daemon::start(&config, &["--workers=1"]);
    (top, ours)
}

fn build() -> tempfile::TempDir {
    let top = tempfile::tempdir().unwrap();
    let outside = top.path().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    std::fs::write(outside.join("sub/secret2"), SECRET).unwrap();
    let m = top.path().join("m");
    std::fs::create_dir_all(m.join("d")).unwrap();
    std::fs::write(m.join("a.txt"), "a").unwrap();
    std::fs::write(m.join("d/b.txt"), "b").unwrap();
    std::os::unix::fs::symlink(&outside, m.join("link")).unwrap();
    std::os::unix::fs::symlink("../..", m.join("dirlink")).unwrap();
    std::os::unix::fs::symlink("../../outside", m.join("d/up")).unwrap();
    top
}

/// Every regular file's content under `dir`, with its path.
fn contents(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                walk(root, &p, out);
            } else if meta.is_file() {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn pull(ours: &Daemon, args: &[&str], path: &str) -> (ClientRun, tempfile::TempDir) {
    pull_url(&ours.url(path), args)
}

fn pull_url(url: &str, args: &[&str]) -> (ClientRun, tempfile::TempDir) {
    let dst = tempfile::tempdir().unwrap();
    let d = format!("{}/", dst.path().display());
    let mut argv = vec!["--timeout=30"];
    argv.extend_from_slice(args);
    argv.push(url);
    argv.push(&d);
    (rsync(&argv), dst)
}

fn assert_no_secret(run: &ClientRun, dst: &Path, what: &str) {
    let files = contents(dst);
    assert!(
        !files.iter().any(|(_, data)| data.contains(SECRET)),
        "{what}: the outside file's content reached the client: {files:?} {run:?}"
    );
    assert!(
        !files.iter().any(|(name, _)| name.ends_with("secret") || name.ends_with("secret2")),
        "{what}: an outside file's name reached the client: {files:?}"
    );
    assert!(!run.stdout.contains("secret"), "{what}: listed an outside name: {run:?}");
}

#[test]
fn links_to_outside_never_deliver_outside_files() {
    let _serial = serial();
    let (_top, ours) = setup();
    for (args, path) in CASES {
        let what = format!("{args:?} {path}");
        let (run, dst) = pull(&ours, args, path);
        assert_no_secret(&run, dst.path(), &what);
        assert_ne!(run.code, 124, "{what}: timed out: {run:?}");
    }
}

/// Stock with `use chroot = yes` (we run as root here) is the oracle: the
/// same exit, words (up to how a chroot names paths) and delivered tree.
#[test]
fn same_as_stock_in_a_chroot() {
    let _serial = serial();
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("note: not root, stock cannot chroot: differential skipped");
        return;
    }
    let top = build();
    let config = format!("use chroot = yes\n[mod]\n path = {}\n", top.path().join("m").display());
    let stock = StockDaemon::start(&config);
    let ours = Daemon::start(&config, &["--workers=1"]);
    for (args, path) in CASES {
        let what = format!("{args:?} {path}");
        let (s, sd) = pull_url(&format!("rsync://{}/{path}", stock.addr), args);
        let (o, od) = pull(&ours, args, path);
        assert_no_secret(&o, od.path(), &what);
        // In a chroot stock names files from "/" (`"/link"`), outside one
        // from the module (`"link"`); that prefix is all that may differ.
        let unrooted = |r: &ClientRun| {
            let (code, out, err) = r.visible(true);
            let err = err.iter().map(|l| l.replace("\"/", "\""));
            // Sorted: without incremental recursion our walk reports in
            // another order than stock's (not a containment matter).
            let mut err = err.collect::<Vec<_>>();
            err.sort();
            (code, out, err)
        };
        assert_eq!(unrooted(&s), unrooted(&o), "{what}");
        assert_eq!(timeless(sd.path()), timeless(od.path()), "{what}");
    }
}

/// The tree snapshot without mtimes (the pulls run without `-t`).
fn timeless(dir: &Path) -> Vec<(String, String)> {
    let drop_mtime = |v: &str| {
        let words: Vec<&str> = v.split(' ').collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < words.len() {
            if words[i] == "mtime" {
                i += 2;
                continue;
            }
            out.push(words[i]);
            i += 1;
        }
        out.join(" ")
    };
    snapshot(dir).into_iter().map(|(k, v)| (k, drop_mtime(&v))).collect()
}

#[test]
fn links_resolve_inside_the_module_like_a_chroot() {
    let _serial = serial();
    let (_top, ours) = setup();
    // The intermediate `link` names /<top>/outside inside the module: no such directory.
    let (run, dst) = pull(&ours, &[], "mod/link/secret");
    assert_eq!(run.code, 23, "{run:?}");
    assert!(
        run.stderr
            .contains("change_dir \"link\" (in mod) failed: No such file or directory (2)"),
        "{run:?}"
    );
    assert!(contents(dst.path()).is_empty());
    // With -L a link that leads out of the module is what it leads to (a
    // directory, as stock's unchrooted daemon stats it) but is never
    // opened there (ELOOP, as stock's confined open); `-l` sends the links
    // themselves, unchanged.
    let (run, dst) = pull(&ours, &["-rL"], "mod/d/");
    assert_eq!(run.code, 23, "{run:?}");
    assert!(
        run.stderr
            .contains("opendir \"/d/up\" (in mod) failed: Too many levels of symbolic links"),
        "{run:?}"
    );
    assert_eq!(contents(dst.path()), [("b.txt".to_string(), "b".to_string())]);
    let (run, dst) = pull(&ours, &["-rl"], "mod/");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read_link(dst.path().join("dirlink")).unwrap().to_string_lossy(),
        "../..",
        "links are sent as they are"
    );
    // `dirlink -> ../..` is the module root itself, as in a chroot.
    let (run, dst) = pull(&ours, &[], "mod/dirlink/a.txt");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(contents(dst.path()), [("a.txt".to_string(), "a".to_string())]);
}

#[test]
fn swapping_a_directory_for_a_link_mid_walk_never_escapes() {
    let _serial = serial();
    let (top, ours) = setup();
    let m = top.path().join("m");
    std::fs::create_dir_all(m.join("race/sub")).unwrap();
    for i in 0..50 {
        std::fs::write(m.join(format!("race/sub/f{i}")), "inside").unwrap();
    }
    std::os::unix::fs::symlink(top.path().join("outside"), m.join("evil")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let m = m.clone();
        std::thread::spawn(move || {
            // `race` flips between the real directory and a link to outside.
            let start = Instant::now();
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(10) && swaps < 2_000_000 {
                let _ = std::fs::rename(m.join("race"), m.join("spare_dir"));
                let _ = std::fs::rename(m.join("evil"), m.join("race"));
                let _ = std::fs::rename(m.join("race"), m.join("evil"));
                let _ = std::fs::rename(m.join("spare_dir"), m.join("race"));
                swaps += 1;
            }
            swaps
        })
    };
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < Duration::from_secs(2) && runs < 40 {
        for (args, path) in [
            (&["-r"][..], "mod/race/"),
            (&[][..], "mod/race/secret"),
            (&["-r"][..], "mod/race/sub/"),
        ] {
            let (run, dst) = pull(&ours, args, path);
            assert_no_secret(&run, dst.path(), &format!("{args:?} {path} (run {runs})"));
        }
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(runs > 0 && swaps > 0, "the race ran ({runs} pulls, {swaps} swaps)");
}
