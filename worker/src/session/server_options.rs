//! What a session needs to know from the client's server-side options
//! (`--server --sender -vlogDtpre.iLsfxCIvu ...`) to set the protocol up:
//! direction, capability letters, compression and checksum choices.

use crate::transfer::options::TransferOptions;

/// The parts of the client's options that shape protocol setup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerOptions {
    /// `--sender`: the client pulls, so we send.
    pub we_send: bool,
    /// The capability letters after `-e.` (e.g. `iLsfxCIvu`); empty for old clients.
    pub capabilities: String,
    /// `-z` / `--compress` (or a compress choice) was given.
    pub compress: bool,
    /// `--checksum-choice=NAME` forced by the client.
    pub checksum_choice: Option<String>,
    /// `--compress-choice=NAME` forced by the client.
    pub compress_choice: Option<String>,
    /// `--files-from` was given.
    pub files_from: bool,
}

impl ServerOptions {
    /// Parse the option list (everything before the lone `.`), with the
    /// transfer's own parser: one reading of the client's options decides
    /// both the protocol setup and the transfer. (Two parsers disagreed on
    /// which options take a value: `-B1e.x` or `--temp-dir -ze.x` gave the
    /// setup other capabilities, compression or even `--sender` than the
    /// transfer saw. Found by fuzzing.)
    pub fn parse(options: &[String]) -> Self {
        Self::from_transfer(&TransferOptions::parse(options))
    }

    /// The setup's view of options already parsed for the transfer.
    pub fn from_transfer(t: &TransferOptions) -> Self {
        ServerOptions {
            we_send: t.we_send,
            capabilities: t.capabilities.clone(),
            compress: t.compress,
            checksum_choice: t.checksum_choice.clone(),
            compress_choice: t.compress_choice.clone(),
            files_from: t.files_from.is_some(),
        }
    }

    /// Whether the client announced capability letter `c`.
    pub fn has_capability(&self, c: char) -> bool {
        self.capabilities.contains(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> ServerOptions {
        ServerOptions::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn typical_pull_and_push() {
        let pull = parse(&["--server", "--sender", "-vlogDtpre.iLsfxCIvu"]);
        assert!(pull.we_send && !pull.compress);
        assert_eq!(pull.capabilities, "iLsfxCIvu");
        let push = parse(&[
            "--server",
            "-vlogDtprze.iLsfxCIvu",
            "--compress-choice=zstd",
            "--checksum-choice=md5",
        ]);
        assert!(!push.we_send && push.compress);
        assert_eq!(push.compress_choice.as_deref(), Some("zstd"));
        assert_eq!(push.checksum_choice.as_deref(), Some("md5"));
        assert!(push.has_capability('v'));
        assert_eq!(parse(&["-ze.iLsfxCIvu", "--old-compress"]).compress_choice.as_deref(), Some("zlib"));
        assert_eq!(
            parse(&["-ze.iLsfxCIvu", "--new-compress"]).compress_choice.as_deref(),
            Some("zlibx")
        );
    }

    #[test]
    fn old_clients_have_no_capabilities() {
        let old = parse(&["--server", "--sender", "-vlogDtpr"]);
        assert_eq!(old.capabilities, "");
        assert!(!old.has_capability('v'));
    }

    /// The fuzz findings `args-capabilities-split` and
    /// `args-capabilities-separate-value`: a value is never read as options.
    #[test]
    fn values_are_not_read_as_options() {
        let b = parse(&["--server", "-B1e.iLsfxCIvu"]);
        assert_eq!(b.capabilities, "");
        let separate = parse(&["--server", "--temp-dir", "-ze.x", "-e.iLsf"]);
        assert!(!separate.compress);
        assert_eq!(separate.capabilities, "iLsf");
        assert!(!parse(&["--server", "--partial-dir", "--sender"]).we_send);
    }
}
