//! The push driver's steps over in-memory streams: the client's list and
//! data are built with the protocol crate and the file-list encoder, our
//! requests are read back with the protocol crate. No socket, no stock
//! client.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxrsyncd_protocol::item::{self, ItemAttrs};
use oxrsyncd_protocol::mux::{DemuxReader, MsgTag, MuxWriter};
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DONE};
use oxrsyncd_protocol::setup::Negotiated;
use oxrsyncd_protocol::wire::write_int;

use crate::transfer::context::ModuleContext;
use crate::transfer::delta::{read_sum_head, ChecksumKind, ChecksumParams, Compression, FileSum, TokenWriter};
use crate::transfer::filter::rules::FilterList;
use crate::transfer::flist::{FileEntry, FlistEncoder, FlistOptions};
use crate::transfer::limits::budget;
use crate::transfer::options::client::TransferOptions;
use crate::transfer::receive::driver::{prepare, receive_list, run};
use crate::transfer::receive::setup::{ReceiveError, ReceiveSetup};

const PROTOCOL: u32 = 31;

fn negotiated() -> Negotiated {
    Negotiated {
        compat_flags: 0,
        checksum: "md5".into(),
        compression: None,
        seed: 0,
    }
}

fn options(extra: &[&str]) -> TransferOptions {
    let mut args = vec!["--server".to_string(), "-re.iLsfxCIvu".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    TransferOptions::parse(&args)
}

/// Run `f` with a push's setup into module `dir` (destination `mod/`).
fn with_setup<T>(dir: &Path, options: &TransferOptions, daemon_filters: &FilterList, f: impl FnOnce(&ReceiveSetup<'_>) -> T) -> T {
    let negotiated = negotiated();
    let paths = vec![b"mod/".to_vec()];
    let context = ModuleContext {
        protocol: PROTOCOL,
        negotiated: &negotiated,
        options,
        module_name: "mod",
        module_root: dir.to_path_buf(),
        daemon_filters,
        server_rules: &[],
        munge_symlinks: false,
        fake_super: false,
        opened_root: None,
        module_numeric_ids: true,
        open_noatime: false,
        max_verbosity: 1,
        paths: &paths,
    };
    let setup = ReceiveSetup {
        module: &context,
        incoming_chmod: None,
        identity: None,
        may_chown: false,
        temp_dir: None,
        files_from: None,
    };
    f(&setup)
}

fn entry(name: &str, mode: u32, size: u64) -> FileEntry {
    let mut e = FileEntry::new(name.as_bytes().to_vec(), mode);
    e.size = size;
    e.mtime = 1_600_000_000;
    e
}

/// The client's file list, as its sender encodes it (unframed).
fn list(entries: &[FileEntry]) -> Vec<u8> {
    let mut encoder = FlistEncoder::new(FlistOptions {
        protocol: PROTOCOL,
        ..FlistOptions::default()
    });
    let mut out = Vec::new();
    for e in entries {
        encoder.encode(e, &mut out).unwrap();
    }
    encoder.finish(0, &mut out);
    out
}

fn framed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MuxWriter::new(&mut out).send(MsgTag::Data, data).unwrap();
    out
}

/// Step 1 alone: the list `entries` as the push receives it.
fn received(dir: &Path, options: &TransferOptions, entries: &[FileEntry]) -> Result<Vec<(Vec<u8>, bool)>, ReceiveError> {
    let mut stream = Vec::new();
    if options.prune_empty_dirs || options.delete_mode {
        // The client sends its (empty) filter list first.
        write_int(&mut stream, 0).unwrap();
    }
    stream.extend(list(entries));
    let input = framed(&stream);
    with_setup(dir, options, &FilterList::default(), |setup| {
        let mut input = DemuxReader::new(&input[..], true);
        let list = receive_list(setup, &mut input, &mut Vec::new())?;
        Ok(list.files.into_iter().map(|f| (f.entry.name, f.active)).collect())
    })
}

#[test]
fn the_list_is_received_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let got = received(
        dir.path(),
        &options(&[]),
        &[entry(".", 0o40755, 0), entry("b", 0o100644, 1), entry("a", 0o100644, 1)],
    )
    .unwrap();
    let names: Vec<&[u8]> = got.iter().map(|(n, _)| n.as_slice()).collect();
    assert_eq!(names, [&b"."[..], b"a", b"b"]);
}

#[test]
fn an_entry_outside_the_listed_directories_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = received(dir.path(), &options(&[]), &[entry(".", 0o40755, 0), entry("x/y", 0o100644, 1)]).unwrap_err();
    assert!(matches!(err, ReceiveError::InvalidPath(_)), "{err}");
}

#[test]
fn prune_empty_dirs_drops_directories_with_nothing_below() {
    let dir = tempfile::tempdir().unwrap();
    let entries = [
        entry(".", 0o40755, 0),
        entry("empty", 0o40755, 0),
        entry("full", 0o40755, 0),
        entry("full/f", 0o100644, 1),
    ];
    let active = |o: &TransferOptions| -> Vec<(Vec<u8>, bool)> { received(dir.path(), o, &entries).unwrap() };
    let kept = active(&options(&["-m"]));
    assert!(kept.contains(&(b"empty".to_vec(), false)), "{kept:?}");
    assert!(kept.contains(&(b"full".to_vec(), true)));
    assert!(
        active(&options(&[])).iter().all(|(_, active)| *active),
        "without -m nothing is dropped"
    );
}

