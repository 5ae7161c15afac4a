//! Tests for the file-list codec: round trips, upstream sort order,
//! hostile input, and byte-exact agreement with a live stock rsync daemon.

mod hostile;
mod live_daemon;
mod roundtrip;
mod sort_order;
