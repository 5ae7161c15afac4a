//! The worker's `-c` checksum cache, against stock: a repeated `-c` pull
//! gets its digests from the cache yet sees every change stock sees, and
//! a digest computed for one module's user never answers for another.

use std::path::Path;
use std::time::Duration;

use crate::harness::client::{clients, pull_paths, ClientRun};
use crate::harness::daemon::Daemon;
use crate::harness::stock::StockDaemon;
use crate::harness::tree::{copy_tree, snapshot, TreeBuilder};

/// Our log's summary line of one `-c` list (debug level).
const SUMMARY: &str = "file digests from the checksum cache";

/// The cache keeps only files unchanged for 2 s before their read.
const SETTLE_WAIT: Duration = Duration::from_millis(2_200);

/// Both daemons on `config`; ours with one worker (the cache is per
/// worker) and the checksum summary logged.
fn daemons(config: &str) -> (StockDaemon, Daemon) {
    let stock = StockDaemon::start(config);
    let log = [("OXRSYNCD_LOG", "info,oxrsyncd_worker::transfer::send::flist_checksums=debug")];
    let ours = Daemon::start_with_env(config, &["--workers=1"], &log);
    (stock, ours)
}

/// What our log's summary lines say since byte `from` of the log, added
/// up (an incremental list is hashed a directory at a time): (digests
/// from the cache, files listed).
fn summaries_since(ours: &Daemon, from: usize) -> (usize, usize) {
    let log = ours.log();
    let mut total = (0, 0);
    for line in log[from.min(log.len())..].lines().filter(|l| l.contains(SUMMARY)) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "of").expect("summary shape");
        total.0 += words[at - 1].parse::<usize>().unwrap();
        total.1 += words[at + 1].parse::<usize>().unwrap();
    }
    total
}

/// Same client, same options, into copies of `seed` for each daemon: the
/// output and the resulting trees must match. Returns both runs and what
/// our cache answered for ours.
fn pull_both(
    bin: &Path,
    stock: &StockDaemon,
    ours: &Daemon,
    options: &[&str],
    path: &str,
    seed: &Path,
) -> (ClientRun, ClientRun, (usize, usize)) {
    let from = ours.log().len();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [d1.path(), d2.path()] {
        copy_tree(seed, d);
    }
    let s = pull_paths(bin, stock.addr, options, &[path], d1.path());
    let o = pull_paths(bin, ours.addr, options, &[path], d2.path());
    assert_eq!(
        s.visible(true),
        o.visible(false),
        "{options:?} {path}: output differs\nours: {o:?}\nlog:\n{}",
        ours.log()
    );
    assert_eq!(snapshot(d1.path()), snapshot(d2.path()), "{options:?} {path}: trees differ");
    // The session's lines are in the log once the client is done.
    let mut cached = summaries_since(ours, from);
    for _ in 0..50 {
        if cached.1 > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        cached = summaries_since(ours, from);
    }
    (s, o, cached)
}

/// A second `-c` pull of an unchanged tree takes every digest from the
/// cache; a file rewritten with its size and mtime kept (only its ctime
/// tells) is read again and transferred, as stock transfers it.
#[test]
fn repeated_checksum_pulls_see_every_change_like_stock() {
    let src = tempfile::tempdir().unwrap();
    let t = TreeBuilder::new(src.path());
    for i in 0..30 {
        t.file(format!("d{}/f{i}", i % 3), format!("file {i}\n").repeat(i * 50 + 1));
    }
    t.file("big.bin", vec![5u8; 3_000_000]);
    // The cache keeps only files that have not changed for 2 s.
    std::thread::sleep(SETTLE_WAIT);
    let config = format!("use chroot = no\n[mod]\n path = {}\n", src.path().display());
    let (stock, ours) = daemons(&config);
    // The destination: an exact copy, so -c finds nothing to send.
    let seed = tempfile::tempdir().unwrap();
    copy_tree(src.path(), seed.path());
    let listed = 31;
    for (n, (label, bin)) in clients().into_iter().enumerate() {
        let (_, o, cached) = pull_both(&bin, &stock, &ours, &["-ac", "-i"], "mod/", seed.path());
        assert!(o.stdout.lines().all(|l| !l.starts_with(">f")), "{label}: nothing to send: {o:?}");
        let hits = if n == 0 { 0 } else { listed };
        assert_eq!(cached, (hits, listed), "{label}: the first pull reads, later ones hit");
        let (_, o, cached) = pull_both(&bin, &stock, &ours, &["-ac", "-i", "--no-inc-recursive"], "mod/", seed.path());
        assert_eq!(cached, (listed, listed), "{label}: {o:?}");
    }
    // Rewritten in place: same size, same mtime, other bytes.
    let victim = src.path().join("d1/f4");
    let meta = std::fs::metadata(&victim).unwrap();
    let mut data = std::fs::read(&victim).unwrap();
    data[0] ^= 0xff;
    std::fs::write(&victim, &data).unwrap();
    let mtime = nix::sys::time::TimeSpec::new(
        std::os::unix::fs::MetadataExt::mtime(&meta),
        std::os::unix::fs::MetadataExt::mtime_nsec(&meta),
    );
    nix::sys::stat::utimensat(None, &victim, &mtime, &mtime, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
    for (label, bin) in clients() {
        let (_, o, cached) = pull_both(&bin, &stock, &ours, &["-ac", "-i"], "mod/", seed.path());
        let sent: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with(">f")).collect();
        assert_eq!(sent, [">fc........ d1/f4"], "{label}: {o:?}");
        // The changed file is read (and, changed just now, not kept).
        assert_eq!(cached, (listed - 1, listed), "{label}");
    }
}

/// A digest the cache holds for a file one module's user could read does
/// not answer for a module whose user cannot read it: that pull fails on
/// the file as stock's does (exit 23), instead of finding it unchanged.
#[test]
fn a_cached_digest_is_not_given_to_another_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (module uid/gid)");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    TreeBuilder::new(src.path())
        .mode("", 0o755)
        .file("public.txt", b"anyone may read this\n")
        .file("secret.txt", b"root only\n")
        .mode("secret.txt", 0o600);
    std::thread::sleep(SETTLE_WAIT);
    let path = src.path().display();
    let config = format!("use chroot = no\n[root]\n path = {path}\n uid = root\n gid = root\n[nobody]\n path = {path}\n uid = nobody\n");
    let (stock, ours) = daemons(&config);
    let seed = tempfile::tempdir().unwrap();
    TreeBuilder::new(seed.path())
        .file("public.txt", b"anyone may read this\n")
        .file("secret.txt", b"root only\n");
    for (n, (label, bin)) in clients().into_iter().enumerate() {
        let (s, _, cached) = pull_both(&bin, &stock, &ours, &["-rc", "-i"], "root/", seed.path());
        assert_eq!(s.code, 0, "{label}: {s:?}");
        assert_eq!(cached, (if n == 0 { 0 } else { 2 }, 2), "{label}");
        let (s, o, cached) = pull_both(&bin, &stock, &ours, &["-rc", "-i"], "nobody/", seed.path());
        assert_eq!((s.code, o.code), (23, 23), "{label}: {o:?}");
        // The public file's digest is kept for nobody too; the secret one
        // nobody cannot read, so it is never nobody's.
        assert_eq!(cached, (if n == 0 { 0 } else { 1 }, 2), "{label}: no digest crosses users");
    }
}
