//! What bounds one session, whichever way it transfers: the memory a
//! client can make it hold, how long it may sit idle, how fast it sends.

pub mod budget;
pub mod bwlimit;
pub mod io_timeout;
