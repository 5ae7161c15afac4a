//! `--remove-source-files` on a pull from a writable module: once the
//! client confirms a file arrived (`MSG_SUCCESS`), the sender removes its
//! source, unless it changed since it was listed (upstream's
//! `successful_send`). Removal goes through the module root like every
//! other access, as the module's uid.

use std::io::{self, Write};
use std::path::Path;

use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::options::client::TransferOptions;
use crate::transfer::send::incremental::FileLists;
use oxrsyncd_protocol::message::rsyserr;
use oxrsyncd_protocol::mux::MsgTag;
use oxrsyncd_protocol::mux::MuxOut;

/// Act on every confirmed index. `verbose`: the session's capped `-v`
/// count (upstream reports removals from level 2).
///
/// MSG_SUCCESS is the client's word, and a client may send it whatever it
/// negotiated: unless this session asked for `--remove-source-files` (which
/// the session refuses for a `read only` module or when `refuse options`
/// names it), and is no dry run, the confirmations are dropped unread, as
/// upstream's `successful_send` drops them.
pub(crate) fn remove_confirmed<W: Write>(
    root: &ModuleRoot,
    lists: &FileLists,
    confirmed: Vec<i32>,
    options: &TransferOptions,
    verbose: i32,
    out: &mut MuxOut<W>,
) -> io::Result<()> {
    if !removal_negotiated(options) {
        return Ok(());
    }
    for ndx in confirmed {
        let Some((entry, local)) = lists.entry(ndx) else {
            let text = format!("rsync: [sender] MSG_SUCCESS names an unknown file index {ndx}\n");
            out.message(MsgTag::ErrorXfer, text.as_bytes())?;
            continue;
        };
        if !entry.is_reg() {
            continue;
        }
        let fname = String::from_utf8_lossy(&entry.name).into_owned();
        let (size, mtime, nsec) = (entry.size, entry.mtime, entry.mtime_nsec);
        let unchanged = |st: &nix::sys::stat::FileStat| {
            st.st_size as u64 == size && st.st_mtime == mtime && (nsec == 0 || st.st_mtime_nsec as u32 == nsec)
        };
        match root.unlink_file_if(Path::new(local), unchanged) {
            Ok(true) if verbose >= 2 => out.message(MsgTag::Info, format!("sender removed {fname}\n").as_bytes())?,
            Ok(true) => {}
            Ok(false) => {
                let text = format!("ERROR: Skipping sender remove for changed file: {fname}\n");
                out.message(MsgTag::ErrorXfer, text.as_bytes())?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                out.message(MsgTag::Info, format!("sender file already removed: {fname}\n").as_bytes())?;
            }
            Err(e) => {
                let text = rsyserr(&format!("sender failed to remove {fname}"), &e);
                out.message(MsgTag::ErrorXfer, text.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// Whether this session may remove what the client confirms.
fn removal_negotiated(options: &TransferOptions) -> bool {
    options.remove_source_files && !options.dry_run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_needs_the_option_and_no_dry_run() {
        let mut o = TransferOptions::default();
        assert!(!removal_negotiated(&o));
        o.remove_source_files = true;
        assert!(removal_negotiated(&o));
        o.dry_run = true;
        assert!(!removal_negotiated(&o));
    }
}
