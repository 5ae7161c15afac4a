//! The generator's per-session state, and its verdict on an existing file.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::Arc;

use crate::transfer::flist::FileEntry;
use crate::transfer::receive::lists::RecvList;

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
    /// in, and whether we created them (kept whole: with incremental
    /// recursion their lists are gone by then).
    pub(super) dirs: Vec<(FileEntry, bool)>,
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
    /// The lists the generator has not released yet, oldest first; the
    /// last is the one it works in.
    pub(super) live: VecDeque<LiveList>,
    /// Incremental recursion: directories made early, while their parent's
    /// list was handled (they count as new when their own list comes).
    pub(super) early_created: HashSet<Vec<u8>>,
    /// `-H` with incremental recursion: each group met so far.
    pub(super) link_groups: HashMap<i32, LinkGroup>,
    /// `-H` with incremental recursion: requested leaders whose followers
    /// wait for them, by index, with their group.
    pub(super) pending_leaders: HashMap<usize, i32>,
    /// The index the last request was for (a leader's request makes its
    /// group wait for the file).
    pub(super) last_requested: Option<usize>,
}

/// A list the generator works in or waits to release.
pub(super) struct LiveList {
    pub(super) list: Arc<RecvList>,
    /// Files asked for and not done with yet (upstream's `in_progress`):
    /// the list is released only when none is left, since the client
    /// frees its copy then.
    pub(super) in_progress: usize,
}

/// `-H` with incremental recursion: a hard-linked group across lists.
pub(super) struct LinkGroup {
    /// The name of the group's file that is transferred (its first).
    pub(super) leader_name: Vec<u8>,
    /// Followers waiting for the leader's data, while it is on its way.
    pub(super) waiting: Option<Vec<usize>>,
}
