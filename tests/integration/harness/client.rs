//! The stock `rsync` client, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The stock clients every differential test runs: the system's (3.5.x)
/// and Debian bookworm's 3.2.7, which tests/run.sh unpacks into
/// `target/clients/rsync-3.2.7/`. Without it the 3.2.7 runs are skipped
/// with a note, unless OXRSYNCD_REQUIRE_ALL_CLIENTS is set (as tests/run.sh
/// does), where its absence is a failure.
pub fn clients() -> Vec<(&'static str, PathBuf)> {
    let mut out = vec![("system rsync", PathBuf::from("rsync"))];
    let old = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/clients/rsync-3.2.7/usr/bin/rsync");
    if old.exists() {
        out.push(("rsync 3.2.7", old));
    } else if std::env::var_os("OXRSYNCD_REQUIRE_ALL_CLIENTS").is_some() {
        panic!("the rsync 3.2.7 client is missing: run tests/run.sh");
    } else {
        eprintln!(
            "note: rsync 3.2.7 client not found ({}); run tests/run.sh to test with it",
            old.display()
        );
    }
    out
}

/// What a client run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ClientRun {
    /// What a user sees, with what legitimately differs between two
    /// daemons (byte counts, timings, speedup, source locations) masked.
    /// `drop_reset` drops the read error a stock daemon's reset causes.
    pub fn visible(&self, drop_reset: bool) -> (i32, Vec<String>, Vec<String>) {
        let norm = |text: &str| {
            text.lines()
                .map(|l| {
                    if l.starts_with("opening tcp connection to ") {
                        // -vv names the daemon's (ephemeral) port.
                        "opening tcp connection to ADDR".to_string()
                    } else if l.starts_with("sent ") && l.contains("bytes/sec") {
                        "sent N bytes  received N bytes  N bytes/sec".to_string()
                    } else if let Some(label) = [
                        "File list size:",
                        "File list generation time:",
                        "File list transfer time:",
                        "Total bytes sent:",
                        "Total bytes received:",
                    ]
                    .iter()
                    .find(|p| l.starts_with(**p))
                    {
                        format!("{label} N")
                    } else if let Some(i) = l.find("  speedup is ") {
                        l[..i].to_string()
                    } else if l.starts_with("rsync: connection unexpectedly closed (") {
                        // How much came before the close depends on framing.
                        let tail = l.split(" received so far)").nth(1).unwrap_or_default();
                        format!("rsync: connection unexpectedly closed (N bytes received so far){tail}")
                    } else if l.starts_with("rsync error:") {
                        l.split(" at ").next().unwrap_or(l).to_string()
                    } else {
                        l.to_string()
                    }
                })
                // Stock's daemon may close with unread input (a reset); we close in order.
                .filter(|l| !(drop_reset && l.contains("read error: Connection reset by peer")))
                .collect::<Vec<_>>()
        };
        (self.code, norm(&self.stdout), norm(&self.stderr))
    }

    /// Stderr with upstream's source locations and version tags removed, so
    /// two daemons' words can be compared: `rsync error: X (code N) at f.c(1) [R=3.5.0]`
    /// becomes `rsync error: X (code N)`.
    /// The `--stats` line that starts with `label`, if shown.
    pub fn stat_line(&self, label: &str) -> Option<String> {
        self.stdout.lines().find(|l| l.starts_with(label)).map(str::to_string)
    }

    pub fn normalized_stderr(&self) -> Vec<String> {
        self.stderr
            .lines()
            .map(|l| match (l.starts_with("rsync error:"), l.find(" at ")) {
                (true, Some(i)) => l[..i].to_string(),
                _ => l.to_string(),
            })
            .collect()
    }
}

/// Run `rsync ARGS` (bounded by `timeout`), with extra environment.
pub fn rsync_env(args: &[&str], env: &[(&str, &str)]) -> ClientRun {
    rsync_bin(Path::new("rsync"), args, env)
}

/// Run a given client binary.
pub fn rsync_bin<A: AsRef<std::ffi::OsStr>>(bin: &Path, args: &[A], env: &[(&str, &str)]) -> ClientRun {
    let mut cmd = Command::new("timeout");
    cmd.arg("60").arg(bin).args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rsync");
    ClientRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `rsync ARGS`.
pub fn rsync(args: &[&str]) -> ClientRun {
    rsync_env(args, &[])
}

/// Run `bin` with `options`, then one `rsync://addr/PATH` per path, then
/// `dst/`: the shape of every differential pull.
pub fn pull_paths(bin: &Path, addr: std::net::SocketAddr, options: &[&str], paths: &[&str], dst: &Path) -> ClientRun {
    let urls: Vec<String> = paths.iter().map(|path| format!("rsync://{addr}/{path}")).collect();
    let dst = format!("{}/", dst.display());
    let mut args: Vec<&str> = options.to_vec();
    args.extend(urls.iter().map(String::as_str));
    args.push(&dst);
    rsync_bin(bin, &args, &[])
}
