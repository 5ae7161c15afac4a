//! systemd readiness protocol, checked the way ecdysis does: a fake
//! NOTIFY_SOCKET records what the supervisor reports.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::daemon::Daemon;

/// Collect notification datagrams until one contains `needle`.
fn wait_for(sock: &UnixDatagram, needle: &str, seen: &mut Vec<String>) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == needle || l.starts_with(needle));
            seen.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn ready_reloading_and_stopping_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let config = format!("use chroot = no\n[pub]\n path = {}\n", dir.path().display());
    let mut daemon = Daemon::start_with_env(&config, &["--workers=2"], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut seen = Vec::new();
    assert!(wait_for(&sock, "READY=1", &mut seen), "{seen:?}");
    assert!(seen.iter().any(|m| m.contains("STATUS=serving generation 1")), "{seen:?}");

    daemon.signal(Signal::SIGHUP);
    assert!(wait_for(&sock, "RELOADING=1", &mut seen), "{seen:?}");
    let reloading = seen.last().unwrap().clone();
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC with RELOADING=1");
    assert!(usec.parse::<u64>().unwrap() > 0);
    assert!(wait_for(&sock, "READY=1", &mut seen), "{seen:?}");
    assert!(seen.last().unwrap().contains("STATUS=serving generation 2"), "{seen:?}");

    daemon.signal(Signal::SIGTERM);
    assert!(wait_for(&sock, "STOPPING=1", &mut seen), "{seen:?}");
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)).and_then(|s| s.code()), Some(0));
}
