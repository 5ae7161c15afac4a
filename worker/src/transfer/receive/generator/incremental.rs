//! The generator with incremental recursion (upstream's `generate_files`
//! loop over the flist chain and `check_for_finished_files`): each list
//! as it arrives, its directory first (handled in full, swept with
//! `--delete`), then its entries; a list is released to the client with
//! an `NDX_DONE` once every file asked for in it is done with, oldest
//! first and never the one being worked in while more may come. The
//! release of the last list ends the first phase.
//!
//! While it works, the generator hears from the receiver: files done with
//! (a list's count goes down; with `-H` the followers waiting for a file
//! are linked), files to ask for again, and the lists that arrive.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use oxrsyncd_protocol::ndx::NDX_DONE;

use crate::transfer::flist::FileEntry;
use crate::transfer::receive::generator::state::{Generator, LinkGroup, LiveList};
use crate::transfer::receive::lists::RecvList;
use crate::transfer::receive::setup::{ReceiveError, ToGenerator};

/// Whether the generator goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Go,
    /// The receiver stopped: so does the generator.
    Stop,
}

/// Lists that arrived and are not worked in yet, and whether the client
/// sent its last one.
#[derive(Default)]
struct Arrivals {
    queue: VecDeque<Arc<RecvList>>,
    ended: bool,
}

impl<W: Write> Generator<'_, '_, W> {
    /// The list holding index `i` among those not released.
    pub(super) fn list_for(&self, i: usize) -> Result<Arc<RecvList>, ReceiveError> {
        self.live
            .iter()
            .rev()
            .map(|l| &l.list)
            .find(|l| i + 1 >= l.ndx_start.max(0) as usize && (i as i64) < i64::from(l.end()))
            .cloned()
            .ok_or_else(|| ReceiveError::Protocol(format!("no list holds index {i}")))
    }

    /// A request for file `i` went out: its data is on its way.
    pub(super) fn on_its_way(&mut self, i: usize) {
        self.last_requested = Some(i);
        self.count_in_progress(i, true);
    }

    fn count_in_progress(&mut self, i: usize, up: bool) {
        if !self.shared.lists.inc_recurse {
            return;
        }
        let found = self.live.iter_mut().rev().find(|l| l.list.position(i).is_some());
        if let Some(l) = found {
            l.in_progress = if up { l.in_progress + 1 } else { l.in_progress.saturating_sub(1) };
        }
    }

