//! Process lifecycle against the real binary: a killed worker takes only
//! its own connections with it, reloads under a connection loop lose
//! nothing, SIGTERM drains.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};

use crate::harness::daemon::Daemon;
use crate::harness::eventually;
use crate::harness::procfs::peer_ports;
use crate::harness::raw::{list_modules, Greeted};

fn module_config(dir: &std::path::Path, extra_modules: &str) -> String {
    format!(
        "use chroot = no\nhandshake timeout = 30\n[pub]\n path = {}\n{extra_modules}",
        dir.display()
    )
}

#[test]
fn kill_9_of_a_worker_only_ends_its_own_connections() {
    let src = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&module_config(src.path(), ""), &["--workers=2"]);
    let workers = daemon.workers();
    assert_eq!(workers.len(), 2, "two workers");

    // Park idle connections until both workers hold some.
    let mut conns = Vec::new();
    let by_worker = || workers.iter().map(|w| peer_ports(*w)).collect::<Vec<HashSet<u16>>>();
    // Which worker's accept wins is the kernel's choice: on a busy machine
    // one may win many in a row, so give the other time to queue again.
    for _ in 0..200 {
        conns.push(Greeted::connect(daemon.addr, Duration::from_secs(5)).expect("greeting"));
        let owned = by_worker();
        if conns.len() >= 8 && owned.iter().all(|o| !o.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let owned = by_worker();
    assert!(
        owned.iter().all(|o| !o.is_empty()),
        "both workers should hold connections: {owned:?}"
    );
    let victim = workers[0];
    let victim_ports = owned[0].clone();

    kill(victim, Signal::SIGKILL).unwrap();

    let mut survivors = 0;
    for mut c in conns {
        if victim_ports.contains(&c.local_port()) {
            assert!(
                c.closed_within(Duration::from_secs(5)),
                "a connection of the killed worker stays open"
            );
        } else {
            let names = c.list().expect("a connection of a surviving worker keeps working");
            assert_eq!(names, ["pub"]);
            survivors += 1;
        }
    }
    assert!(survivors > 0);
    assert!(
        eventually(Duration::from_secs(5), || {
            let now = daemon.workers();
            now.len() == 2 && !now.contains(&victim)
        }),
        "the slot is respawned"
    );
    assert!(daemon.wait_log("killed by SIGKILL", 1, Duration::from_secs(2)), "{}", daemon.log());
    assert_eq!(list_modules(daemon.addr, Duration::from_secs(5)).unwrap(), ["pub"]);
}

/// Clients hammer the daemon while it reloads: a module added to the config
/// appears, a broken config is rejected, and not one connection fails.
fn reload_under_load(async_listener: bool) {
    let src = tempfile::tempdir().unwrap();
    let prefix = format!("use async listener = {}\n", if async_listener { "yes" } else { "no" });
    let daemon = Daemon::start(&format!("{prefix}{}", module_config(src.path(), "")), &["--workers=2"]);
    let addr = daemon.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen_added = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, failures, seen) = (stop.clone(), done.clone(), failures.clone(), seen_added.clone());
            std::thread::spawn(move || {
                // Bounded in count and time.
                for _ in 0..20_000 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
                        break;
                    }
                    match list_modules(addr, Duration::from_secs(5)) {
                        Ok(names) => {
                            if names.iter().any(|n| n == "added") {
                                seen.store(true, Ordering::Relaxed);
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(f) => failures.lock().unwrap().push(f),
                    }
                }
            })
        })
        .collect();

    let with_added = format!(
        "{prefix}{}",
        module_config(src.path(), &format!("[added]\n path = {}\n", src.path().display()))
    );
    let steps: Vec<Option<String>> = vec![
        None,
        Some(with_added.clone()),
        None,
        Some(format!("{with_added}bogus parameter = 1\n")),
        Some(with_added.clone()),
        None,
    ];
    let mut generations_expected = 1;
    for (i, step) in steps.into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(500));
        let broken = step.as_deref().is_some_and(|c| c.contains("bogus"));
        if let Some(config) = &step {
            daemon.rewrite_config(config);
        }
        daemon.signal(Signal::SIGHUP);
        if broken {
            assert!(
                daemon.wait_log("reload failed", 1, Duration::from_secs(10)),
                "broken config rejected (step {i})"
            );
        } else {
            generations_expected += 1;
            let needle = format!("generation {generations_expected} serving");
            assert!(
                daemon.wait_log(&needle, 1, Duration::from_secs(15)),
                "reload {i} took effect:\n{}",
                daemon.log()
            );
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    let total = done.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} connections failed: {:?}",
        failures.len(),
        total + failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(total > 500, "the loop ran ({total} listings)");
    assert!(seen_added.load(Ordering::Relaxed), "the added module appeared");
    assert!(list_modules(addr, Duration::from_secs(5)).unwrap().contains(&"added".to_string()));
}

