//! Ways the daemon gets its connections: systemd socket activation through
//! the real `systemd-socket-activate`, inetd/stdio mode through a client's
//! `RSYNC_CONNECT_PROG`, and binding the port itself (`--port`, `-M`).

use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::client::rsync_env;
use crate::harness::daemon::binary;
use crate::harness::raw::list_modules;
use crate::harness::{free_port, wait_for_port};

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("rsyncd.conf");
    std::fs::write(
        &path,
        format!(
            "use chroot = no\nlog file = {}/d.log\n{extra}[pub]\n path = {}\n comment = via activation\n",
            dir.display(),
            dir.display()
        ),
    )
    .unwrap();
    path
}

/// Kills a process group on drop.
struct Group(u32);
impl Drop for Group {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-(self.0 as i32)), Signal::SIGKILL);
    }
}

/// A child leading its own process group: the group is killed and the child reaped on drop.
struct GroupChild(std::process::Child);
impl Drop for GroupChild {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-(self.0.id() as i32)), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

#[test]
fn systemd_socket_activation() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "");
    for _ in 0..5 {
        let port = free_port();
        let _activator = GroupChild(
            Command::new("systemd-socket-activate")
                .arg(format!("--listen=127.0.0.1:{port}"))
                .arg(binary())
                .arg(format!("--config={}", conf.display()))
                .arg("--workers=2")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("systemd-socket-activate (Debian package systemd)"),
        );
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        if !wait_for_port(addr, Duration::from_secs(5)) {
            continue;
        }
        // systemd-socket-activate execs the daemon on the first connection.
        assert_eq!(list_modules(addr, Duration::from_secs(10)).unwrap(), ["pub"]);
        let run = rsync_env(&[&format!("rsync://127.0.0.1:{port}/")], &[]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stdout, "pub            \tvia activation\n");
        return;
    }
    panic!("could not start systemd-socket-activate");
}

#[test]
fn stdio_mode_via_rsync_connect_prog() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "motd file = /dev/null\n");
    let prog = format!("{} --config={}", binary().display(), conf.display());
    let listing = rsync_env(&["rsync://localhost/"], &[("RSYNC_CONNECT_PROG", &prog)]);
    assert_eq!(listing.code, 0, "{listing:?}");
    assert_eq!(listing.stdout, "\npub            \tvia activation\n");
    let unknown = rsync_env(&["rsync://localhost/nosuch/"], &[("RSYNC_CONNECT_PROG", &prog)]);
    assert_eq!(unknown.code, 5, "{unknown:?}");
    assert!(unknown.stderr.contains("@ERROR: Unknown module 'nosuch'"), "{unknown:?}");
}

#[test]
fn binds_its_own_port_and_honours_dparams() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "");
    let pid_file = dir.path().join("oxrsyncd.pid");
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(binary())
            .arg(format!("--config={}", conf.display()))
            .arg(format!("--port={port}"))
            .arg("--address=127.0.0.1")
            .arg("--workers=1")
            .arg("-M")
            .arg(format!("pid file={}", pid_file.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        if !wait_for_port(addr, Duration::from_secs(10)) {
            let _ = child.kill();
            let _ = child.wait();
            continue;
        }
        assert_eq!(list_modules(addr, Duration::from_secs(10)).unwrap(), ["pub"]);
        let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        assert_eq!(pid, child.id(), "pid file holds the supervisor's pid");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        assert!(!pid_file.exists(), "pid file removed on exit");
        return;
    }
    panic!("could not bind a port");
}

#[test]
fn detach_runs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "");
    let pid_file = dir.path().join("d.pid");
    for _ in 0..5 {
        let port = free_port();
        let status = Command::new(binary())
            .arg(format!("--config={}", conf.display()))
            .args(["--detach", "--address=127.0.0.1", "--workers=1"])
            .arg(format!("--port={port}"))
            .arg(format!("--dparam=pid file={}", pid_file.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the foreground process exits 0 once detached");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        if !wait_for_port(addr, Duration::from_secs(10)) {
            continue;
        }
        // The port is bound before detaching; the pid file comes right after.
        assert!(crate::harness::eventually(Duration::from_secs(10), || pid_file.exists()));
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        let _group = Group(pid as u32);
        assert_eq!(list_modules(addr, Duration::from_secs(10)).unwrap(), ["pub"]);
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        assert!(
            crate::harness::eventually(Duration::from_secs(15), || !pid_file.exists()),
            "the detached daemon stops and removes its pid file"
        );
        return;
    }
    panic!("could not bind a port");
}
