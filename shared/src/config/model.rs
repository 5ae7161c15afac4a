//! The parsed configuration model: what the supervisor builds from a config
//! file and sends to workers as JSON.  Field defaults come from the
//! parameter table ([`super::params::PARAMS`]), never from literals here.
//!
//! String and path values are stored raw: `%VAR%` references in them are
//! expanded by the code using the value, at use time (see
//! [`super::expand`]).  An empty string value is stored as `None`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fields::settings_struct;
use super::params::{params_in, Scope};
use super::values::{parse_value, RawValue};

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOrigin {
    /// Read from this file (used in messages and to reload).
    File(PathBuf),
    /// Built in (`Config::embedded_default`), for running without a file.
    Embedded,
}

impl ConfigOrigin {
    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigOrigin::File(p) => Some(p),
            ConfigOrigin::Embedded => None,
        }
    }
}

/// One parameter that a config set explicitly (in a file or by
/// `--dparam`), so `--check-config` can tell the operator which of them are
/// accepted but not yet enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplicitSetting {
    /// `None` for the global section, else the module name.
    pub module: Option<String>,
    /// Canonical parameter name.
    pub param: String,
    /// Where it was set: `file:line` or `--dparam`.
    pub source: String,
}

/// A complete parsed configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Where it came from (for messages and reload).
    pub origin: ConfigOrigin,
    /// Daemon-wide settings.
    pub global: GlobalSettings,
    /// Module-parameter values set in the global section: the defaults every
    /// module starts from.  Their `log file`, `syslog facility` and
    /// `syslog tag` are also the daemon's own log settings (as upstream).
    pub module_defaults: ModuleSettings,
    /// Modules in file order (a repeated `[name]` section merges into the
    /// earlier one, as upstream does).
    pub modules: Vec<Module>,
    /// Non-fatal findings (e.g. a global-only parameter inside a module
    /// section, ignored as upstream does), each with `file:line`.
    pub warnings: Vec<String>,
    /// Parameters set explicitly, in the order they were (last) set.
    pub explicitly_set: Vec<ExplicitSetting>,
}

/// One `[module]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Module {
    /// The name clients ask for (whitespace runs collapsed to one space).
    pub name: String,
    /// Its effective settings (module defaults plus its own).
    pub settings: ModuleSettings,
}

impl Config {
    /// The module clients call `name`: exact, case-sensitive match, as
    /// upstream's module lookup.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// Whether two configs have the same effective settings (ignoring
    /// origin, warnings and where parameters were set) -- e.g. to tell
    /// whether a reload changed anything.
    pub fn same_settings(&self, other: &Config) -> bool {
        self.global == other.global && self.module_defaults == other.module_defaults && self.modules == other.modules
    }

    /// The daemon's own log file (`log file` of the global section).
    pub fn daemon_log_file(&self) -> Option<&Path> {
        self.module_defaults.log_file.as_deref()
    }

    /// The daemon's own syslog facility.
    pub fn daemon_syslog_facility(&self) -> &str {
        &self.module_defaults.syslog_facility
    }

    /// The daemon's own syslog tag.
    pub fn daemon_syslog_tag(&self) -> &str {
        &self.module_defaults.syslog_tag
    }
}

/// Fills `blank` with the table defaults of one scope.
fn apply_table_defaults(scope: Scope, mut set: impl FnMut(&str, super::values::Value)) {
    for def in params_in(scope) {
        if let Some(text) = def.default {
            // Table defaults are valid by construction (tested).
            if let Ok(v) = parse_value(def.kind, RawValue::Text(text.to_string())) {
                set(def.name, v);
            }
        }
    }
}