#[test]
fn reload_under_load_loses_nothing_async() {
    reload_under_load(true);
}

#[test]
fn reload_under_load_loses_nothing_blocking() {
    reload_under_load(false);
}

#[test]
fn sigterm_drains_idle_handshakes_and_exits_zero() {
    let src = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\nhandshake timeout = 2\ndrain timeout = 20\n[pub]\n path = {}\n",
        src.path().display()
    );
    let mut daemon = Daemon::start(&config, &["--workers=2"]);
    let mut idle = Greeted::connect(daemon.addr, Duration::from_secs(5)).unwrap();
    let t0 = Instant::now();
    daemon.signal(Signal::SIGTERM);
    assert!(idle.closed_within(Duration::from_secs(6)), "idle handshake closed");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "closed within the handshake timeout (took {:?})",
        t0.elapsed()
    );
    let status = daemon.wait_exit(Duration::from_secs(15)).expect("supervisor exits");
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
    assert!(daemon.workers().is_empty());
}

#[test]
fn sighup_with_a_broken_config_keeps_serving() {
    let src = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&module_config(src.path(), ""), &["--workers=1"]);
    let before = daemon.workers();
    daemon.rewrite_config("[broken\n");
    daemon.signal(Signal::SIGHUP);
    assert!(daemon.wait_log("reload failed", 1, Duration::from_secs(10)));
    assert!(
        daemon.log().contains("rsyncd.conf:2"),
        "the error names file and line:\n{}",
        daemon.log()
    );
    assert_eq!(daemon.workers(), before, "the old generation keeps serving");
    assert_eq!(list_modules(daemon.addr, Duration::from_secs(5)).unwrap(), ["pub"]);
}

#[test]
fn crash_budget_ends_the_service_when_workers_cannot_start() {
    let src = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&module_config(src.path(), ""), &["--workers=1"]);
    // Workers open the log file when they start; take its directory away so
    // every replacement worker dies before it is ready.
    std::fs::remove_dir_all(daemon.dir.path()).unwrap();
    let victim = daemon.workers()[0];
    kill(victim, Signal::SIGKILL).unwrap();
    let status = daemon.wait_exit(Duration::from_secs(20)).expect("the supervisor gives up");
    assert_eq!(status.code(), Some(3), "crash budget exit status");
    let stderr = daemon.stderr_text();
    assert!(
        stderr.matches("cannot open log file").count() >= 5,
        "each failed start says why:\n{stderr}"
    );
}

/// `--daemon` without `--no-detach` goes to the background as upstream's
/// `rsync --daemon` does (init scripts wait for it to return): the command
/// exits 0 at once, the daemon in the background serves, and its pid file
/// names it for the TERM that stops it.
#[test]
fn daemon_without_no_detach_goes_to_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pid_file = dir.path().join("oxrsyncd.pid");
    let config = dir.path().join("rsyncd.conf");
    std::fs::write(
        &config,
        format!(
            "pid file = {}\nlog file = {}\n[m]\n path = {}\n",
            pid_file.display(),
            dir.path().join("log").display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let status = std::process::Command::new(crate::harness::daemon::binary())
        .args([
            "--daemon",
            "--address=127.0.0.1",
            &format!("--port={port}"),
            &format!("--config={}", config.display()),
        ])
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "the launching command returned");
    assert!(eventually(Duration::from_secs(10), || pid_file.exists()), "pid file written");
    let pid = nix::unistd::Pid::from_raw(std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap());
    let served = eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|s| {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).is_ok() && line.starts_with("@RSYNCD:")
        })
    });
    kill(pid, Signal::SIGTERM).unwrap();
    assert!(served, "the background daemon serves");
    assert!(eventually(Duration::from_secs(30), || kill(pid, None).is_err()), "TERM stops it");
}
