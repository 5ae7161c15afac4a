//! What the module's `pre-xfer exec` and `post-xfer exec` commands are
//! told about the session, as upstream 3.5's daemon tells them: the
//! pre-xfer command gets the request (`RSYNC_REQUEST`, the paths as the
//! client wrote them) and the arguments (`RSYNC_ARG#`, with each path made
//! module-relative, sanitised keeping `.` components, and its wildcards
//! expanded in the module, as upstream's `glob_expand_module`); the
//! post-xfer command gets only the connection (and its exit status).

use std::path::Path;

use bstr::ByteSlice;

use crate::handshake::SessionRequest;
use crate::hooks;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::send::glob;
use crate::transfer::send::walk::relative::sanitize_keep_dots;

/// The pre-xfer command's variables.
pub(crate) fn pre_xfer(request: &SessionRequest, module_path: &str) -> Vec<(String, String)> {
    let addr = request.peer_addr.to_string();
    hooks::pre_xfer_environment(
        &request.vars(&addr),
        module_path,
        request.paths_text().join(" "),
        arguments(request, module_path),
    )
}

/// The post-xfer command's variables (its exit status is added when it runs).
pub(crate) fn post_xfer(request: &SessionRequest, module_path: &str) -> Vec<(String, String)> {
    let addr = request.peer_addr.to_string();
    hooks::connection_environment(&request.vars(&addr), module_path)
}

/// `rsyncd`, the options, `.`, then every path argument as upstream's
/// daemon reads it: the module name cut off the front (byte for byte, as
/// upstream's `strncmp`), sanitised keeping `.` components (empty is `.`),
/// and expanded in the module when it holds wildcards (kept as written
/// when nothing matches, or when the module cannot be opened).
fn arguments(request: &SessionRequest, module_path: &str) -> Vec<String> {
    let module = request.module().name.as_bytes();
    let root = ModuleRoot::open(Path::new(module_path)).ok();
    let mut args: Vec<String> = std::iter::once("rsyncd".to_string())
        .chain(request.options.iter().cloned())
        .chain(std::iter::once(".".to_string()))
        .collect();
    for path in &request.paths {
        let rest = path.strip_prefix(module).unwrap_or(path);
        let rel = sanitize_keep_dots(rest);
        let expanded = match &root {
            Some(root) => glob::expand(root, &rel),
            None => vec![rel],
        };
        args.extend(expanded.iter().map(|p| p.to_str_lossy().into_owned()));
    }
    args
}

#[cfg(test)]
mod tests {
    /// The path rules, without a module to expand in.
    #[test]
    fn paths_lose_the_module_name_and_keep_dot_components() {
        use super::sanitize_keep_dots;
        let cut = |arg: &[u8]| sanitize_keep_dots(arg.strip_prefix(b"m").unwrap_or(arg));
        assert_eq!(cut(b"m"), b".");
        assert_eq!(cut(b"m/"), b".");
        assert_eq!(cut(b"m/./sub"), b"./sub");
        assert_eq!(cut(b"m/sub/../a.txt"), b"a.txt");
        assert_eq!(cut(b"m/sub/"), b"sub/");
    }
}
