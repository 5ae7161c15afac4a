//! Upstream's message lines about files, as bytes: a file is named by its
//! exact bytes, as upstream's `full_fname()` names it, so a name that is
//! not UTF-8 reaches the client as the client itself would spell it (it
//! shows such bytes as `\#351`). The text forms in `walk` wrap these.

/// Concatenate the parts of one message.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Upstream's `full_fname()` inside a module: `"path" (in module)`.
pub fn fname_in(path: impl AsRef<[u8]>, module: &str) -> Vec<u8> {
    cat(&[b"\"", path.as_ref(), b"\" (in ", module.as_bytes(), b")"])
}

/// Upstream's `rsyserr()` line as `role` says it:
/// `rsync: [role] <what>: <strerror> (<errno>)`.
pub fn syserr(role: &str, what: &[u8], err: &std::io::Error) -> Vec<u8> {
    let errno = err.raw_os_error().unwrap_or(0);
    // The C library's words (strerror), as upstream prints them.
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let desc = text.split(" (os error").next().unwrap_or(&text);
    cat(&[
        b"rsync: [",
        role.as_bytes(),
        b"] ",
        what,
        b": ",
        desc.as_bytes(),
        format!(" ({errno})\n").as_bytes(),
    ])
}

/// How upstream names a file in messages: relative to the directory it
/// changed into for the argument, which shows as `/dir/...` unless that is
/// the module root.
pub fn shown(transfer_name: &[u8], module_path: &[u8]) -> Vec<u8> {
    if module_path == transfer_name || module_path.is_empty() {
        transfer_name.to_vec()
    } else {
        cat(&[b"/", module_path])
    }
}

/// Upstream's `rsyserr()` line as text: `rsync: [sender] <msg>: <strerror> (<errno>)`.
pub fn rsyserr(msg: &str, err: &std::io::Error) -> String {
    rsyserr_as("sender", msg, err)
}

/// [`rsyserr`] as another of upstream's roles says it (`receiver`,
/// `generator`, `Receiver`).
pub fn rsyserr_as(role: &str, msg: &str, err: &std::io::Error) -> String {
    String::from_utf8_lossy(&syserr(role, msg.as_bytes(), err)).into_owned()
}

/// Upstream's `full_fname()` inside a module: `"path" (in module)`.
pub fn full_fname(path: &str, module: &str) -> String {
    String::from_utf8_lossy(&fname_in(path, module)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_bytes() {
        assert_eq!(fname_in(b"caf\xe9", "mod"), b"\"caf\xe9\" (in mod)");
        let err = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            syserr("sender", &cat(&[b"opendir ", &fname_in(b"d\xff", "m"), b" failed"]), &err),
            b"rsync: [sender] opendir \"d\xff\" (in m) failed: Permission denied (13)\n"
        );
        assert_eq!(shown(b"a/b", b"a/b"), b"a/b");
        assert_eq!(shown(b"b", b"x/b"), b"/x/b");
        assert_eq!(shown(b"b", b""), b"b");
    }
}