settings_struct! {
    /// Daemon-wide settings (global-only parameters).
    pub struct GlobalSettings {
        /// Address to listen on; unset = all addresses.
        "address" => address: Option<String>,
        /// Directory to chroot the whole daemon into (not yet enforced).
        "daemon chroot" => daemon_chroot: Option<String>,
        /// Group the daemon switches to (not yet enforced).
        "daemon gid" => daemon_gid: Option<String>,
        /// User the daemon switches to (not yet enforced).
        "daemon uid" => daemon_uid: Option<String>,
        /// File whose contents greet clients before the module list.
        "motd file" => motd_file: Option<PathBuf>,
        /// Where the daemon writes its process id.
        "pid file" => pid_file: Option<PathBuf>,
        /// Peers whose PROXY-protocol header is believed (a `hosts allow` list).
        "proxy protocol hosts" => proxy_protocol_hosts: Option<String>,
        /// setsockopt() settings for accepted sockets, upstream syntax.
        "socket options" => socket_options: Option<String>,
        /// listen(2) backlog.
        "listen backlog" => listen_backlog: u32,
        /// TCP port (a configured 0 means the default, 873, as upstream).
        "port" => port: u16,
        /// Expect a PROXY-protocol header before the greeting.
        "proxy protocol" => proxy_protocol: bool,
        /// Number of worker processes; unset = number of CPUs.
        "workers" => workers: Option<usize>,
        /// How long a graceful stop waits for sessions to finish.
        "drain timeout" => drain_timeout: Duration,
        /// Time a client gets to complete the greeting/auth handshake.
        "handshake timeout" => handshake_timeout: Duration,
        /// Accept connections with the async listener (else blocking accept).
        "use async listener" => use_async_listener: bool,
        /// Async runtime threads per worker; unset = min(CPUs, 8).
        "worker threads" => worker_threads: Option<usize>,
        /// Daemon-wide cap on concurrent sessions (0 = unlimited).
        "max sessions" => max_sessions: u32,
        /// Each worker's accept permit pool.
        "max sessions per worker" => max_sessions_per_worker: u32,
        /// Daemon-wide cap on each session's sending rate in KiB/s (0 =
        /// none); `--bwlimit` on the command line, as upstream's daemon.
        "bwlimit" => bwlimit: u32,
        /// Most `-c` whole-file digests each worker remembers for its
        /// later sessions (0: none kept).
        "checksum cache entries" => checksum_cache_entries: u32,
        /// Where the supervisor serves `/metrics` (`host:port`); unset = off.
        "metrics address" => metrics_address: Option<String>,
        /// Connections from one client address (an IPv6 client's /64)
        /// across all workers and modules (0 = unlimited).
        "max sessions per host" => max_sessions_per_host: u32,
        /// Unfinished handshakes from one client address: the pre-auth
        /// budget (0 = unlimited).
        "max handshakes per host" => max_handshakes_per_host: u32,
    }
}

impl Default for GlobalSettings {
    fn default() -> Self {
        let mut s = GlobalSettings::blank();
        apply_table_defaults(Scope::Global, |name, v| {
            s.set_param(name, v);
        });
        s
    }
}

