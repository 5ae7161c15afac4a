//! The sender's last step: what is left to report (sources removed,
//! late I/O errors, the match report), the end of the transfer, our
//! stats as upstream's `report()` sends them, and the final goodbye.

use std::io::{self, Read, Write};

use oxrsyncd_protocol::mux::{Counted, DemuxReader, MsgTag, MuxOut};
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DEL_STATS, NDX_DONE};
use oxrsyncd_protocol::wire::{read_varint, write_longint, write_varint, write_varlong};

use crate::transfer::send::sender::serve::Sender;
use crate::transfer::send::sender::setup::{SenderError, SenderStats};

impl Sender<'_> {
    /// End the transfer once the last phase is over.
    pub(crate) fn finish<R: Read, W: Write>(
        mut self,
        input: &mut DemuxReader<Counted<R>>,
        out: &mut MuxOut<W>,
    ) -> Result<SenderStats, SenderError> {
        let protocol = self.setup.protocol;
        self.remove_confirmed(input, out)?;
        if self.lists.io_error != self.io_error_before && protocol >= 30 {
            out.message(MsgTag::IoError, &self.lists.io_error.to_le_bytes())?;
        }
        let mut stats = std::mem::take(&mut self.stats);
        stats.io_error = self.lists.io_error;
        stats.total_size = self.lists.total_size;
        if self.verbosity >= 2 {
            // Upstream's match_report (debug DELTASUM, level 1 comes with -vv).
            let text = format!(
                "total: matches={}  hash_hits={}  false_alarms={} data={}\n",
                stats.matched_blocks, stats.hash_hits, stats.false_alarms, stats.literal_bytes
            );
            out.message(MsgTag::Info, text.as_bytes())?;
        }
        self.ndx_out.write(out, NDX_DONE)?;
        out.flush()?;

        // Stats, as upstream's report() on a server sender.
        stats.total_read = input.inner_ref().count;
        stats.total_written = out.total_written;
        let flist_time = self.flist_start.elapsed().as_millis() as i64;
        write_varlong30(out, stats.total_read as i64, protocol)?;
        write_varlong30(out, stats.total_written as i64, protocol)?;
        write_varlong30(out, stats.total_size as i64, protocol)?;
        if protocol >= 29 {
            write_varlong30(out, flist_time, protocol)?;
            write_varlong30(out, 0, protocol)?;
        }
        out.flush()?;

        read_final_goodbye(input, out, &mut self.ndx_in, &mut self.ndx_out, protocol)?;
        out.flush()?;
        stats.total_read = input.inner_ref().count;
        stats.total_written = out.total_written;
        stats.xfer_errors = out.xfer_errors;
        Ok(stats)
    }
}

/// Sizes and stats: longint below protocol 30, varlong (min 3 bytes) from 30.
fn write_varlong30(w: &mut impl Write, x: i64, protocol: u32) -> io::Result<()> {
    if protocol < 30 {
        write_longint(w, x)
    } else {
        write_varlong(w, x, 3)
    }
}

/// Upstream's `read_final_goodbye` for a sender.
fn read_final_goodbye<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    ndx_in: &mut NdxCodec,
    ndx_out: &mut NdxCodec,
    protocol: u32,
) -> Result<(), SenderError> {
    if protocol < 29 {
        let i = oxrsyncd_protocol::wire::read_int(input)?;
        return if i == NDX_DONE {
            Ok(())
        } else {
            Err(SenderError::Protocol(format!("Invalid packet at end of run ({i}) [sender]")))
        };
    }
    let mut i = read_ndx_echoing_del_stats(input, out, ndx_in, ndx_out)?;
    if protocol >= 31 && i == NDX_DONE {
        ndx_out.write(out, NDX_DONE)?;
        out.flush()?;
        i = read_ndx_echoing_del_stats(input, out, ndx_in, ndx_out)?;
    }
    if i != NDX_DONE {
        return Err(SenderError::Protocol(format!("Invalid packet at end of run ({i}) [sender]")));
    }
    Ok(())
}

/// The next index, after echoing any deletion stats the client's generator
/// reports on the way (as upstream's read_ndx_and_attrs does on a server
/// sender: with `--delete-after` and friends they come during the goodbye).
fn read_ndx_echoing_del_stats<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    ndx_in: &mut NdxCodec,
    ndx_out: &mut NdxCodec,
) -> Result<i32, SenderError> {
    loop {
        let i = ndx_in.read(input)?;
        if i != NDX_DEL_STATS {
            return Ok(i);
        }
        ndx_out.write(out, NDX_DEL_STATS)?;
        for _ in 0..5 {
            let v = read_varint(input)?;
            write_varint(out, v)?;
        }
        out.flush()?;
    }
}
