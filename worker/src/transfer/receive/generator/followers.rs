//! `-H`: the followers of each hard-linked group, linked to their
//! leader once it is in place.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use oxrsyncd_protocol::item;
use oxrsyncd_protocol::message::{cat, syserr};

use crate::transfer::flist::FileEntry;
use crate::transfer::fs::fake_super::Seen;
use crate::transfer::receive::generator::flags::item_flags;
use crate::transfer::receive::generator::state::Generator;
use crate::transfer::receive::setup::ReceiveError;

impl<'s, W: Write> Generator<'s, '_, W> {
    /// `-H`: link every follower to its group's transferred file (now in
    /// place), replacing whatever other file held the name, and itemize
    /// it as upstream's `maybe_hard_link` does (`hf... name => leader`).
    ///
    /// `early`: the pass at the end of the first phase, for the files
    /// done by then (itemized); else the pass at the end for the rest
    /// (silent: the client reads no more items by then).
    pub(super) fn link_followers(&mut self, early: bool) -> Result<(), ReceiveError> {
        let s = self.shared;
        for &(follower, leader) in &s.hard_links {
            // The early pass is skipped with --delay-updates (the files are
            // not in place before phase 2); the late pass does the rest.
            let due = if early {
                !self.redone.contains(&leader)
            } else {
                s.setup.options.delay_updates || self.redone.contains(&leader)
            };
            if !due {
                continue;
            }
            let Some(list) = s.lists.first() else { break };
            let (Some(f), Some(l)) = (list.get(follower), list.get(leader)) else {
                continue;
            };
            self.link_one(follower, &f.entry, &l.entry.name, early)?;
        }
        Ok(())
    }

    /// Link follower `follower` (entry `fe`) to its group's file
    /// `leader_name`, now in place, replacing whatever other file holds
    /// the name; `early`: while the client still reads items, so it is
    /// told (`hf... name => leader`).
    pub(super) fn link_one(&mut self, follower: usize, fe: &FileEntry, leader_name: &[u8], early: bool) -> Result<(), ReceiveError> {
        let s = self.shared;
        let (frel, lrel) = (s.dest.path_of(&fe.name), s.dest.path_of(leader_name));
        let existing = s.look(&frel);
        let lmeta = match s.root.lstat(&lrel) {
            Ok(m) => Some(m),
            // A dry run's leader was never made: shown as linked all the same.
            Err(_) if s.setup.options.dry_run => None,
            Err(_) => return Ok(()),
        };
        let same_inode = |m: &Seen| lmeta.as_ref().is_some_and(|l| m.dev() == l.dev() && m.ino() == l.ino());
        if existing.as_ref().is_some_and(same_inode) {
            s.confirm(follower, false)?;
            return Ok(());
        }
        let (fdir, fname) = s.root.parent_of(&frel)?;
        let (ldir, lname) = s.root.parent_of(&lrel)?;
        if existing.is_some() {
            let _ = fdir.unlink(&fname);
        }
        match fdir.link_from(&ldir, &lname, &fname) {
            Ok(()) => {
                if early {
                    let iflags = item_flags(s.setup, fe, existing.as_ref(), item::LOCAL_CHANGE | item::XNAME_FOLLOWS);
                    self.send_item_named(follower, iflags, Some(leader_name))?;
                    self.old_protocol_line(cat(&[&fe.name, b" => ", leader_name, b"\n"]))?;
                }
                s.confirm(follower, false)?;
            }
            Err(err) => {
                let what = cat(&[b"link ", &quoted_name(&fe.name), b" => ", &quoted_name(leader_name), b" failed"]);
                self.report(syserr("generator", &what, &err))?;
            }
        }
        Ok(())
    }
}

/// `"name"`, as upstream quotes a file in messages.
fn quoted_name(name: &[u8]) -> Vec<u8> {
    cat(&[b"\"", name, b"\""])
}
