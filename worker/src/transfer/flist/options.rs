//! FlistOptions: which negotiated options change what a file list carries.

/// The negotiated settings that shape the file-list wire format. Both the
/// encoder and the decoder must be built from the same values.
#[derive(Clone, Debug, Default)]
pub struct FlistOptions {
    /// Negotiated protocol (27..=32).
    pub protocol: u32,
    /// CF_VARINT_FLIST_FLAGS ('v'): flags as a varint instead of 1/2 bytes.
    pub varint_flags: bool,
    /// CF_ID0_NAMES ('u'): the id lists end with the name of id 0.
    pub id0_names: bool,
    /// CF_SAFE_FLIST ('f'): at protocol 30, the list end may carry an
    /// io_error. Protocol >= 31 implies it.
    pub safe_flist: bool,
    /// -o / -g: uids/gids are in the entries.
    pub preserve_uid: bool,
    pub preserve_gid: bool,
    /// The *client* asked for --numeric-ids: no id lists on the wire.
    pub numeric_ids: bool,
    /// The daemon's own `numeric ids` setting (upstream numeric_ids = -1):
    /// no name lookups, but the (empty) id lists still travel so the
    /// protocol is unchanged.
    pub local_numeric_ids: bool,
    /// -l: symlink targets travel.
    pub preserve_links: bool,
    /// -D: device numbers travel.
    pub preserve_devices: bool,
    /// --specials: below protocol 31 a dummy rdev travels for fifos/sockets.
    pub preserve_specials: bool,
    /// -H: dev/ino (< 30) or leader indexes (>= 30).
    pub preserve_hard_links: bool,
    /// -c: Some(length of the whole-file checksum).
    pub checksum_len: Option<usize>,
    /// CF_INC_RECURSE: the list comes in parts; it moves names into the
    /// entries and suppresses the id lists.
    pub inc_recurse: bool,
    /// Receiving side: accept names with a leading '/' (upstream allows them
    /// only with --relative).
    pub allow_absolute: bool,
    /// Receiving side, `--delete-missing-args`: accept the mode-0 entries
    /// that stand for missing arguments.
    pub missing_entries: bool,
    /// `-U`: non-directories carry their access time.
    pub preserve_atimes: bool,
    /// `-A`: ACLs follow entries (`acls.rs`), and their named ids make
    /// both id lists travel even without `-o`/`-g`.
    pub preserve_acls: bool,
}

impl FlistOptions {
    /// Upstream's use_safe_inc_flist (compat flags exist only from 30).
    pub fn use_safe_flist(&self) -> bool {
        self.protocol >= 31 || (self.protocol >= 30 && self.safe_flist)
    }

    /// Whether the uid/gid name lists follow the end of the list (upstream:
    /// numeric_ids <= 0 && !inc_recurse, each list only with -o / -g).
    pub fn sends_id_lists(&self) -> bool {
        !self.numeric_ids && !self.inc_recurse && (self.preserve_uid || self.preserve_gid || self.preserve_acls)
    }

    /// Whether the sender looks names up at all (upstream: numeric_ids == 0).
    pub fn looks_up_names(&self) -> bool {
        !self.numeric_ids && !self.local_numeric_ids
    }

    /// After the list, at protocol 30 without the safe end-of-list form, a
    /// non-zero io_error travels as MSG_IO_ERROR, which the caller (the
    /// multiplexer owner) must send.
    pub fn io_error_needs_msg(&self, io_error: i32) -> bool {
        io_error != 0 && self.protocol >= 30 && !self.use_safe_flist()
    }
}
