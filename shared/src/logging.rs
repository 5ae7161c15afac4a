//! Logging setup for both processes, via `tracing`.
//!
//! Where lines go, in order of preference:
//! 1. `--log-file` on the command line, else `log file` in the config:
//!    appended to, with upstream's line shape `YYYY/MM/DD HH:MM:SS [PID] text`
//!    so existing log parsers keep working; reopened on SIGHUP (logrotate).
//! 2. journald, when started by systemd (`JOURNAL_STREAM`/`INVOCATION_ID`)
//!    and the journal socket exists.
//! 3. stderr, in the same upstream line shape.
//!
//! A module with a `log file` of its own gets its sessions' lines there
//! instead (upstream's daemon reopens its log for the module): the session
//! thread, and the threads it starts, are routed to the module's file with
//! [`route_this_thread`]. With journald the lines go to both.
//!
//! `log style = json` writes each event as one JSON object instead (see
//! [`crate::json_log`]); a module's own log file follows the module's
//! `log style`, the daemon's log the global one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Append to this file.
    File(PathBuf),
    /// The systemd journal.
    Journald,
    /// Standard error.
    Stderr,
}

/// The log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot open log file {path}: {source}")]
    OpenFile { path: PathBuf, source: io::Error },
    #[error("cannot connect to the systemd journal: {0}")]
    Journald(io::Error),
}

/// Pick the target: an explicit file wins, then journald under systemd, else stderr.
pub fn choose_target(log_file: Option<&Path>) -> LogTarget {
    if let Some(path) = log_file {
        return LogTarget::File(path.to_path_buf());
    }
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some();
    if under_systemd && Path::new("/run/systemd/journal/socket").exists() {
        return LogTarget::Journald;
    }
    LogTarget::Stderr
}

/// How lines are written: upstream's text lines or one JSON object each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogStyle {
    /// `YYYY/MM/DD HH:MM:SS [PID] message`, as upstream.
    #[default]
    Text,
    /// One JSON object per line (docs/operations.md, "Machine-readable logs").
    Json,
}

impl LogStyle {
    /// From the `log style` parameter's value (validated by the config
    /// layer: anything but `json` is text).
    pub fn from_name(name: &str) -> LogStyle {
        if name.trim().eq_ignore_ascii_case("json") {
            LogStyle::Json
        } else {
            LogStyle::Text
        }
    }
}

/// What a session's lines say about it in JSON (`module`, `host`, `addr`),
/// for this thread and the threads it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogContext {
    pub module: Option<String>,
    pub host: Option<String>,
    pub addr: Option<String>,
}

/// Handle to reopen the log file (after logrotate moved it).
#[derive(Clone, Default)]
pub struct LogHandle {
    /// The open file, when logging to a file.
    file: Option<ReopenableFile>,
}

impl LogHandle {
    /// Reopen the log file by name; a no-op for journald and stderr.
    pub fn reopen(&self) -> Result<(), LoggingError> {
        match &self.file {
            Some(f) => f.reopen(),
            None => Ok(()),
        }
    }
}

/// A module's own `log file`, open for its sessions.
pub struct ModuleLog {
    /// The file, appended to one whole line at a time.
    file: Arc<Mutex<File>>,
    /// The module's `log style`.
    style: LogStyle,
}

impl ModuleLog {
    /// Open (create, append to) `path`, as the daemon's user, for lines
    /// in `style`.
    pub fn open(path: &Path, style: LogStyle) -> Result<Arc<ModuleLog>, LoggingError> {
        Ok(Arc::new(ModuleLog {
            file: Arc::new(Mutex::new(ReopenableFile::open_append(path)?)),
            style,
        }))
    }
}

thread_local! {
    /// Where this thread's lines go instead of the daemon's log.
    static ROUTE: std::cell::RefCell<Option<Arc<ModuleLog>>> = const { std::cell::RefCell::new(None) };
    /// The session this thread works for, as JSON lines name it.
    static CONTEXT: std::cell::RefCell<Option<Arc<LogContext>>> = const { std::cell::RefCell::new(None) };
}

/// Name this thread's session in its JSON lines (None: no session);
/// returns the context it had.
pub fn set_this_threads_context(context: Option<Arc<LogContext>>) -> Option<Arc<LogContext>> {
    CONTEXT.with(|c| std::mem::replace(&mut *c.borrow_mut(), context))
}

