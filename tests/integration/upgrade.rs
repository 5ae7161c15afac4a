//! Binary upgrade by SIGUSR2 (nginx's model) against the real binary,
//! started from a copy in a temp dir the way an init script would
//! (`--daemon`, its own port, a pid file): the file is replaced by an
//! atomic rename, SIGUSR2 starts it as a new supervisor that inherits the
//! listening socket, and the old one drains and exits. Under churn and
//! long pulls no connection may fail; a broken new binary must leave the
//! old one serving with its pid file back.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::client::{rsync, ClientRun};
use crate::harness::daemon::{binary, Daemon};
use crate::harness::metrics::scrape;
use crate::harness::raw::list_modules;
use crate::harness::{eventually, free_port};

/// A daemon started from its own copy of the binary, detached; its process
/// group (old supervisor, new supervisor, all workers) is killed on drop.
struct Detached {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pid_file: PathBuf,
    log_path: PathBuf,
    /// Where `/metrics` is served (handed over with the rsync socket).
    metrics: SocketAddr,
    config_path: PathBuf,
    module: PathBuf,
    addr: SocketAddr,
    /// The first supervisor's pid: after `setsid` also its process group.
    group: Pid,
}

impl Detached {
    fn start() -> Detached {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin/oxrsyncd");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        install(&bin, &std::fs::read(binary()).unwrap(), 0o755);
        let module = dir.path().join("module");
        std::fs::create_dir_all(&module).unwrap();
        let d = Detached {
            pid_file: dir.path().join("oxrsyncd.pid"),
            log_path: dir.path().join("oxrsyncd.log"),
            config_path: dir.path().join("rsyncd.conf"),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            metrics: SocketAddr::from(([127, 0, 0, 1], free_port())),
            group: Pid::from_raw(0),
            bin,
            module,
            dir,
        };
        d.write_config("");
        let status = std::process::Command::new(&d.bin)
            .args([
                "--daemon",
                "--workers=2",
                "--address=127.0.0.1",
                &format!("--port={}", d.addr.port()),
                &format!("--config={}", d.config_path.display()),
            ])
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{status:?}");
        assert!(eventually(Duration::from_secs(20), || d.pid().is_some()), "pid file written");
        let mut d = d;
        d.group = d.pid().unwrap();
        assert!(
            eventually(Duration::from_secs(20), || d.log().contains("ready: generation 1")),
            "ready; log:\n{}",
            d.log()
        );
        d
    }

    fn write_config(&self, extra: &str) {
        let text = format!(
            "pid file = {}\nlog file = {}\nuse chroot = no\ndrain timeout = 60\nmetrics address = {}\n{extra}[pub]\n path = {}\n",
            self.pid_file.display(),
            self.log_path.display(),
            self.metrics,
            self.module.display()
        );
        std::fs::write(self.dir.path().join("rsyncd.conf.new"), text).unwrap();
        std::fs::rename(self.dir.path().join("rsyncd.conf.new"), &self.config_path).unwrap();
    }

    fn pid(&self) -> Option<Pid> {
        read_pid(&self.pid_file)
    }

    fn oldbin(&self) -> PathBuf {
        PathBuf::from(format!("{}.oldbin", self.pid_file.display()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, count: usize) -> bool {
        eventually(Duration::from_secs(20), || self.log().matches(needle).count() >= count)
    }

    /// Replace the binary the way a package manager does: a new file renamed over it.
    fn replace_binary(&self, contents: &[u8], mode: u32) {
        install(&self.bin, contents, mode);
    }

    /// SIGUSR2 to `old`; wait until it is gone and the pid file names a
    /// live successor; return the successor.
    fn upgrade(&self, old: Pid) -> Pid {
        kill(old, Signal::SIGUSR2).unwrap();
        let handed_over = eventually(Duration::from_secs(25), || {
            !alive(old) && self.pid().is_some_and(|p| p != old && alive(p))
        });
        assert!(
            handed_over,
            "the old supervisor exits and the pid file names the new one; log:\n{}",
            self.log()
        );
        self.pid().unwrap()
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if self.group.as_raw() > 1 {
            let _ = kill(Pid::from_raw(-self.group.as_raw()), Signal::SIGKILL);
        }
    }
}

/// Write `contents` beside `path` and rename it over `path`.
fn install(path: &Path, contents: &[u8], mode: u32) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn read_pid(path: &Path) -> Option<Pid> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok().map(Pid::from_raw)
}

/// Running (not gone, not a zombie nobody reaped yet).
fn alive(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().next() != Some("Z")))
        .unwrap_or(false)
}

