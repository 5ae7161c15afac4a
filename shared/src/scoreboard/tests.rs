use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::slots::HeldHost;
use super::stats::{HANDSHAKE_BOUNDS, SESSION_BOUNDS};
use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_second_mapping_sees_the_same_board() {
    let board = Scoreboard::create().unwrap();
    let other = Scoreboard::from_fd(board.fd().try_clone_to_owned().unwrap()).unwrap();
    board.open_row(3);
    board.row(3).counters.accepted.fetch_add(2, Ordering::Relaxed);
    assert_eq!(
        other.live_rows().map(|r| r.counters.accepted.load(Ordering::Relaxed)).sum::<u64>(),
        2
    );
    assert_eq!(other.header().supervisor_pid.load(Ordering::Relaxed), std::process::id());
}

#[test]
fn a_file_of_another_size_is_refused() {
    let fd = nix::sys::memfd::memfd_create(c"x", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC).unwrap();
    nix::unistd::ftruncate(&fd, 4096).unwrap();
    assert!(Scoreboard::from_fd(fd).is_err());
}

#[test]
fn module_names_get_stable_buckets_and_overflow_to_other() {
    let board = Scoreboard::create().unwrap();
    let a = board.module_index("alpha");
    let b = board.module_index("beta");
    assert_ne!(a, b);
    assert_eq!(board.module_index("alpha"), a);
    assert_eq!(board.module_label(b).as_deref(), Some("beta"));
    for i in 0..MODULES {
        board.module_index(&format!("m{i}"));
    }
    assert_eq!(board.module_index("one-too-many"), ModuleIndex::OTHER);
    assert_eq!(board.module_index(&"x".repeat(200)), ModuleIndex::OTHER);
    assert_eq!(board.module_label(ModuleIndex::OTHER).as_deref(), Some("(other)"));
}

#[test]
fn retiring_a_row_keeps_its_counters_and_frees_what_it_held() {
    let board = Scoreboard::create().unwrap();
    board.open_row(0);
    board.open_row(1);
    let m = board.module_index("m").bucket();
    board.row(0).counters.modules[m].bytes_sent.fetch_add(100, Ordering::Relaxed);
    board.row(1).counters.modules[m].bytes_sent.fetch_add(5, Ordering::Relaxed);
    board.row(0).gauges.active[m][0].fetch_add(1, Ordering::Relaxed);
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let slot = board.claim_slot(0, 1, addr("192.0.2.7:999")).unwrap();
    let entry = board.host_claim(board.connections_key(ip), 0).unwrap().unwrap();
    board.slot(slot).hold_host(HeldHost::Connections, entry);
    assert_eq!(board.host_count(board.connections_key(ip)), 1);

    board.retire_row(0); // the worker died
    assert_eq!(board.host_count(board.connections_key(ip)), 0, "its host count given back");
    assert!(board.live_slots().is_empty(), "its slot freed");
    let sent: u64 = board
        .live_rows()
        .chain(std::iter::once(board.retired()))
        .map(|r| r.counters.modules[m].bytes_sent.load(Ordering::Relaxed))
        .sum();
    assert_eq!(sent, 105, "no counter lost");
    let active: u64 = board.live_rows().map(|r| r.gauges.active[m][0].load(Ordering::Relaxed)).sum();
    assert_eq!(active, 0, "a dead worker's sessions are not active");
}

#[test]
fn host_limits_count_across_claims_and_per_key() {
    let board = Scoreboard::create().unwrap();
    let a: IpAddr = "198.51.100.1".parse().unwrap();
    let b: IpAddr = "198.51.100.2".parse().unwrap();
    let ka = board.connections_key(a);
    let e1 = board.host_claim(ka, 2).unwrap().unwrap();
    let _e2 = board.host_claim(ka, 2).unwrap().unwrap();
    assert_eq!(board.host_claim(ka, 2), Err(HostLimitExceeded { limit: 2 }));
    assert_eq!(board.host_count(ka), 2, "a refused claim is not counted");
    assert!(
        board.host_claim(board.connections_key(b), 2).is_ok(),
        "another host has its own count"
    );
    assert!(
        board.host_claim(board.module_key("m", a), 1).is_ok(),
        "another kind has its own count"
    );
    board.host_release(e1);
    assert!(board.host_claim(ka, 2).is_ok());
}

