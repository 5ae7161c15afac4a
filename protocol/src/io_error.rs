//! The I/O-error bits a sender reports at the end of its file list and in
//! MSG_IO_ERROR (upstream's `IOERR_*`): they decide exit 23 or 24 and
//! whether the receiver may delete.

/// One I/O-error bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum IoError {
    /// Some file could not be listed or read.
    General = 1,
    /// A file vanished while we worked.
    Vanished = 2,
    /// Deletions stopped at `--max-delete`.
    DelLimit = 4,
}

impl IoError {
    /// Every bit a peer may set; anything else in a received word is
    /// dropped.
    pub const VALID_MASK: i32 = IoError::General.bit() | IoError::Vanished.bit() | IoError::DelLimit.bit();

    /// The bit's value in an I/O-error word.
    pub const fn bit(self) -> i32 {
        self as i32
    }

    /// The exit code a sending session ends with for its accumulated
    /// bits: 23 for any bit but `Vanished`, 24 when files only vanished.
    pub fn exit_code(word: i32) -> Option<crate::ExitCode> {
        if word & !IoError::Vanished.bit() != 0 {
            Some(crate::ExitCode::PartialTransfer)
        } else if word & IoError::Vanished.bit() != 0 {
            Some(crate::ExitCode::Vanished)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExitCode;

    #[test]
    fn vanished_alone_is_24_anything_else_23() {
        assert_eq!(IoError::exit_code(0), None);
        assert_eq!(IoError::exit_code(IoError::Vanished.bit()), Some(ExitCode::Vanished));
        assert_eq!(
            IoError::exit_code(IoError::General.bit() | IoError::Vanished.bit()),
            Some(ExitCode::PartialTransfer)
        );
        assert_eq!(IoError::exit_code(IoError::DelLimit.bit()), Some(ExitCode::PartialTransfer));
        assert_eq!(IoError::VALID_MASK, 7);
    }
}