/// Listening sockets on `port` in /proc/net/tcp: one means inherited, not re-bound.
fn listeners_on(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[3] == "0A"
        })
        .count()
}

/// Bytes that do not compress, so `--bwlimit` paces every one of them.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn upgrade_under_churn_and_long_pulls_loses_nothing() {
    let d = Detached::start();
    let big = noise(4 << 20);
    std::fs::write(d.module.join("big.bin"), &big).unwrap();
    let old = d.pid().unwrap();
    let addr = d.addr;
    assert_eq!(listeners_on(addr.port()), 1);

    // Churn: short sessions from a few threads, bounded in count and time.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let churn: Vec<_> = (0..3)
        .map(|_| {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            std::thread::spawn(move || {
                for _ in 0..50_000 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
                        break;
                    }
                    match list_modules(addr, Duration::from_secs(5)) {
                        Ok(names) if names == ["pub"] => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(names) => failures.lock().unwrap().push(format!("listing {names:?}")),
                        Err(f) => failures.lock().unwrap().push(format!("{f:?}")),
                    }
                }
            })
        })
        .collect();

    // Scrapes all along: the metrics socket is handed over too.
    let metrics = d.metrics;
    let scrapes = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed, mut accepted) = (0, Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                match scrape(metrics) {
                    Ok(body) if body.contains("oxrsyncd_connections_accepted_total") => {
                        ok += 1;
                        let value = body
                            .lines()
                            .find_map(|l| l.strip_prefix("oxrsyncd_connections_accepted_total "))
                            .and_then(|v| v.trim().parse::<f64>().ok())
                            .unwrap();
                        accepted.push(value);
                    }
                    other => failed.push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (ok, failed, accepted)
        })
    };

    // Long pulls: 4 MiB at 1 MiB/s each, started before the upgrade.
    let pulls: Vec<_> = (0..3)
        .map(|i| {
            let dst = d.dir.path().join(format!("pull{i}"));
            let url = format!("rsync://{addr}/pub/big.bin");
            std::thread::spawn(move || {
                let run = rsync(&["-a", "--bwlimit=1024", &url, &format!("{}/", dst.display())]);
                (run, dst.join("big.bin"), Instant::now())
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || d.log().matches("rsync on pub/big.bin").count() >= 3),
        "the pulls started; log:\n{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(500));

    d.replace_binary(&std::fs::read(binary()).unwrap(), 0o755);
    let signalled = Instant::now();
    kill(old, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("binary upgrade handed over", 1), "{}", d.log());
    let new = d.pid().unwrap();
    assert_ne!(new, old);
    // The old one drains the pulls for a few seconds more: the new one
    // refuses to be upgraded meanwhile (.oldbin names a live process).
    assert!(alive(old) && d.oldbin().exists(), "the old supervisor drains the pulls");
    kill(new, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("is still draining", 1), "{}", d.log());
    assert!(
        eventually(Duration::from_secs(25), || !alive(old)),
        "the old supervisor exits; log:\n{}",
        d.log()
    );
    let switched = signalled.elapsed();
    assert_eq!(d.pid(), Some(new));

    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in churn {
        c.join().unwrap();
    }
    let results: Vec<(ClientRun, PathBuf, Instant)> = pulls.into_iter().map(|p| p.join().unwrap()).collect();
    let (scraped, scrape_failures, accepted) = scrapes.join().unwrap();
    assert!(
        scrape_failures.is_empty() && scraped > 20,
        "{scraped} scrapes, failed: {scrape_failures:?}"
    );
    // One supervisor answers at a time: the counter starts again once, at
    // the hand-over, and never jumps back and forth between two of them.
    let resets = accepted.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(resets, 1, "accepted_total as scraped: {accepted:?}");
    assert_eq!(listeners_on(metrics.port()), 1, "the metrics socket was inherited, not bound again");
    assert!(
        scrape(metrics).unwrap().contains("oxrsyncd_generation 1"),
        "the new supervisor serves /metrics"
    );

    let failures = failures.lock().unwrap();
    let total = done.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} connections failed: {:?}\nlog:\n{}",
        failures.len(),
        total + failures.len(),
        &failures[..failures.len().min(10)],
        d.log()
    );
    assert!(total > 200, "the churn ran ({total} listings)");
    for (run, file, finished) in &results {
        assert_eq!(run.code, 0, "pull failed: {run:?}");
        assert!(*finished > signalled, "the pull was still running at SIGUSR2");
        assert!(std::fs::read(file).unwrap() == big, "pulled file differs");
    }
    eprintln!("upgrade: {total} listings, old pid {old} gone {switched:?} after SIGUSR2, new pid {new}");

    assert!(!d.oldbin().exists(), ".oldbin removed when the old supervisor exited");
    assert_eq!(listeners_on(addr.port()), 1, "the socket was inherited, not bound again");
    assert_eq!(
        std::fs::read_link(format!("/proc/{new}/exe")).unwrap(),
        d.bin,
        "the new supervisor runs the replaced file"
    );
    let log = d.log();
    assert!(
        log.contains(&format!("new supervisor (pid {new}) inherited the listening socket")),
        "{log}"
    );
    assert!(log.contains("binary upgrade handed over: draining"), "{log}");
    assert_eq!(list_modules(addr, Duration::from_secs(5)).unwrap(), ["pub"]);

    kill(new, Signal::SIGTERM).unwrap();
    assert!(
        eventually(Duration::from_secs(15), || !alive(new)),
        "the new supervisor stops on SIGTERM"
    );
    assert!(!d.pid_file.exists(), "its pid file removed on exit");
}

