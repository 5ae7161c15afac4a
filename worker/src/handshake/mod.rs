//! The daemon text handshake, from our greeting to the argument block, as a
//! sans-I/O state machine.
//!
//! [`Handshake`] never touches a socket: a driver feeds it one line (or a
//! counted run of bytes) at a time and writes whatever it queued. The same
//! machine therefore serves the tokio accept path ([`drive_async`]), the
//! blocking accept thread and inetd/stdio mode ([`drive_blocking`]), and is
//! unit-tested without any I/O. Steps that may block (reverse DNS, the
//! secrets file, the lock file) are flagged by [`Handshake::next_step_may_block`]
//! so the async driver runs them off the reactor.
//!
//! Order of checks, wording of every `@ERROR:` line and of the log lines
//! follow upstream's daemon so clients and log parsers see no difference.

pub(crate) mod args;
pub(crate) mod auth;
pub(crate) mod digest;
#[cfg(feature = "async")]
pub(crate) mod drive_async;
pub(crate) mod drive_blocking;
pub(crate) mod greeting;
pub(crate) mod host_access;
pub(crate) mod idn_token;
pub(crate) mod listing;
pub(crate) mod motd;
pub(crate) mod name_pool;
pub(crate) mod proxy_header;

use std::net::IpAddr;
use std::sync::Arc;

use oxrsyncd_shared::config::Config;
use tracing::info;

use self::args::ArgBlock;
use self::auth::{AccessOverride, AuthPolicy};
use self::digest::AuthDigest;
use self::greeting::{negotiate_protocol, parse_client_greeting, server_greeting};
use self::host_access::{allow_access, HostAcl, PeerName};
use crate::module_lock::{self, ClaimError, ModuleSlot};
use crate::telemetry::ConnectionRecord;
use oxrsyncd_shared::scoreboard::Refusal;

/// Longest handshake text line we accept (module names, auth replies).
pub const MAX_LINE: usize = 4096;

/// Upstream's `#early_input=` limit.
const MAX_EARLY_INPUT: usize = 5120;

/// What the driver must read next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A line ending in `\n` (a trailing `\r` is dropped).
    Line,
    /// An argument entry: ends in NUL from protocol 30 (or in a secluded
    /// block), else in `\n`.
    Arg { nul_terminated: bool },
    /// Exactly this many raw bytes.
    Bytes(usize),
}

/// Where the handshake stands after an input.
#[derive(Debug)]
pub enum Progress {
    /// Write the queued output, then read this.
    Need(Want),
    /// Write the queued output, then close: a listing was sent or an
    /// `@ERROR:` ended the conversation.
    Close,
    /// The client is admitted: hand the connection to a session thread.
    Session(Box<SessionRequest>),
}

/// Everything a session thread needs to know about an admitted client.
#[derive(Debug)]
pub struct SessionRequest {
    /// The config generation that admitted the client.
    pub config: Arc<Config>,
    /// Index of the module in `config.modules`.
    pub module_index: usize,
    /// Negotiated protocol.
    pub protocol: u32,
    /// The client's options (before the lone `.`), secluded args applied.
    pub options: Vec<String>,
    /// The paths the client asked for (after the lone `.`), exactly as
    /// sent: bytes, as a path may name a file that is not UTF-8.
    pub paths: Vec<Vec<u8>>,
    /// The authenticated user, if the module requires auth.
    pub user: Option<String>,
    /// Effective `read only` after any `:ro`/`:rw` auth rule.
    pub read_only: bool,
    /// Client address and the name we log it under.
    pub peer_addr: IpAddr,
    pub peer_host: String,
    /// Bytes from `#early_input=`, for `early exec`.
    pub early_input: Option<Vec<u8>>,
    /// Held for the session's life: the module's `max connections` record.
    pub connection_slot: ModuleSlot,
    /// Who the session acts as on the file system (`uid`/`gid`; nobody for a root daemon by default).
    pub identity: Option<crate::identity::ModuleIdentity>,
    /// The first option that was not UTF-8 (as text, for the message):
    /// the session refuses such a request with a message, since option
    /// values are handled as text here.
    pub not_utf8: Option<String>,
    /// The connection's scoreboard entry (none in inetd mode).
    pub(crate) record: Option<Arc<ConnectionRecord>>,
}

impl SessionRequest {
    /// The requested paths as text, for logs and hook variables (U+FFFD
    /// stands for bytes that are not UTF-8).
    pub fn paths_text(&self) -> Vec<String> {
        self.paths.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()
    }

