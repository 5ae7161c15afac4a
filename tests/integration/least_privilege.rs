//! Least privilege per session: during a live pull the session thread of
//! the worker holds no capability for a plain module (uid nobody), only
//! the documented file set for a `uid = root` module, and no_new_privs;
//! the worker's other threads keep theirs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::daemon::Daemon;
use crate::harness::eventually;

/// CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
/// CAP_FSETID (bits 0 to 4) and CAP_MKNOD (bit 27).
const ROOT_MODULE_SET: u64 = 0x1f | 1 << 27;

/// A pull at protocol 29 parked after the seed: the session has set up
/// the module and waits for the client's filter list.
fn parked_pull(daemon: &Daemon, module: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream);
    let request = format!("@RSYNCD: 29.0\n{module}\n--server\n--sender\n-r\n.\n{module}/\n\n");
    reader.get_mut().write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    while !line.starts_with("@RSYNCD: OK") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "closed before OK");
        assert!(!line.starts_with("@ERROR"), "{line}");
    }
    let mut seed = [0u8; 4];
    reader.read_exact(&mut seed).unwrap();
    reader
}

/// Each thread of `pid` as (name, CapEff, CapPrm, CapBnd, NoNewPrivs).
fn threads(pid: i32) -> Vec<(String, u64, u64, u64, u32)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let hex = |name: &str| u64::from_str_radix(&field(name), 16).unwrap_or(u64::MAX);
            (
                field("Name"),
                hex("CapEff"),
                hex("CapPrm"),
                hex("CapBnd"),
                field("NoNewPrivs").parse().unwrap_or(0),
            )
        })
        .collect()
}

fn session_thread_is_confined(async_listener: bool) {
    if !nix::unistd::geteuid().is_root() {
        return; // identities and capabilities need a root daemon (CI runs as root)
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"data").unwrap();
    let config = format!(
        "use chroot = no\nuse async listener = {}\n[plain]\n path = {1}\n[rootmod]\n path = {1}\n uid = root\n gid = root\n",
        if async_listener { "yes" } else { "no" },
        dir.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let worker = daemon.workers()[0].as_raw();
    for (module, expected) in [("plain", 0), ("rootmod", ROOT_MODULE_SET)] {
        let conn = parked_pull(&daemon, module);
        let mut seen = Vec::new();
        // Polled: the thread may be caught between its steps.
        let found = eventually(Duration::from_secs(5), || {
            seen = threads(worker);
            let confined: Vec<_> = seen.iter().filter(|t| t.4 == 1).collect();
            confined.len() == 1 && (confined[0].1, confined[0].2, confined[0].3) == (expected, expected, expected)
        });
        assert!(
            found,
            "{module}: want one session thread with no_new_privs and CapEff = CapPrm = CapBnd = {expected:x}: {seen:x?}"
        );
        assert!(
            seen.iter().any(|t| t.4 == 0 && t.1 & (1 << 7) != 0),
            "{module}: the worker's other threads keep CAP_SETUID: {seen:x?}"
        );
        drop(conn);
        assert!(
            eventually(Duration::from_secs(5), || threads(worker).iter().all(|t| t.4 == 0)),
            "{module}: the session thread ended"
        );
    }
}

#[test]
fn a_session_thread_keeps_only_its_modules_capabilities_async() {
    session_thread_is_confined(true);
}

#[test]
fn a_session_thread_keeps_only_its_modules_capabilities_blocking() {
    session_thread_is_confined(false);
}

/// `pre-xfer exec` and `post-xfer exec` run as the daemon's user but with
/// the module's limits: no capability for a plain module, the root
/// module's set for `uid = root`, and no_new_privs.
#[test]
fn hooks_run_with_the_modules_limits() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"data").unwrap();
    let hook = |name: &str| {
        format!(
            "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/self/status > {}/{name}.txt",
            out.path().display()
        )
    };
    let config = format!(
        "use chroot = no\n\
         [plain]\n path = {0}\n pre-xfer exec = {1}\n post-xfer exec = {2}\n\
         [rootmod]\n path = {0}\n uid = root\n gid = root\n pre-xfer exec = {3}\n post-xfer exec = {4}\n",
        dir.path().display(),
        hook("plain-pre"),
        hook("plain-post"),
        hook("root-pre"),
        hook("root-post"),
    );
    let daemon = Daemon::start(&config, &["--workers=1"]);
    for (module, expected) in [("plain", 0u64), ("rootmod", ROOT_MODULE_SET)] {
        let dst = tempfile::tempdir().unwrap();
        let run = crate::harness::client::rsync(&["-a", &daemon.url(&format!("{module}/")), &format!("{}/", dst.path().display())]);
        assert_eq!(run.code, 0, "{module}: {run:?}");
        let prefix = if module == "plain" { "plain" } else { "root" };
        for when in ["pre", "post"] {
            let path = out.path().join(format!("{prefix}-{when}.txt"));
            assert!(eventually(Duration::from_secs(5), || path.exists()), "{module} {when}-xfer ran");
            std::thread::sleep(Duration::from_millis(100));
            let text = std::fs::read_to_string(&path).unwrap();
            for field in ["CapEff", "CapPrm", "CapBnd"] {
                let value = text
                    .lines()
                    .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                    .map(|v| u64::from_str_radix(v.trim(), 16).unwrap());
                assert_eq!(value, Some(expected), "{module} {when}-xfer {field}: {text}");
            }
            assert!(text.contains("NoNewPrivs:\t1"), "{module} {when}-xfer: {text}");
        }
    }
}
