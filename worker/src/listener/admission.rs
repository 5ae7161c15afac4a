//! The checks a new connection passes before its handshake, shared by both
//! front ends: the daemon-wide `max sessions`, a scoreboard slot, then,
//! once the real client address is known (after a PROXY header), the
//! per-host limits: `max sessions per host` and the pre-auth budget
//! `max handshakes per host`. Each refusal is counted and logged, and
//! answered as upstream answers a full daemon: our greeting, then
//! `@ERROR: max connections (N) reached -- try again later`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use oxrsyncd_shared::scoreboard::Refusal;
use tracing::info;

use super::capacity::TableClaim;
use super::{over_capacity_reply, WorkerContext};
use crate::telemetry::{ConnectionRecord, HostRefusal};

/// One accepted connection on its way to a handshake.
pub(crate) struct Admission<'a> {
    ctx: &'a WorkerContext,
    /// The TCP peer (the proxy, when `proxy protocol` is on).
    peer: SocketAddr,
}

impl<'a> Admission<'a> {
    pub(crate) fn new(ctx: &'a WorkerContext, peer: SocketAddr) -> Self {
        Admission { ctx, peer }
    }

    /// Count the connection daemon-wide and give it a scoreboard slot;
    /// `Err` holds the reply for a refused one.
    pub(crate) fn claim(&self) -> Result<(TableClaim, Arc<ConnectionRecord>), Vec<u8>> {
        let ctx = self.ctx;
        let max_total = ctx.config.global.max_sessions;
        let Some(claim) = TableClaim::try_new(&ctx.table, ctx.table_row, max_total) else {
            info!("max sessions ({}) reached, refusing {}", max_total, self.peer.ip());
            ctx.telemetry.refuse(Refusal::MaxConnections);
            return Err(over_capacity_reply(max_total));
        };
        let Some(record) = ctx.telemetry.accept(self.peer) else {
            info!("every scoreboard slot is taken, refusing {}", self.peer.ip());
            ctx.telemetry.refuse(Refusal::MaxConnections);
            return Err(over_capacity_reply(ctx.table.total()));
        };
        Ok((claim, record))
    }

    /// Count the connection against the per-host limits of its real
    /// client address; `Err` holds the reply for a refused one.
    pub(crate) fn limit_host(&self, record: &ConnectionRecord, client: IpAddr) -> Result<(), Vec<u8>> {
        let g = &self.ctx.config.global;
        // Behind a proxy the TCP port is the proxy's: show none.
        let port = if g.proxy_protocol { 0 } else { self.peer.port() };
        record.set_client(client, port);
        match record.limit_host(client, g.max_sessions_per_host, g.max_handshakes_per_host) {
            Ok(()) => Ok(()),
            Err(HostRefusal::Sessions(limit)) => {
                info!("max sessions per host ({}) reached, refusing {}", limit, client);
                Err(over_capacity_reply(limit))
            }
            Err(HostRefusal::Handshakes(limit)) => {
                info!("max handshakes per host ({}) reached, refusing {}", limit, client);
                Err(over_capacity_reply(limit))
            }
        }
    }
}
