//! The push's generator (upstream's `generate_files` / `recv_generator`),
//! on its own thread: for each entry of the sorted list, make directories
//! and symlinks, decide whether a file needs data (size and time, or `-c`
//! checksums, `-I`, `--size-only`, `--ignore-existing`, `--existing`,
//! `-u`), and ask the client for it with block sums of the file we already
//! have; then the phase ends, redo requests for files that failed
//! verification, directory times and modes last, and the goodbye.
//!
//! Its parts: `state` (what it keeps), `decide` (each entry's verdict),
//! `make` (directories, links, devices), `basis_choice` (choosing a basis and
//! asking for a file), `followers` (hard links), `deletions`, and
//! `output` (items and lines on the wire).

mod basis_choice;
mod decide;
mod deletions;
mod flags;
mod followers;
mod incremental;
mod make;
mod meta;
mod output;
mod state;

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::transfer::options::client::DeleteTiming;
use crate::transfer::receive::delete::Deleter;
use crate::transfer::receive::lists::RecvList;
use crate::transfer::receive::setup::{ReceiveError, ToGenerator};
use crate::transfer::receive::shared::Shared;
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::ndx::NdxCodec;
use oxrsyncd_protocol::IoError;

use self::state::{Generator, LiveList};

/// Run the generator from the `first` list; returns the io_error bits it
/// collected.
pub(crate) fn run<W: Write>(
    shared: &Shared<'_, W>,
    first: Arc<RecvList>,
    from_receiver: Receiver<ToGenerator>,
) -> Result<i32, ReceiveError> {
    if let Some(id) = shared.setup.identity {
        crate::identity::assume_on_this_thread(id)?;
    }
    let protocol = shared.setup.protocol;
    let o = shared.setup.options;
    let inc_recurse = shared.lists.inc_recurse;
    let deleter = o.delete_mode.then(|| {
        // With incremental recursion each list's names, as it comes.
        let listed = if inc_recurse { Default::default() } else { first.names() };
        let io_error = shared.sender_io_error & IoError::General.bit() != 0 && !o.ignore_errors;
        Deleter::new(
            listed,
            &shared.client_filters,
            shared.setup.daemon_filters,
            &shared.dest.dir,
            io_error,
            o.max_delete,
        )
    });
    let mut g = Generator {
        shared,
        ndx_out: NdxCodec::new(protocol),
        io_error: 0,
        dirs: Vec::new(),
        deleter,
        fuzzy_lists: Default::default(),
        failed_dir: None,
        hlink_followers: shared.hard_links.iter().map(|&(follower, _)| follower).collect(),
        redone: Default::default(),
        live: VecDeque::from([LiveList {
            list: Arc::clone(&first),
            in_progress: 0,
        }]),
        early_created: Default::default(),
        link_groups: Default::default(),
        pending_leaders: Default::default(),
        last_requested: None,
    };
    if o.delete_timing == DeleteTiming::Before {
        g.delete_pass()?;
    }
    if inc_recurse {
        // The lists as they come; releasing the last ends phase 0.
        if g.run_lists(&from_receiver)? == incremental::Flow::Stop {
            return Ok(g.io_error);
        }
    } else {
        for i in 0..first.files.len() {
            if let Ok(ToGenerator::Abort) = from_receiver.try_recv() {
                return Ok(g.io_error);
            }
            g.generate(i)?;
        }
        // Phase 0 ends.
        g.write_done(1)?;
    }
    drop(first);
    // Redo what failed verification until the client's phase-end comes
    // back.
    loop {
        match from_receiver.recv() {
            Ok(ToGenerator::Redo(ndx)) => {
                g.redone.insert(ndx as usize);
                g.request(ndx as usize, true, None)?
            }
            Ok(ToGenerator::PhaseDone) => {
                // Every file of the first pass is in place (but for those
                // asked for again, and with --delay-updates): link their
                // followers now, itemized while the client still reads
                // items, as upstream's generator does as each one lands.
                if !o.delay_updates {
                    g.link_followers(true)?;
                }
                break;
            }
            Ok(ToGenerator::Abort) | Err(_) => return Ok(g.io_error),
            Ok(other) => return Err(ReceiveError::Protocol(format!("unexpected {other:?} in the redo phase"))),
        }
    }
    // Phase 1 ends; with no delayed updates the next phase end goes out at
    // once, and without late deletions the deletion stats and the one after
    // too (upstream's EARLY_DELAY_DONE_MSG / EARLY_DELETE_DONE_MSG).
    let late_delete = o.delete_mode && o.delete_timing == DeleteTiming::After;
    g.write_done(if protocol >= 29 { 2 } else { 1 })?;
    if protocol >= 31 && !late_delete {
        g.write_delete_done()?;
    }
    let mut waits = if protocol >= 29 { 2 } else { 1 };
    g.wait_for(&from_receiver, waits)?;
    if late_delete {
        g.delete_pass()?;
    }
    waits = 0;
    if protocol >= 31 {
        if late_delete {
            g.write_delete_done()?;
        }
        waits = 1;
    }
    g.wait_for(&from_receiver, waits)?;
    g.link_followers(false)?;
    g.finish_dirs()?;
    if let Some(skipped) = g.deleter.as_ref().map(|d| d.skipped).filter(|&n| n > 0) {
        shared.message(
            MsgTag::Warning,
            format!("Deletions stopped due to --max-delete limit ({skipped} skipped)\n"),
        )?;
        // Upstream's IOERR_DEL_LIMIT.
        g.io_error |= 4;
    }
    // The goodbye.
    g.write_done(1)?;
    Ok(g.io_error)
}
