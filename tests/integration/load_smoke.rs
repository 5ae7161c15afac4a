//! A small load run through the load generator (tests/load): W100 held at
//! once, churn with two reloads, churn with a worker killed, and W20 real
//! pulls. The big runs (W10k, long churn) live in tests/bench/run.sh.

use std::sync::Arc;
use std::time::Duration;

use oxrsyncd_load::failure::Failure;
use oxrsyncd_load::{churn, hold, pull, runtime};

use crate::harness::daemon::Daemon;

fn daemon() -> (tempfile::TempDir, Daemon, Arc<Vec<u8>>) {
    let src = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..1_048_576u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(src.path().join("1mib.bin"), &data).unwrap();
    // Several 127.0.0.x sources: no reverse lookups (they would measure the resolver).
    let config = format!(
        "use chroot = no\nreverse lookup = no\nlisten backlog = 1024\n[bench]\n path = {}\n",
        src.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=2"]);
    (src, daemon, Arc::new(data))
}

#[test]
fn hundred_held_sessions_churn_with_reloads_and_a_killed_worker() {
    let (_src, d, data) = daemon();
    let pid = Some(d.pid().as_raw());
    let limit = Duration::from_secs(10);

    let held = runtime::block_on(hold::run(hold::HoldConfig {
        target: d.addr,
        sessions: 100,
        sources: 4,
        rate: None,
        connect_limit: limit,
        hold_for: Duration::from_millis(100),
        daemon_pid: pid,
    }))
    .unwrap();
    assert_eq!((held.held, held.failures.total()), (100, 0), "{held:?}");
    assert!(
        held.fresh_listing_ms.is_some(),
        "a fresh client is served while 100 are held: {held:?}"
    );
    assert!(held.daemon.is_some_and(|u| u.processes == 3), "{held:?}");

    let churn_with = |disruption| {
        runtime::block_on(churn::run(churn::ChurnConfig {
            target: d.addr,
            rate: 200.0,
            duration: Duration::from_millis(1600),
            sources: 4,
            limit,
            daemon_pid: pid,
            disruption: Some(disruption),
        }))
        .unwrap()
    };
    let reloads = churn_with(churn::Disruption::Reload(Duration::from_millis(600)));
    assert_eq!(reloads.reloads, 2, "{reloads:?}");
    assert_eq!(reloads.failures.total(), 0, "reloads lose nothing: {reloads:?}");
    assert_eq!(reloads.completed, reloads.attempted);

    let kills = churn_with(churn::Disruption::KillWorker(Duration::from_millis(700)));
    assert!(kills.kills >= 1, "{kills:?}");
    assert_eq!(
        kills.respawn_ms.len() as u32,
        kills.kills,
        "every killed worker came back: {kills:?}"
    );
    // Only sessions in flight on the killed worker may fail, and only by a
    // cut connection: nothing refused, nothing timed out.
    for class in kills.failures.0.keys() {
        assert!(matches!(class, Failure::Reset | Failure::Eof), "{kills:?}");
    }
    assert!(kills.failures.total() <= 3 * u64::from(kills.kills), "{kills:?}");

    let pulled = pull::run(pull::PullConfig {
        target: d.addr,
        sessions: 20,
        sources: 4,
        module: "bench".into(),
        path: "1mib.bin".into(),
        expected: data,
        limit,
        daemon_pid: pid,
    });
    assert_eq!((pulled.completed, pulled.failures.total()), (20, 0), "{pulled:?}");
}
