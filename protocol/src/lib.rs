//! The rsync wire format, the bottom layer of oxrsyncd.
//!
//! Everything here is bytes in, bytes out over `Read`/`Write`: no file
//! system, no sockets, no knowledge of modules or sessions. The worker's
//! engines (and the load generator in `tests/load`) speak the protocol
//! through this crate only, so each rule of the format lives in one place.
//!
//! - [`wire`]: integers, varints, varlongs and vstrings.
//! - [`mux`]: the multiplexed stream both ways, with one [`mux::MsgTag`].
//! - [`ndx`]: file-list indexes and their special values.
//! - [`item`]: item flags, basis types, and the attributes sent with an
//!   index (one reader, one writer).
//! - [`setup`]: compat flags and the negotiated session parameters.
//! - [`exit`]: exit codes; [`io_error`]: the I/O-error bits.
//! - [`message`]: the byte-exact pieces of upstream's messages.

pub mod exit;
pub mod io_error;
pub mod item;
pub mod message;
pub mod mux;
pub mod ndx;
pub mod setup;
pub mod wire;

pub use exit::ExitCode;
pub use io_error::IoError;
