//! The module's `early exec`, `pre-xfer exec` and `post-xfer exec` commands, as
//! upstream runs them: through `/bin/sh -c`, as the daemon's user (not the
//! module's) but with no more capabilities than the module's sessions keep
//! (see `least_privilege.rs`), with the session described in `RSYNC_*` variables. A failing
//! pre-xfer command refuses the transfer and its output becomes the
//! client's error; the post-xfer command learns the session's exit status.
//! `%NAME%` in a command line is substituted as upstream 3.5 does
//! ([`expand_command`]): a connection variable is quoted for where it
//! stands, and one holding shell syntax refuses the hook.

use std::io::Read;
use std::process::{Command, Stdio};

use oxrsyncd_shared::config::SessionVars;

/// Longest output of a pre-xfer command shown to the client (upstream's
/// buffer).
const MAX_OUTPUT: u64 = 4096;

/// The connection, as every command (`early exec` included) gets it.
pub(crate) fn connection_environment(vars: &SessionVars<'_>, module_path: &str) -> Vec<(String, String)> {
    [
        ("RSYNC_MODULE_NAME", vars.module_name.to_string()),
        ("RSYNC_MODULE_PATH", module_path.to_string()),
        ("RSYNC_HOST_ADDR", vars.host_addr.to_string()),
        ("RSYNC_HOST_NAME", vars.host_name.to_string()),
        ("RSYNC_USER_NAME", vars.user_name.unwrap_or_default().to_string()),
        ("RSYNC_PID", std::process::id().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The variables a `pre-xfer exec` command gets: the connection, the
/// request as the client wrote it (`RSYNC_REQUEST`) and the arguments as
/// the daemon read them (`RSYNC_ARG0` = `rsyncd`, ...).
pub(crate) fn pre_xfer_environment(vars: &SessionVars<'_>, module_path: &str, request: String, args: Vec<String>) -> Vec<(String, String)> {
    let mut env = connection_environment(vars, module_path);
    env.push(("RSYNC_REQUEST".to_string(), request));
    env.extend(args.into_iter().enumerate().map(|(i, a)| (format!("RSYNC_ARG{i}"), a)));
    env
}

/// What upstream 3.5 refuses in a connection variable substituted into a
/// hook's command line (`shell_unsafe_value`): everything that can turn
/// the value into shell syntax in some quoting context, a nested shell's
/// included; and control characters.
const SHELL_UNSAFE: &[u8] = b"'\"`$\\;&|<>()*?[]# !~{}";

/// A connection variable holding shell syntax, named in upstream's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to run shell hook: %{0}% holds a shell metacharacter")]
pub(crate) struct UnsafeHookValue(pub(crate) String);

/// Where a command line's text stands, for quoting a substituted value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Unquoted,
    Single,
    Double,
}

/// `cmd` with its `%NAME%` variables substituted, as upstream's
/// `expand_vars` does for a shell hook: a `RSYNC_*` name takes the
/// connection's value from `env` (the request and its arguments are not
/// there), refused if it could be shell syntax and otherwise quoted for
/// where it stands; any other name takes the daemon's environment
/// verbatim; an unknown name stays as written.
pub(crate) fn expand_command(cmd: &str, env: &[(String, String)]) -> Result<String, UnsafeHookValue> {
    let connection = |name: &str| {
        let request_only = name == "RSYNC_REQUEST" || name.starts_with("RSYNC_ARG");
        env.iter().find(|(k, _)| k == name && !request_only).map(|(_, v)| v.clone())
    };
    let mut out = String::with_capacity(cmd.len());
    let mut quoting = Quoting::Unquoted;
    let mut escaped = false;
    let mut rest = cmd;
    while let Some(c) = rest.chars().next() {
        if c == '%' && rest[1..].starts_with(|n: char| n.is_ascii_uppercase()) {
            if let Some(close) = rest[1..].find('%') {
                let name = &rest[1..=close];
                let value = if name.starts_with("RSYNC_") {
                    connection(name)
                } else {
                    std::env::var(name).ok()
                };
                if let Some(value) = value {
                    if name.starts_with("RSYNC_") {
                        if value.bytes().any(|b| SHELL_UNSAFE.contains(&b) || b < 0x20 || b == 0x7f) {
                            return Err(UnsafeHookValue(name.to_string()));
                        }
                        // A safe value has no quote to escape: single-quoted
                        // unless already inside single quotes (upstream also
                        // wraps a double-quoted one, for a nested shell).
                        match quoting {
                            Quoting::Single => out.push_str(&value),
                            Quoting::Unquoted | Quoting::Double => {
                                out.push('\'');
                                out.push_str(&value);
                                out.push('\'');
                            }
                        }
                    } else {
                        out.push_str(&value);
                    }
                    rest = &rest[close + 2..];
                    continue;
                }
            }
        }
        match quoting {
            Quoting::Single if c == '\'' => quoting = Quoting::Unquoted,
            Quoting::Single => {}
            _ if escaped => escaped = false,
            _ if c == '\\' => escaped = true,
            Quoting::Double if c == '"' => quoting = Quoting::Unquoted,
            Quoting::Double => {}
            Quoting::Unquoted if c == '\'' => quoting = Quoting::Single,
            Quoting::Unquoted if c == '"' => quoting = Quoting::Double,
            Quoting::Unquoted => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// A shell command as the daemon's user: the session thread may have
/// taken the module's file-system identity, which the child must not keep.
/// It runs with at most the capabilities `keep` (a mask from
/// [`crate::least_privilege::mask`]: the module's session set) and
/// no_new_privs, whether or not the session thread has shed its own yet.
pub(crate) fn shell_command(cmd: &str, env: &[(String, String)], keep: u64) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(cmd).envs(env.iter().map(|(k, v)| (k, v)));
    // SAFETY: between fork and exec only async-signal-safe system calls
    // run: setfsuid/setfsgid back to the process's effective ids (allowed
    // without CAP_SETUID: they equal the effective ids), then prctl and
    // capset without allocating (confine_child).
    unsafe {
        c.pre_exec(move || {
            libc::setfsuid(libc::geteuid());
            libc::setfsgid(libc::getegid());
            crate::least_privilege::confine_child(keep)
        });
    }
    c
}

/// Run `pre-xfer exec`; `Err` is the message for the client (upstream's
/// "pre-xfer exec returned failure (STATUS)" and the command's output).
pub(crate) fn pre_xfer(cmd: &str, env: &[(String, String)], keep: u64) -> Result<(), String> {
    let cmd = expand_command(cmd, env).map_err(|e| {
        tracing::info!("{e}");
        format!("{e}\n")
    })?;
    let child = shell_command(&cmd, env, keep)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Err(format!("pre-xfer exec returned failure (-1): {e}\n")),
    };
    let mut output = String::new();
    if let Some(out) = child.stdout.take() {
        let mut buf = Vec::new();
        let _ = out.take(MAX_OUTPUT).read_to_end(&mut buf);
        output = String::from_utf8_lossy(&buf).replace("\r\n", "\n");
    }
    let status = child.wait().map_err(|e| format!("pre-xfer exec returned failure (-1): {e}\n"))?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let raw = status.into_raw();
    let sep = if output.is_empty() { "" } else { ":" };
    Err(format!("pre-xfer exec returned failure ({raw}){sep}\n{output}"))
}

/// Run `early exec` before the client is admitted, with the client's
/// `--early-input` bytes on its standard input, as upstream's daemon does;
/// whether it succeeded.
pub(crate) fn early(cmd: &str, env: &[(String, String)], input: &[u8], keep: u64) -> bool {
    use std::io::Write;
    let cmd = match expand_command(cmd, env) {
        Ok(cmd) => cmd,
        Err(e) => {
            tracing::info!("{e}");
            return false;
        }
    };
    let child = shell_command(&cmd, env, keep)
        .env("RSYNC_REQUEST", "(NONE)")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is no failure.
        let _ = stdin.write_all(input);
    }
    child.wait().is_ok_and(|s| s.success())
}

/// Run `post-xfer exec` with the session's exit code.
pub(crate) fn post_xfer(cmd: &str, env: &[(String, String)], exit_code: i32, keep: u64) {
    let cmd = match expand_command(cmd, env) {
        Ok(cmd) => cmd,
        Err(e) => return tracing::info!("{e}"),
    };
    let mut c = shell_command(&cmd, env, keep);
    c.env("RSYNC_EXIT_STATUS", exit_code.to_string())
        .env("RSYNC_RAW_STATUS", (exit_code << 8).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Err(e) = c.status() {
        tracing::info!("post-xfer exec failed to run: {}", e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(user: &str) -> Vec<(String, String)> {
        vec![
            ("RSYNC_USER_NAME".to_string(), user.to_string()),
            ("RSYNC_MODULE_NAME".to_string(), "mod".to_string()),
            ("RSYNC_REQUEST".to_string(), "mod/x".to_string()),
        ]
    }

    #[test]
    fn connection_variables_are_quoted_for_where_they_stand() {
        let e = env("alice.b-1_x");
        assert_eq!(expand_command("echo %RSYNC_USER_NAME% >o", &e).unwrap(), "echo 'alice.b-1_x' >o");
        assert_eq!(expand_command("echo '%RSYNC_USER_NAME%'", &e).unwrap(), "echo 'alice.b-1_x'");
        assert_eq!(
            expand_command("echo \"it's %RSYNC_MODULE_NAME%\"", &e).unwrap(),
            "echo \"it's 'mod'\""
        );
        assert_eq!(
            expand_command("echo %RSYNC_REQUEST% %NOSUCH% 100%", &e).unwrap(),
            "echo %RSYNC_REQUEST% %NOSUCH% 100%"
        );
    }

    #[test]
    fn shell_syntax_in_a_value_is_refused_in_every_context() {
        let e = env("$(touch${IFS}x)x");
        for cmd in [
            "echo %RSYNC_USER_NAME%",
            "echo '%RSYNC_USER_NAME%'",
            "echo \"%RSYNC_USER_NAME%\"",
            "sh -c 'echo %RSYNC_USER_NAME%'",
        ] {
            assert_eq!(expand_command(cmd, &e), Err(UnsafeHookValue("RSYNC_USER_NAME".into())), "{cmd}");
        }
        for bad in ["a b", "a!b", "~a", "a{b}", "a\nb"] {
            assert!(expand_command("x %RSYNC_USER_NAME%", &env(bad)).is_err(), "{bad:?}");
        }
        assert!(
            expand_command("no variables here", &env("$bad")).is_ok(),
            "an unused value is not looked at"
        );
    }
}
