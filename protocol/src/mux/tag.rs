//! Message tags of the multiplexed stream (upstream's `MSG_*`), one list
//! for both directions.

/// A frame's tag: `Data` carries the protocol stream, the others are
/// messages beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgTag {
    /// Protocol data (MSG_DATA).
    Data = 0,
    /// A transfer error: the session will end with exit 23 (MSG_ERROR_XFER).
    ErrorXfer = 1,
    /// Text for the user (MSG_INFO).
    Info = 2,
    /// An error for the user (MSG_ERROR).
    Error = 3,
    /// A warning for the user (MSG_WARNING).
    Warning = 4,
    /// I/O-error bits (MSG_IO_ERROR).
    IoError = 22,
    /// The peer's I/O timeout (MSG_IO_TIMEOUT).
    IoTimeout = 33,
    /// Keep-alive (MSG_NOOP).
    Noop = 42,
    /// The sender ends the session with an exit code (MSG_ERROR_EXIT).
    ErrorExit = 86,
    /// A file arrived whole (MSG_SUCCESS, `--remove-source-files`).
    Success = 100,
    /// A deletion, for the client's log (MSG_DELETED).
    Deleted = 101,
    /// A file that will not be sent (MSG_NO_SEND).
    NoSend = 102,
}

impl MsgTag {
    /// The tag for a frame's tag byte (after taking off the 7), or `None`
    /// for a value no rsync sends.
    pub fn from_wire(tag: u8) -> Option<MsgTag> {
        Some(match tag {
            0 => MsgTag::Data,
            1 => MsgTag::ErrorXfer,
            2 => MsgTag::Info,
            3 => MsgTag::Error,
            4 => MsgTag::Warning,
            22 => MsgTag::IoError,
            33 => MsgTag::IoTimeout,
            42 => MsgTag::Noop,
            86 => MsgTag::ErrorExit,
            100 => MsgTag::Success,
            101 => MsgTag::Deleted,
            102 => MsgTag::NoSend,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_round_trips_and_unknown_values_do_not() {
        for tag in [
            MsgTag::Data,
            MsgTag::ErrorXfer,
            MsgTag::Info,
            MsgTag::Error,
            MsgTag::Warning,
            MsgTag::IoError,
            MsgTag::IoTimeout,
            MsgTag::Noop,
            MsgTag::ErrorExit,
            MsgTag::Success,
            MsgTag::Deleted,
            MsgTag::NoSend,
        ] {
            assert_eq!(MsgTag::from_wire(tag as u8), Some(tag));
        }
        assert_eq!(MsgTag::from_wire(5), None);
        assert_eq!(MsgTag::from_wire(248), None);
    }
}
