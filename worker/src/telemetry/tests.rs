use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use oxrsyncd_shared::config::Config;
use oxrsyncd_shared::scoreboard::{Direction, Phase, Refusal, Scoreboard};

use super::*;

fn setup() -> (Arc<Scoreboard>, Arc<Telemetry>) {
    let board = Arc::new(Scoreboard::create().unwrap());
    board.open_row(1);
    let config = Config::embedded_default();
    let t = Arc::new(Telemetry::new(board.clone(), 1, 4, &config));
    (board, t)
}

#[test]
fn a_session_is_counted_from_accept_to_close() {
    let (board, t) = setup();
    let client: IpAddr = "192.0.2.5".parse().unwrap();
    let record = t.accept("127.0.0.1:5000".parse().unwrap()).unwrap();
    record.set_client(client, 5000);
    record.limit_host(client, 0, 0).unwrap();
    assert_eq!(board.row(1).gauges.handshakes.load(Ordering::Relaxed), 1);
    record.choose_module(0, "demo", client, 0).unwrap();
    record.admitted();
    assert_eq!(board.row(1).gauges.handshakes.load(Ordering::Relaxed), 0);
    record.session_started(Direction::Pull);
    record.sent(100);
    record.received(7);
    record.file_done();
    let views = board.live_slots();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].phase, Phase::Sending);
    assert_eq!(views[0].client.ip(), client);
    assert_eq!((views[0].bytes_sent, views[0].bytes_received, views[0].files), (100, 7, 1));
    let m = board.module_index("demo").bucket();
    assert_eq!(board.row(1).gauges.active[m][0].load(Ordering::Relaxed), 1);
    record.session_ended(0);
    drop(record);
    let c = &board.row(1).counters;
    assert_eq!(board.row(1).gauges.active[m][0].load(Ordering::Relaxed), 0);
    assert_eq!(c.modules[m].bytes_sent.load(Ordering::Relaxed), 100);
    assert_eq!(c.modules[m].exit_codes[0].load(Ordering::Relaxed), 1);
    assert_eq!(c.session.count.load(Ordering::Relaxed), 1);
    assert_eq!(c.handshake.count.load(Ordering::Relaxed), 1);
    assert!(board.live_slots().is_empty());
    assert_eq!(board.host_count(board.connections_key(client)), 0, "host counts given back");
}

#[test]
fn per_host_limits_refuse_the_connection_over_them() {
    let (board, t) = setup();
    let client: IpAddr = "192.0.2.9".parse().unwrap();
    let first = t.accept("192.0.2.9:1".parse().unwrap()).unwrap();
    first.limit_host(client, 0, 1).unwrap();
    let second = t.accept("192.0.2.9:2".parse().unwrap()).unwrap();
    assert_eq!(second.limit_host(client, 0, 1), Err(HostRefusal::Handshakes(1)));
    first.admitted(); // out of its handshake: the budget frees up
    let third = t.accept("192.0.2.9:3".parse().unwrap()).unwrap();
    third.limit_host(client, 0, 1).unwrap();
    assert_eq!(
        board.row(1).counters.refused[Refusal::HandshakeBudget as usize].load(Ordering::Relaxed),
        1
    );
    third.choose_module(0, "demo", client, 1).unwrap();
    first.choose_module(0, "demo", client, 1).unwrap_err();
    assert_eq!(
        board.row(1).counters.refused[Refusal::PerHostLimit as usize].load(Ordering::Relaxed),
        1
    );
}

#[test]
fn a_session_that_never_reports_its_end_is_counted_as_failed() {
    let (board, t) = setup();
    let record = t.accept("192.0.2.1:1".parse().unwrap()).unwrap();
    record.choose_module(0, "demo", "192.0.2.1".parse().unwrap(), 0).unwrap();
    record.admitted();
    record.session_started(Direction::Push);
    drop(record);
    let m = board.module_index("demo").bucket();
    assert_eq!(board.row(1).gauges.active[m][1].load(Ordering::Relaxed), 0);
    assert_eq!(
        board.row(1).counters.modules[m].exit_codes[oxrsyncd_shared::scoreboard::stats::exit_bucket(14)].load(Ordering::Relaxed),
        1
    );
}
