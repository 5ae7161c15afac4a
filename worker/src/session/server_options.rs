//! What a session needs to know from the client's server-side options
//! (`--server --sender -vlogDtpre.iLsfxCIvu ...`) to set the protocol up:
//! direction, capability letters, compression and checksum choices.

use crate::handshake::args::short_cluster_letters;

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
    /// Parse the option list (everything before the lone `.`).
    pub fn parse(options: &[String]) -> Self {
        let mut o = ServerOptions::default();
        for opt in options {
            if let Some(long) = opt.strip_prefix("--") {
                let (name, value) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                match name {
                    "sender" => o.we_send = true,
                    "compress" => o.compress = true,
                    // What clients send for a forced zlib / zlibx.
                    "old-compress" => {
                        o.compress = true;
                        o.compress_choice = Some("zlib".into());
                    }
                    "new-compress" => {
                        o.compress = true;
                        o.compress_choice = Some("zlibx".into());
                    }
                    "checksum-choice" | "cc" => o.checksum_choice = value.map(str::to_string),
                    "compress-choice" | "zc" => {
                        o.compress = true;
                        o.compress_choice = value.map(str::to_string);
                    }
                    "files-from" => o.files_from = true,
                    _ => {}
                }
            } else if let Some(cluster) = opt.strip_prefix('-') {
                if short_cluster_letters(cluster).contains('z') {
                    o.compress = true;
                }
                if let Some(pos) = cluster.find('e') {
                    let value = &cluster[pos + 1..];
                    o.capabilities = value.split_once('.').map(|(_, caps)| caps).unwrap_or(value).to_string();
                }
            }
        }
        o
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
}
