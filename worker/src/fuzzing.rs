//! The fuzzing facade: the one door through which `tests/fuzz` reaches the
//! worker's decoders and parsers. It exists for that crate only (hidden
//! from the docs) and adds no behaviour: it re-exports the entry points a
//! hostile client's bytes reach, so that narrowing the rest of the crate to
//! `pub(crate)` needs no change in the fuzz crate. An item listed here must
//! stay reachable from this module (keep it `pub`, or wrap it here) when
//! visibility is narrowed; nothing else in the worker is used by the fuzzers.

/// The daemon text handshake: the state machine, the blocking driver's
/// input reader, greeting, auth digests, the PROXY header, argument blocks.
pub mod handshake {
    pub use crate::handshake::args::{wants_secluded_args, ArgBlock, ArgsError, MAX_ARGS, MAX_BLOCK_BYTES};
    pub use crate::handshake::digest::AuthDigest;
    pub use crate::handshake::drive_blocking::{read_input, Clock, ReadTimeout};
    pub use crate::handshake::greeting::{negotiate_protocol, parse_client_greeting, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
    pub use crate::handshake::proxy_header::{
        parse as parse_proxy_header, read_blocking as read_proxy_header, trusted as proxy_trusted, Parsed,
    };
    pub use crate::handshake::{Handshake, Progress, SessionRequest, Want, MAX_LINE};
}

/// The client's options and what the session derives from them.
pub mod options {
    pub use crate::transfer::fs::paths::{module_relative, operator_path, sanitize_bytes};
    pub use crate::transfer::options::chmod::ChmodRules;
    pub use crate::transfer::options::client::TransferOptions;
    pub use crate::transfer::options::refuse::{first_refused, used_options};
    pub use crate::transfer::options::size_arg::parse_size_arg;
    pub use crate::transfer::receive::owners::NameMap;
    pub use crate::transfer::send::walk::relative::sanitize_keep_dots;
    pub use oxrsyncd_protocol::setup::{compat_flags_for, setup_protocol_with, Negotiated, SetupOptions};
}

/// File lists: decoder, encoder (for round trips), sorting, the receiver's
/// checks on a received list.
pub mod flist {
    pub use crate::transfer::flist::{
        f_name_cmp, sort_and_mark_duplicates, FileEntry, FlistDecoder, FlistEncoder, FlistOptions, HlinkRole, IdKind, IdNamer, SortedEntry,
        MAXPATHLEN,
    };
    pub use crate::transfer::receive::relative::{check_parents_listed, mark_content_dirs_before_30};
}

/// The delta engine: sum heads and block sums, the matcher, token streams.
pub mod delta {
    pub use crate::transfer::delta::apply::RebuildSink;
    pub use crate::transfer::delta::{
        apply_delta, block_sum, read_block_sums, read_sum_head, send_file_delta_with, weak_sum, write_block_sums, BlockSums, ChecksumKind,
        ChecksumParams, Compression, FileSum, SearchMode, SumHead, Token, TokenReader, TokenWriter,
    };
}

/// The rest of what the client sends: multiplexed frames, file indexes,
/// filter rules and merge files, `--files-from` lists, `-X`/`-A` state.
pub mod wire {
    pub use crate::transfer::filter::files_from::{read_from_client, read_from_file};
    pub use crate::transfer::filter::merge::parse_merge_text;
    pub use crate::transfer::filter::rules::{Action, DirMerge, FilterList, NoLocalRules};
    pub use crate::transfer::fs::module_root::ModuleRoot;
    pub use crate::transfer::send::acls::AclSender;
    pub use crate::transfer::send::xattrs::XattrSender;
    pub use oxrsyncd_protocol::mux::DemuxReader;
    pub use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DONE};
    pub use oxrsyncd_protocol::wire::{read_int, read_varint, write_int, write_varint, write_vstring};
}
