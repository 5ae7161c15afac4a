//! Upstream's exit codes (errcode.h) and the words clients print for them.

/// An rsync exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    Syntax = 1,
    Protocol = 2,
    FileSelect = 3,
    Unsupported = 4,
    SocketIo = 10,
    FileIo = 11,
    StreamIo = 12,
    Malloc = 22,
    /// Some files or attributes were not transferred (any transfer error).
    PartialTransfer = 23,
    /// Some files vanished before they could be transferred.
    Vanished = 24,
    Timeout = 30,
}

impl ExitCode {
    /// Upstream's description, as in `rsync error: <this> (code N)`.
    pub fn description(self) -> &'static str {
        match self {
            ExitCode::Syntax => "syntax or usage error",
            ExitCode::Protocol => "protocol incompatibility",
            ExitCode::FileSelect => "errors selecting input/output files, dirs",
            ExitCode::Unsupported => "requested action not supported",
            ExitCode::SocketIo => "error in socket IO",
            ExitCode::FileIo => "error in file IO",
            ExitCode::StreamIo => "error in rsync protocol data stream",
            ExitCode::Malloc => "error allocating core memory buffers",
            ExitCode::PartialTransfer => "some files/attrs were not transferred (see previous errors)",
            ExitCode::Vanished => "some files vanished before they could be transferred",
            ExitCode::Timeout => "timeout in data send/receive",
        }
    }
}
