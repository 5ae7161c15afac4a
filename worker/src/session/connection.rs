//! The client as a session talks to it: the request it made, both
//! directions of its connection, and the few facts of its options that
//! decide how a refusal is worded and framed.

use std::io::{BufRead, Write};

use crate::handshake::SessionRequest;
use crate::session::stream::SessionStream;

/// One client's connection, from protocol setup to the close.
pub(crate) struct Connection<'s, R: BufRead, W: Write> {
    /// What the client asked for (module, options, paths, identity).
    pub(crate) request: &'s SessionRequest,
    /// Its stream, which may hold bytes already read past the arguments.
    pub(crate) reader: &'s mut R,
    /// The same connection, for writing.
    pub(crate) writer: &'s mut W,
    /// Timeouts and half-closing.
    pub(crate) stream: &'s dyn SessionStream,
    /// The client pulls (`--sender`): we send. Decides the role a refusal
    /// names (`sender` / `Receiver`).
    pub(crate) we_send: bool,
    /// `--files-from` was given: a refused push owes the client the end of
    /// the list it waits to send.
    pub(crate) files_from: bool,
}
