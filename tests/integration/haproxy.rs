//! A real HAProxy (Debian's `haproxy`) in front of two oxrsyncd backends,
//! as docs/operations.md's "Fleet setup behind a load balancer" sets one
//! up: mode tcp, `send-proxy-v2`, a tcp-check that speaks the greeting,
//! `retries` with `option redispatch`. Everything is on loopback, with one
//! address per role: HAProxy connects to the backends from 127.0.0.2 (the
//! only `proxy protocol hosts`), clients come from 127.0.0.3 (the only
//! `hosts allow`), and 127.0.0.1 is a stranger.
//!
//! Under a loop of client pulls through HAProxy, one backend reloads
//! (SIGHUP) and loses no session; the other is killed (SIGKILL to its
//! supervisor and workers) and restarted on the same port: only the pulls
//! in flight at the kill fail, later ones go to the survivor, and both
//! backends serve before and after. The backends log the client's address,
//! never HAProxy's, for every session (HAProxy's appears only in its health
//! checks' `connect from` lines: a v2 LOCAL header carries no client).
//! Through HAProxy, `hosts allow` denies 127.0.0.1 by the header's address.
//! Straight to a backend, a forged PROXY header and a plain client (even
//! from 127.0.0.3) are dropped before the greeting.
//!
//! Without `haproxy` the test is skipped with a note, or fails when
//! OXRSYNCD_REQUIRE_ALL_CLIENTS is set (tests/run.sh installs it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::client::rsync;
use crate::harness::daemon::Daemon;
use crate::harness::tree::TreeBuilder;
use crate::harness::{eventually, free_port, wait_for_port};

/// HAProxy's source address towards the backends.
const PROXY_SOURCE: &str = "127.0.0.2";
/// The clients' address.
const CLIENT: &str = "127.0.0.3";

/// The `haproxy` binary, or None (with a note) when it is missing.
fn haproxy_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("haproxy"))
        .find(|bin| bin.is_file());
    if found.is_none() {
        if std::env::var_os("OXRSYNCD_REQUIRE_ALL_CLIENTS").is_some() {
            panic!("haproxy is missing: run tests/run.sh (it installs Debian's haproxy)");
        }
        eprintln!("note: haproxy not found; the load balancer test is skipped (tests/run.sh installs it)");
    }
    found
}

