//! The stock `rsync` client, run as a user would.

use std::process::{Command, Stdio};

/// What a client run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ClientRun {
    /// Stderr with upstream's source locations and version tags removed, so
    /// two daemons' words can be compared: `rsync error: X (code N) at f.c(1) [R=3.5.0]`
    /// becomes `rsync error: X (code N)`.
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
    let mut cmd = Command::new("timeout");
    cmd.arg("60").arg("rsync").args(args).stdin(Stdio::null());
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
