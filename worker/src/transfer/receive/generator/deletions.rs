//! `--delete` from the generator: the deletion pass for its timing and
//! the deleter the per-directory passes share.

use std::io::Write;

use crate::transfer::receive::delete::Deleter;
use crate::transfer::receive::generator::state::Generator;
use crate::transfer::receive::setup::ReceiveError;

impl<'s, W: Write> Generator<'s, '_, W> {
    /// `--delete-before` / `--delete-after`: every content directory of
    /// the list, in list order.
    pub(super) fn delete_pass(&mut self) -> Result<(), ReceiveError> {
        let s = self.shared;
        let Some(list) = s.lists.first() else { return Ok(()) };
        for f in &list.files {
            if f.active && f.entry.is_dir() && self.is_content_dir(&f.entry) {
                let rel = s.dest.path_of(&f.entry.name);
                if let Some(d) = self.deleter.as_mut() {
                    d.delete_in_dir(s, &f.entry.name, &rel)?;
                }
            }
        }
        Ok(())
    }

    /// Run `f` with the push's deleter, or, without `--delete`, with one
    /// made for this removal (logged and counted the same way).
    pub(super) fn with_deleter<T>(&mut self, f: impl FnOnce(&mut Deleter<'s>) -> T) -> T {
        let s = self.shared;
        match self.deleter.as_mut() {
            Some(d) => f(d),
            None => f(&mut Deleter::new(
                Default::default(),
                &s.client_filters,
                s.setup.daemon_filters,
                &s.dest.dir,
                false,
                s.setup.options.max_delete,
            )),
        }
    }
}