#[test]
fn ipv6_clients_count_by_their_64() {
    let board = Scoreboard::create().unwrap();
    let k1 = board.connections_key("2001:db8:1:2::1".parse().unwrap());
    let k2 = board.connections_key("2001:db8:1:2:ffff::9".parse().unwrap());
    let k3 = board.connections_key("2001:db8:1:3::1".parse().unwrap());
    assert_eq!(k1, k2);
    assert_ne!(k1, k3);
    let mapped = board.connections_key("::ffff:192.0.2.1".parse().unwrap());
    assert_eq!(mapped, board.connections_key("192.0.2.1".parse().unwrap()));
}

#[test]
fn a_full_window_fails_open() {
    let board = Scoreboard::create().unwrap();
    // Fill the whole table with counts of other keys.
    for i in 0..HOST_ENTRIES {
        board.host_entry(i).store((7 << 24) | 1, Ordering::Relaxed);
    }
    let k = board.connections_key("192.0.2.1".parse().unwrap());
    assert_eq!(board.host_claim(k, 1), Ok(None));
}

#[test]
fn slots_show_the_connection_and_are_reused() {
    let board = Scoreboard::create().unwrap();
    let a = board.claim_slot(2, 7, addr("[2001:db8::5]:4000")).unwrap();
    let b = board.claim_slot(2, 7, addr("203.0.113.9:873")).unwrap();
    let m = board.module_index("pub");
    board.slot(b).set_module(m);
    board.slot(b).set_user("alice");
    board.slot(b).set_phase(Phase::Sending);
    board.slot(b).bytes_sent.fetch_add(42, Ordering::Relaxed);
    let views = board.live_slots();
    assert_eq!(views.len(), 2);
    let v = views.iter().find(|v| v.index == b).unwrap();
    assert_eq!(v.client, addr("203.0.113.9:873"));
    assert_eq!(v.module, Some(m));
    assert_eq!(v.user.as_deref(), Some("alice"));
    assert_eq!(v.phase, Phase::Sending);
    assert_eq!(v.bytes_sent, 42);
    assert_eq!(v.generation, 7);
    assert_eq!(views.iter().find(|v| v.index == a).unwrap().client, addr("[2001:db8::5]:4000"));
    board.release_slot(a);
    assert_eq!(board.claim_slot(2, 7, addr("192.0.2.1:1")), Some(a), "a freed slot is taken first");
}

#[test]
fn histograms_bucket_by_upper_bound() {
    let board = Scoreboard::create().unwrap();
    let h = &board.row(0).counters.handshake;
    h.observe(&HANDSHAKE_BOUNDS, Duration::from_micros(300));
    h.observe(&HANDSHAKE_BOUNDS, Duration::from_secs(100));
    assert_eq!(h.buckets[0].load(Ordering::Relaxed), 1);
    assert_eq!(h.buckets[HANDSHAKE_BOUNDS.len()].load(Ordering::Relaxed), 1, "+Inf");
    assert_eq!(h.count.load(Ordering::Relaxed), 2);
    let s = &board.row(0).counters.session;
    s.observe(&SESSION_BOUNDS, Duration::from_millis(10));
    assert_eq!(s.buckets[0].load(Ordering::Relaxed), 1, "a bound is inclusive");
}

#[test]
fn sizes_stay_as_documented() {
    // docs/benchmarks.md and docs/architecture.md quote these.
    assert_eq!(std::mem::size_of::<Slot>(), 128);
    assert!(std::mem::size_of::<WorkerRow>() < 16 * 1024);
}
