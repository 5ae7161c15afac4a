//! The command line: `rsync --daemon`'s flags, so oxrsyncd can replace it
//! in scripts and units unchanged, plus our own few.

use std::path::PathBuf;

use clap::{ArgAction, Parser};
use oxrsyncd_shared::control::WorkerIdentity;

/// oxrsyncd: a prefork rsync daemon, drop-in for `rsync --daemon`.
#[derive(Debug, Parser)]
#[command(name = "oxrsyncd", version, about, long_about = None)]
pub struct Cli {
    /// As `rsync --daemon`: oxrsyncd is always a daemon; with this flag it
    /// also goes to the background unless `--no-detach` (as upstream).
    #[arg(long)]
    pub daemon: bool,

    /// The config file: classic rsyncd.conf, or TOML when it ends in `.toml`.
    /// Default: /etc/oxrsyncd.conf, then /etc/rsyncd.conf, else a built-in demo config.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Listen on this port instead of the config's `port` (default 873).
    #[arg(long)]
    pub port: Option<u16>,

    /// Bind this address instead of the config's `address`.
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,

    /// Stay in the foreground (the default without `--daemon`, and under
    /// systemd).
    #[arg(long, overrides_with = "detach")]
    pub no_detach: bool,

    /// Detach from the terminal and run in the background (the default
    /// with `--daemon`, as upstream's `rsync --daemon`).
    #[arg(long, overrides_with = "no_detach")]
    pub detach: bool,

    /// Log to this file instead of the config's `log file`.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Transfer log format (`log format`), accepted for compatibility.
    #[arg(long, value_name = "FORMAT")]
    pub log_file_format: Option<String>,

    /// Override a global config parameter: `-M name=value`, as if written at
    /// the end of the global section. May be repeated.
    #[arg(short = 'M', long = "dparam", value_name = "OVERRIDE")]
    pub dparams: Vec<String>,

    /// Listen on IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Listen on IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Socket options for accepted connections (as `socket options`).
    #[arg(long, value_name = "OPTIONS")]
    pub sockopts: Option<String>,

    /// Cap every session's sending rate (KiB/s; suffixes K, M, G), as
    /// upstream's `rsync --daemon --bwlimit`.
    #[arg(long, value_name = "RATE", value_parser = parse_rate_kib)]
    pub bwlimit: Option<u64>,

    /// More verbose logging (accepted for compatibility).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// Number of worker processes (overrides `workers`).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Validate the config, print the effective settings, exit 0 (valid) or 1.
    #[arg(long)]
    pub check_config: bool,

    /// Print the live connections of a running daemon (one line each) and
    /// exit: its supervisor is found by `--pid` or the config's `pid file`.
    /// Needs the daemon's user or root.
    #[arg(long)]
    pub status: bool,

    /// With `--status`: one JSON document instead of the table.
    #[arg(long, requires = "status")]
    pub json: bool,

    /// With `--status`: the supervisor's process id (default: the config's `pid file`).
    #[arg(long, value_name = "PID", requires = "status")]
    pub pid: Option<i32>,

    /// With `--daemon`: started by a client over a remote shell (`rsync -e
    /// ssh host::module`, upstream's daemon over rsh): serve that one
    /// client on standard input and output, then exit.
    #[arg(long, hide = true)]
    pub server: bool,

    /// The `.` a client's remote shell command ends with (ignored).
    #[arg(hide = true)]
    pub rest: Vec<String>,

    /// Internal: run as a worker process started by the supervisor.
    #[arg(long, hide = true, value_name = "GEN:SLOT:ROW")]
    pub internal_worker: Option<WorkerIdentity>,
}

impl Cli {
    /// The CLI flags that override config values, as `--dparam`-style
    /// overrides appended after the user's own `-M` ones, so every override
    /// goes through the same validation and survives reloads.
    pub fn effective_dparams(&self) -> Vec<String> {
        let mut out = self.dparams.clone();
        if let Some(port) = self.port {
            out.push(format!("port={port}"));
        }
        if let Some(address) = &self.address {
            out.push(format!("address={address}"));
        }
        if let Some(log_file) = &self.log_file {
            out.push(format!("log file={}", log_file.display()));
        }
        if let Some(format) = &self.log_file_format {
            out.push(format!("log format={format}"));
        }
        if let Some(sockopts) = &self.sockopts {
            out.push(format!("socket options={sockopts}"));
        }
        if let Some(workers) = self.workers {
            out.push(format!("workers={workers}"));
        }
        if let Some(kib) = self.bwlimit {
            out.push(format!("bwlimit={kib}"));
        }
        out
    }
}

/// `--bwlimit=RATE`: KiB per second, or with a K/M/G suffix (powers of
/// 1024), rounded to whole KiB as upstream does.
fn parse_rate_kib(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.strip_suffix(['k', 'm', 'g']) {
        Some(d) => (d, lower.chars().last()),
        None => (lower.as_str(), None),
    };
    let value: f64 = digits.parse().map_err(|_| format!("invalid rate {text:?}"))?;
    let bytes = value
        * match unit {
            Some('m') => 1024.0 * 1024.0,
            Some('g') => 1024.0 * 1024.0 * 1024.0,
            _ => 1024.0,
        };
    if !(0.0..=1e15).contains(&bytes) {
        return Err(format!("rate {text:?} out of range"));
    }
    Ok(((bytes + 512.0) / 1024.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwlimit_rates_are_kib_with_suffixes() {
        assert_eq!(parse_rate_kib("1000"), Ok(1000));
        assert_eq!(parse_rate_kib("1.5m"), Ok(1536));
        assert_eq!(parse_rate_kib("2G"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_rate_kib("0"), Ok(0));
        assert!(parse_rate_kib("fast").is_err());
        let cli = Cli::try_parse_from(["oxrsyncd", "--daemon", "--bwlimit=10M"]).unwrap();
        assert!(cli.effective_dparams().contains(&"bwlimit=10240".to_string()));
    }

    #[test]
    fn accepts_upstream_daemon_flags() {
        let cli = Cli::try_parse_from([
            "oxrsyncd",
            "--daemon",
            "--no-detach",
            "--config=/etc/rsyncd.conf",
            "--port=8730",
            "--address",
            "127.0.0.1",
            "-M",
            "listen backlog=64",
            "--log-file=/tmp/x.log",
            "-4",
            "--sockopts=SO_KEEPALIVE",
            "-v",
        ])
        .unwrap();
        assert!(cli.daemon && cli.no_detach && !cli.detach && cli.ipv4);
        let d = cli.effective_dparams();
        assert_eq!(d[0], "listen backlog=64");
        assert!(d.contains(&"port=8730".to_string()));
        assert!(d.contains(&"log file=/tmp/x.log".to_string()));
        assert!(d.contains(&"socket options=SO_KEEPALIVE".to_string()));
    }

    #[test]
    fn ipv4_and_ipv6_conflict() {
        assert!(Cli::try_parse_from(["oxrsyncd", "-4", "-6"]).is_err());
    }

    #[test]
    fn worker_identity_is_parsed() {
        let cli = Cli::try_parse_from(["oxrsyncd", "--internal-worker", "3:1:9"]).unwrap();
        assert_eq!(cli.internal_worker.unwrap().table_index, 9);
    }
}