/// HAProxy in the foreground (`-db`), its config and log in a temp dir,
/// killed on drop.
struct Haproxy {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(bin: &Path, backends: [SocketAddr; 2]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = format!(
            "global
    log stderr format raw local0 info
    maxconn 256
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
frontend rsync
    bind {addr}
    default_backend oxrsyncd
backend oxrsyncd
    balance roundrobin
    option tcp-check
    tcp-check send \"@RSYNCD: 31.0\\n\"
    tcp-check expect string \"@RSYNCD:\"
    server a {a} source {PROXY_SOURCE} send-proxy-v2 check check-send-proxy inter 200ms fall 2 rise 2
    server b {b} source {PROXY_SOURCE} send-proxy-v2 check check-send-proxy inter 200ms fall 2 rise 2
",
            a = backends[0],
            b = backends[1],
        );
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config).unwrap();
        let log_path = dir.path().join("haproxy.log");
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log_path).unwrap())
            .stderr(std::fs::File::create(dir.path().join("haproxy.stderr")).unwrap())
            .spawn()
            .expect("start haproxy");
        let mut h = Haproxy {
            child,
            addr,
            log_path,
            _dir: dir,
        };
        if !wait_for_port(addr, Duration::from_secs(10)) {
            let _ = h.child.kill();
            panic!("haproxy did not listen on {addr}:\n{}", h.log());
        }
        h
    }

    /// Its log and messages (stdout and stderr).
    fn log(&self) -> String {
        let stderr = self.log_path.with_file_name("haproxy.stderr");
        format!(
            "{}{}",
            std::fs::read_to_string(&self.log_path).unwrap_or_default(),
            std::fs::read_to_string(stderr).unwrap_or_default()
        )
    }

    /// How often a server changed to `state` (UP or DOWN).
    fn transitions(&self, server: &str, state: &str) -> usize {
        let stderr = self.log_path.with_file_name("haproxy.stderr");
        let text = std::fs::read_to_string(stderr).unwrap_or_default();
        text.matches(&format!("Server oxrsyncd/{server} is {state},")).count()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn backend_config(dir: &Path, async_listener: bool) -> String {
    format!(
        "use chroot = no\nreverse lookup = no\nuse async listener = {}\nproxy protocol = yes\nproxy protocol hosts = {PROXY_SOURCE}\n[pub]\n path = {}\n hosts allow = {CLIENT}\n",
        if async_listener { "yes" } else { "no" },
        dir.display()
    )
}

/// The tree every backend serves, plus a marker naming the backend, so a
/// pull shows which one served it.
fn module_tree(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t = TreeBuilder::new(dir.path());
    for i in 0..6 {
        t.file(format!("data/f{i}"), vec![b'a' + i as u8; 48 * 1024]);
    }
    t.file(format!("served-by-{name}"), name);
    dir
}

/// One client pull through HAProxy.
#[derive(Debug, Clone)]
struct Run {
    start: Instant,
    end: Instant,
    code: i32,
    served_by: Option<&'static str>,
    stderr: String,
}

/// Whether the process is gone (exited; a zombie counts).
fn gone(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Write `bytes` straight to `addr` from 127.0.0.1 and read what comes back.
fn talk(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn haproxy_in_front_of_two_backends_through_reload_and_kill() {
    let Some(bin) = haproxy_binary() else { return };
    let test_start = Instant::now();
    let (tree_a, tree_b) = (module_tree("a"), module_tree("b"));
    // One backend on each listener flavour.
    let config_a = backend_config(tree_a.path(), true);
    let config_b = backend_config(tree_b.path(), false);
    let a = Daemon::start(&config_a, &["--workers=2"]);
    let mut b = Some(Daemon::start(&config_b, &["--workers=2"]));
    let b_addr = b.as_ref().unwrap().addr;
    let proxy = Haproxy::start(&bin, [a.addr, b_addr]);
    let url = format!("rsync://{}/pub/", proxy.addr);

    // Through HAProxy, `hosts allow` sees the address the PROXY header
    // carries: 127.0.0.1 is denied, by name.
    let scratch = tempfile::tempdir().unwrap();
    let dst = format!("{}/", scratch.path().join("denied").display());
    let denied = rsync(&["-r", "--address=127.0.0.1", &url, &dst]);
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(
        denied.stderr.contains("@ERROR: access denied to pub from UNDETERMINED (127.0.0.1)"),
        "{denied:?}\n{}",
        proxy.log()
    );

    // Client threads pull the tree through HAProxy in a loop, bounded in
    // count and time, slowed by --bwlimit so pulls are in flight at any
    // moment.
    let runs: Arc<Mutex<Vec<Run>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (runs, stop, url) = (runs.clone(), stop.clone(), url.clone());
            let root = scratch.path().join(format!("client{t}"));
            std::fs::create_dir(&root).unwrap();
            std::thread::spawn(move || {
                for i in 0..300 {
                    if stop.load(Ordering::Relaxed) || test_start.elapsed() > Duration::from_secs(35) {
                        break;
                    }
                    let dst = root.join(i.to_string());
                    let dst_arg = format!("{}/", dst.display());
                    let start = Instant::now();
                    let out = rsync(&["-r", "--bwlimit=1024", &format!("--address={CLIENT}"), &url, &dst_arg]);
                    let end = Instant::now();
                    let served_by = ["a", "b"]
                        .into_iter()
                        .find(|n| out.code == 0 && dst.join(format!("served-by-{n}")).exists());
                    if out.code == 0 {
                        assert_eq!(std::fs::read(dst.join("data/f5")).unwrap().len(), 48 * 1024);
                    }
                    runs.lock().unwrap().push(Run {
                        start,
                        end,
                        code: out.code,
                        served_by,
                        stderr: out.stderr,
                    });
                    let _ = std::fs::remove_dir_all(&dst);
                }
            })
        })
        .collect();
    let snapshot = || runs.lock().unwrap().clone();
    let served = |by: &str, after: Instant| snapshot().iter().any(|r| r.code == 0 && r.served_by == Some(by) && r.start > after);
    let abort = |what: &str| -> ! {
        stop.store(true, Ordering::Relaxed);
        panic!("{what}\nruns: {:?}\nhaproxy:\n{}", snapshot(), proxy.log());
    };

    if !eventually(Duration::from_secs(10), || served("a", test_start) && served("b", test_start)) {
        abort("no pulls through both backends");
    }

    // Reload backend a until a pull it served was in flight at a SIGHUP
    // (the balancer picks the backend; usually the first reload does).
    let mut reloads = Vec::new();
    for generation in 2..=5 {
        let at = Instant::now();
        a.signal(Signal::SIGHUP);
        if !a.wait_log(&format!("generation {generation} serving"), 1, Duration::from_secs(15)) {
            abort(&format!("reload to generation {generation} did not finish:\n{}", a.log()));
        }
        reloads.push(at);
        std::thread::sleep(Duration::from_millis(1500));
        if snapshot().iter().any(|r| r.served_by == Some("a") && r.start < at && r.end > at) {
            break;
        }
    }
    let reloaded = Instant::now();
    if !eventually(Duration::from_secs(10), || served("a", reloaded)) {
        abort("no pull through the reloaded backend");
    }

    // Kill backend b: its supervisor and its workers, together.
    let victim = b.as_ref().unwrap();
    let mut pids = vec![victim.pid()];
    pids.extend(victim.workers());
    let kill_start = Instant::now();
    for pid in &pids {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    if !eventually(Duration::from_secs(5), || pids.iter().all(|p| gone(*p))) {
        abort("the killed backend's processes stay");
    }
    let kill_end = Instant::now();
    let b_old_log = victim.log();
    drop(b.take());
    if !eventually(Duration::from_secs(5), || proxy.transitions("b", "DOWN") >= 1) {
        abort("haproxy did not mark the killed backend down");
    }
    // Pulls keep going to the survivor while b is down.
    let down = Instant::now();
    if !eventually(Duration::from_secs(10), || served("a", down)) {
        abort("no pull while one backend is down");
    }

    // Restart b on the same port; HAProxy's checks bring it back.
    let ups = proxy.transitions("b", "UP");
    b = Some(Daemon::start_on(b_addr, &config_b, &["--workers=2"]));
    if !eventually(Duration::from_secs(10), || proxy.transitions("b", "UP") > ups) {
        abort("haproxy did not mark the restarted backend up");
    }
    let back = Instant::now();
    if !eventually(Duration::from_secs(10), || served("b", back) && served("a", back)) {
        abort("no pulls through both backends after the restart");
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let b = b.unwrap();
    let runs = snapshot();

    // Only pulls in flight at the kill failed.
    let failed: Vec<&Run> = runs.iter().filter(|r| r.code != 0).collect();
    let stray: Vec<&&Run> = failed.iter().filter(|r| !(r.start < kill_end && r.end > kill_start)).collect();
    assert!(
        stray.is_empty(),
        "{} of {} pulls failed outside the kill: {stray:?}\nhaproxy:\n{}",
        stray.len(),
        runs.len(),
        proxy.log()
    );
    let in_flight_at_kill = runs.iter().filter(|r| r.start < kill_end && r.end > kill_start).count();
    // The reloaded backend lost none: every pull it served across a SIGHUP
    // completed (and none failed then, above).
    let across_reload = runs
        .iter()
        .filter(|r| r.served_by == Some("a") && reloads.iter().any(|at| r.start < *at && r.end > *at))
        .count();
    assert!(across_reload > 0, "no pull through a was in flight at a reload");
    // Both backends served before and after.
    let first_reload = reloads[0];
    for (by, before, after, what) in [
        ("a", first_reload, reloaded, "the reload"),
        ("b", kill_start, back, "the kill and restart"),
    ] {
        assert!(
            runs.iter().any(|r| r.served_by == Some(by) && r.end < before),
            "{by} served nothing before {what}"
        );
        assert!(
            runs.iter().any(|r| r.served_by == Some(by) && r.start > after),
            "{by} served nothing after {what}"
        );
    }

    // Straight to a backend from 127.0.0.1: a forged PROXY v2 header that
    // claims the allowed client is dropped before the greeting, as is a
    // plain client, even from the allowed address.
    let mut forged = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    forged.extend_from_slice(&[127, 0, 0, 3, 127, 0, 0, 1, 0x9c, 0x40, 0x03, 0x69]);
    forged.extend_from_slice(b"@RSYNCD: 31.0\npub\n");
    for d in [&a, &b] {
        let before = d.log().matches(&format!("({CLIENT})")).count();
        assert_eq!(talk(d.addr, &forged), b"", "a forged header gets nothing back");
        let untrusted = "proxy protocol rejected from untrusted peer UNDETERMINED (127.0.0.1)";
        assert!(d.wait_log(untrusted, 1, Duration::from_secs(5)), "{}", d.log());
        for from in ["127.0.0.1", CLIENT] {
            let dst = format!("{}/", scratch.path().join("direct").display());
            let direct = rsync(&["-r", &format!("--address={from}"), &d.url("pub/"), &dst]);
            // Dropped unread, the client's greeting may turn the close into a reset.
            let dropped = (direct.code == 5 && direct.stderr.contains("did not see server greeting"))
                || (direct.code == 12 && direct.stderr.contains("Connection reset by peer"));
            assert!(dropped, "{direct:?}");
            let needle = format!("proxy protocol rejected from untrusted peer UNDETERMINED ({from})");
            assert!(d.wait_log(&needle, 1, Duration::from_secs(5)), "{}", d.log());
        }
        assert_eq!(
            d.log().matches(&format!("({CLIENT})")).count(),
            before + 1,
            "only the direct client's rejection names {CLIENT}:\n{}",
            d.log()
        );
    }

    // The backends logged the client's address for every session, never
    // HAProxy's: 127.0.0.2 appears only in the health checks' connect
    // lines (a PROXY v2 LOCAL header, which carries no client).
    let logs = [("a", a.log()), ("b before the kill", b_old_log), ("b after the restart", b.log())];
    for (name, log) in &logs {
        let sessions = log
            .lines()
            .filter(|l| l.contains(&format!("rsync on pub/ from UNDETERMINED ({CLIENT})")))
            .count();
        assert!(sessions > 0, "{name} logged no session from {CLIENT}:\n{log}");
        let proxy_lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(PROXY_SOURCE) && !l.contains(&format!("connect from UNDETERMINED ({PROXY_SOURCE})")))
            .collect();
        assert!(proxy_lines.is_empty(), "{name} names HAProxy's address: {proxy_lines:#?}");
    }
    eprintln!(
        "haproxy: {} pulls, {} failed (all in flight at the kill, {} were: {:?}), {} through a across a reload ({} reloads), {:?}",
        runs.len(),
        failed.len(),
        in_flight_at_kill,
        failed
            .iter()
            .map(|r| r.stderr.lines().next().unwrap_or_default())
            .collect::<Vec<_>>(),
        across_reload,
        reloads.len(),
        test_start.elapsed()
    );
    assert!(test_start.elapsed() < Duration::from_secs(60), "took {:?}", test_start.elapsed());
}
