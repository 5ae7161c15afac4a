//! Choosing a basis and asking for a file: the file itself, a partial
//! file, a `--*-dest` copy or a `--fuzzy` match, with the block sums of
//! whichever is chosen, or a file settled from a `--*-dest` directory
//! without asking at all.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oxrsyncd_protocol::item::{self, basis, write_ndx_and_attrs};
use oxrsyncd_protocol::message::{cat, syserr};
use oxrsyncd_protocol::setup::compat;

use crate::transfer::delta::sums::SUM_LENGTH;
use crate::transfer::delta::{sum_sizes_sqroot, write_block_sums, write_sum_head, SumHead, SumSizing};
use crate::transfer::flist::FileEntry;
use crate::transfer::fs::fake_super::Seen;
use crate::transfer::options::client::AltDest;
use crate::transfer::receive::alt_dest::Match;
use crate::transfer::receive::attrs;
use crate::transfer::receive::fuzzy::Candidate;
use crate::transfer::receive::generator::flags::item_flags;
use crate::transfer::receive::generator::output::quoted;
use crate::transfer::receive::generator::state::Generator;
use crate::transfer::receive::setup::ReceiveError;

impl<'s, W: Write> Generator<'s, '_, W> {
    /// `--compare-dest` / `--copy-dest` / `--link-dest` for file `i`
    /// (upstream's `try_dests_reg`): whether the entry was settled from
    /// one of the directories (left out, linked or copied).
    pub(super) fn settle_from_alt_dests(
        &mut self,
        i: usize,
        e: &FileEntry,
        rel: &Path,
        existing: Option<&Seen>,
    ) -> Result<bool, ReceiveError> {
        let s = self.shared;
        let Some(alt) = s.alt_dests.as_ref() else { return Ok(false) };
        if existing.is_some() && alt.kind == AltDest::Copy {
            return Ok(false);
        }
        let found = alt.find(rel, |path| {
            let m = s.look(path).filter(|m| m.is_file())?;
            Some(if !self.quick_check(e, path, &m) {
                Match::Exists
            } else if self.unchanged_attrs(e, &m) {
                Match::Unchanged
            } else {
                Match::SameContent
            })
        });
        let Some((_, level, path)) = found else { return Ok(false) };
        let Some(meta) = s.look(&path) else { return Ok(false) };
        if level == Match::Unchanged && alt.kind != AltDest::Copy {
            let (dir, name) = s.root.parent_of(rel)?;
            if let Some(t) = existing {
                if alt.kind == AltDest::Link && t.dev() == meta.dev() && t.ino() == meta.ino() {
                    return Ok(false);
                }
                if let Err(err) = dir.unlink(&name) {
                    if err.kind() != io::ErrorKind::NotFound {
                        return Ok(false);
                    }
                }
            }
            if alt.kind == AltDest::Compare {
                self.send_item(i, item_flags(s.setup, e, Some(&meta), 0))?;
                s.confirm(i, false)?;
                return Ok(true);
            }
            let (from_dir, from_name) = s.root.parent_of(&path)?;
            if dir.link_from(&from_dir, &from_name, &name).is_ok() {
                // Itemized only at -ii, as upstream.
                s.confirm(i, false)?;
                return Ok(true);
            }
        } else if existing.is_some() || level < Match::SameContent {
            // Not settled here: an existing target goes through the quick
            // check, a mere basis is used by the request.
            return Ok(false);
        }
        // Same content: a local copy, with the list's attributes.
        match self.copy_local(e, &path, rel) {
            Ok(()) => {
                self.send_item(i, item_flags(s.setup, e, Some(&meta), item::LOCAL_CHANGE))?;
                s.confirm(i, false)?;
                Ok(true)
            }
            Err(err) => {
                let text = syserr("generator", &cat(&[b"copy of ", &quoted(e), b" failed"]), &err);
                self.report(text)?;
                Ok(true)
            }
        }
    }

    /// Copy `from` (module-relative) to `rel` through a temporary file,
    /// with `e`'s attributes.
    pub(super) fn copy_local(&self, e: &FileEntry, from: &Path, rel: &Path) -> io::Result<()> {
        let s = self.shared;
        if s.setup.options.dry_run {
            // Itemized as copied; nothing is written.
            return Ok(());
        }
        let (dir, name) = s.root.parent_of(rel)?;
        let (out, temp) = dir.create_temp(&name)?;
        let copied = (|| {
            let mut src = s.root.open_read(from)?;
            io::copy(&mut src, &mut &out)?;
            let mode = attrs::dest_mode(s.setup, e, None);
            attrs::apply(s.setup, &dir, &temp, e, Some(mode))?;
            dir.rename(&temp, &name)
        })();
        if copied.is_err() {
            let _ = dir.unlink(&temp);
        }
        copied
    }

    /// `--fuzzy`: the list index (0: the file's own directory, then the
    /// `--*-dest` directories with `-yy`), the module-relative path and
    /// the name of the most similar file, if any.
    pub(super) fn fuzzy_basis(&mut self, e: &FileEntry, rel: &Path) -> Option<(u8, std::path::PathBuf, Vec<u8>)> {
        let s = self.shared;
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut dirs = vec![parent];
        if s.setup.options.fuzzy > 1 {
            if let Some(alt) = &s.alt_dests {
                dirs.extend(
                    (0..alt.len())
                        .filter_map(|j| alt.path(j, rel))
                        .map(|p| p.parent().unwrap_or(Path::new("")).to_path_buf()),
                );
            }
        }
        // Each directory is listed once; later files in it reuse the list.
        for d in &dirs {
            if !self.fuzzy_lists.contains_key(d) {
                self.fuzzy_lists.insert(d.clone(), list_candidates(&s.root, d));
            }
        }
        let lists: Vec<&[Candidate]> = dirs.iter().map(|d| self.fuzzy_lists[d].as_slice()).collect();
        let name = rel.file_name()?.as_bytes();
        let (i, found) = crate::transfer::receive::fuzzy::find(name, e.size, e.mtime, &lists)?;
        let path = dirs[i].join(std::ffi::OsStr::from_bytes(&found));
        Some((i as u8, path, found))
    }

    /// The `--*-dest` file that serves as the basis for a missing target
    /// (upstream: FNAMECMP_BASIS_DIR_LOW + j), if any.
    pub(super) fn alt_basis(&self, rel: &Path) -> Option<(u8, std::path::PathBuf)> {
        let s = self.shared;
        let alt = s.alt_dests.as_ref()?;
        let (j, _, path) = alt.find(rel, |p| s.root.lstat(p).ok().filter(|m| m.is_file()).map(|_| Match::Exists))?;
        Some((j as u8, path))
    }

    /// Ask the client for file `i`: its index, flags and block sums of
    /// our copy (none for a new file or `-W`). `redo`: the full-length
    /// strong sums of upstream's second pass.
    /// `looked`: the target as `generate` just found it (`Some(None)`: no
    /// regular file there), so a first request does not look again; a redo
    /// looks afresh.
    pub(super) fn request(&mut self, i: usize, redo: bool, looked: Option<Option<Seen>>) -> Result<(), ReceiveError> {
        let s = self.shared;
        let list = self.list_for(i)?;
        let e = &list
            .get(i)
            .ok_or_else(|| ReceiveError::Protocol(format!("no file {i} to ask for")))?
            .entry;
        // Before the request can reach the client: its data is admitted.
        list.mark_requested(i);
        let protocol = s.setup.protocol;
        let rel = s.dest.path_of(&e.name);
        let target = looked.unwrap_or_else(|| s.look(&rel).filter(|m| m.is_file()));
        // A partial file kept by an interrupted push is the better basis,
        // as upstream's.
        let partial = s.staging.existing_partial(&s.root, &rel);
        if partial.is_none() && s.setup.has_compat(compat::INPLACE_PARTIAL_DIR) && s.staging.partial_dir_is_link(&s.root, &rel) {
            // The client's partial dir is a link (out of the module, as
            // far as we know): where an in-place partial update was agreed,
            // upstream's daemon ends the session rather than follow it or
            // stage elsewhere.
            return Err(ReceiveError::Violation(format!(
                "rsync: refusing unconfined partial basis for {}\n",
                String::from_utf8_lossy(&e.name)
            )));
        }
        // Without a target, a file in a --*-dest directory is the basis.
        let alt = if partial.is_none() && target.is_none() {
            self.alt_basis(&rel)
        } else {
            None
        };
        // Still nothing: with --fuzzy, a similar file nearby.
        let fuzzy = if partial.is_none() && target.is_none() && alt.is_none() && s.setup.options.fuzzy > 0 {
            self.fuzzy_basis(e, &rel)
        } else {
            None
        };
        let (basis_rel, existing, basis_type) = match (&partial, &alt, &fuzzy) {
            (Some(p), _, _) => (p.clone(), s.look(p), Some(basis::PARTIAL_DIR)),
            (None, Some((j, path)), _) => (path.clone(), s.look(path), Some(*j)),
            (None, None, Some((i, path, _))) => (path.clone(), s.look(path), Some(basis::FUZZY + *i)),
            (None, None, None) => (rel.clone(), target.clone(), None),
        };
        let xname = fuzzy.as_ref().map(|(_, _, name)| name.as_slice());
        let base = if s.setup.options.always_checksum {
            item::TRANSFER | item::REPORT_CHANGE
        } else {
            item::TRANSFER
        };
        // Itemized against the real target (upstream's real_sx), or, when a
        // --*-dest file is the basis, against that file (it becomes real_sx).
        let against = if alt.is_some() { existing.as_ref() } else { target.as_ref() };
        let mut iflags = self.with_meta_flags(e, item_flags(s.setup, e, against, base));
        if basis_type.is_some() {
            iflags |= item::BASIS_TYPE_FOLLOWS;
        }
        if xname.is_some() {
            iflags |= item::XNAME_FOLLOWS;
        }
        let sizing = SumSizing {
            block_size: s.setup.options.block_size.map(|b| b as i32),
            csum_length: if redo {
                SUM_LENGTH
            } else {
                crate::transfer::delta::sums::SHORT_SUM_LENGTH
            },
        };
        let xfer_sum_len = s.params.kind.digest_len();
        if s.setup.options.dry_run {
            // -n: the item alone (upstream's !do_xfers); no sums, and the
            // client sends no data.
            let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
            write_ndx_and_attrs(&mut *out, &mut self.ndx_out, i as i32, iflags, basis_type, xname, protocol)?;
            self.xattr_request(&mut *out, e, iflags)?;
            return Ok(());
        }
        // --append (first pass): the head alone says how much we keep; the
        // sender sends what follows. It also turns -W off.
        let appending = s.setup.options.append_mode > 0 && !redo;
        if appending {
            let head = existing
                .as_ref()
                .filter(|m| m.len() > 0)
                .and_then(|m| sum_sizes_sqroot(m.len(), protocol, xfer_sum_len, sizing))
                .unwrap_or_default();
            let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
            write_ndx_and_attrs(&mut *out, &mut self.ndx_out, i as i32, iflags, basis_type, xname, protocol)?;
            self.xattr_request(&mut *out, e, iflags)?;
            write_sum_head(&mut *out, &head, protocol)?;
            drop(out);
            self.on_its_way(i);
            return Ok(());
        }
        let sums = match existing {
            Some(old) if !s.setup.options.whole_file && old.len() > 0 => match s.root.open_read(&basis_rel) {
                Ok(file) => crate::transfer::delta::file_sums::block_sums_of_file(&file, old.len(), &s.params, protocol, sizing).ok(),
                Err(_) => None,
            },
            _ => None,
        };
        let mut out = s.out.lock().unwrap_or_else(|e| e.into_inner());
        write_ndx_and_attrs(&mut *out, &mut self.ndx_out, i as i32, iflags, basis_type, xname, protocol)?;
        self.xattr_request(&mut *out, e, iflags)?;
        match sums {
            Some(sums) => write_block_sums(&mut *out, &sums, protocol)?,
            None => write_sum_head(&mut *out, &SumHead::default(), protocol)?,
        }
        drop(out);
        self.on_its_way(i);
        Ok(())
    }
}

/// The regular files of directory `dir`, sorted by name (upstream's
/// `get_dirlist`, filters ignored).
pub(super) fn list_candidates(root: &crate::transfer::fs::module_root::ModuleRoot, dir: &Path) -> Vec<Candidate> {
    let Ok(names) = root.read_dir(dir) else { return Vec::new() };
    let mut out: Vec<Candidate> = names
        .flatten()
        .filter_map(|n| {
            let m = root.lstat(&dir.join(&n)).ok().filter(|m| m.is_file())?;
            Some(Candidate {
                name: n.as_bytes().to_vec(),
                size: m.len(),
                mtime: m.mtime(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
