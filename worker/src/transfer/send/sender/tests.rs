//! The sender's steps over in-memory streams: the client's side is built
//! with the protocol crate (filter list, requests, phase ends, goodbye),
//! our output is read back with it and the file-list decoder. No socket,
//! no stock client.

use std::path::Path;

use oxrsyncd_protocol::item::{self, ItemAttrs};
use oxrsyncd_protocol::mux::{DemuxReader, MsgTag, MuxWriter};
use oxrsyncd_protocol::ndx::{NdxCodec, NDX_DEL_STATS, NDX_DONE};
use oxrsyncd_protocol::setup::Negotiated;
use oxrsyncd_protocol::wire::{read_varlong, write_int, write_varint};

use crate::transfer::context::ModuleContext;
use crate::transfer::delta::{read_sum_head, ChecksumKind, ChecksumParams, Compression, FileSum, Token, TokenReader};
use crate::transfer::filter::rules::FilterList;
use crate::transfer::flist::{FileEntry, FlistDecoder, FlistOptions};
use crate::transfer::options::client::TransferOptions;
use crate::transfer::send::sender::{run, SenderError, SenderSetup, SenderStats};

const PROTOCOL: u32 = 31;

/// A module with two files, `a` ("hello") and `b` ("world!"): listed as
/// `.` (0), `a` (1), `b` (2).
fn module() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"hello").unwrap();
    std::fs::write(dir.path().join("b"), b"world!").unwrap();
    dir
}

/// The client's side of the stream, unframed.
struct Client {
    data: Vec<u8>,
    ndx: NdxCodec,
}

impl Client {
    /// A client that sends no filter rules.
    fn new() -> Self {
        let mut data = Vec::new();
        write_int(&mut data, 0).unwrap();
        Client {
            data,
            ndx: NdxCodec::new(PROTOCOL),
        }
    }

    fn ndx(mut self, ndx: i32) -> Self {
        self.ndx.write(&mut self.data, ndx).unwrap();
        self
    }

    /// An item: its flags and, for a transfer, an empty sum head (the
    /// client has no basis).
    fn item(mut self, ndx: i32, iflags: u16) -> Self {
        self = self.ndx(ndx);
        self.data.extend_from_slice(&iflags.to_le_bytes());
        if iflags & item::TRANSFER != 0 {
            for _ in 0..4 {
                write_int(&mut self.data, 0).unwrap();
            }
        }
        self
    }

    /// The three phase ends and the protocol 31 goodbye (two NDX_DONE).
    fn ending(self) -> Self {
        self.ndx(NDX_DONE).ndx(NDX_DONE).ndx(NDX_DONE).ndx(NDX_DONE).ndx(NDX_DONE)
    }

    /// The stream as the client sends it: in MSG_DATA frames.
    fn framed(self) -> Vec<u8> {
        let mut out = Vec::new();
        MuxWriter::new(&mut out).send(MsgTag::Data, &self.data).unwrap();
        out
    }
}

/// Pull `mod/` (recursively) from `dir` with the client's stream `input`;
/// returns what the sender returned and what it wrote.
fn pull(dir: &Path, input: Vec<u8>) -> (Result<SenderStats, SenderError>, Vec<u8>) {
    let options = TransferOptions::parse(&["--server".to_string(), "--sender".to_string(), "-re.iLsfxCIvu".to_string()]);
    let negotiated = Negotiated {
        compat_flags: 0,
        checksum: "md5".into(),
        compression: None,
        seed: 0,
    };
    let daemon_filters = FilterList::default();
    let paths = vec![b"mod/".to_vec()];
    let context = ModuleContext::for_tests(PROTOCOL, &negotiated, &options, &daemon_filters, dir, &paths);
    let setup = SenderSetup {
        module: &context,
        outgoing_chmod: None,
        ignore_nonreadable: false,
        transfer_log: None,
        dont_compress_all: false,
    };
    let mut output = Vec::new();
    let result = run(&setup, &input[..], &mut output, None);
    (result, output)
}

/// Our output, read as the client reads it: the file list, then the rest
/// of the data stream.
struct Output {
    list: Vec<FileEntry>,
    rest: DemuxReader<std::io::Cursor<Vec<u8>>>,
    ndx: NdxCodec,
}

impl Output {
    fn read(output: Vec<u8>) -> Self {
        let mut rest = DemuxReader::new(std::io::Cursor::new(output), true);
        let mut decoder = FlistDecoder::new(FlistOptions {
            protocol: PROTOCOL,
            ..FlistOptions::default()
        });
        let mut list = Vec::new();
        while let Some(entry) = decoder.next(&mut rest).unwrap() {
            list.push(entry);
        }
        decoder.finish(&mut rest).unwrap();
        Output {
            list,
            rest,
            ndx: NdxCodec::new(PROTOCOL),
        }
    }

    fn ndx(&mut self) -> i32 {
        self.ndx.read(&mut self.rest).unwrap()
    }

    /// One file's data as the client receives it: its item, sum head,
    /// literal data and whole-file checksum.
    fn file(&mut self) -> (i32, u16, Vec<u8>, Vec<u8>) {
        let ndx = self.ndx();
        let attrs = ItemAttrs::read(&mut self.rest, PROTOCOL).unwrap();
        let head = read_sum_head(&mut self.rest, PROTOCOL, 16).unwrap();
        assert_eq!(head.count, 0, "no sums came, so none go back");
        let mut tokens = TokenReader::new(Compression::None);
        let mut data = Vec::new();
        loop {
            match tokens.next(&mut self.rest).unwrap() {
                Token::Literal(bytes) => data.extend(bytes),
                Token::Block(k) => panic!("no basis, yet block {k}"),
                Token::End => break,
            }
        }
        let mut sum = vec![0u8; 16];
        std::io::Read::read_exact(&mut self.rest, &mut sum).unwrap();
        (ndx, attrs.iflags, data, sum)
    }
}