#[test]
fn a_failed_upgrade_keeps_the_old_supervisor_serving() {
    let d = Detached::start();
    let old = d.pid().unwrap();
    let good = std::fs::read(binary()).unwrap();
    let still_serving = |attempt: &str| {
        assert!(alive(old), "{attempt}: the old supervisor lives");
        assert_eq!(d.pid(), Some(old), "{attempt}: the pid file is restored");
        assert!(!d.oldbin().exists(), "{attempt}: no .oldbin left");
        assert_eq!(list_modules(d.addr, Duration::from_secs(5)).unwrap(), ["pub"], "{attempt}");
    };

    // A new binary that exits at once.
    d.replace_binary(b"#!/bin/sh\necho 'broken build' >&2\nexit 1\n", 0o755);
    kill(old, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("binary upgrade failed", 1), "{}", d.log());
    assert!(d.log().contains("exited with status 1 before it was ready"), "{}", d.log());
    still_serving("exit 1");

    // A file that cannot be executed.
    d.replace_binary(b"not a program\n", 0o644);
    kill(old, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("binary upgrade failed", 2), "{}", d.log());
    assert!(d.log().contains("Permission denied"), "{}", d.log());
    still_serving("not executable");

    // The real binary, but the config it reads is broken: it says why over the pipe.
    d.replace_binary(&good, 0o755);
    d.write_config("bogus parameter = 1\n");
    kill(old, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("binary upgrade failed", 3), "{}", d.log());
    let log = d.log();
    let line = log.lines().filter(|l| l.contains("binary upgrade failed")).nth(2).unwrap();
    assert!(
        line.contains("before it was ready: ") && line.contains("rsyncd.conf"),
        "the new supervisor's reason is logged: {line}"
    );
    still_serving("broken config");

    // A later SIGUSR2 may try again; and the new supervisor can be upgraded in turn.
    d.write_config("");
    let new = d.upgrade(old);
    assert!(!d.oldbin().exists());
    assert_eq!(list_modules(d.addr, Duration::from_secs(5)).unwrap(), ["pub"]);
    d.replace_binary(&good, 0o755);
    let newer = d.upgrade(new);
    assert!(!d.oldbin().exists());
    assert_eq!(list_modules(d.addr, Duration::from_secs(5)).unwrap(), ["pub"]);
    assert!(alive(newer));
}

/// The log's "new supervisor is pid N" for the `nth` upgrade attempt.
fn started_pid(log: &str, nth: usize) -> Pid {
    log.lines()
        .filter_map(|l| l.split("new supervisor is pid ").nth(1))
        .nth(nth)
        .and_then(|rest| rest.split(';').next())
        .and_then(|p| p.parse().ok())
        .map(Pid::from_raw)
        .expect("the log names the new pid")
}