    /// A string parameter of this session's module with its `%VAR%`s
    /// expanded as upstream's daemon expands them for the connection.
    pub fn expand(&self, text: &str) -> String {
        let addr = self.peer_addr.to_string();
        oxrsyncd_shared::config::expand_session_vars(text, &self.vars(&addr))
    }

    /// The connection as `%VAR%`s and commands see it (`addr`: the peer's
    /// address as text).
    pub fn vars<'a>(&'a self, addr: &'a str) -> oxrsyncd_shared::config::SessionVars<'a> {
        oxrsyncd_shared::config::SessionVars {
            module_name: &self.module().name,
            host_name: &self.peer_host,
            host_addr: addr,
            user_name: self.user.as_deref(),
        }
    }

    /// The module the client selected.
    pub fn module(&self) -> &oxrsyncd_shared::config::Module {
        &self.config.modules[self.module_index]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotStarted,
    ClientGreeting,
    Command,
    EarlyInput(usize),
    AuthResponse,
    Args,
    SecludedArgs,
    Finished,
}

/// One client's handshake.
pub struct Handshake {
    /// The config this connection is served under, fixed at accept time.
    config: Arc<Config>,
    /// Client address, IPv4-mapped IPv6 folded to IPv4 like upstream.
    addr: IpAddr,
    /// Lazy reverse lookup, shared by logging and host ACLs.
    peer: PeerName,
    /// The host name used in log and error lines.
    host: String,
    state: State,
    /// Bytes to send before the next read.
    out: Vec<u8>,
    /// Negotiated protocol, once the client greeted.
    protocol: u32,
    /// The client's daemon-auth digest list.
    client_digests: Option<String>,
    /// Selected module.
    module_index: Option<usize>,
    /// The module's connection record, once claimed.
    slot: Option<ModuleSlot>,
    /// Digest and challenge sent with `AUTHREQD`.
    challenge: Option<(AuthDigest, String)>,
    user: Option<String>,
    read_only: bool,
    early_input: Option<Vec<u8>>,
    /// The module's file identity, resolved before admission.
    identity: Option<crate::identity::ModuleIdentity>,
    first_block: ArgBlock,
    secluded_block: ArgBlock,
    /// The connection's scoreboard entry: module choice, per-host limit, user.
    record: Option<Arc<ConnectionRecord>>,
    /// Why the handshake turned the client away, for the metrics.
    refusal: Option<Refusal>,
}

impl Handshake {
    /// A handshake for a client at `addr`. Nothing is queued until [`Handshake::begin`].
    pub fn new(config: Arc<Config>, addr: IpAddr) -> Self {
        let addr = canonical_addr(addr);
        let reverse = config.module_defaults.reverse_lookup;
        Handshake {
            peer: PeerName::new(addr, reverse),
            host: String::from("UNDETERMINED"),
            config,
            addr,
            state: State::NotStarted,
            out: Vec::new(),
            protocol: greeting::PROTOCOL_VERSION,
            client_digests: None,
            module_index: None,
            slot: None,
            challenge: None,
            user: None,
            read_only: true,
            early_input: None,
            identity: None,
            first_block: ArgBlock::default(),
            secluded_block: ArgBlock::default(),
            record: None,
            refusal: None,
        }
    }

    /// Report to (and limit by) this connection's scoreboard entry.
    pub(crate) fn with_record(mut self, record: Option<Arc<ConnectionRecord>>) -> Self {
        self.record = record;
        self
    }

    /// Why the client was turned away, when it was.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        self.refusal
    }

    fn refuse(&mut self, why: Refusal, text: &str) -> Progress {
        self.refusal = Some(why);
        self.error(text)
    }

    /// Log the connection and queue our greeting and the motd. May block
    /// (reverse DNS when `reverse lookup` is on).
    pub fn begin(&mut self) -> Progress {
        if self.config.module_defaults.reverse_lookup {
            self.host = self.peer_host_name();
        }
        info!(event = "connect", host = %self.host, addr = %self.addr, "connect from {} ({})", self.host, self.addr);
        self.out.extend_from_slice(server_greeting(AuthDigest::ADVERTISED).as_bytes());
        self.out
            .extend_from_slice(&motd::motd_bytes(self.config.global.motd_file.as_deref()));
        self.state = State::ClientGreeting;
        Progress::Need(Want::Line)
    }

    /// Take the bytes queued for the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The client's address as logged.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Whether the next `feed` may block on DNS or the file system.
    pub fn next_step_may_block(&self) -> bool {
        matches!(
            self.state,
            State::NotStarted | State::Command | State::EarlyInput(_) | State::AuthResponse
        )
    }

