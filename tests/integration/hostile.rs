//! Hostile clients: sessions driven byte by byte by
//! [`crate::harness::hostile::Hostile`], sending what the stock client never
//! sends. Each test names the hole it guards; where stock's daemon has an
//! answer, the same bytes go to it too and both must agree.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DONE};
use oxrsyncd_worker::codecs::{FileEntry, FlistOptions};

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

/// Let the module's user (`nobody` under a root daemon) change `dir`, so
/// only the daemon's checks stand between a client and its files.
fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
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
    open_to_all(src.path());
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
    open_to_all(dest.path());
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
    open_to_all(dest.path());
    let target = dest.path().join("same.txt");
    std::fs::write(&target, b"before").unwrap();
    crate::harness::tree::set_mtime(&target, 1_600_000_000, 0);
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
    assert!(end.closed, "the session ended: {end:?}");
    assert_eq!(end.exit_code, Some(2), "{end:?}");
    assert!(still_serves(ours.addr));
}

/// The one worker of a `--workers=1` daemon.
fn only_worker(daemon: &Daemon) -> nix::unistd::Pid {
    let workers = daemon.workers();
    assert_eq!(workers.len(), 1, "{workers:?}");
    workers[0]
}

/// Hole 3: a pushed file list with no end in sight is charged to the
/// session's budget: the session ends with upstream's out-of-memory exit
/// (22) once the list passes `max session memory`, the worker's peak RSS
/// stays within that budget (plus slack), and a client on the same worker
/// is served meanwhile and after.
#[test]
fn a_huge_pushed_file_list_stays_within_the_session_budget() {
    let dest = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\n[up]\n path = {}\n read only = no\n max session memory = 16\n",
        dest.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let worker = only_worker(&daemon);
    assert!(still_serves(daemon.addr));
    let before = crate::harness::procfs::peak_rss_kib(worker);
    let args = ["--server", &format!("-re.{CAPABILITIES}"), ".", "up/"];
    let mut s = Hostile::start(daemon.addr, "up", &args, 31).unwrap();
    // 400,000 entries with 100-byte names: about 160 MiB kept unbudgeted.
    let mut entries = vec![FileEntry::new(".", 0o040755)];
    for i in 0..400_000 {
        entries.push(FileEntry {
            size: 1,
            ..FileEntry::new(format!("{i:0>100}"), 0o100644)
        });
    }
    for chunk in entries.chunks(20_000) {
        let mut enc = oxrsyncd_worker::codecs::FlistEncoder::new(FlistOptions {
            protocol: 31,
            ..FlistOptions::default()
        });
        let mut out = Vec::new();
        for e in chunk {
            enc.encode(e, &mut out).unwrap();
        }
        if s.send_data(&out).is_err() {
            break; // the daemon ended the session
        }
        assert!(still_serves(daemon.addr), "another client of the worker is served");
    }
    let end = s.finish(Duration::from_secs(10));
    assert!(end.says("out of memory"), "{end:?}");
    assert_eq!(end.exit_code, Some(22), "{end:?}");
    let grown_mib = crate::harness::procfs::peak_rss_kib(worker).saturating_sub(before) / 1024;
    assert!(grown_mib <= 16 + 24, "the worker's peak grew by {grown_mib} MiB");
    assert_eq!(only_worker(&daemon), worker, "the worker survived");
    assert!(still_serves(daemon.addr));
}

/// Hole 4: a `dir-merge` rule naming a file the module excludes must not
/// read it (its rules would hide names and so tell what it holds). Stock's
/// listing and ours agree.
#[test]
fn a_daemon_excluded_file_is_never_a_merge_file_like_stock() {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("sub")).unwrap();
    for d in ["", "sub"] {
        std::fs::write(src.path().join(d).join("secret.txt"), "- a.txt\n").unwrap();
        std::fs::write(src.path().join(d).join("a.txt"), "a\n").unwrap();
    }
    let config = format!("use chroot = no\n[m]\n path = {}\n exclude = secret.txt\n", src.path().display());
    let ours = Daemon::start(&config, &["--workers=1"]);
    let stock = StockDaemon::start(&config);
    let mut listings = Vec::new();
    for addr in [stock.addr, ours.addr] {
        let out = std::process::Command::new("rsync")
            .args(["-r", "--list-only", "--filter=: secret.txt"])
            .arg(format!("rsync://{addr}/m/"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().last().map(str::to_string))
            .collect();
        names.sort();
        listings.push(names);
    }
    assert!(listings[1].contains(&"a.txt".to_string()), "{:?}", listings[1]);
    assert_eq!(listings[0], listings[1], "stock's listing, then ours");
}

