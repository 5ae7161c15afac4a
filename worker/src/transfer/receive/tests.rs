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
    let context = ModuleContext::for_tests(PROTOCOL, &negotiated, options, daemon_filters, dir, &paths);
    let setup = ReceiveSetup {
        module: &context,
        incoming_chmod: None,
        identity: None,
        may_chown: false,
        temp_dir: None,
        files_from: None,
        transfer_log: None,
        meta: Default::default(),
    };
    f(&setup)
}

fn entry(name: &str, mode: u32, size: u64) -> FileEntry {
    let mut e = FileEntry::new(name.as_bytes().to_vec(), mode);
    e.size = size;
    e.mtime = 1_600_000_000;
    e
}

/// The client's file list, as its sender encodes it for `options`
/// (unframed).
fn list(entries: &[FileEntry], options: &TransferOptions) -> Vec<u8> {
    let mut encoder = FlistEncoder::new(FlistOptions {
        protocol: PROTOCOL,
        preserve_links: options.preserve_links,
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
    stream.extend(list(entries, options));
    let input = framed(&stream);
    with_setup(dir, options, &FilterList::default(), |setup| {
        let mut input = DemuxReader::new(&input[..], true);
        let list = receive_list(setup, &mut input, &mut Vec::new())?;
        Ok(list.first.files.into_iter().map(|f| (f.entry.name, f.active)).collect())
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
    let input = framed(&list(&[entry(".", 0o40755, 0), entry("a", 0o100644, 1)], &options));
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
    push_with(dir, &["-t"], entries, data)
}

/// [`push`] with the client's options `extra`.
fn push_with(dir: &Path, extra: &[&str], entries: &[FileEntry], data: &[(i32, &[u8])]) -> (Result<u64, ReceiveError>, Vec<u8>) {
    let mut after = Vec::new();
    let mut ndx = NdxCodec::new(PROTOCOL);
    for (i, content) in data {
        file_data(*i, content, &mut ndx, &mut after);
    }
    // Phase ends, then the answer to our goodbye.
    for _ in 0..4 {
        ndx.write(&mut after, NDX_DONE).unwrap();
    }
    let options = options(extra);
    let output = SharedOutput::default();
    let client = ClientStream {
        list: io::Cursor::new(framed(&list(entries, &options))),
        after: io::Cursor::new(framed(&after)),
        output: output.clone(),
    };
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
    // What the generator asked for: index 2, with an empty sum head.
    assert_eq!(requests(&output), [(2, 0)]);
}

/// The generator's requests in our output: (index, block sums offered).
fn requests(output: &[u8]) -> Vec<(i32, i32)> {
    let mut ours = DemuxReader::new(output, true);
    let mut codec = NdxCodec::new(PROTOCOL);
    let mut asked = Vec::new();
    loop {
        let ndx = codec.read(&mut ours).unwrap();
        if ndx == NDX_DONE {
            return asked;
        }
        let attrs = ItemAttrs::read(&mut ours, PROTOCOL).unwrap();
        if attrs.iflags & item::TRANSFER != 0 {
            let head = read_sum_head(&mut ours, PROTOCOL, 16).unwrap();
            let mut sums = vec![0u8; head.count as usize * (4 + head.s2length as usize)];
            ours.read_exact(&mut sums).unwrap();
            asked.push((ndx, head.count));
        }
    }
}

/// A file as the list names it, already in the module with `content` and
/// the list's time.
fn existing(dir: &Path, name: &str, content: &[u8]) -> FileEntry {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let e = entry(name, 0o100644, content.len() as u64);
    let time = std::time::UNIX_EPOCH + Duration::from_secs(e.mtime as u64);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(time)
        .unwrap();
    e
}

#[test]
fn the_generator_leaves_an_up_to_date_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let a = existing(dir.path(), "a", b"same");
    let (result, output) = push(dir.path(), &[entry(".", 0o40755, 0), a], &[]);
    assert_eq!(result.unwrap(), 0);
    assert_eq!(requests(&output), [], "same size and time: nothing asked for");
}

#[test]
fn the_generator_asks_for_a_changed_file_with_the_sums_of_its_basis() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = existing(dir.path(), "a", b"old contents");
    a.size = 3;
    let (result, output) = push(dir.path(), &[entry(".", 0o40755, 0), a], &[(1, b"new")]);
    assert_eq!(result.unwrap(), 1);
    assert_eq!(requests(&output), [(1, 1)], "one block of the old file offered as the basis");
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"new");
}

#[test]
fn ignore_existing_skips_a_file_that_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = existing(dir.path(), "a", b"old");
    a.size = 10;
    let (result, output) = push_with(dir.path(), &["-t", "--ignore-existing"], &[entry(".", 0o40755, 0), a], &[]);
    assert_eq!(result.unwrap(), 0);
    assert_eq!(requests(&output), []);
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"old");
}

#[test]
fn the_generator_makes_symlinks_with_l() {
    let dir = tempfile::tempdir().unwrap();
    let mut link = entry("l", 0o120777, 6);
    link.link_target = Some(b"target".to_vec());
    let list = [entry(".", 0o40755, 0), link];
    let (result, _) = push_with(dir.path(), &["-lt"], &list, &[]);
    result.unwrap();
    assert_eq!(std::fs::read_link(dir.path().join("l")).unwrap(), Path::new("target"));
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
