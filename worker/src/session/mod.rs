//! One admitted client's session, on a plain thread with blocking I/O.
//!
//! The handshake (async or not) ends with a [`SessionRequest`]; from here
//! on nothing is async. A session runs the module's exec hooks around
//! the transfer under the session's memory budget ([`run`]), then:
//!
//! - `preamble`: the options parsed once, protocol setup, and every
//!   refusal checked before a transfer starts;
//! - `pull` / `push`: the module prepared (`module`: identity,
//!   privileges, rules, the [`ModuleContext`] both engines get), the
//!   sender or the receiver run, and its outcome made an exit code;
//! - `refusals`: why a module turns a transfer away, and an orderly
//!   close with upstream's error frames (on the `connection`).
//!
//! [`ModuleContext`]: crate::transfer::context::ModuleContext

mod connection;
mod hook_env;
mod module;
mod preamble;
mod pull;
mod push;
mod refusals;
mod stream;
#[cfg(test)]
mod tests;

use std::io::{BufRead, Write};

pub(crate) use self::stream::SessionStream;
use crate::handshake::SessionRequest;
use crate::hooks;

/// Run a session to its end. `reader` may hold bytes already read past the
/// argument block; `writer` is the same connection. Returns the exit code
/// the client was given (0 on success).
pub(crate) fn run<R: BufRead, W: Write + Send>(request: SessionRequest, reader: &mut R, writer: &mut W, stream: &dyn SessionStream) -> i32 {
    let settings = &request.module().settings;
    let module_path = settings
        .path
        .as_deref()
        .map(|p| request.expand(&p.to_string_lossy()))
        .unwrap_or_default();
    let (pre, post) = (settings.pre_xfer_exec.clone(), settings.post_xfer_exec.clone());
    let pre_env = pre.as_ref().map(|_| hook_env::pre_xfer(&request, &module_path)).unwrap_or_default();
    let post_env = post
        .as_ref()
        .map(|_| hook_env::post_xfer(&request, &module_path))
        .unwrap_or_default();
    // A module with a log file of its own gets the session's lines there,
    // opened as the daemon's user (upstream reopens its log for it).
    let previous_log = module_log(&request).map(|log| oxrsyncd_shared::logging::route_this_thread(Some(log)));
    // JSON lines name the session's module and client.
    let previous_context =
        oxrsyncd_shared::logging::set_this_threads_context(Some(std::sync::Arc::new(oxrsyncd_shared::logging::LogContext {
            module: Some(request.module().name.clone()),
            host: Some(request.peer_host.clone()),
            addr: Some(request.peer_addr.to_string()),
        })));
    // What the client makes this session hold is charged to one budget,
    // for this thread and the threads it starts (see transfer/budget.rs).
    let mib = usize::try_from(settings.max_session_memory).unwrap_or(usize::MAX >> 20);
    let previous = crate::transfer::limits::budget::install(Some(crate::transfer::limits::budget::Budget::new(mib << 20)));
    // pre-xfer exec runs before anything else, as the daemon's user with
    // the module's capability set.
    let keep = crate::least_privilege::mask(&crate::least_privilege::kept(request.identity.as_ref(), false));
    let refused_by_pre = pre.as_deref().and_then(|cmd| hooks::pre_xfer(cmd, &pre_env, keep).err());
    let code = preamble::run_session(&request, reader, writer, stream, refused_by_pre);
    if let Some(cmd) = post.as_deref() {
        hooks::post_xfer(cmd, &post_env, code, keep);
    }
    crate::transfer::limits::budget::install(previous);
    if let Some(previous) = previous_log {
        oxrsyncd_shared::logging::route_this_thread(previous);
    }
    oxrsyncd_shared::logging::set_this_threads_context(previous_context);
    code
}

/// The module's own `log file`, when it has one other than the daemon's,
/// opened; a file that cannot be opened leaves the lines in the daemon's
/// log (with a line saying why).
fn module_log(request: &SessionRequest) -> Option<std::sync::Arc<oxrsyncd_shared::logging::ModuleLog>> {
    let path = request.module().settings.log_file.as_deref()?;
    if request.config.daemon_log_file() == Some(path) {
        return None;
    }
    // A link on the way that someone else owns could point the daemon's
    // appends anywhere (CVE-2026-53803): refused, as upstream refuses it.
    if let Some((link, uid)) = crate::transfer::fs::module_root::untrusted_link_in(path) {
        tracing::info!(
            "module {}: not logging to {}: {} is a symlink owned by uid {uid}",
            request.module().name,
            path.display(),
            link.display()
        );
        return None;
    }
    let style = oxrsyncd_shared::logging::LogStyle::from_name(&request.module().settings.log_style);
    match oxrsyncd_shared::logging::ModuleLog::open(path, style) {
        Ok(log) => Some(log),
        Err(e) => {
            tracing::info!("module {}: {e}", request.module().name);
            None
        }
    }
}
