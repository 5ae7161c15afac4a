//! Runs a [`Handshake`] on the tokio accept path. Reads and writes are
//! async; steps that may block (secrets and lock files, and waiting for a
//! name lookup, which itself runs on the bounded name pool) run on tokio's
//! blocking pool so they never stall the reactor. The
//! caller bounds the whole handshake, PROXY header included, by one
//! `handshake timeout` deadline (`timeout_at`); while the client owes its
//! arguments the module's `timeout` also bounds each wait for input.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::drive_blocking::{max_entry_len, strip_terminator};
use super::{Handshake, Progress, Want};

/// Drive `hs` to completion over `stream`. The handshake object and the
/// progress come back so the caller can hand the socket (and any bytes
/// already buffered past the argument block) to a session thread.
pub(crate) async fn run(mut hs: Handshake, stream: &mut BufReader<TcpStream>) -> io::Result<(Handshake, Progress)> {
    let (returned, mut progress) = blocking_step(hs, None).await?;
    hs = returned;
    loop {
        let out = hs.take_output();
        if !out.is_empty() {
            stream.get_mut().write_all(&out).await?;
        }
        let want = match progress {
            Progress::Need(want) => want,
            done => return Ok((hs, done)),
        };
        crate::listener::quick_ack::rearm(stream.get_ref());
        let input = match hs.idle_limit() {
            // The module's `timeout` while the client owes its arguments.
            Some(idle) => tokio::time::timeout(idle, read_input(stream, want)).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("io timeout after {} seconds waiting for the client's arguments", idle.as_secs()),
                )
            })??,
            None => read_input(stream, want).await?,
        };
        if hs.next_step_may_block() {
            let (returned, next) = blocking_step(hs, Some(input)).await?;
            hs = returned;
            progress = next;
        } else {
            progress = hs.feed(&input);
        }
    }
}

/// Run `begin` (no input) or `feed(input)` on the blocking pool.
async fn blocking_step(mut hs: Handshake, input: Option<Vec<u8>>) -> io::Result<(Handshake, Progress)> {
    tokio::task::spawn_blocking(move || {
        let progress = match input {
            None => hs.begin(),
            Some(bytes) => hs.feed(&bytes),
        };
        (hs, progress)
    })
    .await
    .map_err(|e| io::Error::other(format!("handshake step panicked: {e}")))
}

async fn read_input<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, want: Want) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match want {
        Want::Bytes(n) => {
            buf.resize(n, 0);
            reader.read_exact(&mut buf).await?;
        }
        Want::Line | Want::Arg { nul_terminated: false } => read_terminated(reader, b'\n', &mut buf).await?,
        Want::Arg { nul_terminated: true } => read_terminated(reader, 0, &mut buf).await?,
    }
    Ok(buf)
}

async fn read_terminated<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, end: u8, buf: &mut Vec<u8>) -> io::Result<()> {
    let n = (&mut *reader).take(max_entry_len(end) as u64 + 1).read_until(end, buf).await?;
    strip_terminator(buf, end, n)
}