    /// The longest the client may stay silent at this step, besides the
    /// handshake deadline: once admitted (`@RSYNCD: OK` sent) the client
    /// owes its arguments, and the module's `timeout` applies to that wait
    /// as upstream's daemon applies it (0: none).
    pub fn idle_limit(&self) -> Option<std::time::Duration> {
        if !matches!(self.state, State::Args | State::SecludedArgs) {
            return None;
        }
        let index = self.module_index?;
        let secs = self.config.modules[index].settings.timeout;
        (secs > 0).then(|| std::time::Duration::from_secs(u64::from(secs)))
    }

    /// Feed one input (a line without its terminator, or the bytes asked for).
    pub fn feed(&mut self, input: &[u8]) -> Progress {
        match self.state {
            State::NotStarted => self.begin(),
            State::ClientGreeting => self.on_client_greeting(input),
            State::Command => self.on_command(input),
            State::EarlyInput(_) => {
                self.early_input = Some(input.to_vec());
                self.state = State::Command;
                Progress::Need(Want::Line)
            }
            State::AuthResponse => self.on_auth_response(input),
            State::Args => self.on_arg(input, false),
            State::SecludedArgs => self.on_arg(input, true),
            State::Finished => Progress::Close,
        }
    }

    fn error(&mut self, text: &str) -> Progress {
        self.out.extend_from_slice(format!("@ERROR: {text}\n").as_bytes());
        self.state = State::Finished;
        Progress::Close
    }

    fn peer_host_name(&mut self) -> String {
        self.peer.name().unwrap_or("UNKNOWN").to_string()
    }

    fn on_client_greeting(&mut self, line: &[u8]) -> Progress {
        let line = String::from_utf8_lossy(line);
        let parsed = parse_client_greeting(&line).and_then(|g| negotiate_protocol(&g).map(|p| (g, p)));
        match parsed {
            Ok((g, protocol)) => {
                self.protocol = protocol;
                self.client_digests = g.digests;
                self.state = State::Command;
                Progress::Need(Want::Line)
            }
            Err(e) => self.refuse(Refusal::BadHandshake, &e.to_string()),
        }
    }

    fn on_command(&mut self, line: &[u8]) -> Progress {
        let line = String::from_utf8_lossy(line).into_owned();
        if let Some(n) = line.strip_prefix("#early_input=") {
            return match n.trim().parse::<usize>() {
                Ok(len) if len > 0 && len <= MAX_EARLY_INPUT && self.early_input.is_none() => {
                    self.state = State::EarlyInput(len);
                    Progress::Need(Want::Bytes(len))
                }
                _ => self.refuse(Refusal::BadHandshake, "invalid early_input length"),
            };
        }
        if line.is_empty() || line == "#list" {
            info!("module-list request from {} ({})", self.host, self.addr);
            self.out
                .extend_from_slice(listing::module_listing(&self.config, self.protocol).as_bytes());
            self.state = State::Finished;
            return Progress::Close;
        }
        if line.starts_with('#') {
            return self.refuse(Refusal::BadHandshake, &format!("Unknown command '{line}'"));
        }
        let Some(index) = self.config.modules.iter().position(|m| m.name == line) else {
            info!(
                event = "unknown_module",
                module = %line,
                host = %self.host,
                addr = %self.addr,
                "unknown module '{}' tried from {} ({})",
                line,
                self.host,
                self.addr
            );
            return self.refuse(Refusal::BadHandshake, &format!("Unknown module '{line}'"));
        };
        self.module_index = Some(index);
        self.select_module(index)
    }

