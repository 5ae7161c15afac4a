//! The handshake deadline holds for the whole handshake on every path:
//! a client that trickles a byte a second of a line that never ends is
//! dropped at `handshake timeout` (plus slack) by the tokio listener, the
//! blocking listener and inetd mode; a client admitted to a module that
//! then never sends its arguments is dropped after the module's `timeout`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::daemon::{binary, Daemon};

/// Longest we wait for a close that should come at the deadline.
const GIVE_UP: Duration = Duration::from_secs(20);
/// Scheduling slack on top of a deadline.
const SLACK: Duration = Duration::from_millis(2500);

/// Read the server's greeting from a fresh connection.
fn greeted(stream: &TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert!(line.starts_with("@RSYNCD: "), "{line:?}");
}

/// Send our greeting, then the first bytes of a module line one per
/// ~second, never its end; how long after `since` the server hung up
/// (None: it was still talking after [`GIVE_UP`]).
fn trickle_until_closed(mut stream: &TcpStream, since: Instant) -> Option<Duration> {
    stream.write_all(b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n").ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut sink = [0u8; 256];
    while since.elapsed() < GIVE_UP {
        if stream.write_all(b"m").is_err() {
            return Some(since.elapsed());
        }
        match stream.read(&mut sink) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(since.elapsed()),
        }
    }
    None
}

fn trickler_is_dropped(async_listener: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\nuse async listener = {}\nhandshake timeout = 3\n[mod]\n path = {}\n",
        if async_listener { "yes" } else { "no" },
        dir.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let started = Instant::now();
    let stream = TcpStream::connect(daemon.addr).unwrap();
    greeted(&stream);
    let closed = trickle_until_closed(&stream, started);
    let limit = Duration::from_secs(3) + SLACK;
    assert!(
        closed.is_some_and(|t| t <= limit),
        "a trickling client must be dropped by {limit:?}, was {closed:?}; log:\n{}",
        daemon.log()
    );
    assert!(daemon.wait_log("handshake timeout", 1, Duration::from_secs(5)), "{}", daemon.log());
}

#[test]
fn a_trickling_client_is_dropped_at_the_deadline_async() {
    trickler_is_dropped(true);
}

#[test]
fn a_trickling_client_is_dropped_at_the_deadline_blocking() {
    trickler_is_dropped(false);
}

/// inetd mode: standard input and output are the accepted socket.
#[test]
fn a_trickling_client_is_dropped_at_the_deadline_inetd() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "use chroot = no\nhandshake timeout = 3\nlog file = {0}/d.log\n[mod]\n path = {0}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (served, _) = listener.accept().unwrap();
    let started = Instant::now();
    let mut daemon = Command::new(binary())
        .arg(format!("--config={}", conf.display()))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(served.try_clone().unwrap())))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(served)))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    greeted(&client);
    let closed = trickle_until_closed(&client, started);
    let exited = crate::harness::eventually(Duration::from_secs(5), || daemon.try_wait().unwrap().is_some());
    if !exited {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    let limit = Duration::from_secs(3) + SLACK;
    assert!(closed.is_some_and(|t| t <= limit), "inetd: dropped by {limit:?}, was {closed:?}");
    assert!(exited, "the inetd daemon exits after dropping the client");
}

/// Admitted (`@RSYNCD: OK`), then silent: the module's `timeout` (2 s)
/// ends the wait for the arguments long before `handshake timeout` (30 s).
fn silent_after_ok_is_dropped(async_listener: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\nuse async listener = {}\nhandshake timeout = 30\n[mod]\n path = {}\n timeout = 2\n",
        if async_listener { "yes" } else { "no" },
        dir.path().display()
    );
    let daemon = Daemon::start(&config, &["--workers=1"]);
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"@RSYNCD: 31.0\nmod\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    while !line.starts_with("@RSYNCD: OK") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "closed before OK");
        assert!(!line.starts_with("@ERROR"), "{line}");
    }
    let admitted = Instant::now();
    stream.set_read_timeout(Some(GIVE_UP)).unwrap();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let waited = admitted.elapsed();
    assert!(waited >= Duration::from_millis(1500), "closed too early: {waited:?}");
    assert!(
        waited <= Duration::from_secs(2) + SLACK,
        "not dropped by the module's timeout: {waited:?}; log:\n{}",
        daemon.log()
    );
    assert!(
        daemon.wait_log(
            "io timeout after 2 seconds waiting for the client's arguments",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        daemon.log()
    );
}

#[test]
fn module_timeout_bounds_the_wait_for_arguments_async() {
    silent_after_ok_is_dropped(true);
}

#[test]
fn module_timeout_bounds_the_wait_for_arguments_blocking() {
    silent_after_ok_is_dropped(false);
}

/// The daemon a client starts over a remote shell (`--server --daemon`):
/// its input is a pipe, which has no receive timeout; the deadline holds.
#[test]
fn a_trickling_client_is_dropped_at_the_deadline_remote_shell() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "handshake timeout = 3\nlog file = {0}/d.log\n[mod]\n path = {0}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut daemon = Command::new(binary())
        .arg(format!("--config={}", conf.display()))
        .args(["--server", "--daemon", "."])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = daemon.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("@RSYNCD: "), "{line:?}");
    let _ = input.write_all(b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n");
    let mut exited = None;
    while started.elapsed() < GIVE_UP {
        if daemon.try_wait().unwrap().is_some() {
            exited = Some(started.elapsed());
            break;
        }
        let _ = input.write_all(b"m");
        std::thread::sleep(Duration::from_millis(500));
    }
    if exited.is_none() {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    let limit = Duration::from_secs(3) + SLACK;
    assert!(
        exited.is_some_and(|t| t <= limit),
        "remote shell: ended by {limit:?}, was {exited:?}"
    );
}
