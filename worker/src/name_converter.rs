//! The module's `name converter`: a program the daemon starts for the
//! session (through `/bin/sh -c`, as the daemon's user with the module's
//! capability set, with the `pre-xfer exec` environment) and keeps asking
//! to turn owners' names into ids and back, one line each way, instead of
//! the system's user and group databases (which a chrooted module may not
//! have). The requests are upstream's: `uid N` / `gid N` for a name,
//! `usr NAME` / `grp NAME` for an id.
//!
//! What it may answer is checked as upstream 3.5 checks it: a name that
//! holds a control character (a newline would split the request in two)
//! is never sent, only logged; an id must be all digits and fit in 32
//! bits, so an empty answer (an unknown name) never becomes uid 0; an
//! answer is one line of at most 1 KiB. A converter that does not answer
//! within [`ANSWER_WAIT`], or has gone, answers nothing from then on: the
//! names stay unmapped rather than the session hanging.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::transfer::flist::{IdKind, IdNamer};

/// How long one answer may take.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// The longest answer line (upstream's buffer).
const MAX_ANSWER: usize = 1024;

/// A running name converter, shared by the threads of one session.
pub(crate) struct NameConverter {
    /// The program and its pipes; `None` once it failed.
    inner: Mutex<Option<Running>>,
    /// Names refused as tokens and logged (each once, up to
    /// [`MAX_REPORTED`]), so a list that repeats one logs it once.
    reported: Mutex<std::collections::HashSet<String>>,
}

/// How many distinct refused names are logged.
const MAX_REPORTED: usize = 100;

/// The converter's process and both ends of its conversation.
struct Running {
    child: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl NameConverter {
    /// Start `cmd` (the module's `name converter`) with `env`, keeping at
    /// most the capabilities `keep` (see `hooks.rs`).
    pub(crate) fn start(cmd: &str, env: &[(String, String)], keep: u64) -> io::Result<NameConverter> {
        let mut child = crate::hooks::shell_command(cmd, env, keep)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let (Some(requests), Some(answers)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("name converter started without its pipes"));
        };
        Ok(NameConverter {
            inner: Mutex::new(Some(Running {
                child,
                requests,
                answers: BufReader::new(answers),
            })),
            reported: Mutex::new(Default::default()),
        })
    }

    /// Our id for the owner `name` (a user with `users`, else a group),
    /// if the converter knows it.
    pub(crate) fn id_of(&self, name: &str, users: bool) -> Option<u32> {
        if name.bytes().any(|b| b < b' ' || b == 0x7f) {
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            if reported.len() < MAX_REPORTED && reported.insert(name.to_string()) {
                tracing::info!("invalid name-converter token: {}", name.escape_debug());
            }
            return None;
        }
        let answer = self.ask(&format!("{} {name}\n", if users { "usr" } else { "grp" }))?;
        if answer.is_empty() || !answer.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        answer.parse::<u32>().ok()
    }

    /// The name of our owner id `id`, if the converter gives one.
    pub(crate) fn name_of(&self, id: u32, users: bool) -> Option<Vec<u8>> {
        let answer = self.ask(&format!("{} {id}\n", if users { "uid" } else { "gid" }))?;
        (!answer.is_empty()).then(|| answer.into_bytes())
    }

    /// One request and its one-line answer; `None` (and no more asking)
    /// if the converter fails.
    fn ask(&self, request: &str) -> Option<String> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let running = guard.as_mut()?;
        match running.exchange(request) {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::info!("name converter failed: {e}; owners' names are no longer mapped");
                if let Some(mut gone) = guard.take() {
                    gone.stop();
                }
                None
            }
        }
    }
}

impl Running {
    fn exchange(&mut self, request: &str) -> io::Result<String> {
        self.requests.write_all(request.as_bytes())?;
        self.requests.flush()?;
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut line = Vec::new();
        loop {
            if self.answers.buffer().is_empty() {
                wait_readable(self.answers.get_ref(), deadline)?;
            }
            let available = self.answers.fill_buf()?;
            if available.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the converter closed its output"));
            }
            let (taken, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            line.extend_from_slice(&available[..taken]);
            self.answers.consume(taken);
            if line.len() > MAX_ANSWER {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "an answer longer than 1 KiB"));
            }
            if done {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NameConverter {
    fn drop(&mut self) {
        let guard = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut running) = guard.take() {
            // Its input closed, a well-behaved converter ends by itself.
            drop(running.requests);
            let deadline = Instant::now() + Duration::from_millis(200);
            while Instant::now() < deadline {
                if matches!(running.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

/// Wait until `from` has something to read (or its writer closed it).
fn wait_readable(from: &impl AsFd, deadline: Instant) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The names a pull sends for its owners, from the converter.
pub(crate) struct ConverterNamer(pub(crate) std::sync::Arc<NameConverter>);

impl IdNamer for ConverterNamer {
    fn name(&self, kind: IdKind, id: u32) -> Option<Vec<u8>> {
        self.0.name_of(id, kind == IdKind::User)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converter(script: &str) -> NameConverter {
        NameConverter::start(script, &[], u64::MAX).unwrap()
    }

    #[test]
    fn asks_one_line_each_way() {
        let c =
            converter("while read req arg; do case $req in usr) echo 1234;; grp) echo 55;; uid) echo alice;; gid) echo staff;; esac; done");
        assert_eq!(c.id_of("alice", true), Some(1234));
        assert_eq!(c.id_of("staff", false), Some(55));
        assert_eq!(c.name_of(1234, true), Some(b"alice".to_vec()));
        assert_eq!(c.name_of(55, false), Some(b"staff".to_vec()));
    }

    #[test]
    fn an_unknown_name_never_becomes_root() {
        let c =
            converter("while read req arg; do case $arg in empty) echo;; junk) echo 12x;; big) echo 99999999999;; *) echo 7;; esac; done");
        assert_eq!(c.id_of("empty", true), None, "an empty answer is no id, not 0");
        assert_eq!(c.id_of("junk", true), None);
        assert_eq!(c.id_of("big", true), None, "more than 32 bits");
        assert_eq!(c.id_of("fine", true), Some(7));
    }

    #[test]
    fn a_name_with_a_control_character_is_never_sent() {
        let log = tempfile::NamedTempFile::new().unwrap();
        let c = converter(&format!(
            "while read req arg; do echo \"$req $arg\" >> {}; echo 9; done",
            log.path().display()
        ));
        assert_eq!(c.id_of("bad\nname", true), None);
        assert_eq!(c.id_of("tab\there", false), None);
        assert_eq!(c.id_of("good", true), Some(9));
        assert_eq!(std::fs::read_to_string(log.path()).unwrap(), "usr good\n");
    }

    #[test]
    fn a_converter_that_dies_answers_nothing_more() {
        let c = converter("read req arg; echo 5");
        assert_eq!(c.id_of("a", true), Some(5));
        assert_eq!(c.id_of("b", true), None);
        assert_eq!(c.id_of("c", true), None);
    }
}
