//! The session thread's connection record, so the transfer engine can
//! count what it does (files, the direction) without taking a parameter
//! through every layer. Installed for the session's life by the session
//! thread; the engine's other threads do not count.

use std::cell::RefCell;
use std::sync::Arc;

use oxrsyncd_shared::scoreboard::Direction;

use super::ConnectionRecord;

thread_local! {
    static CURRENT: RefCell<Option<Arc<ConnectionRecord>>> = const { RefCell::new(None) };
}

/// Make `record` this thread's until the returned guard drops.
pub(crate) fn install(record: Option<Arc<ConnectionRecord>>) -> Installed {
    let previous = CURRENT.with(|c| c.replace(record));
    Installed { previous }
}

/// Puts back the record a thread had before [`install`].
pub(crate) struct Installed {
    previous: Option<Arc<ConnectionRecord>>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

fn with(f: impl FnOnce(&ConnectionRecord)) {
    CURRENT.with(|c| {
        if let Some(r) = c.borrow().as_deref() {
            f(r);
        }
    });
}

/// The transfer starts in `direction`.
pub(crate) fn session_started(direction: Direction) {
    with(|r| r.session_started(direction));
}

/// One file's data travelled.
pub(crate) fn file_done() {
    with(ConnectionRecord::file_done);
}
