//! The supervisor's exit statuses, one meaning each, for units and scripts.

/// Clean stop (SIGTERM/SIGINT drained, or `--check-config` found the config valid).
pub const OK: i32 = 0;
/// Bad config or command line, or a startup failure (bind, fork): fix and start again.
pub const CONFIG_OR_STARTUP: i32 = 1;
/// Workers kept dying at start: the crash budget ran out.
pub const CRASH_BUDGET: i32 = 3;
