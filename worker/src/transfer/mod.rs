//! The transfer engines that run on a session thread once the protocol is
//! set up. Nothing here is async.
//!
//! - [`sender`]: the daemon sends (a client pull), built from
//!   [`options`] (what the client asked for), [`filter`] (its rules),
//!   [`walk`] (the file list from the module tree, read through
//!   [`module_root`], which confines it to the module), [`flist`] (its wire
//!   format), [`ndx`] (file indexes), [`delta`] (block sums, match search,
//!   tokens and compression), [`demux`]/[`mux_out`] (multiplexed I/O).

pub mod acls;
pub mod budget;
pub mod bwlimit;
pub mod checksum_cache;
pub mod chmod;
pub mod delta;
pub mod entry_stat;
pub mod fake_super;
pub mod files_from;
pub mod filter;
pub mod filter_merge;
pub mod flist;
pub mod flist_checksums;
pub mod glob;
pub mod incremental;
pub mod io_timeout;
pub mod log_format;
pub mod module_dir;
pub mod module_root;
pub mod options;
pub mod receive;
pub mod refuse;
pub mod remove_source;
pub mod sender;
pub mod server_filters;
pub mod size_arg;
pub mod symlinks;
pub mod walk;
pub mod walk_relative;
pub mod xattrs;
