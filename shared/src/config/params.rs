//! The parameter table: every parameter oxrsyncd accepts in a config file
//! (all of upstream rsyncd.conf plus oxrsyncd's own daemon parameters), with
//! its scope, value kind, built-in default and whether oxrsyncd enforces it
//! yet.  Both parsers and `--dparam` look names up here, so the formats
//! cannot disagree about what exists.

/// Where a parameter may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Daemon-wide; only meaningful in the global section (in a module
    /// section it is ignored with a warning, as upstream does).
    Global,
    /// Per module; when set in the global section it becomes the default for
    /// the modules that follow.
    Module,
}

/// How a list-valued parameter is split into entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStyle {
    /// Split on any run of whitespace and/or commas (`hosts allow`).
    WhitespaceComma,
    /// Upstream's `conf_strtok`: like [`ListStyle::WhitespaceComma`], but a
    /// value whose first non-blank character is a comma is split on commas
    /// only, so entries may contain spaces (`auth users`).
    ConfStrtok,
}

/// The syntax a parameter's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text, stored verbatim (`%VAR%` references are kept and expanded
    /// at use time, as upstream does).
    String,
    /// A path: free text with trailing slashes removed (upstream `P_PATH`).
    Path,
    /// A decimal integer in `min..=max`.  When `unset_ok`, an empty value
    /// means "not set" (the daemon then picks a value at run time).
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
        /// Whether an empty value is accepted and means "unset".
        unset_ok: bool,
    },
    /// yes/no, true/false, 1/0 (case-insensitive, as upstream).
    Bool,
    /// Like [`Kind::Bool`] plus `unset`/`-1`, for parameters whose unset
    /// state means "decide from other settings" (upstream `P_BOOL3`).
    Bool3,
    /// One of a fixed set of names (case-insensitive); for `syslog facility`
    /// a positive number is also accepted, as upstream does.
    Enum(&'static [&'static str]),
    /// A list of entries split as described by the [`ListStyle`].
    List(ListStyle),
}

/// One row of the parameter table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamDef {
    /// The canonical spelling, used in reports and error messages.
    pub name: &'static str,
    /// Other accepted spellings (besides the separator/case variants that
    /// [`normalize_name`] already folds together).
    pub aliases: &'static [&'static str],
    /// Global-only or module parameter.
    pub scope: Scope,
    /// Value syntax.
    pub kind: Kind,
    /// Built-in default in rsyncd.conf syntax; `None` means unset.
    pub default: Option<&'static str>,
    /// Whether oxrsyncd acts on this parameter today.  Parameters that are
    /// accepted but not enforced are listed by `--check-config` when a
    /// config sets them, so an operator is never silently misled.
    pub enforced: bool,
}

/// Syslog facility names upstream accepts.
pub const SYSLOG_FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "security", "syslog", "user", "uucp", "local0", "local1",
    "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Upstream's built-in `dont compress` list (the default skip-compress
/// suffixes documented in rsync(1)).
pub const DEFAULT_DONT_COMPRESS: &str = "*.3g2 *.3gp *.7z *.aac *.ace *.apk *.avi *.bz2 *.deb \
*.dmg *.ear *.f4v *.flac *.flv *.gpg *.gz *.iso *.jar *.jpeg *.jpg *.lrz *.lz *.lz4 *.lzma *.lzo \
*.m1a *.m1v *.m2a *.m2ts *.m2v *.m4a *.m4b *.m4p *.m4r *.m4v *.mka *.mkv *.mov *.mp1 *.mp2 *.mp3 \
*.mp4 *.mpa *.mpeg *.mpg *.mpv *.mts *.odb *.odf *.odg *.odi *.odm *.odp *.ods *.odt *.oga *.ogg \
*.ogm *.ogv *.ogx *.opus *.otg *.oth *.otp *.ots *.ott *.oxt *.png *.qt *.rar *.rpm *.rz *.rzip \
*.spx *.squashfs *.sxc *.sxd *.sxg *.sxm *.sxw *.sz *.tbz *.tbz2 *.tgz *.tlz *.ts *.txz *.tzo \
*.vob *.war *.webm *.webp *.xz *.z *.zip *.zst";