/// A new binary that never reports ready: a second SIGUSR2 is refused
/// while it is under way; at the deadline (20 s) it is told to stop and the
/// pid file is restored; and SIGTERM to the old supervisor during an
/// upgrade abandons it the same way before the usual drain and exit.
#[test]
fn a_silent_new_binary_is_abandoned_at_the_deadline_or_on_sigterm() {
    let d = Detached::start();
    let old = d.pid().unwrap();
    d.replace_binary(b"#!/bin/sh\nexec sleep 60\n", 0o755);

    kill(old, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("waiting for it to report ready", 1), "{}", d.log());
    assert!(d.oldbin().exists(), "the old pid file waits at .oldbin");
    let hung = started_pid(&d.log(), 0);
    assert!(alive(hung));
    kill(old, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("ignored: one is under way", 1), "{}", d.log());
    assert_eq!(list_modules(d.addr, Duration::from_secs(5)).unwrap(), ["pub"]);

    // The deadline.
    assert!(
        eventually(Duration::from_secs(30), || d.log().contains("did not report ready within 20 s")),
        "{}",
        d.log()
    );
    assert!(
        eventually(Duration::from_secs(5), || !alive(hung)),
        "the silent one was told to stop"
    );
    assert!(
        d.wait_log(&format!("abandoned new supervisor (pid {hung}) killed by SIGTERM"), 1),
        "{}",
        d.log()
    );
    assert_eq!(d.pid(), Some(old), "pid file restored");
    assert!(!d.oldbin().exists());
    assert_eq!(list_modules(d.addr, Duration::from_secs(5)).unwrap(), ["pub"]);

    // SIGTERM during the next attempt.
    kill(old, Signal::SIGUSR2).unwrap();
    assert!(d.wait_log("waiting for it to report ready", 2), "{}", d.log());
    let hung = started_pid(&d.log(), 1);
    kill(old, Signal::SIGTERM).unwrap();
    assert!(
        eventually(Duration::from_secs(15), || !alive(old)),
        "the old supervisor stops; log:\n{}",
        d.log()
    );
    assert!(!alive(hung), "the abandoned new supervisor was stopped too");
    let log = d.log();
    assert!(log.contains("this supervisor is stopping; told it to stop"), "{log}");
    assert!(
        log.contains(&format!("abandoned new supervisor (pid {hung}) killed by SIGTERM")),
        "{log}"
    );
    assert!(
        !d.oldbin().exists() && !d.pid_file.exists(),
        "pid file restored, then removed on exit"
    );
}

/// Under systemd (NOTIFY_SOCKET, NotifyAccess=main) the old supervisor
/// names the new one with MAINPID= and says nothing more: no STOPPING=1
/// for its drain, which systemd would take for the service stopping.
#[test]
fn upgrade_under_systemd_names_the_new_main_pid() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let config = format!("use chroot = no\n[pub]\n path = {}\n", dir.path().display());
    let mut daemon = Daemon::start_with_env(&config, &["--workers=1"], &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let old = daemon.pid();
    let mut seen = Vec::new();
    let recv_until = |needle: &str, within: Duration, seen: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.contains(needle);
                seen.push(msg);
                if hit {
                    return true;
                }
            }
        }
        false
    };
    assert!(recv_until("READY=1", Duration::from_secs(15), &mut seen), "{seen:?}");

    daemon.signal(Signal::SIGUSR2);
    assert!(recv_until("MAINPID=", Duration::from_secs(15), &mut seen), "{seen:?}");
    let named: i32 = seen
        .last()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(named, old.as_raw(), "MAINPID names the new supervisor");
    assert!(alive(Pid::from_raw(named)));
    let status = daemon.wait_exit(Duration::from_secs(20)).expect("the old supervisor exits");
    assert_eq!(status.code(), Some(0));
    // Drain what is left: nothing may say the service stops.
    recv_until("STOPPING=1", Duration::from_millis(500), &mut seen);
    assert!(!seen.iter().any(|m| m.contains("STOPPING=1")), "{seen:?}");
    assert_eq!(list_modules(daemon.addr, Duration::from_secs(5)).unwrap(), ["pub"]);
    let _ = kill(Pid::from_raw(named), Signal::SIGKILL);
}
