//! The fuzz targets of oxrsyncd, written once: each `pub fn TARGET(data)`
//! feeds hostile bytes to the worker's (or shared crate's) real decoder or
//! parser, as a client would send them, and asserts the invariants that are
//! cheap to check. `fuzz_targets/` wraps each for libFuzzer; the stable
//! smoke runner (`src/bin/smoke.rs`) walks [`TARGETS`].
//!
//! A panic is a finding: harness code itself reports its own trouble (a
//! fixture it cannot set up) through [`check_environment`] instead.

mod args;
mod attrs;
mod config;
mod delta;
mod filters;
mod fixture;
mod flist;
mod handshake;
mod input;
mod streams;

pub use args::{args, option_values};
pub use attrs::{acls, xattr_request};
pub use config::{config, config_toml};
pub use delta::{sums, tokens};
pub use filters::{filter, merge};
pub use flist::flist;
pub use handshake::{handshake, proxy_header};
pub use streams::{demux, files_from, ndx};

/// One target: its name (also its corpus directory and libFuzzer binary),
/// the function, and the longest input worth trying (libFuzzer's `-max_len`).
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub max_len: usize,
}

/// Every target, in the order the runners take them (run.sh reads the
/// `target("NAME", FUNCTION, MAX_LEN)` lines).
pub const TARGETS: &[Target] = &[
    target("handshake", handshake, 16 * 1024),
    target("proxy_header", proxy_header, 512),
    target("args", args, 8 * 1024),
    target("option_values", option_values, 1024),
    target("flist", flist, 32 * 1024),
    target("sums", sums, 64 * 1024),
    target("tokens", tokens, 64 * 1024),
    target("demux", demux, 16 * 1024),
    target("ndx", ndx, 4 * 1024),
    target("filter", filter, 16 * 1024),
    target("merge", merge, 8 * 1024),
    target("xattr_request", xattr_request, 1024),
    target("acls", acls, 2 * 1024),
    target("files_from", files_from, 16 * 1024),
    target("config", config, 16 * 1024),
    target("config_toml", config_toml, 16 * 1024),
];

const fn target(name: &'static str, run: fn(&[u8]), max_len: usize) -> Target {
    Target { name, run, max_len }
}

/// Whether the file-system fixture the handshake, xattr and ACL targets
/// need could be set up (a temporary module directory, a secrets file,
/// files carrying user xattrs). Those targets do nothing without it.
pub fn check_environment() -> Result<(), String> {
    fixture::get().map(|_| ()).map_err(str::to_string)
}
