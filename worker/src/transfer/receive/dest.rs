//! Where a pushed file list lands (upstream's `get_local_name`): into the
//! destination directory when it exists or the list needs one (created if
//! missing), or, for a single non-directory sent to a name that is not a
//! directory, as that name.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bstr::ByteSlice;

use crate::transfer::flist::sort::SortedEntry;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::fs::paths::module_relative;
use crate::transfer::receive::setup::{ReceiveError, ReceiveSetup};
use oxrsyncd_protocol::message::{full_fname, rsyserr, rsyserr_as};

/// The resolved destination.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    /// The directory the list's names are relative to (module-relative).
    pub dir: PathBuf,
    /// A single file written under another name (upstream's mode 2).
    pub rename_to: Option<OsString>,
    /// The directory we created for the list (its exact bytes), for
    /// `-v`'s message.
    pub created: Option<Vec<u8>>,
    /// The verbosity the message needs (the client's `-v`).
    pub verbose: bool,
}

impl Destination {
    /// Upstream's "created directory X" line, when there is one to say.
    pub(crate) fn created_message(&self) -> Option<Vec<u8>> {
        self.created
            .as_ref()
            .filter(|_| self.verbose)
            .map(|d| oxrsyncd_protocol::message::cat(&[b"created directory ", d, b"\n"]))
    }

    /// The module-relative path of list entry `name`.
    pub(crate) fn path_of(&self, name: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        if let Some(to) = &self.rename_to {
            return self.dir.join(to);
        }
        if name == b"." {
            return self.dir.clone();
        }
        self.dir.join(std::ffi::OsStr::from_bytes(name))
    }
}

fn select_error(text: String) -> ReceiveError {
    ReceiveError::Destination(text)
}

/// Resolve the destination of `files` for the session's first path.
pub(crate) fn resolve(root: &ModuleRoot, setup: &ReceiveSetup<'_>, files: &[SortedEntry]) -> Result<Destination, ReceiveError> {
    let arg = setup.paths.first().map(Vec::as_slice).unwrap_or(b"");
    // Bytes: the destination may be a name that is not UTF-8; only the
    // messages here see its text form.
    let given_bytes = module_relative(arg, setup.module_name);
    let given = String::from_utf8_lossy(&given_bytes).into_owned();
    let trailing_slash = given_bytes.ends_with(b"/");
    let rel_bytes = given_bytes.trim_end_with(|c| c == '/').to_vec();
    let rel = given.trim_end_matches('/').to_string();
    let total = files.iter().filter(|f| f.active).count();
    let first_is_dir = files.first().is_some_and(|f| f.entry.is_dir());
    // Upstream: at INFO_GTE(NAME, 1) or with -i.
    let verbose = setup.options.verbose > 0 || setup.options.itemize;
    let path = PathBuf::from(OsStr::from_bytes(&rel_bytes));
    // Upstream checks the destination as a file and as a directory.
    if !rel.is_empty() && (setup.daemon_filters.excludes(&rel_bytes, false) || setup.daemon_filters.excludes(&rel_bytes, true)) {
        return Err(select_error(format!("ERROR: daemon has excluded destination \"{given}\"\n")));
    }
    match root.stat(&path) {
        Ok(meta) if meta.is_dir() => {
            return Ok(Destination {
                dir: path,
                rename_to: None,
                created: None,
                verbose,
            })
        }
        Ok(_) if total > 1 => {
            return Err(select_error(
                "ERROR: destination must be a directory when copying more than 1 file\n".into(),
            ))
        }
        Ok(_) if first_is_dir => return Err(select_error("ERROR: cannot overwrite non-directory with a directory\n".into())),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(select_error(rsyserr(
                &format!("change_dir#3 {} failed", full_fname(&rel, setup.module_name)),
                &e,
            )))
        }
    }
    if total > 1 || trailing_slash || first_is_dir || rel.is_empty() {
        // Like mkdir(2), not mkdir -p: a missing parent is an error (exit 11).
        let made = root
            .parent_of(&path)
            .and_then(|(dir, name)| dir.mkdir(&name, 0o777 & !crate::transfer::options::chmod::current_umask()));
        if let Err(e) = made {
            let text = rsyserr_as("Receiver", &format!("mkdir {} failed", full_fname(&rel, setup.module_name)), &e);
            return Err(ReceiveError::FileIo(text));
        }
        return Ok(Destination {
            dir: path,
            rename_to: None,
            created: Some(rel_bytes),
            verbose,
        });
    }
    // One file under a new (or existing non-directory) name, in a
    // directory that must be there (upstream changes into it).
    let name = path.file_name().map(|n| n.to_os_string());
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Err(e) = root.existing_dir(&parent) {
        let text = rsyserr_as(
            "Receiver",
            &format!("change_dir#3 {} failed", full_fname(&parent.to_string_lossy(), setup.module_name)),
            &e,
        );
        return Err(select_error(text));
    }
    Ok(Destination {
        dir: parent,
        rename_to: name,
        created: None,
        verbose,
    })
}
