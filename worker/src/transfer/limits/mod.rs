//! What bounds one session, whichever way it transfers: the memory a
//! client can make it hold, how long it may sit idle, how fast it sends.

pub(crate) mod budget;
pub(crate) mod bwlimit;
pub(crate) mod io_timeout;