    fn select_module(&mut self, index: usize) -> Progress {
        let config = self.config.clone();
        let module = &config.modules[index];
        let settings = &module.settings;
        let name = &module.name;
        if self.host == "UNDETERMINED" && settings.reverse_lookup {
            self.host = self.peer_host_name();
        }
        let acl = HostAcl {
            allow: &settings.hosts_allow,
            deny: &settings.hosts_deny,
            forward_lookup: settings.forward_lookup,
        };
        if !allow_access(&acl, self.addr, &mut self.peer) {
            info!(
                event = "denied",
                module = %name,
                host = %self.host,
                addr = %self.addr,
                "rsync denied on module {} from {} ({})",
                name,
                self.host,
                self.addr
            );
            return if settings.list {
                let text = format!("access denied to {} from {} ({})", name, self.host, self.addr);
                self.refuse(Refusal::HostsDeny, &text)
            } else {
                self.refuse(Refusal::HostsDeny, &format!("Unknown module '{name}'"))
            };
        }
        info!("rsync allowed access on module {} from {} ({})", name, self.host, self.addr);

        match module_lock::claim(&settings.lock_file, settings.max_connections) {
            Ok(slot) => self.slot = Some(slot),
            Err(ClaimError::Full(max)) => {
                info!("max connections ({}) reached", max);
                return self.refuse(
                    Refusal::MaxConnections,
                    &format!("max connections ({max}) reached -- try again later"),
                );
            }
            Err(e @ ClaimError::LockFile { .. }) => {
                info!("{}", e);
                return self.error("failed to open lock file");
            }
        }
        if let Some(record) = &self.record {
            let per_host = settings.max_connections_per_host;
            if let Err(e) = record.choose_module(index, name, self.addr, per_host) {
                info!(
                    "max connections per host ({}) reached on module {} from {} ({})",
                    e.limit, name, self.host, self.addr
                );
                self.slot = None;
                return self.refuse(
                    Refusal::PerHostLimit,
                    &format!("max connections ({}) reached -- try again later", e.limit),
                );
            }
        }
        self.read_only = settings.read_only;

        if settings.auth_users.is_empty() {
            return self.admit();
        }
        let digest = match AuthDigest::negotiate(self.client_digests.as_deref(), self.protocol) {
            Ok(d) => d,
            Err(_) => {
                let text = format!(
                    "your client does not support one of our daemon-auth checksums: {}",
                    AuthDigest::ADVERTISED
                );
                return self.refuse(Refusal::AuthFailed, &text);
            }
        };
        if let Err(failure) = auth::check_digest_floor(&self.auth_policy(index), digest) {
            info!(
                "auth failed on module {} from {} ({}): {}",
                name, self.host, self.addr, failure.reason
            );
            return self.refuse(Refusal::AuthFailed, &format!("auth failed on module {name}"));
        }
        let challenge = digest::new_challenge(digest, &self.addr.to_string());
        self.out.extend_from_slice(format!("@RSYNCD: AUTHREQD {challenge}\n").as_bytes());
        self.challenge = Some((digest, challenge));
        self.state = State::AuthResponse;
        Progress::Need(Want::Line)
    }

