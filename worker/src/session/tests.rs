//! A whole session over in-memory streams: the request comes from the
//! handshake state machine, the client's side of protocol setup and of the
//! transfer is built with the protocol crate, and our output is read back
//! frame by frame. No socket, no stock client.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oxrsyncd_protocol::mux::{MsgTag, MuxWriter};
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DONE};
use oxrsyncd_protocol::wire::{read_int, read_varint, read_vstring, write_int, write_vstring};
use oxrsyncd_shared::config::parse_rsyncd_conf;

use crate::handshake::{Handshake, Progress, SessionRequest};
use crate::session::{run, SessionStream};

/// A connection with nothing behind it: timeouts and half-closes are no-ops.
struct InMemory;

impl SessionStream for InMemory {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn keepalive_writer(&self) -> Option<Box<dyn Write + Send>> {
        None
    }
    fn shutdown_write(&self) {}
    fn read_stopper(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }
}

/// The request a protocol 32 client makes for module `m` (in `dir`, with
/// `module_extra` in its section) with `args`.
fn request(dir: &Path, module_extra: &str, args: &[&str]) -> SessionRequest {
    let text = format!(
        "reverse lookup = no\nlock file = {d}/lock\n[m]\n path = {d}\n use chroot = no\n{module_extra}\n",
        d = dir.display()
    );
    let config = Arc::new(parse_rsyncd_conf(&text, Path::new("test.conf"), &[]).unwrap());
    let mut hs = Handshake::new(config, IpAddr::V4(Ipv4Addr::LOCALHOST));
    hs.begin();
    hs.feed(b"@RSYNCD: 32.0 md5");
    hs.feed(b"m");
    for a in args {
        hs.feed(a.as_bytes());
    }
    let Progress::Session(request) = hs.feed(b"") else {
        panic!("the handshake admits the client");
    };
    *request
}

/// Run the session with the client's stream `input`; returns the exit
/// code and what we wrote.
fn session(request: SessionRequest, input: Vec<u8>) -> (i32, Vec<u8>) {
    let mut reader = io::BufReader::new(&input[..]);
    let mut output = Vec::new();
    let code = run(request, &mut reader, &mut output, &InMemory);
    (code, output)
}

/// Our side of protocol setup, then the frames that follow.
struct Output {
    checksums: Vec<u8>,
    frames: Vec<(u8, Vec<u8>)>,
}

impl Output {
    fn read(output: &[u8]) -> Output {
        let mut r = output;
        let _compat_flags = read_varint(&mut r).unwrap();
        let checksums = read_vstring(&mut r, 1024).unwrap();
        let _seed = read_int(&mut r).unwrap();
        let mut frames = Vec::new();
        while !r.is_empty() {
            let header = read_int(&mut r).unwrap() as u32;
            let len = (header & 0x00FF_FFFF) as usize;
            let mut payload = vec![0u8; len];
            r.read_exact(&mut payload).unwrap();
            frames.push(((header >> 24) as u8 - 7, payload));
        }
        Output { checksums, frames }
    }

    /// The text of every MSG_ERROR frame.
    fn errors(&self) -> String {
        self.frames
            .iter()
            .filter(|(tag, _)| *tag == MsgTag::Error as u8)
            .map(|(_, text)| String::from_utf8_lossy(text).into_owned())
            .collect()
    }

    /// The code of the MSG_ERROR_EXIT frame, if any.
    fn error_exit(&self) -> Option<i32> {
        self.frames
            .iter()
            .find(|(tag, _)| *tag == MsgTag::ErrorExit as u8)
            .map(|(_, p)| i32::from_le_bytes([p[0], p[1], p[2], p[3]]))
    }
}

/// A client's answer to protocol setup: its checksum list.
fn setup_answer() -> Vec<u8> {
    let mut input = Vec::new();
    write_vstring(&mut input, b"md5").unwrap();
    input
}

const PUSH: &[&str] = &["--server", "-re.iLsfxCIvu", ".", "m/"];
const PULL: &[&str] = &["--server", "--sender", "-re.iLsfxCIvu", ".", "m/"];

#[test]
fn a_push_to_a_read_only_module_is_refused_after_setup() {
    let dir = tempfile::tempdir().unwrap();
    let (code, output) = session(request(dir.path(), "", PUSH), setup_answer());
    assert_eq!(code, 1);
    let out = Output::read(&output);
    assert!(out.checksums.starts_with(b"xxh128"), "setup ran first");
    assert_eq!(
        out.errors(),
        format!(
            "ERROR: module is read only\nrsync error: syntax or usage error (code 1) at oxrsyncd [Receiver={}]\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(out.error_exit(), Some(1));
}

#[test]
fn a_refused_option_comes_before_the_read_only_check() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--server", "-re.iLsfxCIvu", "--delete", ".", "m/"];
    let (code, output) = session(request(dir.path(), " refuse options = delete", &args), setup_answer());
    assert_eq!(code, 4);
    let errors = Output::read(&output).errors();
    assert!(
        errors.starts_with("rsync: The server is configured to refuse --delete\n"),
        "{errors}"
    );
}

#[test]
fn an_invalid_option_value_is_refused_in_upstreams_words() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--server", "--sender", "-re.iLsfxCIvu", "--max-size=12x", ".", "m/"];
    let (code, output) = session(request(dir.path(), "", &args), setup_answer());
    assert_eq!(code, 1);
    let errors = Output::read(&output).errors();
    assert!(errors.starts_with("rsync: --max-size=12x is invalid\n"), "{errors}");
}

#[test]
fn a_write_only_module_refuses_a_pull() {
    let dir = tempfile::tempdir().unwrap();
    let (code, output) = session(request(dir.path(), " write only = yes", PULL), setup_answer());
    assert_eq!(code, 1);
    assert!(Output::read(&output).errors().starts_with("ERROR: module is write only\n"));
}

#[test]
fn a_pull_that_asks_for_nothing_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = setup_answer();
    let mut data = Vec::new();
    write_int(&mut data, 0).unwrap(); // no filter rules
    let mut ndx = NdxCodec::new(32);
    for _ in 0..5 {
        ndx.write(&mut data, NDX_DONE).unwrap(); // three phase ends, the goodbye
    }
    MuxWriter::new(&mut input).send(MsgTag::Data, &data).unwrap();
    let (code, output) = session(request(dir.path(), "", PULL), input);
    let out = Output::read(&output);
    assert_eq!(code, 0, "{}", out.errors());
    assert_eq!(out.error_exit(), None);
    assert!(
        out.frames.iter().any(|(tag, _)| *tag == MsgTag::Data as u8),
        "the file list went out"
    );
}