/// This thread's session context, to give to a thread it starts.
pub fn this_threads_context() -> Option<Arc<LogContext>> {
    CONTEXT.with(|c| c.borrow().clone())
}

/// Send this thread's log lines to `log` (None: the daemon's log again);
/// returns the route it had.
pub fn route_this_thread(log: Option<Arc<ModuleLog>>) -> Option<Arc<ModuleLog>> {
    ROUTE.with(|r| std::mem::replace(&mut *r.borrow_mut(), log))
}

/// This thread's route, to give to a thread it starts.
pub fn this_threads_route() -> Option<Arc<ModuleLog>> {
    ROUTE.with(|r| r.borrow().clone())
}

/// The writer of one line: the thread's module log when it has one.
fn routed_line() -> Option<LineWriter> {
    this_threads_route().map(|log| LineWriter {
        file: log.file.clone(),
        buf: Vec::with_capacity(160),
    })
}

/// A writer for the daemon's log that a routed thread's lines bypass.
#[derive(Clone)]
struct Routed<M>(M);

/// One line to the module's log or to the daemon's.
enum EitherLine<W> {
    Module(LineWriter),
    Daemon(W),
}

impl<W: Write> Write for EitherLine<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            EitherLine::Module(w) => w.write(data),
            EitherLine::Daemon(w) => w.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            EitherLine::Module(w) => w.flush(),
            EitherLine::Daemon(w) => w.flush(),
        }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Routed<M> {
    type Writer = EitherLine<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        match routed_line() {
            Some(line) => EitherLine::Module(line),
            None => EitherLine::Daemon(self.0.make_writer()),
        }
    }
}

/// For journald, which has its own layer: a routed thread's lines also
/// go to the module's log; other threads' lines go nowhere from here.
#[derive(Clone, Copy)]
struct ModuleOnly;

impl<'a> MakeWriter<'a> for ModuleOnly {
    type Writer = EitherLine<io::Sink>;
    fn make_writer(&'a self) -> Self::Writer {
        match routed_line() {
            Some(line) => EitherLine::Module(line),
            None => EitherLine::Daemon(io::sink()),
        }
    }
}

/// Install the global subscriber, writing lines in `style`.
/// `RUST_LOG`-style filtering comes from `OXRSYNCD_LOG` (default `info`).
pub fn init(target: &LogTarget, style: LogStyle) -> Result<LogHandle, LoggingError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;

    let filter = EnvFilter::try_from_env("OXRSYNCD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let mut handle = LogHandle::default();
    match target {
        LogTarget::Journald => {
            let layer = tracing_journald::layer()
                .map_err(LoggingError::Journald)?
                .with_syslog_identifier("oxrsyncd".into());
            let module = tracing_subscriber::fmt::layer()
                .event_format(LineFormat { style })
                .with_writer(ModuleOnly);
            let _ = registry.with(layer).with(module).try_init();
        }
        LogTarget::File(path) => {
            let file = ReopenableFile::open(path)?;
            handle.file = Some(file.clone());
            let layer = tracing_subscriber::fmt::layer()
                .event_format(LineFormat { style })
                .with_writer(Routed(file));
            let _ = registry.with(layer).try_init();
        }
        LogTarget::Stderr => {
            let layer = tracing_subscriber::fmt::layer()
                .event_format(LineFormat { style })
                .with_writer(Routed(io::stderr));
            let _ = registry.with(layer).try_init();
        }
    }
    Ok(handle)
}

/// Each event as a line in the daemon's style, or in the module's when the
/// thread is routed to a module's log: `2026/01/31 12:00:00 [1234]
/// message` as upstream's daemon log file, or one JSON object.
pub struct LineFormat {
    /// The daemon log's style.
    pub style: LogStyle,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &tracing::Event<'_>) -> std::fmt::Result {
        let style = this_threads_route().map_or(self.style, |log| log.style);
        if style == LogStyle::Json {
            let line = crate::json_log::event_line(event, this_threads_context().as_deref());
            return writeln!(writer, "{line}");
        }
        let now = chrono::Local::now();
        write!(writer, "{} [{}] ", now.format("%Y/%m/%d %H:%M:%S"), std::process::id())?;
        let mut text = String::new();
        if crate::json_log::is_structured(event) {
            // Its fields are for JSON; the message says it all.
            text = crate::json_log::message_of(event);
        } else {
            ctx.field_format().format_fields(Writer::new(&mut text), event)?;
        }
        writer.write_str(&one_line(&text))?;
        writeln!(writer)
    }
}

