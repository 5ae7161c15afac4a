//! Integration suite: the real `oxrsyncd` binary, the stock `rsync` client,
//! and stock `rsync --daemon` as the oracle. Every server binds loopback on
//! an ephemeral port; every load loop is bounded in count and time.

mod harness;

mod acls;
mod activation;
mod check_config;
mod checksum_cache;
mod containment;
mod differential;
mod fake_super;
mod fleet;
mod handshake_deadline;
mod haproxy;
mod host_dns;
mod hostile;
mod least_privilege;
mod lifecycle;
mod limits;
mod load_smoke;
mod log_styles;
mod module_settings;
mod notify;
mod pull;
mod pull_incremental;
mod push;
mod push_acls_xattrs;
mod push_compat;
mod push_incremental;
mod remote_shell;
mod systemd_units;
mod timeouts;
mod tree_changes;
mod upgrade;