/// Upstream's default `log format`.
pub const DEFAULT_LOG_FORMAT: &str = "%o %h [%a] %m (%u) %f %l";

/// Upstream's default `lock file`.
pub const DEFAULT_LOCK_FILE: &str = "/var/run/rsyncd.lock";

const U32_MAX: i64 = u32::MAX as i64;
const I32_MIN: i64 = i32::MIN as i64;
const I32_MAX: i64 = i32::MAX as i64;

const fn int(min: i64, max: i64) -> Kind {
    Kind::Integer { min, max, unset_ok: false }
}

const fn opt_int(min: i64, max: i64) -> Kind {
    Kind::Integer { min, max, unset_ok: true }
}

const fn p(
    name: &'static str,
    aliases: &'static [&'static str],
    scope: Scope,
    kind: Kind,
    default: Option<&'static str>,
    enforced: bool,
) -> ParamDef {
    ParamDef {
        name,
        aliases,
        scope,
        kind,
        default,
        enforced,
    }
}

use Kind::{Bool, Bool3, Path, String as Str};
use Scope::{Global as G, Module as M};

/// Every parameter, globals first, then module parameters, each group in
/// the order reports print them.
pub static PARAMS: &[ParamDef] = &[
    // ---- upstream global parameters ----
    p("address", &["bind address"], G, Str, None, true),
    p("daemon chroot", &[], G, Str, None, false),
    p("daemon gid", &[], G, Str, None, false),
    p("daemon uid", &[], G, Str, None, false),
    p("motd file", &[], G, Str, None, true),
    p("pid file", &[], G, Str, None, true),
    p("proxy protocol hosts", &[], G, Str, None, true),
    p("socket options", &[], G, Str, None, true),
    p("listen backlog", &[], G, int(0, I32_MAX), Some("5"), true),
    p("port", &["rsync port"], G, int(0, 65535), Some("873"), true),
    p("proxy protocol", &[], G, Bool, Some("no"), true),
    // ---- oxrsyncd global parameters ----
    p("workers", &[], G, opt_int(1, U32_MAX), None, true),
    p("drain timeout", &[], G, int(0, U32_MAX), Some("30"), true),
    p("handshake timeout", &[], G, int(0, U32_MAX), Some("10"), true),
    p("use async listener", &[], G, Bool, Some("yes"), true),
    p("worker threads", &[], G, opt_int(1, U32_MAX), None, true),
    p("max sessions", &[], G, int(0, U32_MAX), Some("0"), true),
    p("max sessions per worker", &[], G, int(1, U32_MAX), Some("16384"), true),
    p("bwlimit", &[], G, int(0, U32_MAX), Some("0"), true),
    p("checksum cache entries", &[], G, int(0, U32_MAX), Some("1000000"), true),
    p("metrics address", &[], G, Str, None, true),
    p("max sessions per host", &[], G, int(0, U32_MAX), Some("0"), true),
    p("max handshakes per host", &[], G, int(0, U32_MAX), Some("64"), true),
    // ---- upstream module parameters ----
    p("auth digest", &[], M, Str, None, true),
    p("auth users", &[], M, Kind::List(ListStyle::ConfStrtok), None, true),
    p("charset", &[], M, Str, None, false),
    p("comment", &[], M, Str, None, true),
    p("dont compress", &[], M, Str, Some(DEFAULT_DONT_COMPRESS), true),
    p("early exec", &[], M, Str, None, true),
    p("exclude", &[], M, Str, None, true),
    p("exclude from", &[], M, Str, None, true),
    p("filter", &[], M, Str, None, true),
    p("gid", &[], M, Str, None, true),
    p("hosts allow", &[], M, Kind::List(ListStyle::WhitespaceComma), None, true),
    p("hosts deny", &[], M, Kind::List(ListStyle::WhitespaceComma), None, true),
    p("include", &[], M, Str, None, true),
    p("include from", &[], M, Str, None, true),
    p("incoming chmod", &[], M, Str, None, true),
    p("lock file", &[], M, Str, Some(DEFAULT_LOCK_FILE), true),
    p("log file", &[], M, Str, None, true),
    p("log format", &[], M, Str, Some(DEFAULT_LOG_FORMAT), true),
    p("name", &[], M, Str, None, false),
    p("name converter", &[], M, Str, None, true),
    p("outgoing chmod", &[], M, Str, None, true),
    p("post-xfer exec", &[], M, Str, None, true),
    p("pre-xfer exec", &[], M, Str, None, true),
    p("refuse options", &[], M, Str, None, true),
    p("secrets file", &[], M, Str, None, true),
    p("syslog tag", &[], M, Str, Some("rsyncd"), false),
    p("uid", &[], M, Str, None, true),
    p("path", &[], M, Path, None, true),
    p("temp dir", &[], M, Path, None, true),
    p("max connections", &[], M, int(0, U32_MAX), Some("0"), true),
    p("max connections per host", &[], M, int(0, U32_MAX), Some("0"), true),
    p("max verbosity", &[], M, int(I32_MIN, I32_MAX), Some("1"), true),
    p("timeout", &[], M, int(0, U32_MAX), Some("0"), true),
    p("syslog facility", &[], M, Kind::Enum(SYSLOG_FACILITIES), Some("daemon"), false),
    p("fake super", &[], M, Bool, Some("no"), true),
    p("forward lookup", &[], M, Bool, Some("yes"), true),
    p("ignore errors", &[], M, Bool, Some("no"), false),
    p("ignore nonreadable", &[], M, Bool, Some("no"), true),
    p("insecure links", &[], M, Bool, Some("no"), true),
    p("list", &[], M, Bool, Some("yes"), true),
    p("read only", &[], M, Bool, Some("yes"), true),
    p("reverse lookup", &[], M, Bool, Some("yes"), true),
    p("strict modes", &[], M, Bool, Some("yes"), true),
    p("transfer logging", &[], M, Bool, Some("no"), true),
    p("write only", &[], M, Bool, Some("no"), true),
    p("munge symlinks", &[], M, Bool3, Some("unset"), true),
    p("numeric ids", &[], M, Bool3, Some("unset"), true),
    p("open noatime", &[], M, Bool3, Some("unset"), true),
    p("use chroot", &[], M, Bool3, Some("unset"), false),
    // ---- oxrsyncd module parameters ----
    p("max session memory", &[], M, int(1, 1 << 20), Some("128"), true),
    p("log style", &[], M, Kind::Enum(&["text", "json"]), Some("text"), true),
];

/// Folds a parameter name to its lookup key: case-insensitive, with
/// whitespace, `-` and `_` ignored, so `Read-Only`, `read_only`,
/// `read only` (and upstream's whitespace-insensitive `readonly`) are the
/// same key.
pub fn normalize_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Finds a parameter by any accepted spelling.  A name starting with `-`
/// is never a parameter (upstream rejects those too).
pub fn lookup(name: &str) -> Option<&'static ParamDef> {
    let name = name.trim();
    if name.is_empty() || name.starts_with('-') {
        return None;
    }
    let key = normalize_name(name);
    PARAMS
        .iter()
        .find(|def| normalize_name(def.name) == key || def.aliases.iter().any(|a| normalize_name(a) == key))
}

/// Parameters of one scope, in table order.
pub fn params_in(scope: Scope) -> impl Iterator<Item = &'static ParamDef> {
    PARAMS.iter().filter(move |d| d.scope == scope)
}
