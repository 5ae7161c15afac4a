//! The multiplexed stream (protocol 23 on for a daemon's output, 30 on for
//! its input): 4-byte little-endian headers, `(7 + tag) << 24 | length`,
//! then the payload.
//!
//! - [`MsgTag`]: the one list of message tags, both directions.
//! - [`MuxWriter`]: frames written as they come.
//! - [`MuxOut`]: data buffered into `MSG_DATA` frames, messages in order.
//! - [`DemuxReader`]: the data stream out of framed input, with the
//!   messages in between handled.
//! - [`Counted`]: the bytes read, for the stats.

mod buffered;
mod counted;
mod demux;
mod frames;
mod tag;

pub use buffered::MuxOut;
pub use counted::Counted;
pub use demux::{ClientAborted, DemuxReader, SuccessCharge};
pub use frames::{MuxWriter, MAX_FRAME};
pub use tag::MsgTag;