fn md5_of(data: &[u8]) -> Vec<u8> {
    let mut sum = FileSum::new(&ChecksumParams {
        kind: ChecksumKind::Md5,
        seed: 0,
        proper_seed_order: false,
    });
    sum.update(data);
    sum.finish()
}

#[test]
fn a_requested_file_is_sent_and_the_run_ends_like_upstream() {
    let dir = module();
    let input = Client::new().item(1, item::TRANSFER).ending().framed();
    let (result, output) = pull(dir.path(), input);
    let stats = result.expect("the pull succeeds");
    assert_eq!((stats.files_sent, stats.literal_bytes), (1, 5));
    let mut out = Output::read(output);
    let names: Vec<&[u8]> = out.list.iter().map(|e| e.name.as_slice()).collect();
    assert_eq!(names, [&b"."[..], b"a", b"b"]);
    let (ndx, iflags, data, sum) = out.file();
    assert_eq!((ndx, iflags), (1, item::TRANSFER), "the item is echoed");
    assert_eq!(data, b"hello");
    assert_eq!(sum, md5_of(b"hello"));
    // Phase ends echoed (two), then the end of the run.
    assert_eq!([out.ndx(), out.ndx(), out.ndx()], [NDX_DONE; 3]);
    // Stats: read, written, size, list build and transfer times.
    let read = read_varlong(&mut out.rest, 3).unwrap();
    let _written = read_varlong(&mut out.rest, 3).unwrap();
    assert!(read > 0);
    assert_eq!(read_varlong(&mut out.rest, 3).unwrap(), 11, "total size: a and b");
    let _flist_time = read_varlong(&mut out.rest, 3).unwrap();
    assert_eq!(read_varlong(&mut out.rest, 3).unwrap(), 0);
    // Protocol 31's goodbye: our NDX_DONE answers the client's first.
    assert_eq!(out.ndx(), NDX_DONE);
}

#[test]
fn an_item_without_data_is_only_echoed() {
    let dir = module();
    let input = Client::new().item(2, item::REPORT_TIME).ending().framed();
    let (result, output) = pull(dir.path(), input);
    assert_eq!(result.unwrap().files_sent, 0);
    let mut out = Output::read(output);
    assert_eq!(out.ndx(), 2);
    let attrs = ItemAttrs::read(&mut out.rest, PROTOCOL).unwrap();
    assert_eq!(attrs.iflags, item::REPORT_TIME);
    assert_eq!(out.ndx(), NDX_DONE, "no data follows the echo");
}

#[test]
fn deletion_stats_are_echoed_back() {
    let dir = module();
    let mut client = Client::new().ndx(NDX_DEL_STATS);
    for v in [1, 2, 3, 4, 5] {
        write_varint(&mut client.data, v).unwrap();
    }
    let (result, output) = pull(dir.path(), client.ending().framed());
    result.unwrap();
    let mut out = Output::read(output);
    assert_eq!(out.ndx(), NDX_DEL_STATS);
    let echoed: Vec<i32> = (0..5)
        .map(|_| oxrsyncd_protocol::wire::read_varint(&mut out.rest).unwrap())
        .collect();
    assert_eq!(echoed, [1, 2, 3, 4, 5]);
}

#[test]
fn a_negative_index_is_refused() {
    let dir = module();
    let (result, _) = pull(dir.path(), Client::new().ndx(-7).framed());
    let err = result.unwrap_err();
    assert!(
        matches!(&err, SenderError::Protocol(text) if text.starts_with("Invalid file index: -7")),
        "{err}"
    );
}

#[test]
fn an_index_past_the_list_is_refused() {
    let dir = module();
    let (result, _) = pull(dir.path(), Client::new().item(3, item::TRANSFER).framed());
    assert!(matches!(result.unwrap_err(), SenderError::Protocol(_)));
}

#[test]
fn data_for_a_directory_is_refused() {
    let dir = module();
    let (result, _) = pull(dir.path(), Client::new().item(0, item::TRANSFER).framed());
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("received request to transfer non-regular file: 0"),
        "{err}"
    );
}

#[test]
fn a_transfer_request_in_the_last_phase_is_refused() {
    let dir = module();
    let input = Client::new().ndx(NDX_DONE).ndx(NDX_DONE).item(1, item::TRANSFER).framed();
    let (result, _) = pull(dir.path(), input);
    let err = result.unwrap_err();
    assert!(err.to_string().contains("got transfer request in phase 2"), "{err}");
}

#[test]
fn a_wrong_goodbye_is_refused() {
    let dir = module();
    let input = Client::new().ndx(NDX_DONE).ndx(NDX_DONE).ndx(NDX_DONE).ndx(1).framed();
    let (result, _) = pull(dir.path(), input);
    let err = result.unwrap_err();
    assert!(err.to_string().contains("Invalid packet at end of run (1)"), "{err}");
}

#[test]
fn a_client_that_hangs_up_mid_request_ends_the_pull_with_an_error() {
    let dir = module();
    let mut client = Client::new().item(1, item::TRANSFER);
    client.data.truncate(client.data.len() - 3);
    let (result, _) = pull(dir.path(), client.framed());
    let err = result.unwrap_err();
    assert!(matches!(err, SenderError::Io(_) | SenderError::Delta(_)), "{err}");
}
