//! The daemon as sender (a client pull): upstream's `do_server_sender`,
//! `send_file_list` and `send_files` on one plain thread.
//!
//! Order on the wire after protocol setup: the client's filter list, our
//! file list, then the generator's requests (index, item flags, block
//! sums) answered with token streams, phase ends echoed, our stats, and
//! the final goodbye. With incremental recursion (CF_INC_RECURSE, see
//! [`crate::transfer::send::incremental`]) the file list is the top level only;
//! each directory's list follows in the request loop, kept ahead of the
//! client's progress, and the client releases each list with an NDX_DONE
//! before the one that ends phase 0.
//!
//! The steps, one file each: [`setup`] (filters, the module root, the
//! list sender), [`serve`] (one request at a time), [`finish`] (stats and
//! goodbye); [`run`] strings them together.

pub(crate) mod finish;
pub(crate) mod serve;
pub(crate) mod setup;
#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::time::Instant;

use oxrsyncd_protocol::mux::MuxOut;
use oxrsyncd_protocol::ndx::NdxCodec;
use tracing::debug;

pub(crate) use self::setup::{SenderError, SenderSetup, SenderStats};
use crate::transfer::delta::TokenWriter;
use crate::transfer::limits::bwlimit::Throttled;
use crate::transfer::limits::io_timeout::IdlePolicy;

/// Run the whole pull. `idle` is the session's timeout policy (none: wait
/// forever).
pub(crate) fn run<R: Read, W: Write>(
    setup: &SenderSetup<'_>,
    reader: R,
    writer: W,
    idle: Option<IdlePolicy>,
) -> Result<SenderStats, SenderError> {
    let gate = idle.as_ref().map(|p| p.gate.clone()).unwrap_or_default();
    let mut input = setup::open_input(setup, reader, idle);
    let mut out = MuxOut::new(Throttled::new(writer, setup.options.bwlimit));
    let filters = setup::read_filters(setup, &mut input)?;
    let flist_start = Instant::now();
    let root = setup::open_root(setup)?;
    let walker = setup::walker(setup, &root, &filters);
    let params = setup::checksum_params(setup)?;
    let mut lists = setup::list_sender(setup, &walker, params)?;
    // Not flushed yet: as upstream's buffered output, the first list goes
    // out together with the first lists sent ahead, right before we first
    // wait for the client.
    let paths = setup::requested_paths(setup, &root, &mut input)?;
    let mut ndx_out = NdxCodec::new(setup.protocol);
    // Upstream's daemon log line (FLOG) as the list starts.
    tracing::info!("building file list");
    lists.send_first(&paths, &mut out, &mut ndx_out)?;
    debug!(
        "first file list of {} entries sent in {:?} (incremental: {})",
        lists.lists.first().map_or(0, |l| l.entries.len()),
        flist_start.elapsed(),
        lists.inc_recurse()
    );
    if lists.lists.first_is_empty() {
        lists.flush(&mut out)?;
        out.flush()?;
        return Ok(SenderStats {
            io_error: lists.io_error,
            total_size: lists.total_size,
            total_read: input.inner_ref().count,
            total_written: out.total_written,
            xfer_errors: out.xfer_errors,
            ..SenderStats::default()
        });
    }
    let tokens = TokenWriter::with_protocol(setup::compression(setup)?, setup.protocol);
    let mut sender = serve::Sender::new(setup, &root, lists, params, tokens, ndx_out, flist_start);
    sender.serve(&mut input, &mut out, &gate)?;
    sender.finish(&mut input, &mut out)
}