/// Hole 5: dir-merge rules (each costs a lookup in every directory) are
/// capped, and `!` (which clears the list) neither frees merge slots that
/// stay in use nor resets the count of rules received.
#[test]
fn merge_rules_cannot_be_multiplied() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), "a\n").unwrap();
    let config = format!("use chroot = no\n[m]\n path = {}\n", src.path().display());
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let rules = |n: usize, clear_every: usize| {
        let mut wire = Vec::new();
        for i in 0..n {
            let rule = if clear_every > 0 && i % clear_every == clear_every - 1 {
                "!".to_string()
            } else {
                format!(": .merge{i}")
            };
            wire.extend_from_slice(&(rule.len() as i32).to_le_bytes());
            wire.extend_from_slice(rule.as_bytes());
        }
        wire.extend_from_slice(&0i32.to_le_bytes());
        wire
    };
    // 1,000 merge rules at once; 200,000 rules with a clear after every 30.
    for (wire, says) in [
        (rules(1000, 0), "too many per-directory merge rules"),
        (rules(200_000, 30), "too many filter rules"),
    ] {
        let args = ["--server", "--sender", &format!("-re.{CAPABILITIES}"), ".", "m/"];
        let mut s = Hostile::start(daemon.addr, "m", &args, 31).unwrap();
        let _ = s.send_data(&wire);
        let end = s.finish(Duration::from_secs(10));
        assert!(end.says(says), "{end:?}");
    }
    assert!(still_serves(daemon.addr));
}

/// Hole 9: a client's message text goes to the log as one line: a newline
/// in it cannot forge a log line of its own.
#[test]
fn a_clients_messages_cannot_forge_log_lines() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), "a\n").unwrap();
    let config = format!("use chroot = no\n[m]\n path = {}\n", src.path().display());
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let args = ["--server", "--sender", &format!("-re.{CAPABILITIES}"), ".", "m/"];
    let mut s = Hostile::start(daemon.addr, "m", &args, 31).unwrap();
    s.send_message(tag::INFO, b"hello\n2026/01/01 00:00:00 [1] FORGED rsync on m/ from admin\n")
        .unwrap();
    s.send_no_filters().unwrap();
    let _ = s.read_file_list(FlistOptions::default()).unwrap();
    s.send_data(&phases_and_goodbye(31)).unwrap();
    let _ = s.finish(Duration::from_secs(5));
    assert!(daemon.wait_log("hello", 1, Duration::from_secs(5)), "{}", daemon.log());
    let log = daemon.log();
    assert!(!log.lines().any(|l| l.starts_with("2026/01/01 00:00:00 [1] FORGED")), "{log}");
    assert!(log.contains("hello\\#0122026/01/01"), "{log}");
}

/// How long a module listing takes now (another client of the worker).
fn listing_latency(addr: SocketAddr) -> Duration {
    let start = std::time::Instant::now();
    assert!(still_serves(addr));
    start.elapsed()
}

/// Hole 3, decompression: a pushed file's data is one zstd frame of a few
/// KiB that expands to 256 MiB. The worker decodes it in pieces (its peak
/// RSS grows by far less than the frame's output), and a listing from
/// another client meanwhile answers as fast as before (within a second).
#[test]
fn a_zstd_bomb_in_a_push_is_decoded_in_pieces() {
    let dest = tempfile::tempdir().unwrap();
    open_to_all(dest.path());
    let config = format!("use chroot = no\n[up]\n path = {}\n read only = no\n", dest.path().display());
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let worker = only_worker(&daemon);
    let normal = listing_latency(daemon.addr);
    let before = crate::harness::procfs::peak_rss_kib(worker);
    let bomb = {
        let zeros = vec![0u8; 256 << 20];
        let mut enc = zstd::stream::raw::Encoder::new(19).unwrap();
        let mut out = vec![0u8; 64 << 10];
        let mut input = zstd::stream::raw::InBuffer::around(&zeros[..]);
        let mut produced = 0;
        use zstd::stream::raw::Operation;
        while input.pos < zeros.len() {
            let mut ob = zstd::stream::raw::OutBuffer::around(&mut out[produced..]);
            enc.run(&mut input, &mut ob).unwrap();
            produced += ob.pos();
        }
        let mut ob = zstd::stream::raw::OutBuffer::around(&mut out[produced..]);
        while enc.flush(&mut ob).unwrap() != 0 {}
        produced += ob.pos();
        out.truncate(produced);
        out
    };
    assert!(bomb.len() <= 16383, "one frame holds it: {} bytes", bomb.len());
    let args = ["--server", &format!("-rze.{CAPABILITIES}"), "--compress-choice=zstd", ".", "up/"];
    let mut s = Hostile::start(daemon.addr, "up", &args, 31).unwrap();
    s.send_file_list(&pushed_list(&["bomb"], 1, 1_600_000_000), FlistOptions::default())
        .unwrap();
    // Wait for the generator's request (a real client does), then answer
    // it with the bomb: index, flags, the empty sum head, one data frame.
    let mut ndx_in = NdxCodec::new(31);
    assert_eq!(ndx_in.read(&mut s).unwrap(), 1);
    let mut head = [0u8; 2 + 16];
    std::io::Read::read_exact(&mut s, &mut head).unwrap();
    let mut data = Vec::new();
    NdxCodec::new(31).write(&mut data, 1).unwrap();
    data.extend_from_slice(&(1u16 << 15).to_le_bytes());
    data.extend_from_slice(&[0u8; 16]);
    data.push(0x40 | (bomb.len() >> 8) as u8);
    data.push(bomb.len() as u8);
    data.extend_from_slice(&bomb);
    data.push(0); // end of the file's tokens
    data.extend_from_slice(&[0u8; 16]); // a wrong checksum: nothing is kept
    s.send_data(&data).unwrap();
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        slowest = slowest.max(listing_latency(daemon.addr));
        std::thread::sleep(Duration::from_millis(100));
    }
    s.send_data(&phases_and_goodbye(31)).unwrap();
    let _ = s.finish(Duration::from_secs(20));
    let grown_mib = crate::harness::procfs::peak_rss_kib(worker).saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "the worker's peak grew by {grown_mib} MiB for a 256 MiB frame");
    assert!(
        slowest < normal + Duration::from_secs(1),
        "a listing took {slowest:?} (normally {normal:?})"
    );
    assert_eq!(only_worker(&daemon), worker, "the worker survived");
    assert!(!dest.path().join("bomb").exists(), "a file that fails its checksum is not kept");
}

