//! `%VAR%` expansion with upstream's rules: a reference is `%` followed by
//! an ASCII upper-case letter, up to the next `%`.  A variable that is not
//! set, or text that is not a valid reference (a lone `%`, `%%`, `%lower%`),
//! is passed through unchanged -- expanding an unknown variable to nothing
//! could turn `path = /home/%USER_X%` into `/home/`.  `%%` is therefore the
//! safe way to write a literal percent sign; it is kept as written (upstream
//! does not collapse it either).
//!
//! Non-string parameters are expanded when the config is read; string and
//! path parameters are stored raw and must be expanded by the code that uses
//! them, at use time, so connection-time variables (`RSYNC_USER_NAME`,
//! `RSYNC_MODULE_NAME`, ...) are available.

/// Expands `%VAR%` references in `text`, looking variables up with
/// `lookup`.
pub fn expand_vars(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let starts_ref = after.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        if starts_ref {
            if let Some(end) = after.find('%') {
                if let Some(value) = lookup(&after[..end]) {
                    out.push_str(&value);
                    rest = &after[end + 1..];
                    continue;
                }
            }
        }
        // Not a (known) reference: keep the '%' and rescan from the next
        // character, as upstream does.
        out.push('%');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// What upstream's daemon puts in its environment for a connection before
/// it reads a module's string parameters (`set_env_str`): one daemon
/// process serves many connections here, so they are looked up from this
/// instead of being set.
#[derive(Debug, Clone, Copy)]
pub struct SessionVars<'a> {
    pub module_name: &'a str,
    pub host_name: &'a str,
    pub host_addr: &'a str,
    /// The authenticated user, once there is one.
    pub user_name: Option<&'a str>,
}

/// Expands `%VAR%` references from `vars` (`RSYNC_MODULE_NAME`,
/// `RSYNC_HOST_NAME`, `RSYNC_HOST_ADDR`, `RSYNC_USER_NAME`), then the
/// process environment.
pub fn expand_session_vars(text: &str, vars: &SessionVars<'_>) -> String {
    expand_vars(text, |name| match name {
        "RSYNC_MODULE_NAME" => Some(vars.module_name.to_string()),
        "RSYNC_HOST_NAME" => Some(vars.host_name.to_string()),
        "RSYNC_HOST_ADDR" => Some(vars.host_addr.to_string()),
        "RSYNC_USER_NAME" => vars.user_name.map(str::to_string),
        _ => env_lookup(name),
    })
}

/// Expands `%VAR%` references from the process environment.
pub fn expand_env_vars(text: &str) -> String {
    expand_vars(text, env_lookup)
}

/// Looks a variable up in the environment; names that cannot be
/// environment variable names are "not set".
pub(crate) fn env_lookup(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return None;
    }
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}
