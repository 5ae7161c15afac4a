//! Hostile clients: sessions driven byte by byte by
//! [`crate::harness::hostile::Hostile`], sending what the stock client never
//! sends. Each test names the hole it guards; where stock's daemon has an
//! answer, the same bytes go to it too and both must agree.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use oxrsyncd_worker::transfer::flist::{FileEntry, FlistOptions};
use oxrsyncd_worker::transfer::ndx::{NdxCodec, NDX_DONE};

use crate::harness::daemon::Daemon;
use crate::harness::hostile::{tag, Hostile, CAPABILITIES};
use crate::harness::raw::Greeted;
use crate::harness::stock::StockDaemon;

/// The end of all three phases and the goodbye, as a client sends them.
fn phases_and_goodbye(protocol: u32) -> Vec<u8> {
    let mut codec = NdxCodec::new(protocol);
    let mut out = Vec::new();
    for _ in 0..4 {
        codec.write(&mut out, NDX_DONE).unwrap();
    }
    out
}

/// Whether a worker still serves: a module listing completes.
fn still_serves(addr: SocketAddr) -> bool {
    crate::harness::raw::list_modules(addr, Duration::from_secs(5)).is_ok()
}

fn write_files(dir: &Path, names: &[&str]) {
    for name in names {
        std::fs::write(dir.join(name), format!("contents of {name}\n")).unwrap();
    }
}

/// Hole 1: a pulling client sends MSG_SUCCESS for every index without
/// having asked for `--remove-source-files`. Nothing may be removed, in a
/// read-only module or a writable one, and stock agrees.
#[test]
fn msg_success_without_remove_source_files_removes_nothing() {
    let src = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\n[ro]\n path = {d}\n[rw]\n path = {d}\n read only = no\n[refusing]\n path = {d}\n read only = no\n refuse options = remove-source-files\n",
        d = src.path().display()
    );
    let ours = Daemon::start(&config, &["--workers=1"]);
    let stock = StockDaemon::start(&config);
    let names = ["a.txt", "b.txt", "c.txt"];
    for (daemon, addr) in [("oxrsyncd", ours.addr), ("stock", stock.addr)] {
        for module in ["ro", "rw", "refusing"] {
            write_files(src.path(), &names);
            let path = format!("{module}/");
            let args = ["--server", "--sender", &format!("-re.{CAPABILITIES}"), ".", &path];
            let mut s = Hostile::start(addr, module, &args, 31).unwrap();
            s.send_no_filters().unwrap();
            let list = s.read_file_list(FlistOptions::default()).unwrap();
            assert_eq!(list.len(), names.len() + 1, "{daemon} {module}: the list is '.' and the files");
            for ndx in 0..=list.len() as i32 {
                s.send_message(tag::SUCCESS, &ndx.to_le_bytes()).unwrap();
            }
            s.send_data(&phases_and_goodbye(31)).unwrap();
            let _ = s.finish(Duration::from_secs(5));
            for name in names {
                assert!(
                    src.path().join(name).exists(),
                    "{daemon} removed {name} from module {module} on an unasked MSG_SUCCESS"
                );
            }
        }
    }
    assert!(still_serves(ours.addr));
}

/// Hole 7: a greeting of protocol 0 with a sub-protocol must be refused,
/// not wrapped around to a protocol past every check.
#[test]
fn protocol_zero_greeting_is_refused() {
    let src = tempfile::tempdir().unwrap();
    let config = format!("use chroot = no\n[m]\n path = {}\n", src.path().display());
    let daemon = Daemon::start(&config, &["--workers=1"]);
    for greeting in ["@RSYNCD: 0.1", "@RSYNCD: 27.1", "@RSYNCD: 0"] {
        let mut g = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
        use std::io::Write;
        g.reader.get_mut().write_all(format!("{greeting}\nm\n").as_bytes()).unwrap();
        let mut answer = String::new();
        use std::io::BufRead;
        g.reader.read_line(&mut answer).unwrap();
        assert!(answer.starts_with("@ERROR"), "{greeting}: {answer:?}");
        assert!(g.closed_within(Duration::from_secs(5)), "{greeting}: not closed");
    }
    assert!(still_serves(daemon.addr));
}