    fn auth_policy(&self, index: usize) -> AuthPolicy<'_> {
        let s = &self.config.modules[index].settings;
        AuthPolicy {
            auth_users: &s.auth_users,
            secrets_file: s.secrets_file.as_deref(),
            strict_modes: s.strict_modes,
            auth_digest_floor: s.auth_digest.as_deref(),
            running_as_root: nix::unistd::geteuid().is_root(),
        }
    }

    fn on_auth_response(&mut self, line: &[u8]) -> Progress {
        let index = self.module_index.expect("module selected before auth");
        let (digest, challenge) = self.challenge.take().expect("challenge sent before auth response");
        let response = String::from_utf8_lossy(line).into_owned();
        let outcome = auth::verify_response(&self.auth_policy(index), digest, &challenge, &response);
        let name = self.config.modules[index].name.clone();
        match outcome {
            Ok(authorized) => {
                match authorized.access {
                    AccessOverride::ReadOnly => self.read_only = true,
                    AccessOverride::ReadWrite => self.read_only = false,
                    AccessOverride::None => {}
                }
                if let Some(record) = &self.record {
                    record.set_user(&authorized.user);
                }
                self.user = Some(authorized.user);
                self.admit()
            }
            Err(failure) => {
                match &failure.user {
                    Some(user) => info!(
                        "auth failed on module {} from {} ({}) for {}: {}",
                        name, self.host, self.addr, user, failure.reason
                    ),
                    None => info!(
                        "auth failed on module {} from {} ({}): {}",
                        name, self.host, self.addr, failure.reason
                    ),
                }
                self.refuse(Refusal::AuthFailed, &format!("auth failed on module {name}"))
            }
        }
    }

    /// Last module checks, then `@RSYNCD: OK` and the argument block.
    fn admit(&mut self) -> Progress {
        let index = self.module_index.expect("module selected");
        let config = self.config.clone();
        let module = &config.modules[index];
        let Some(path) = module.settings.path.as_deref() else {
            info!("No path specified for module {}", module.name);
            return self.error("no path setting.");
        };
        // `%VAR%` in string values is expanded at use time, as upstream does.
        let addr = self.addr.to_string();
        let vars = oxrsyncd_shared::config::SessionVars {
            module_name: &module.name,
            host_name: &self.host,
            host_addr: &addr,
            user_name: self.user.as_deref(),
        };
        let path = std::path::PathBuf::from(oxrsyncd_shared::config::expand_session_vars(&path.to_string_lossy(), &vars));
        let identity = match crate::identity::resolve(
            module.settings.uid.as_deref(),
            module.settings.gid.as_deref(),
            nix::unistd::geteuid().is_root(),
        ) {
            Ok(identity) => identity,
            Err(text) => {
                info!("{} for module {}", text, module.name);
                return self.error(&text);
            }
        };
        if !path.is_dir() {
            info!("chdir {} failed", path.display());
            return self.error("chdir failed");
        }
        if let Some((link, uid)) = crate::transfer::fs::module_root::untrusted_link_in(&path) {
            info!(
                "chdir {} failed: {} is a symlink owned by uid {}",
                path.display(),
                link.display(),
                uid
            );
            return self.error("chdir failed");
        }
        let early = module.settings.early_exec.as_deref().filter(|c| !c.trim().is_empty());
        if let Some(cmd) = early.filter(|_| std::env::var_os("RSYNC_NO_XFER_EXEC").is_none()) {
            // Connection values reach the command in its environment only,
            // never in its command line (a PTR record or user name chosen by
            // the peer must not reach a shell).
            let env = crate::hooks::connection_environment(&vars, &path.to_string_lossy());
            let keep = crate::least_privilege::mask(&crate::least_privilege::kept(identity.as_ref(), false));
            if !crate::hooks::early(cmd, &env, self.early_input.as_deref().unwrap_or_default(), keep) {
                info!("early exec failed");
                return self.error("early exec failed");
            }
        }
        self.identity = identity;
        self.out.extend_from_slice(b"@RSYNCD: OK\n");
        self.state = State::Args;
        Progress::Need(Want::Arg {
            nul_terminated: self.protocol >= 30,
        })
    }

    fn on_arg(&mut self, entry: &[u8], secluded: bool) -> Progress {
        let block = if secluded {
            &mut self.secluded_block
        } else {
            &mut self.first_block
        };
        match block.push(entry, !secluded) {
            Ok(false) => Progress::Need(Want::Arg {
                nul_terminated: secluded || self.protocol >= 30,
            }),
            Ok(true) if !secluded && args::wants_secluded_args(self.first_block.options()) => {
                self.state = State::SecludedArgs;
                Progress::Need(Want::Arg { nul_terminated: true })
            }
            Ok(true) => self.finish(),
            Err(e) => {
                info!("refusing arguments from {} ({}): {}", self.host, self.addr, e);
                self.refusal = Some(Refusal::BadHandshake);
                self.state = State::Finished;
                Progress::Close
            }
        }
    }

    fn finish(&mut self) -> Progress {
        self.state = State::Finished;
        // With --secluded-args the client splits its arguments: options up
        // to a point in the first block, the rest (after an "rsync" arg0)
        // and the paths in the secluded one. Upstream's daemon parses both
        // in turn, so both count.
        let mut options = self.first_block.options().to_vec();
        if !self.secluded_block.is_empty() {
            // Before the cut only options count (at protocol 29 the client
            // prints the cut itself as "(null)", a non-option).
            options.retain(|o| o.starts_with('-'));
        }
        let paths = if self.secluded_block.is_empty() {
            self.first_block.paths().to_vec()
        } else {
            let secluded = self.secluded_block.options();
            let secluded = secluded.strip_prefix(&["rsync".to_string()][..]).unwrap_or(secluded);
            options.extend(secluded.iter().cloned());
            self.secluded_block.paths().to_vec()
        };
        let index = self.module_index.expect("module selected");
        let not_utf8 = self.first_block.not_utf8().or(self.secluded_block.not_utf8()).map(str::to_string);
        Progress::Session(Box::new(SessionRequest {
            config: self.config.clone(),
            module_index: index,
            protocol: self.protocol,
            options,
            paths,
            user: self.user.take(),
            read_only: self.read_only,
            peer_addr: self.addr,
            peer_host: self.host.clone(),
            early_input: self.early_input.take(),
            connection_slot: self.slot.take().expect("slot claimed before admission"),
            identity: self.identity.take(),
            not_utf8,
            record: self.record.clone(),
        }))
    }
}

/// IPv4-mapped IPv6 addresses are logged and matched as IPv4, as upstream does.
pub(crate) fn canonical_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests;
