//! The real `oxrsyncd` binary under test. It gets its listening socket the
//! systemd way (fd 3, LISTEN_FDS=1, LISTEN_PID set by a tiny `sh` wrapper
//! right before exec), so every test uses a truly ephemeral port with no
//! bind race.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Path of the binary Cargo built for this test run.
pub fn binary() -> PathBuf {
    std::env::var_os("OXRSYNCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_oxrsyncd")))
}

/// A running oxrsyncd (supervisor + workers), killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
}

impl Daemon {
    /// Start with `config` (rsyncd.conf text; `log file` is added) and extra CLI args.
    pub fn start(config: &str, extra_args: &[&str]) -> Daemon {
        Self::start_with_env(config, extra_args, &[])
    }

    /// Start with extra environment variables.
    pub fn start_with_env(config: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Self::start_with_listener(TcpListener::bind("127.0.0.1:0").unwrap(), config, extra_args, env)
    }

    /// Start on a given address, e.g. the port of one that was killed (the
    /// listener sets SO_REUSEADDR, so its old connections do not block it).
    pub fn start_on(addr: SocketAddr, config: &str, extra_args: &[&str]) -> Daemon {
        Self::start_with_listener(TcpListener::bind(addr).unwrap(), config, extra_args, &[])
    }

    fn start_with_listener(listener: TcpListener, config: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("oxrsyncd.log");
        let config_path = dir.path().join("rsyncd.conf");
        std::fs::write(&config_path, format!("log file = {}\n{config}", log_path.display())).unwrap();
        let addr = listener.local_addr().unwrap();
        let child = spawn_with_listener_env(&listener, &config_path, extra_args, env);
        drop(listener);
        let d = Daemon {
            child,
            addr,
            dir,
            config_path,
            log_path,
        };
        assert!(
            d.wait_ready(Duration::from_secs(20)),
            "daemon did not become ready; log:\n{}",
            d.log()
        );
        d
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn url(&self, path: &str) -> String {
        format!("rsync://{}/{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait until the supervisor logged `needle` at least `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, within: Duration) -> bool {
        super::eventually(within, || self.log().matches(needle).count() >= count)
    }

    fn wait_ready(&self, within: Duration) -> bool {
        self.wait_log("ready: generation", 1, within)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    pub fn rewrite_config(&self, config: &str) {
        let text = format!("log file = {}\n{config}", self.log_path.display());
        let tmp = self.dir.path().join("rsyncd.conf.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, &self.config_path).unwrap();
    }

    /// Worker pids of the supervisor, from /proc.
    pub fn workers(&self) -> Vec<Pid> {
        super::procfs::children(self.pid())
    }

    /// Wait for the supervisor to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stderr_text(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The whole process group: supervisor and workers.
        let _ = kill(Pid::from_raw(-(self.child.id() as i32)), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Spawn oxrsyncd with `listener` as its systemd socket.
pub fn spawn_with_listener(listener: &TcpListener, config: &Path, extra_args: &[&str]) -> Child {
    spawn_with_listener_env(listener, config, extra_args, &[])
}

fn spawn_with_listener_env(listener: &TcpListener, config: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Child {
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.envs(env.iter().copied());
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(binary())
        .arg(format!("--config={}", config.display()))
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: async-signal-safe dup2 in the forked child only.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep FD_CLOEXEC: clear it explicitly.
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("start oxrsyncd")
}