/// `t` (seconds since the epoch) in local time as upstream's
/// `timestring()`: `YYYY/MM/DD HH:MM:SS`, with `sep` between date and time
/// (`%M` in a `log format` uses `-`).
pub fn local_time(t: i64, sep: char) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(t, 0).earliest() {
        Some(time) => format!("{}{sep}{}", time.format("%Y/%m/%d"), time.format("%H:%M:%S")),
        None => t.to_string(),
    }
}

/// A file name as text for a log: valid UTF-8 as it is, every other byte
/// as upstream's `\#ooo` (three octal digits).
pub fn escaped_name(name: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(name) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\#{b:03o}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A message as one log line: its own line end dropped, and every other
/// control character (a newline or carriage return inside a client's file
/// name or message) written as upstream escapes it, `\#ooo`, so nothing a
/// client sends can forge a line of its own in the log.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let text = text.trim_end_matches(['\n', '\r']);
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\#{:03o}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// An append-mode log file shared by all threads, reopenable by name.
#[derive(Clone)]
struct ReopenableFile {
    /// Path to reopen.
    path: PathBuf,
    /// The current file; one line is written under the lock so lines never interleave.
    file: Arc<Mutex<File>>,
}

impl ReopenableFile {
    fn open(path: &Path) -> Result<Self, LoggingError> {
        let file = Self::open_append(path)?;
        Ok(ReopenableFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn open_append(path: &Path) -> Result<File, LoggingError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LoggingError::OpenFile {
                path: path.to_path_buf(),
                source,
            })
    }

    fn reopen(&self) -> Result<(), LoggingError> {
        let fresh = Self::open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

/// One formatted event, written to the file in a single `write` on drop.
struct LineWriter {
    file: Arc<Mutex<File>>,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
            let _ = f.write_all(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for ReopenableFile {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            file: self.file.clone(),
            buf: Vec::with_capacity(160),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_file_wins() {
        assert_eq!(choose_target(Some(Path::new("/x/log"))), LogTarget::File("/x/log".into()));
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let f = ReopenableFile::open(&path).unwrap();
        drop(f.make_writer().write_all(b"one\n"));
        std::fs::rename(&path, dir.path().join("d.log.1")).unwrap();
        f.reopen().unwrap();
        {
            let mut w = f.make_writer();
            w.write_all(b"two\n").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("d.log.1")).unwrap(), "one\n");
    }

    #[test]
    fn a_routed_thread_writes_to_its_module_log() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = ReopenableFile::open(&dir.path().join("daemon.log")).unwrap();
        let routed = Routed(daemon.clone());
        let module = ModuleLog::open(&dir.path().join("module.log"), LogStyle::Text).unwrap();
        drop(routed.make_writer().write_all(b"before\n"));
        let previous = route_this_thread(Some(module));
        assert!(previous.is_none());
        drop(routed.make_writer().write_all(b"session\n"));
        let route = this_threads_route();
        std::thread::spawn(move || {
            route_this_thread(route);
            drop(Routed(io::sink).make_writer().write_all(b"its thread\n"));
        })
        .join()
        .unwrap();
        route_this_thread(None);
        drop(routed.make_writer().write_all(b"after\n"));
        assert_eq!(std::fs::read_to_string(dir.path().join("daemon.log")).unwrap(), "before\nafter\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("module.log")).unwrap(),
            "session\nits thread\n"
        );
    }

    #[test]
    fn names_that_are_not_utf8_are_escaped() {
        assert_eq!(escaped_name(b"plain \"q\"\n"), "plain \"q\"\n");
        assert_eq!(escaped_name(b"caf\xe9/\xff\xfe"), "caf\\#351/\\#377\\#376");
        assert_eq!(local_time(0, '-').len(), 19);
    }

    #[test]
    fn a_message_is_one_line_whatever_it_holds() {
        assert_eq!(one_line("plain text\n"), "plain text");
        assert_eq!(
            one_line("client said: x\n2026/01/01 00:00:00 [1] forged\r"),
            "client said: x\\#0122026/01/01 00:00:00 [1] forged"
        );
        assert_eq!(one_line("tab\tstays, bell \u{7} goes"), "tab\tstays, bell \\#007 goes");
        assert!(!one_line("a\nb\rc\u{1b}[31m").contains(['\n', '\r', '\u{1b}']));
    }
}
