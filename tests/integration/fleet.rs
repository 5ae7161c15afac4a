//! Fleet operations against the real binary: Prometheus `/metrics`
//! (counters by module and reason, a killed worker's counters kept),
//! `oxrsyncd --status` (live sessions, text and JSON), and the per-client
//! limits (`max sessions per host`, a module's `max connections per host`,
//! the pre-auth budget `max handshakes per host`) with the stock client.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};

use crate::harness::client::{rsync, rsync_env};
use crate::harness::daemon::{binary, Daemon};
use crate::harness::metrics::{self, samples};
use crate::harness::raw::Greeted;
use crate::harness::{eventually, free_port};

/// Scrape `/metrics`: each sample line as `name{labels}` -> value.
fn scrape(addr: &str) -> HashMap<String, f64> {
    samples(&metrics::scrape(addr.parse().unwrap()).expect("a /metrics page"))
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
}

fn tree(dir: &Path) -> u64 {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut total = 0;
    for (name, len) in [("a.txt", 1000usize), ("sub/b.bin", 200_000), ("c", 10)] {
        std::fs::write(dir.join(name), vec![b'x'; len]).unwrap();
        total += len as u64;
    }
    total
}

#[test]
fn metrics_count_what_clients_do_and_keep_a_killed_workers_counts() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let bytes = tree(&src);
    let up = dir.path().join("up");
    std::fs::create_dir(&up).unwrap();
    // A root daemon's sessions run as nobody by default.
    std::fs::set_permissions(&up, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(&secrets, "bob:right\n").unwrap();
    std::fs::set_permissions(&secrets, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "use chroot = no\nmetrics address = {metrics}\n\
         [pub]\n path = {src}\n\
         [up]\n path = {up}\n read only = no\n\
         [priv]\n path = {src}\n auth users = bob\n secrets file = {secrets}\n\
         [denied]\n path = {src}\n hosts allow = 192.0.2.1\n",
        src = src.display(),
        up = up.display(),
        secrets = secrets.display()
    );
    let daemon = Daemon::start(&config, &["--workers=2"]);

    let out = dir.path().join("out");
    assert_eq!(rsync(&["-a", &daemon.url("pub/"), out.to_str().unwrap()]).code, 0);
    let pushed = rsync(&["-r", &format!("{}/", src.display()), &daemon.url("up/")]);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    let wrong = rsync_env(&[&daemon.url("priv/")], &[("RSYNC_PASSWORD", "wrong")]);
    assert_eq!(wrong.code, 5);
    assert_eq!(rsync(&[&daemon.url("denied/")]).code, 5);
    assert_eq!(rsync(&[&daemon.url("nosuch/")]).code, 5);

    let m = scrape(&metrics);
    assert_eq!(get(&m, "oxrsyncd_build_info{version=\"0.1.0\"}"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_generation"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_workers"), 2.0);
    assert_eq!(get(&m, "oxrsyncd_connections_accepted_total"), 5.0);
    assert_eq!(get(&m, "oxrsyncd_connections_refused_total{reason=\"auth_failed\"}"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_connections_refused_total{reason=\"hosts_deny\"}"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_connections_refused_total{reason=\"bad_handshake\"}"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_sessions_total{module=\"pub\",direction=\"pull\"}"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_sessions_total{module=\"up\",direction=\"push\"}"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_sessions_active{module=\"pub\",direction=\"pull\"}"), 0.0);
    assert_eq!(get(&m, "oxrsyncd_files_transferred_total{module=\"pub\"}"), 3.0);
    assert_eq!(get(&m, "oxrsyncd_files_transferred_total{module=\"up\"}"), 3.0);
    let sent = get(&m, "oxrsyncd_sent_bytes_total{module=\"pub\"}");
    assert!(sent >= bytes as f64, "{sent} < {bytes}");
    assert!(get(&m, "oxrsyncd_received_bytes_total{module=\"up\"}") >= bytes as f64);
    assert_eq!(get(&m, "oxrsyncd_session_exits_total{module=\"pub\",code=\"0\"}"), 1.0);
    assert_eq!(get(&m, "oxrsyncd_handshake_duration_seconds_count"), 2.0);
    assert_eq!(get(&m, "oxrsyncd_session_duration_seconds_count"), 2.0);
    assert!(m.contains_key("oxrsyncd_listen_queue_limit"), "TCP_INFO of the listener");

    // A worker killed by a signal: replaced, counted, and what it had
    // counted is kept (counters never go backwards).
    let victim = daemon.workers()[0];
    kill(victim, Signal::SIGKILL).unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        let m = scrape(&metrics);
        get(&m, "oxrsyncd_worker_restarts_total{cause=\"signal\"}") == 1.0 && get(&m, "oxrsyncd_workers") == 2.0
    }));
    let after = scrape(&metrics);
    assert_eq!(get(&after, "oxrsyncd_sent_bytes_total{module=\"pub\"}"), sent);
    assert_eq!(get(&after, "oxrsyncd_connections_accepted_total"), 5.0);

    // A reload is a new generation, counted.
    daemon.signal(Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || {
        let m = scrape(&metrics);
        get(&m, "oxrsyncd_generation") == 2.0 && get(&m, "oxrsyncd_reloads_total{result=\"ok\"}") == 1.0
    }));

    // Anything but /metrics is not found; the endpoint survives junk.
    let mut s = TcpStream::connect(&metrics).unwrap();
    s.write_all(b"GET /nope HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    let mut s = TcpStream::connect(&metrics).unwrap();
    s.write_all(&[b'A'; 20_000]).unwrap_or(());
    drop(s);
    assert_eq!(get(&scrape(&metrics), "oxrsyncd_generation"), 2.0);
}

#[test]
fn a_metrics_address_in_use_stops_the_start_with_a_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "metrics address = {}\n[m]\n path = {}\n",
            taken.local_addr().unwrap(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["--config", conf.to_str().unwrap(), "--no-detach", "--address=127.0.0.1"])
        .arg(format!("--port={}", free_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen for metrics on"), "{stderr}");
}

#[test]
fn status_lists_live_sessions_with_module_client_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("big"), vec![7u8; 3 << 20]).unwrap();
    let pid_file = dir.path().join("oxrsyncd.pid");
    let config = format!(
        "use chroot = no\npid file = {}\n[pub]\n path = {}\n",
        pid_file.display(),
        src.display()
    );
    let daemon = Daemon::start(&config, &["--workers=2"]);
    let status = |json: bool| {
        let mut cmd = Command::new(binary());
        cmd.args(["--config", daemon.config_path.to_str().unwrap(), "--status"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let idle: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
    assert_eq!(idle["sessions"].as_array().unwrap().len(), 0, "{idle}");

    let url = daemon.url("pub/big");
    let dst = dir.path().join("copy");
    let dst2 = dst.clone();
    let pull = std::thread::spawn(move || rsync(&["--bwlimit=600", &url, dst2.to_str().unwrap()]));
    let mut seen = serde_json::Value::Null;
    assert!(
        eventually(Duration::from_secs(10), || {
            seen = serde_json::from_str(&status(true)).unwrap();
            seen["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["state"] == "sending" && s["bytes_sent"].as_u64().unwrap() > 100_000)
        }),
        "{seen}"
    );
    let s = &seen["sessions"][0];
    assert_eq!(s["module"], "pub");
    assert!(s["client"].as_str().unwrap().starts_with("127.0.0.1:"), "{s}");
    assert_eq!(s["generation"], 1);
    assert!(daemon
        .workers()
        .iter()
        .any(|w| w.as_raw() as u64 == s["worker_pid"].as_u64().unwrap()));
    assert_eq!(seen["supervisor_pid"].as_i64().unwrap(), daemon.pid().as_raw() as i64);
    let text = status(false);
    let line = text.lines().find(|l| l.contains(" pub ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("sending") && line.contains("127.0.0.1:"), "{line}");

    assert_eq!(pull.join().unwrap().code, 0);
    assert_eq!(std::fs::read(&dst).unwrap().len(), 3 << 20);
    assert!(eventually(Duration::from_secs(5), || {
        let v: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
        v["sessions"].as_array().unwrap().is_empty()
    }));

    // Without a pid to go by, a clear error.
    let out = Command::new(binary()).args(["--status", "--pid", "999999999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot look into process"));
}

/// A connection from `source` that reads the greeting; the daemon's next
/// line, if it sends one at once.
fn connect_from(source: &str, addr: SocketAddr) -> (TcpStream, Option<String>) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{source}:0").parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.connect_timeout(&addr.into(), Duration::from_secs(5)).unwrap();
    let stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut greeting = String::new();
    let _ = reader.read_line(&mut greeting);
    let mut next = String::new();
    let refusal = match reader.read_line(&mut next) {
        Ok(n) if n > 0 => Some(next.trim_end().to_string()),
        _ => None,
    };
    (stream, refusal)
}

#[test]
fn per_host_limits_count_across_workers_with_upstreams_wording() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\nmax sessions per host = 2\nlock file = {d}/lock\n[pub]\n path = {d}\n[one]\n path = {d}\n max connections per host = 1\n",
        d = dir.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=3"]);
    // Two connections from 127.0.0.1, on whatever workers.
    let (_a, ra) = connect_from("127.0.0.1", daemon.addr);
    let (_b, rb) = connect_from("127.0.0.1", daemon.addr);
    assert_eq!((ra, rb), (None, None));
    let over = rsync(&[&daemon.url("pub/")]);
    assert_eq!(over.code, 5, "{}", over.stderr);
    assert!(
        over.stderr.contains("@ERROR: max connections (2) reached -- try again later"),
        "{}",
        over.stderr
    );
    // Another address has its own count.
    let other = rsync(&["--address=127.0.0.2", &daemon.url("")]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    drop((_a, _b));

    // A module's own per-host cap: one session of `one` per address.
    let mut held = None;
    assert!(eventually(Duration::from_secs(5), || {
        let mut c = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
        let ok = c.select("one").map(|l| l == "@RSYNCD: OK").unwrap_or(false);
        held = Some(c);
        ok
    }));
    let second = rsync(&[&daemon.url("one/")]);
    assert!(
        second.stderr.contains("@ERROR: max connections (1) reached -- try again later"),
        "{}",
        second.stderr
    );
    assert_eq!(second.code, 5);
    assert_eq!(rsync(&[&daemon.url("pub/")]).code, 0, "other modules are not limited");
    assert_eq!(rsync(&["--address=127.0.0.2", &daemon.url("one/")]).code, 0);
    drop(held);
    assert!(eventually(Duration::from_secs(5), || rsync(&[&daemon.url("one/")]).code == 0));
    assert!(daemon.log().contains("max connections per host (1) reached on module one from"));
}

/// One noisy address opens `noisy` idle connections; then a well-behaved
/// address lists modules `probes` times. Returns (noisy connections
/// refused at once, well-behaved probes served, slowest probe).
fn noisy_neighbour(budget: u32, noisy: usize, probes: usize) -> (usize, usize, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\nmax sessions = 100\nhandshake timeout = 60\nmax handshakes per host = {budget}\n[pub]\n path = {}\n",
        dir.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=2"]);
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..noisy {
        let (s, refusal) = connect_from("127.0.0.2", daemon.addr);
        match refusal {
            Some(line) => {
                assert!(line.starts_with("@ERROR: max connections ("), "{line}");
                refused += 1;
            }
            None => held.push(s),
        }
    }
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..probes {
        let started = Instant::now();
        let run = rsync(&["--address=127.0.0.1", &daemon.url("")]);
        slowest = slowest.max(started.elapsed());
        if run.code == 0 && run.stdout.contains("pub") {
            served += 1;
        }
    }
    (refused, served, slowest)
}

#[test]
fn one_noisy_address_cannot_starve_others_before_auth() {
    // With the pre-auth budget: the noisy address keeps 16 handshakes, the
    // rest are refused at once, and the other client is served every time,
    // as fast as an idle daemon serves it.
    let (refused, served, slowest) = noisy_neighbour(16, 300, 10);
    assert_eq!(refused, 300 - 16);
    assert_eq!(served, 10);
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    // Without it (the control), the same noise takes the daemon's whole
    // `max sessions` and the other client is refused: the budget is what
    // made the difference.
    let (_, served_without, _) = noisy_neighbour(0, 300, 3);
    assert_eq!(served_without, 0);
}
