//! Connection limits that span worker processes.

use std::time::Duration;

use crate::harness::daemon::Daemon;
use crate::harness::raw::Greeted;

#[test]
fn module_max_connections_counts_across_workers() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\nlock file = {d}/rsyncd.lock\n[one]\n path = {d}\n max connections = 1\n",
        d = dir.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=3"]);
    // Hold one admitted session (it keeps its slot while it waits for arguments).
    let mut holders = Vec::new();
    let mut first = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(first.select("one").unwrap(), "@RSYNCD: OK");
    holders.push(first);
    // Whatever worker the next clients land on, the module is full.
    for _ in 0..6 {
        let mut c = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
        assert_eq!(c.select("one").unwrap(), "@ERROR: max connections (1) reached -- try again later");
    }
    drop(holders);
    assert!(crate::harness::eventually(Duration::from_secs(5), || {
        let mut c = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
        c.select("one").map(|l| l == "@RSYNCD: OK").unwrap_or(false)
    }));
}

#[test]
fn daemon_wide_max_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("use chroot = no\nmax sessions = 2\n[pub]\n path = {}\n", dir.path().display());
    let daemon = Daemon::start(&config, &["--workers=2"]);
    let a = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
    let b = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
    let mut c = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(c.select("pub").unwrap(), "@ERROR: max connections (2) reached -- try again later");
    drop((a, b));
    assert!(crate::harness::eventually(Duration::from_secs(5), || {
        Greeted::connect(daemon.addr, Duration::from_secs(5))
            .and_then(|mut g| g.select("pub"))
            .map(|l| l == "@RSYNCD: OK")
            .unwrap_or(false)
    }));
}