settings_struct! {
    /// Per-module settings (module parameters).
    pub struct ModuleSettings {
        /// Digest(s) allowed for the auth challenge (upstream syntax).
        "auth digest" => auth_digest: Option<String>,
        /// Authorization rules (`user`, `@group`, optional `:ro`/`:rw`/`:deny`);
        /// empty = anonymous access.
        "auth users" => auth_users: Vec<String>,
        /// Filename charset (not yet enforced).
        "charset" => charset: Option<String>,
        /// Shown next to the module name in listings.
        "comment" => comment: String,
        /// Patterns not to compress; `None` = none (default: upstream's list).
        "dont compress" => dont_compress: Option<String>,
        /// Command run before the transfer request is read (not yet enforced).
        "early exec" => early_exec: Option<String>,
        /// Daemon exclude patterns.
        "exclude" => exclude: Option<String>,
        /// File of daemon exclude patterns.
        "exclude from" => exclude_from: Option<PathBuf>,
        /// Daemon filter rules.
        "filter" => filter: Option<String>,
        /// Group(s) transfers run as.
        "gid" => gid: Option<String>,
        /// Client patterns allowed in; empty = everyone not denied.
        "hosts allow" => hosts_allow: Vec<String>,
        /// Client patterns refused.
        "hosts deny" => hosts_deny: Vec<String>,
        /// Daemon include patterns.
        "include" => include: Option<String>,
        /// File of daemon include patterns.
        "include from" => include_from: Option<PathBuf>,
        /// chmod applied to incoming files (not yet enforced).
        "incoming chmod" => incoming_chmod: Option<String>,
        /// File used to count connections for `max connections`.
        "lock file" => lock_file: PathBuf,
        /// Log file; unset = syslog.
        "log file" => log_file: Option<PathBuf>,
        /// Per-file transfer log line format.
        "log format" => log_format: String,
        /// Upstream lets a module section rename its module (not yet enforced).
        "name" => name: Option<String>,
        /// Program mapping names to ids (not yet enforced).
        "name converter" => name_converter: Option<String>,
        /// chmod applied to outgoing files.
        "outgoing chmod" => outgoing_chmod: Option<String>,
        /// Command run after a transfer (not yet enforced).
        "post-xfer exec" => post_xfer_exec: Option<String>,
        /// Command run before a transfer (not yet enforced).
        "pre-xfer exec" => pre_xfer_exec: Option<String>,
        /// Client options refused.
        "refuse options" => refuse_options: Option<String>,
        /// user:password file for `auth users`.
        "secrets file" => secrets_file: Option<PathBuf>,
        /// Syslog tag.
        "syslog tag" => syslog_tag: String,
        /// User transfers run as.
        "uid" => uid: Option<String>,
        /// The exported directory (raw; may contain `%VAR%`).
        "path" => path: Option<PathBuf>,
        /// Directory for temporary files (not yet enforced).
        "temp dir" => temp_dir: Option<PathBuf>,
        /// Concurrent connections allowed (0 = unlimited).
        "max connections" => max_connections: u32,
        /// This module's sessions from one client address, across all
        /// workers (0 = unlimited).
        "max connections per host" => max_connections_per_host: u32,
        /// Highest verbosity a client may request.
        "max verbosity" => max_verbosity: i32,
        /// I/O timeout in seconds (0 = none).
        "timeout" => timeout: u32,
        /// Syslog facility name (or number).
        "syslog facility" => syslog_facility: String,
        /// Store privileged attributes in xattrs (not yet enforced).
        "fake super" => fake_super: bool,
        /// Verify reverse-DNS names by forward lookup.
        "forward lookup" => forward_lookup: bool,
        /// Ignore I/O errors when deleting (not yet enforced).
        "ignore errors" => ignore_errors: bool,
        /// Skip unreadable files.
        "ignore nonreadable" => ignore_nonreadable: bool,
        /// Allow symlinks pointing outside the module (not yet enforced).
        "insecure links" => insecure_links: bool,
        /// Whether the module appears in listings.
        "list" => list: bool,
        /// Refuse uploads.
        "read only" => read_only: bool,
        /// Look up client hostnames.
        "reverse lookup" => reverse_lookup: bool,
        /// Require the secrets file to be private.
        "strict modes" => strict_modes: bool,
        /// Log each transferred file.
        "transfer logging" => transfer_logging: bool,
        /// Refuse downloads.
        "write only" => write_only: bool,
        /// Munge symlinks; unset = decided from `use chroot` (not yet enforced).
        "munge symlinks" => munge_symlinks: Option<bool>,
        /// Don't map user/group names; unset = from `use chroot`.
        "numeric ids" => numeric_ids: Option<bool>,
        /// Open files with O_NOATIME (not yet enforced).
        "open noatime" => open_noatime: Option<bool>,
        /// chroot into the module path; unset = try, fall back (not yet enforced).
        "use chroot" => use_chroot: Option<bool>,
        /// MiB one session may hold in what the client makes the daemon
        /// keep (its file list, names, filter rules, block sums).
        "max session memory" => max_session_memory: u32,
        /// `text` (upstream's lines) or `json` (one object per line); the
        /// global value is the daemon log's, a module's its `log file`'s.
        "log style" => log_style: String,
    }
}

impl Default for ModuleSettings {
    fn default() -> Self {
        let mut s = ModuleSettings::blank();
        apply_table_defaults(Scope::Module, |name, v| {
            s.set_param(name, v);
        });
        s
    }
}
