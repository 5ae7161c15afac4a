//! Stock `rsync --daemon`, the oracle, on the same config text.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running stock daemon, killed on drop.
pub struct StockDaemon {
    child: Child,
    pub addr: SocketAddr,
    /// Holds the config, pid and log files for the daemon's life.
    _dir: tempfile::TempDir,
}

impl StockDaemon {
    /// Start stock rsync on `config` (pid/lock/log files are added in a temp dir).
    pub fn start(config: &str) -> StockDaemon {
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let log_path = dir.path().join("rsyncd.log");
            let conf = dir.path().join("rsyncd.conf");
            std::fs::write(
                &conf,
                format!(
                    "log file = {}\npid file = {}/pid\n{config}",
                    log_path.display(),
                    dir.path().display()
                ),
            )
            .unwrap();
            let port = super::free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut child = Command::new("rsync")
                .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
                .arg(format!("--port={port}"))
                .arg(format!("--config={}", conf.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("stock rsync must be installed (the test command installs it)");
            if super::wait_for_port(addr, Duration::from_secs(5)) {
                return StockDaemon { child, addr, _dir: dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("stock rsync --daemon did not start");
    }
}

impl StockDaemon {
    /// What the daemon has written to its log file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("rsyncd.log")).unwrap_or_default()
    }
}

impl Drop for StockDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