    /// Every list, as it arrives, until the last is released (the end of
    /// the first phase).
    pub(super) fn run_lists(&mut self, from_receiver: &Receiver<ToGenerator>) -> Result<Flow, ReceiveError> {
        let mut arrivals = Arrivals::default();
        // The first list is in `live` already.
        let mut next = self.live.back().map(|l| Arc::clone(&l.list));
        while let Some(list) = next {
            if self.work_in(&list, from_receiver, &mut arrivals)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            // Upstream's wait for the next list (or the end), releasing
            // what is done meanwhile.
            next = loop {
                self.release_done(true)?;
                if let Some(l) = arrivals.queue.pop_front() {
                    break Some(l);
                }
                if arrivals.ended {
                    break None;
                }
                if self.wait_and_hear(from_receiver, &mut arrivals)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            };
            if let Some(l) = &next {
                self.live.push_back(LiveList {
                    list: Arc::clone(l),
                    in_progress: 0,
                });
            }
        }
        // No list comes any more: release them all as they finish.
        loop {
            self.release_done(false)?;
            if self.live.is_empty() {
                return Ok(Flow::Go);
            }
            if self.wait_and_hear(from_receiver, &mut arrivals)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
    }

    /// Wait for the receiver's next word. What we wrote goes out first:
    /// the client answers requests still in our buffer with the data the
    /// receiver is waiting for.
    fn wait_and_hear(&mut self, from_receiver: &Receiver<ToGenerator>, arrivals: &mut Arrivals) -> Result<Flow, ReceiveError> {
        self.shared.out.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
        match from_receiver.recv() {
            Ok(m) => self.hear(m, arrivals),
            Err(_) => Ok(Flow::Stop),
        }
    }

    /// One list: its directory in full (and swept with `--delete`), then
    /// its entries, hearing the receiver between them.
    fn work_in(&mut self, list: &RecvList, from_receiver: &Receiver<ToGenerator>, arrivals: &mut Arrivals) -> Result<Flow, ReceiveError> {
        let ignore_errors = self.shared.setup.options.ignore_errors;
        if let Some(d) = self.deleter.as_mut() {
            d.set_listed(list.names());
            if list.io_error & oxrsyncd_protocol::IoError::General.bit() != 0 && !ignore_errors {
                d.skip_from_now();
            }
        }
        if let Some(parent) = &list.parent {
            self.generate_entry((list.ndx_start - 1) as usize, parent, false, None)?;
        }
        for pos in 0..list.files.len() {
            loop {
                match from_receiver.try_recv() {
                    Ok(m) => {
                        if self.hear(m, arrivals)? == Flow::Stop {
                            return Ok(Flow::Stop);
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(Flow::Stop),
                }
            }
            self.generate(list.ndx_start as usize + pos)?;
        }
        // The list's requests go out now: the client's sender, and with it
        // the data the receiver waits for, may be idle until they come.
        self.shared.out.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
        Ok(Flow::Go)
    }

    /// One word from the receiver.
    fn hear(&mut self, m: ToGenerator, arrivals: &mut Arrivals) -> Result<Flow, ReceiveError> {
        match m {
            ToGenerator::NewList(l) => arrivals.queue.push_back(l),
            ToGenerator::ListsEnd => arrivals.ended = true,
            ToGenerator::Finished(ndx) => self.finished(ndx as usize)?,
            ToGenerator::Redo(ndx) => {
                self.count_in_progress(ndx as usize, false);
                self.redone.insert(ndx as usize);
                self.request(ndx as usize, true, None)?;
            }
            // Only a client that ends the phase before its lists are all
            // released sends this now; the receiver refuses what follows.
            ToGenerator::PhaseDone => {}
            ToGenerator::ReceiverDone | ToGenerator::GoodbyeAnswered | ToGenerator::Abort => return Ok(Flow::Stop),
        }
        Ok(Flow::Go)
    }

    /// File `i` is done with: its list's count goes down, and followers
    /// waiting for it are linked.
    fn finished(&mut self, i: usize) -> Result<(), ReceiveError> {
        self.count_in_progress(i, false);
        let Some(gnum) = self.pending_leaders.remove(&i) else {
            return Ok(());
        };
        let Some(group) = self.link_groups.get_mut(&gnum) else {
            return Ok(());
        };
        let waiting = group.waiting.take().unwrap_or_default();
        let leader_name = group.leader_name.clone();
        for follower in waiting {
            let list = self.list_for(follower)?;
            if let Some(f) = list.get(follower) {
                self.link_one(follower, &f.entry, &leader_name, true)?;
            }
            self.count_in_progress(follower, false);
        }
        Ok(())
    }

    /// Release the oldest lists that are done with (`keep_current`: not
    /// the one being worked in), each with an `NDX_DONE` to the client.
    fn release_done(&mut self, keep_current: bool) -> Result<(), ReceiveError> {
        while let Some(front) = self.live.front() {
            if (keep_current && self.live.len() == 1) || front.in_progress > 0 {
                break;
            }
            {
                let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
                self.ndx_out.write(&mut *out, NDX_DONE)?;
                out.flush()?;
            }
            self.live.pop_front();
        }
        Ok(())
    }

    /// `-H` with incremental recursion: whether file `i` of group `gnum`
    /// follows a file met before (then it is linked now, or once that
    /// file's data is in).
    pub(super) fn follow_group(&mut self, i: usize, e: &FileEntry, gnum: i32) -> Result<bool, ReceiveError> {
        let Some(group) = self.link_groups.get_mut(&gnum) else {
            return Ok(false);
        };
        if let Some(waiting) = group.waiting.as_mut() {
            waiting.push(i);
            self.count_in_progress(i, true);
            return Ok(true);
        }
        let leader_name = group.leader_name.clone();
        self.link_one(i, e, &leader_name, true)?;
        Ok(true)
    }

    /// `-H` with incremental recursion: file `i` leads group `gnum`; its
    /// followers wait if its data is on its way.
    pub(super) fn lead_group(&mut self, i: usize, e: &FileEntry, gnum: i32) -> Result<(), ReceiveError> {
        // Kept for the session (later lists may link to it): charged.
        crate::transfer::limits::budget::charge(e.name.len() + 64, "hard-link groups")?;
        let on_its_way = self.last_requested == Some(i) && !self.shared.setup.options.dry_run;
        if on_its_way {
            self.pending_leaders.insert(i, gnum);
        }
        self.link_groups.insert(
            gnum,
            LinkGroup {
                leader_name: e.name.clone(),
                waiting: on_its_way.then(Vec::new),
            },
        );
        Ok(())
    }
}