#[test]
fn a_list_past_the_sessions_budget_ends_the_push() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = vec![entry(".", 0o40755, 0)];
    entries.extend((0..200).map(|i| entry(&format!("f{i:03}"), 0o100644, 1)));
    let before = budget::install(Some(budget::Budget::new(4096)));
    let result = received(dir.path(), &options(&[]), &entries);
    budget::install(before);
    assert!(matches!(result.unwrap_err(), ReceiveError::OutOfMemory(_)));
}

#[test]
fn a_backup_dir_the_module_excludes_is_rejected_while_preparing() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&["-b", "--backup-dir=hidden"]);
    let daemon_filters = FilterList::from_module(None, None, None, None, Some("hidden")).unwrap();
    let input = framed(&list(&[entry(".", 0o40755, 0), entry("a", 0o100644, 1)]));
    let result = with_setup(dir.path(), &options, &daemon_filters, |setup| {
        let mut input = DemuxReader::new(&input[..], true);
        let list = receive_list(setup, &mut input, &mut Vec::new())?;
        prepare(setup, list, Vec::new()).map(|_| ())
    });
    assert!(matches!(result.unwrap_err(), ReceiveError::OptionsRejected { at_parse: true }));
}

/// Our output, shared with the client's side so its data can wait for
/// our request as a real client's does.
#[derive(Clone, Default)]
struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl Write for SharedOutput {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The client's stream: `list` at once, `after` only once our output has
/// something in it (the generator's request), within five seconds.
struct ClientStream {
    list: io::Cursor<Vec<u8>>,
    after: io::Cursor<Vec<u8>>,
    output: SharedOutput,
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.list.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.output.0.lock().unwrap().is_empty() {
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the generator never asked"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.after.read(buf)
    }
}

/// One new file's data as the client's sender sends it: the item, an
/// empty sum head, the content as literal data, its checksum.
fn file_data(ndx: i32, content: &[u8], ndx_codec: &mut NdxCodec, out: &mut Vec<u8>) {
    ndx_codec.write(out, ndx).unwrap();
    out.extend_from_slice(&item::TRANSFER.to_le_bytes());
    for _ in 0..4 {
        write_int(out, 0).unwrap();
    }
    let mut tokens = TokenWriter::with_protocol(Compression::None, PROTOCOL);
    tokens.literal(content, out).unwrap();
    tokens.end_file(out).unwrap();
    let mut sum = FileSum::new(&ChecksumParams {
        kind: ChecksumKind::Md5,
        seed: 0,
        proper_seed_order: false,
    });
    sum.update(content);
    out.extend(sum.finish());
}

/// A whole push of `entries` (file data from `data`, by index) into `dir`.
fn push(dir: &Path, entries: &[FileEntry], data: &[(i32, &[u8])]) -> (Result<u64, ReceiveError>, Vec<u8>) {
    let mut after = Vec::new();
    let mut ndx = NdxCodec::new(PROTOCOL);
    for (i, content) in data {
        file_data(*i, content, &mut ndx, &mut after);
    }
    // Phase ends, then the answer to our goodbye.
    for _ in 0..4 {
        ndx.write(&mut after, NDX_DONE).unwrap();
    }
    let output = SharedOutput::default();
    let client = ClientStream {
        list: io::Cursor::new(framed(&list(entries))),
        after: io::Cursor::new(framed(&after)),
        output: output.clone(),
    };
    let options = options(&["-t"]);
    let result = with_setup(dir, &options, &FilterList::default(), |setup| {
        run(setup, client, output.clone(), None, None).map(|stats| stats.files_received)
    });
    let written = output.0.lock().unwrap().clone();
    (result, written)
}

#[test]
fn a_push_makes_directories_and_receives_files() {
    let dir = tempfile::tempdir().unwrap();
    let entries = [entry(".", 0o40755, 0), entry("d", 0o40755, 0), entry("d/f", 0o100644, 5)];
    let (result, output) = push(dir.path(), &entries, &[(2, b"hello")]);
    assert_eq!(result.expect("the push succeeds"), 1);
    assert_eq!(std::fs::read(dir.path().join("d/f")).unwrap(), b"hello");
    assert!(dir.path().join("d").is_dir());
    // What the generator asked for: index 2 (after any items it only
    // reports), with an empty sum head.
    let mut ours = DemuxReader::new(&output[..], true);
    let mut codec = NdxCodec::new(PROTOCOL);
    let requested = loop {
        let ndx = codec.read(&mut ours).unwrap();
        let attrs = ItemAttrs::read(&mut ours, PROTOCOL).unwrap();
        if attrs.iflags & item::TRANSFER != 0 {
            break ndx;
        }
    };
    assert_eq!(requested, 2);
    assert_eq!(read_sum_head(&mut ours, PROTOCOL, 16).unwrap().count, 0);
}

#[test]
fn data_nobody_asked_for_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"old").unwrap();
    let entries = [entry(".", 0o40755, 0), entry("a", 0o100644, 3)];
    // `a` is as big as the file there but older: the generator asks for
    // it, so send data for the directory's index instead.
    let (result, _) = push(dir.path(), &entries, &[(0, b"new")]);
    let err = result.unwrap_err();
    assert!(matches!(err, ReceiveError::Protocol(_) | ReceiveError::Violation(_)), "{err}");
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"old");
}