/// A pushed file list: the top directory, then regular files of `len`
/// bytes with mtime `mtime`.
fn pushed_list(names: &[&str], len: u64, mtime: i64) -> Vec<FileEntry> {
    let mut list = vec![FileEntry {
        mtime,
        ..FileEntry::new(".", 0o040755)
    }];
    for name in names {
        list.push(FileEntry {
            size: len,
            mtime,
            ..FileEntry::new(*name, 0o100644)
        });
    }
    list
}

/// Hole 2: a pushing client sends data for a file the module's `exclude`
/// forbids, without the generator having asked for it. Stock rejects it
/// (exit 2) and writes nothing; so must we.
#[test]
fn push_data_for_a_daemon_excluded_file_is_rejected_like_stock() {
    let dest = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\n[up]\n path = {}\n read only = no\n exclude = secret*\n",
        dest.path().display()
    );
    let ours = Daemon::start(&config, &["--workers=1"]);
    let stock = StockDaemon::start(&config);
    for (daemon, addr) in [("oxrsyncd", ours.addr), ("stock", stock.addr)] {
        let args = ["--server", &format!("-re.{CAPABILITIES}"), ".", "up/"];
        let mut s = Hostile::start(addr, "up", &args, 31).unwrap();
        s.send_file_list(&pushed_list(&["ok.txt", "secret.txt"], 6, 1_600_000_000), FlistOptions::default())
            .unwrap();
        // Sorted: ".", "ok.txt", "secret.txt".
        let mut ndx = NdxCodec::new(31);
        let data = s.file_data(&mut ndx, 2, b"stolen");
        s.send_data(&data).unwrap();
        s.send_data(&phases_and_goodbye(31)).unwrap();
        let end = s.finish(Duration::from_secs(10));
        assert!(!dest.path().join("secret.txt").exists(), "{daemon} wrote the excluded file");
        assert!(
            end.says("rejecting file transfer request for daemon excluded file: secret.txt"),
            "{daemon}: {end:?}"
        );
        assert_eq!(end.exit_code, Some(2), "{daemon}: {end:?}");
    }
    assert!(still_serves(ours.addr));
}

/// Hole 2, the class: data for an index the generator did not ask for
/// (here a file already up to date) is refused, and the file is left as
/// it was. (Stock takes such data; we end the session with exit 2.)
#[test]
fn push_data_that_was_not_requested_is_refused() {
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("same.txt");
    std::fs::write(&target, b"before").unwrap();
    crate::harness::pair::set_mtime(&target, 1_600_000_000, 0);
    let config = format!("use chroot = no\n[up]\n path = {}\n read only = no\n", dest.path().display());
    let ours = Daemon::start(&config, &["--workers=1"]);
    let args = ["--server", &format!("-re.{CAPABILITIES}"), ".", "up/"];
    let mut s = Hostile::start(ours.addr, "up", &args, 31).unwrap();
    s.send_file_list(&pushed_list(&["same.txt"], 6, 1_600_000_000), FlistOptions::default())
        .unwrap();
    let mut ndx = NdxCodec::new(31);
    let data = s.file_data(&mut ndx, 1, b"after!");
    s.send_data(&data).unwrap();
    s.send_data(&phases_and_goodbye(31)).unwrap();
    let end = s.finish(Duration::from_secs(10));
    assert_eq!(std::fs::read(&target).unwrap(), b"before", "unrequested data was written");
    assert!(end.says("which was not requested"), "{end:?}");
    assert_eq!(end.exit_code, Some(2), "{end:?}");
    assert!(still_serves(ours.addr));
}
