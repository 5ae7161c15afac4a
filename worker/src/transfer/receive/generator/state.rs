//! The generator's per-session state, and its verdict on an existing file.

use std::io::Write;

use crate::transfer::receive::delete::Deleter;
use crate::transfer::receive::fuzzy::Candidate;
use crate::transfer::receive::shared::Shared;
use oxrsyncd_protocol::ndx::NdxCodec;

/// How the generator compares an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Same content by the chosen check: nothing to send.
    UpToDate,
    /// Send it (the flags say why, for `-i`).
    Transfer(u16),
    /// Left alone on purpose (`--ignore-existing`, `--existing`, `-u`).
    Skip,
}

/// The generator's per-session state.
pub(super) struct Generator<'s, 'a, W: Write> {
    /// What the receiver shares with us: the list, the destination, the output.
    pub(super) shared: &'s Shared<'a, W>,
    /// Index encoding state of our requests.
    pub(super) ndx_out: NdxCodec,
    /// I/O-error bits the generator collected (exit 23 at the end).
    pub(super) io_error: i32,
    /// Directories to give their final mode and time once everything is
    /// in, and whether we created them.
    pub(super) dirs: Vec<(usize, bool)>,
    /// `--delete`: what removes extraneous files.
    pub(super) deleter: Option<Deleter<'s>>,
    /// `--fuzzy`: each directory's files, listed once when first needed
    /// (upstream lists a directory when it reaches it).
    pub(super) fuzzy_lists: std::collections::HashMap<std::path::PathBuf, Vec<Candidate>>,
    /// A directory that could not be made (upstream's `skip_dir`): what
    /// the list has below it is skipped.
    pub(super) failed_dir: Option<Vec<u8>>,
    /// `-H`: the entries linked to their group's transferred file at the
    /// end rather than requested.
    pub(super) hlink_followers: std::collections::HashSet<usize>,
    /// Files asked for again (the redo phase): their followers wait for
    /// the end.
    pub(super) redone: std::collections::HashSet<usize>,
}
