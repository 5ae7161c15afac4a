//! The tokio-free front end: one accept thread polling the shared listener
//! and the drain pipe, one thread per connection for handshake and session.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tracing::{debug, info, warn};

use oxrsyncd_shared::scoreboard::Refusal;

use super::admission::Admission;
use super::{session_thread, WorkerContext};
use crate::handshake::drive_blocking::{self, ReadTimeout};
use crate::handshake::host_access::UNDETERMINED_HOST;
use crate::handshake::{proxy_header, Handshake, Progress};

/// Stack for connection threads (handshake then session).
const CONNECTION_STACK: usize = session_thread::SESSION_STACK;

/// Accept until the drain signal (the listener must be non-blocking).
pub(crate) fn accept_loop(listener: TcpListener, ctx: Arc<WorkerContext>, on_ready: impl FnOnce()) -> std::io::Result<()> {
    let per_worker = ctx.config.global.max_sessions_per_worker.max(1) as usize;
    on_ready();
    while !ctx.drain.is_draining() {
        // Capacity first: a full worker does not take connections off the shared queue.
        if !ctx.active.wait_below(per_worker, Duration::from_millis(200)) {
            continue;
        }
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(ctx.drain.wake_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if ctx.drain.is_draining() {
            break;
        }
        match listener.accept() {
            Ok((stream, _)) => spawn_connection(stream, ctx.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue, // a sibling won the race
            Err(e) => {
                warn!("accept failed: {}", e);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    debug!("accept loop stopped for drain");
    Ok(())
}

fn spawn_connection(stream: TcpStream, ctx: Arc<WorkerContext>) {
    let active = ctx.active.enter();
    let spawned = std::thread::Builder::new()
        .name("connection".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            let _active = active;
            serve_connection(stream, &ctx);
        });
    if let Err(e) = spawned {
        warn!("cannot start a connection thread: {}", e);
    }
}

/// Serve one connection on this thread: capacity check, handshake, session.
pub(crate) fn serve_connection(stream: TcpStream, ctx: &WorkerContext) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nonblocking(false);
    let admission = Admission::new(ctx, peer);
    let (claim, record) = match admission.claim() {
        Ok(held) => held,
        Err(reply) => {
            let mut s = &stream;
            let _ = s.write_all(&reply);
            close_gracefully(&stream);
            return;
        }
    };
    for (opt, e) in oxrsyncd_shared::socket_options::apply(socket2::SockRef::from(&stream), &ctx.socket_options) {
        warn!("socket option {:?} failed: {}", opt, e);
    }
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(super::quick_ack::QuickAckReader::new(read_half));
    let mut writer = &stream;
    let deadline = Instant::now() + ctx.config.global.handshake_timeout;
    let client = if ctx.config.global.proxy_protocol {
        if !proxy_header::trusted(ctx.config.global.proxy_protocol_hosts.as_deref(), peer.ip()) {
            info!("proxy protocol rejected from untrusted peer {} ({})", UNDETERMINED_HOST, peer.ip());
            record.refuse(Refusal::UntrustedProxy);
            return;
        }
        // The header counts against the handshake's one deadline.
        let clock = drive_blocking::Clock { deadline, idle: None };
        let read_exact = |out: &mut [u8]| drive_blocking::read_exact(&mut reader, out, &stream, &clock);
        match proxy_header::read_with(read_exact, peer.ip()) {
            Ok(Some(client)) => client,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {
                info!(
                    "handshake timeout ({}s) waiting for a proxy protocol header from {}",
                    ctx.config.global.handshake_timeout.as_secs(),
                    peer.ip()
                );
                return record.refuse(Refusal::HandshakeTimeout);
            }
            _ => {
                info!("no valid proxy protocol header from {}", peer.ip());
                return record.refuse(Refusal::BadHandshake);
            }
        }
    } else {
        peer.ip()
    };
    if let Err(reply) = admission.limit_host(&record, client) {
        let _ = writer.write_all(&reply);
        close_gracefully(&stream);
        return;
    }
    let mut handshake = Handshake::new(ctx.config.clone(), client).with_record(Some(record.clone()));
    match drive_blocking::run(&mut handshake, &mut reader, &mut writer, &stream as &dyn ReadTimeout, deadline) {
        Ok(Progress::Session(request)) => {
            record.admitted();
            drop(handshake);
            let _ = stream.set_read_timeout(None);
            let leftover = reader.buffer().to_vec();
            session_thread::run_on_this_thread(*request, stream, leftover);
            drop(claim);
        }
        Ok(_) => {
            if let Some(why) = handshake.refusal() {
                record.refuse(why);
            }
            close_gracefully(&stream)
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {
            record.refuse(Refusal::HandshakeTimeout);
            if e.to_string() == "handshake timeout" {
                info!(
                    "handshake timeout ({}s) from {}",
                    ctx.config.global.handshake_timeout.as_secs(),
                    peer.ip()
                );
            } else {
                info!("{} from {}", e, peer.ip());
            }
            close_gracefully(&stream);
        }
        Err(e) => debug!("handshake with {} ended: {}", peer.ip(), e),
    }
}

/// Half-close, then wait briefly for the client's EOF.
pub(crate) fn close_gracefully(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 1024];
    let mut s = stream;
    while let Ok(n) = s.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}
