//! The tokio accept loop. A permit from the worker's capacity pool is taken
//! *before* accept, so a saturated worker leaves connections in the shared
//! queue for its siblings instead of accepting what it cannot serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use oxrsyncd_shared::scoreboard::Refusal;

use super::admission::Admission;
use super::capacity::ActiveGuard;
use super::{session_thread, WorkerContext};
use crate::handshake::host_access::UNDETERMINED_HOST;
use crate::handshake::{drive_async, proxy_header, Handshake, Progress};

/// How long we wait for a client to hang up after our last words.
const LINGER: Duration = Duration::from_secs(2);

/// Accept until the drain signal, then return (sessions may still run).
pub(crate) async fn accept_loop(listener: std::net::TcpListener, ctx: Arc<WorkerContext>, on_ready: impl FnOnce()) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let per_worker = ctx.config.global.max_sessions_per_worker.max(1) as usize;
    let permits = Arc::new(Semaphore::new(per_worker));
    let mut drain = ctx.drain.subscribe();
    on_ready();
    loop {
        if *drain.borrow() {
            break;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = drain.changed() => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = drain.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Counted before the task starts, so a drain never misses it.
                let active = ctx.active.enter();
                tokio::spawn(serve_connection(stream, peer, permit, active, ctx.clone()));
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning.
                warn!("accept failed: {}", e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    debug!("accept loop stopped for drain");
    Ok(())
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit, active: ActiveGuard, ctx: Arc<WorkerContext>) {
    let admission = Admission::new(&ctx, peer);
    let (claim, record) = match admission.claim() {
        Ok(held) => held,
        Err(reply) => {
            let mut stream = stream;
            let _ = stream.write_all(&reply).await;
            close_gracefully(stream).await;
            return;
        }
    };
    for (opt, e) in oxrsyncd_shared::socket_options::apply(socket2::SockRef::from(&stream), &ctx.socket_options) {
        warn!("socket option {:?} failed: {}", opt, e);
    }
    let mut reader = BufReader::new(stream);
    let timeout = ctx.config.global.handshake_timeout;
    // One deadline for the PROXY header and the whole handshake.
    let deadline = tokio::time::Instant::now() + timeout;
    let client = if ctx.config.global.proxy_protocol {
        if !proxy_header::trusted(ctx.config.global.proxy_protocol_hosts.as_deref(), peer.ip()) {
            info!("proxy protocol rejected from untrusted peer {} ({})", UNDETERMINED_HOST, peer.ip());
            record.refuse(Refusal::UntrustedProxy);
            return;
        }
        match tokio::time::timeout_at(deadline, proxy_header::read_async(&mut reader, peer.ip())).await {
            Ok(Ok(Some(client))) => client,
            Ok(_) => {
                info!("no valid proxy protocol header from {}", peer.ip());
                return record.refuse(Refusal::BadHandshake);
            }
            Err(_) => {
                info!(
                    "handshake timeout ({}s) waiting for a proxy protocol header from {}",
                    timeout.as_secs(),
                    peer.ip()
                );
                return record.refuse(Refusal::HandshakeTimeout);
            }
        }
    } else {
        peer.ip()
    };
    if let Err(reply) = admission.limit_host(&record, client) {
        let mut stream = reader.into_inner();
        let _ = stream.write_all(&reply).await;
        close_gracefully(stream).await;
        return;
    }
    let handshake = Handshake::new(ctx.config.clone(), client).with_record(Some(record.clone()));
    match tokio::time::timeout_at(deadline, drive_async::run(handshake, &mut reader)).await {
        Ok(Ok((_, Progress::Session(request)))) => {
            record.admitted();
            let leftover = reader.buffer().to_vec();
            let stream = reader.into_inner();
            match stream.into_std().and_then(|s| s.set_nonblocking(false).map(|_| s)) {
                Ok(std_stream) => session_thread::spawn(request, std_stream, leftover, (permit, claim, active)),
                Err(e) => warn!("cannot hand {} to a session thread: {}", peer.ip(), e),
            }
        }
        Ok(Ok((handshake, _))) => {
            if let Some(why) = handshake.refusal() {
                record.refuse(why);
            }
            close_gracefully(reader.into_inner()).await
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            info!("{} from {}", e, peer.ip());
            record.refuse(Refusal::HandshakeTimeout);
            close_gracefully(reader.into_inner()).await;
        }
        Ok(Err(e)) => debug!("handshake with {} ended: {}", peer.ip(), e),
        Err(_) => {
            info!("handshake timeout ({}s) from {}", timeout.as_secs(), peer.ip());
            record.refuse(Refusal::HandshakeTimeout);
            close_gracefully(reader.into_inner()).await;
        }
    }
}

/// Half-close, then wait briefly for the client's EOF so unread input
/// never turns our last message into a reset.
async fn close_gracefully(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
