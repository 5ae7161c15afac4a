//! The session I/O timeout and keep-alives, driven by a hand-written
//! protocol-29 client that can stall at exactly the step under test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::daemon::Daemon;

/// Connect, read the greeting, send `request` (our greeting, the module
/// and the arguments), and read up to the daemon's `@RSYNCD: OK`.
fn session(daemon: &Daemon, request: &[u8]) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("@RSYNCD: "), "{line:?}");
    reader.get_mut().write_all(request).unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("@RSYNCD: OK") {
            return reader;
        }
        assert!(!line.is_empty() && !line.starts_with("@ERROR"), "{line:?}");
    }
}

/// A pull at protocol 29 (arguments newline-separated) up to the seed.
fn start_pull(daemon: &Daemon) -> BufReader<TcpStream> {
    let mut reader = session(daemon, b"@RSYNCD: 29.0\nmod\n--server\n--sender\n-r\n.\nmod/\n\n");
    let mut seed = [0u8; 4];
    reader.read_exact(&mut seed).unwrap();
    reader
}

fn daemon(timeout: u32) -> (tempfile::TempDir, Daemon) {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("file"), b"data").unwrap();
    let config = format!("use chroot = no\n[mod]\n path = {}\n timeout = {timeout}\n", src.path().display());
    let daemon = Daemon::start(&config, &["--workers=1"]);
    (src, daemon)
}

#[test]
fn a_client_that_stalls_is_dropped_after_the_module_timeout() {
    let (_src, daemon) = daemon(2);
    let mut conn = start_pull(&daemon);
    let started = Instant::now();
    // The filter list never comes: after `timeout` seconds the session ends.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500), "closed too early: {waited:?}");
    assert!(waited < Duration::from_secs(8), "not closed by the timeout: {waited:?}");
    assert!(
        daemon.wait_log("io timeout after 2 seconds -- exiting", 1, Duration::from_secs(5)),
        "log: {}",
        daemon.log()
    );
    assert!(daemon.wait_log("timeout in data send/receive (code 30)", 1, Duration::from_secs(5)));
}

#[test]
fn a_waiting_sender_sends_keepalives_and_stays() {
    let (_src, daemon) = daemon(2);
    let mut conn = start_pull(&daemon);
    // An empty filter list; then, as a client whose generator is busy, we
    // send nothing more and only read.
    conn.get_mut().write_all(&0u32.to_le_bytes()).unwrap();
    conn.get_mut().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + Duration::from_millis(4500);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => panic!("the daemon hung up on a client that is only slow"),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(_) => continue,
        }
    }
    // Walk the multiplexed frames: the file list, then empty MSG_DATA frames.
    let mut pos = 0;
    let mut keepalives = 0;
    while pos + 4 <= received.len() {
        let word = u32::from_le_bytes(received[pos..pos + 4].try_into().unwrap());
        let (tag, len) = ((word >> 24) as u8, (word & 0xFF_FFFF) as usize);
        assert!(tag >= 7, "not a multiplexed frame at {pos}");
        if tag == 7 && len == 0 {
            keepalives += 1;
        }
        pos += 4 + len;
    }
    // One every second (half the timeout) once the list is out.
    assert!(keepalives >= 3, "{keepalives} keep-alives in 4.5 s");
    assert!(!daemon.log().contains("io timeout"), "{}", daemon.log());
}

#[test]
fn the_daemon_tells_a_protocol_31_client_its_timeout() {
    let (_src, daemon) = daemon(7);
    // Protocol 31 and above separate arguments with NULs.
    let mut reader = session(&daemon, b"@RSYNCD: 31.0\nmod\n--server\0--sender\0-r\0.\0mod/\0\0");
    // Compat flags (a one-byte varint without capabilities), the seed, then
    // the first multiplexed frame: MSG_IO_TIMEOUT (33) with the timeout.
    let mut setup = [0u8; 1 + 4 + 4 + 4];
    reader.read_exact(&mut setup).unwrap();
    assert!(setup[0] < 0x80, "compat flags fit one byte: {setup:?}");
    let header = u32::from_le_bytes(setup[5..9].try_into().unwrap());
    assert_eq!((header >> 24, header & 0xFF_FFFF), (7 + 33, 4), "{setup:?}");
    assert_eq!(i32::from_le_bytes(setup[9..13].try_into().unwrap()), 7);
}
