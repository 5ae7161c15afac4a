//! What every transfer engine gets from its session, built once per
//! session: the module, the negotiated protocol, and the client's options
//! parsed once. The send and receive setups add only what is theirs.

use std::path::PathBuf;

use oxrsyncd_protocol::setup::{compat, Negotiated};

use crate::transfer::delta::ChecksumKind;
use crate::transfer::filter::rules::FilterList;
use crate::transfer::flist::FlistOptions;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::options::client::TransferOptions;

/// The module and the session's agreements, shared by both directions.
pub(crate) struct ModuleContext<'a> {
    /// The negotiated protocol version.
    pub protocol: u32,
    /// Compat flags, checksum, compression and seed from protocol setup.
    pub negotiated: &'a Negotiated,
    /// The client's options, parsed once for the whole session.
    pub options: &'a TransferOptions,
    /// The module's name, as messages name it.
    pub module_name: &'a str,
    /// The module's directory (with `%` variables expanded).
    pub module_root: PathBuf,
    /// The module's own filter rules: what they exclude does not exist for
    /// the client (never listed, sent, created, changed or deleted).
    pub daemon_filters: &'a FilterList,
    /// Filter rules given to the daemon itself (`-M--exclude=...`), in the
    /// wire's short form: they go before the client's.
    pub server_rules: &'a [String],
    /// `munge symlinks` in effect for the module.
    pub munge_symlinks: bool,
    /// The module is not chrooted to its path (`use chroot = no`, or a
    /// path with `/./`): upstream's `sanitize_paths`, under which received
    /// symlink targets are kept inside the module when not munged.
    pub sanitize_paths: bool,
    /// `fake super = yes`: owners, special bits, devices and symlinks live
    /// in the `user.rsync.%stat` attribute (see `fs/fake_super.rs`).
    pub fake_super: bool,
    /// `insecure links = yes`: the module's links are followed wherever
    /// they lead (see `ModuleRoot::with_insecure_links`).
    pub insecure_links: bool,
    /// The module's `name converter`: owners' names and ids go through it
    /// instead of the system's databases.
    pub name_converter: Option<&'a std::sync::Arc<crate::name_converter::NameConverter>>,
    /// The module directory, opened while the session was still
    /// privileged (see `session`); `None`: opened by path.
    pub opened_root: Option<&'a ModuleRoot>,
    /// The module's `numeric ids`: owner names are never looked up.
    pub module_numeric_ids: bool,
    /// Files are read with O_NOATIME (the module's `open noatime`, else the
    /// client's `--open-noatime`).
    pub open_noatime: bool,
    /// The module's `max verbosity`: caps the client's `-v` for what the
    /// daemon reports itself.
    pub max_verbosity: i32,
    /// The request's path arguments (`module/path`).
    pub paths: &'a [Vec<u8>],
}

impl ModuleContext<'_> {
    /// The client's `-v` level as the module lets it count.
    pub(crate) fn verbosity(&self) -> i32 {
        i32::from(self.options.verbose).min(self.max_verbosity)
    }

    /// Whether compat flag `flag` was agreed.
    pub(crate) fn has_compat(&self, flag: i32) -> bool {
        self.negotiated.compat_flags & flag != 0
    }

    /// The file list's encoding as both directions agree on it (what each
    /// side adds of its own is set by that side): the protocol, the compat
    /// flags, what the options preserve, `-c`'s digest length.
    pub(crate) fn flist_options(&self, kind: ChecksumKind) -> FlistOptions {
        let opts = self.options;
        FlistOptions {
            protocol: self.protocol,
            varint_flags: self.has_compat(compat::VARINT_FLIST_FLAGS),
            id0_names: self.has_compat(compat::ID0_NAMES),
            preserve_uid: opts.preserve_uid,
            preserve_gid: opts.preserve_gid,
            numeric_ids: opts.numeric_ids,
            preserve_links: opts.preserve_links,
            preserve_devices: opts.preserve_devices,
            preserve_specials: opts.preserve_specials,
            preserve_hard_links: opts.preserve_hard_links,
            checksum_len: opts.always_checksum.then(|| kind.digest_len()),
            safe_flist: opts.has_capability('f'),
            preserve_atimes: opts.preserve_atimes,
            ..FlistOptions::default()
        }
    }
}

#[cfg(test)]
impl<'a> ModuleContext<'a> {
    /// A module in `root` for the engines' unit tests: named `mod`, no
    /// rules of its own beyond `daemon_filters`, numeric ids, no munging.
    pub(crate) fn for_tests(
        protocol: u32,
        negotiated: &'a Negotiated,
        options: &'a TransferOptions,
        daemon_filters: &'a FilterList,
        root: &std::path::Path,
        paths: &'a [Vec<u8>],
    ) -> Self {
        ModuleContext {
            protocol,
            negotiated,
            options,
            module_name: "mod",
            module_root: root.to_path_buf(),
            daemon_filters,
            server_rules: &[],
            munge_symlinks: false,
            sanitize_paths: false,
            fake_super: false,
            insecure_links: false,
            name_converter: None,
            opened_root: None,
            module_numeric_ids: true,
            open_noatime: false,
            max_verbosity: 1,
            paths,
        }
    }
}
