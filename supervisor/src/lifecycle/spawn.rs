//! Starting one worker process: fork + exec of our own binary with
//! `--internal-worker`, the five inherited descriptors moved to 3..=7 (see
//! `oxrsyncd_shared::control`), and PR_SET_PDEATHSIG so a worker never
//! outlives its supervisor. Exec gives every worker a clean address space
//! (no supervisor state, no half-initialised locks) and is the path to
//! binary upgrades; argv[0] carries the role and generation for `ps`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use oxrsyncd_shared::control::{self, WorkerIdentity};

/// A started worker, as the supervisor sees it.
pub struct Spawned {
    pub pid: Pid,
    /// Our end of the control socketpair.
    pub control: OwnedFd,
}

/// The descriptors a worker inherits.
pub struct WorkerFds<'a> {
    pub listener: BorrowedFd<'a>,
    pub config: BorrowedFd<'a>,
    pub session_table: BorrowedFd<'a>,
    pub scoreboard: BorrowedFd<'a>,
}

/// Start the worker `identity`.
pub fn spawn_worker(identity: WorkerIdentity, fds: &WorkerFds<'_>) -> io::Result<Spawned> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    let sources: [RawFd; 5] = [
        fds.listener.as_raw_fd(),
        theirs.as_raw_fd(),
        fds.config.as_raw_fd(),
        fds.session_table.as_raw_fd(),
        fds.scoreboard.as_raw_fd(),
    ];
    let targets: [RawFd; 5] = [
        control::LISTENER_FD,
        control::CONTROL_FD,
        control::CONFIG_FD,
        control::SESSION_TABLE_FD,
        control::SCOREBOARD_FD,
    ];
    let parent = std::process::id() as libc::pid_t;

    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(format!("oxrsyncd: worker gen {} slot {}", identity.generation, identity.slot))
        .arg("--internal-worker")
        .arg(identity.to_string())
        .stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (prctl, getppid, fcntl, dup2).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The supervisor may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(io::Error::other("supervisor exited during worker start"));
            }
            // Move sources out of the 3..=7 range first so no dup2 clobbers
            // a source that has not been moved yet.
            let mut high = [0 as RawFd; 5];
            for (i, &fd) in sources.iter().enumerate() {
                high[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64);
                if high[i] < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (i, &target) in targets.iter().enumerate() {
                // dup2 clears FD_CLOEXEC on the target.
                if libc::dup2(high[i], target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(theirs);
    Ok(Spawned {
        pid: Pid::from_raw(child.id() as i32),
        control: ours,
    })
}
