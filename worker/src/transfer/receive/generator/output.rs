//! The generator's words on the wire and to the user: items sent with
//! their flags, phase ends, deletion stats, and the lines it reports
//! itself (below protocol 29, as the daemon's own output).

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::Receiver;

use oxrsyncd_protocol::item::write_ndx_and_attrs;
use oxrsyncd_protocol::message::{cat, fname_in};
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::ndx::{NDX_DEL_STATS, NDX_DONE};
use oxrsyncd_protocol::IoError;

use crate::transfer::flist::FileEntry;
use crate::transfer::receive::generator::flags::significant;
use crate::transfer::receive::generator::state::Generator;
use crate::transfer::receive::setup::{ReceiveError, ToGenerator};

impl<'s, W: Write> Generator<'s, '_, W> {
    /// Wait for `count` progress messages from the receiver (phase ends,
    /// its end, the client's answer), reporting late verification failures.
    pub(super) fn wait_for(&mut self, from_receiver: &Receiver<ToGenerator>, mut count: usize) -> Result<(), ReceiveError> {
        while count > 0 {
            match from_receiver.recv() {
                Ok(ToGenerator::PhaseDone | ToGenerator::ReceiverDone | ToGenerator::GoodbyeAnswered) => count -= 1,
                Ok(ToGenerator::Redo(ndx)) => {
                    self.io_error |= IoError::General.bit();
                    let list = self.shared.lists.find(ndx);
                    let name = list
                        .as_ref()
                        .and_then(|l| l.get(ndx as usize))
                        .map_or(&b"?"[..], |f| &f.entry.name[..]);
                    let text = cat(&[b"ERROR: ", name, b" failed verification -- update discarded.\n"]);
                    self.shared.message(MsgTag::ErrorXfer, text)?;
                }
                Ok(ToGenerator::Abort) | Err(_) => return Err(ReceiveError::Protocol("the receiver stopped".into())),
                Ok(other) => return Err(ReceiveError::Protocol(format!("unexpected {other:?} at the end"))),
            }
        }
        Ok(())
    }

    /// Protocol >= 31: the deletion stats (with --delete) and the phase end
    /// that closes deleting.
    pub(super) fn write_delete_done(&mut self) -> io::Result<()> {
        let Some(stats) = self.deleter.as_ref().map(|d| d.stats) else {
            return self.write_done(1);
        };
        let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
        self.ndx_out.write(&mut *out, NDX_DEL_STATS)?;
        let plain = stats.files - stats.dirs - stats.symlinks - stats.devices - stats.specials;
        for n in [plain, stats.dirs, stats.symlinks, stats.devices, stats.specials] {
            oxrsyncd_protocol::wire::write_varint(&mut *out, n)?;
        }
        self.ndx_out.write(&mut *out, NDX_DONE)?;
        out.flush()
    }

    /// Below protocol 29 the client itemizes only what it sends, and with
    /// `-v` upstream's generator names what it made itself (directories,
    /// links, nodes, hard links) in messages: this sends one such line.
    pub(super) fn old_protocol_line(&self, text: Vec<u8>) -> io::Result<()> {
        let s = self.shared;
        if s.setup.protocol >= 29 || s.setup.verbosity() < 1 {
            return Ok(());
        }
        s.info(text)
    }

    pub(super) fn write_done(&mut self, count: usize) -> io::Result<()> {
        let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..count {
            self.ndx_out.write(&mut *out, NDX_DONE)?;
        }
        out.flush()
    }

    /// Tell the client what happened to entry `ndx` (from protocol 29,
    /// when it matters): it counts and prints it.
    pub(super) fn send_item(&mut self, ndx: usize, iflags: u16) -> io::Result<()> {
        self.send_item_named(ndx, iflags, None)
    }

    /// [`Generator::send_item`] with the name upstream's item carries (a
    /// hard link's leader): such an item always goes out.
    pub(super) fn send_item_named(&mut self, ndx: usize, iflags: u16, xname: Option<&[u8]>) -> io::Result<()> {
        let protocol = self.shared.setup.protocol;
        let list = self.shared.lists.find(ndx as i32);
        let entry = list.as_ref().and_then(|l| l.entry_or_parent(ndx));
        let iflags = match entry {
            Some(e) => self.with_meta_flags(e, iflags),
            None => iflags,
        };
        if protocol < 29 || !(significant(iflags) || xname.is_some_and(|x| !x.is_empty())) {
            return Ok(());
        }
        let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
        write_ndx_and_attrs(&mut *out, &mut self.ndx_out, ndx as i32, iflags, None, xname, protocol)?;
        match entry {
            Some(e) => self.xattr_request(&mut *out, e, iflags),
            None => Ok(()),
        }
    }

    /// Upstream's `full_fname` of module-relative `rel` (`"."` for the
    /// module root).
    pub(super) fn shown(&self, rel: &Path) -> Vec<u8> {
        let path = rel.as_os_str().as_bytes();
        fname_in(if path.is_empty() { b"." } else { path }, self.shared.setup.module_name)
    }

    pub(super) fn report(&mut self, text: impl AsRef<[u8]>) -> io::Result<()> {
        self.io_error |= IoError::General.bit();
        self.shared.message(MsgTag::ErrorXfer, text)
    }
}

/// The entry's name as upstream's messages print a file name.
/// `"name"`, as upstream quotes a file in messages.
pub(super) fn quoted(e: &FileEntry) -> Vec<u8> {
    cat(&[b"\"", &e.name, b"\""])
}

pub(super) fn kind_word(e: &FileEntry) -> &'static str {
    if e.is_dir() {
        "directory"
    } else {
        "file"
    }
}