/// Hole 3, names: a pull whose `--files-from` list (sent by the client)
/// never ends is charged to the session's budget: exit 22 once it passes
/// `max session memory`, the worker's peak within the budget.
#[test]
fn an_endless_files_from_list_stays_within_the_session_budget() {
    let src = tempfile::tempdir().unwrap();
    let config = format!("use chroot = no\n[m]\n path = {}\n max session memory = 16\n", src.path().display());
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let worker = only_worker(&daemon);
    assert!(still_serves(daemon.addr));
    let before = crate::harness::procfs::peak_rss_kib(worker);
    let args = [
        "--server",
        "--sender",
        &format!("-re.{CAPABILITIES}"),
        "--files-from=-",
        "--from0",
        ".",
        "m/",
    ];
    let mut s = Hostile::start(daemon.addr, "m", &args, 31).unwrap();
    s.send_no_filters().unwrap();
    // A million missing names of 100 bytes (about 360 MiB kept unbudgeted).
    let mut batch = Vec::new();
    for i in 0..1_000_000u32 {
        batch.extend_from_slice(format!("{i:0>100}").as_bytes());
        batch.push(0);
        if batch.len() >= 1 << 20 {
            if s.send_data(&batch).is_err() {
                break;
            }
            batch.clear();
        }
    }
    let end = s.finish(Duration::from_secs(10));
    assert!(end.says("out of memory"), "{end:?}");
    assert_eq!(end.exit_code, Some(22), "{end:?}");
    let grown_mib = crate::harness::procfs::peak_rss_kib(worker).saturating_sub(before) / 1024;
    assert!(grown_mib <= 16 + 24, "the worker's peak grew by {grown_mib} MiB");
    assert!(still_serves(daemon.addr));
}

/// `refuse options = compress-threads` refuses the option under its other
/// name, `--zt`, too (upstream 3.5 once left the alias open), in stock's
/// words; without the rule the option is taken and starts no thread.
#[test]
fn a_refused_option_is_refused_under_its_alias_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &["f"]);
    let config = format!(
        "use chroot = no\n[mod]\n path = {}\n refuse options = compress-threads\n",
        dir.path().display()
    );
    let ours = Daemon::start(&config, &["--workers=1"]);
    let stock = StockDaemon::start(&config);
    for (daemon, addr) in [("oxrsyncd", ours.addr), ("stock", stock.addr)] {
        for (spelled, shown) in [("--zt=256", "--zt"), ("--compress-threads=2", "--compress-threads")] {
            let args = [
                "--server",
                "--sender",
                "-e.LsfxCIu",
                "--compress",
                "--compress-choice=zstd",
                spelled,
                ".",
                "mod/f",
            ];
            let s = Hostile::start(addr, "mod", &args, 30).unwrap();
            let end = s.finish(Duration::from_secs(10));
            assert!(
                end.says(&format!("The server is configured to refuse {shown}")),
                "{daemon} {spelled}: {end:?}"
            );
        }
    }
    assert!(still_serves(ours.addr));
}
