//! The file-list decoder a push runs on the client's list, for every
//! protocol from 27 to 32 and every option that shapes the wire, then
//! what the receiver does with the result (sorting, duplicate marking,
//! the parent check). A decoded list must re-encode into a list that
//! decodes to the same entries.

use oxrsyncd_worker::fuzzing::flist::{
    check_parents_listed, f_name_cmp, mark_content_dirs_before_30, sort_and_mark_duplicates, FileEntry, FlistDecoder, FlistEncoder,
    FlistOptions, HlinkRole, IdKind, IdNamer, MAXPATHLEN,
};

use crate::input::{protocol, Input};

/// Most entries decoded from one input.
const MAX_ENTRIES: usize = 20_000;
const S_IFMT: u32 = 0o170000;
const VALID_TYPES: [u32; 7] = [0o010000, 0o020000, 0o040000, 0o060000, 0o100000, 0o120000, 0o140000];

/// The options three bytes select (tests/fuzz/seeds/cut.py writes the same):
/// byte 0: protocol (27 + (b & 7) % 6), 0x08 varint flags (from 30), 0x10 id0
/// names, 0x20 safe flist, 0x40 -o, 0x80 -g; byte 1: 0x01 --numeric-ids,
/// 0x02 -l, 0x04 -D devices, 0x08 specials, 0x10 -H, 0x60 -c's checksum
/// length (none, 16, 20, 8), 0x80 -R (absolute names); byte 2: 0x01
/// --delete-missing-args, 0x02 -U (from 28), 0x04 incremental recursion.
pub fn options(input: &mut Input) -> FlistOptions {
    let (a, b, c) = (input.byte(), input.byte(), input.byte());
    let protocol = protocol(a);
    FlistOptions {
        protocol,
        varint_flags: protocol >= 30 && a & 0x08 != 0,
        id0_names: a & 0x10 != 0,
        safe_flist: a & 0x20 != 0,
        preserve_uid: a & 0x40 != 0,
        preserve_gid: a & 0x80 != 0,
        numeric_ids: b & 0x01 != 0,
        local_numeric_ids: false,
        preserve_links: b & 0x02 != 0,
        preserve_devices: b & 0x04 != 0,
        preserve_specials: b & 0x08 != 0,
        preserve_hard_links: b & 0x10 != 0,
        checksum_len: [None, Some(16), Some(20), Some(8)][usize::from(b >> 5) & 3],
        allow_absolute: b & 0x80 != 0,
        missing_entries: c & 0x01 != 0,
        preserve_atimes: protocol >= 28 && c & 0x02 != 0,
        inc_recurse: c & 0x04 != 0,
        preserve_acls: false,
    }
}

/// Input: three option bytes (see [`options`]), then the list as the
/// client sends it.
pub fn flist(data: &[u8]) {
    let mut input = Input::new(data);
    let opts = options(&mut input);
    let mut r = input.rest();
    let mut decoder = FlistDecoder::new(opts.clone());
    let mut entries = Vec::new();
    loop {
        match decoder.next(&mut r) {
            Ok(Some(e)) => {
                check_entry(&e, &opts);
                entries.push(e);
                if entries.len() >= MAX_ENTRIES {
                    return;
                }
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let roles = decoder.hlink_roles().to_vec();
    assert_eq!(roles.len(), entries.len());
    for (i, role) in roles.iter().enumerate() {
        if let HlinkRole::Follower(leader) = role {
            assert!((*leader as usize) < i, "entry {i} follows {leader}");
        }
    }
    let Ok(trailer) = decoder.finish(&mut r) else { return };
    assert!(
        trailer.io_error & !7 == 0,
        "io_error {:#x} outside the valid mask",
        trailer.io_error
    );
    round_trip(&opts, &entries, &roles);
    let mut entries = entries;
    if opts.protocol < 30 {
        mark_content_dirs_before_30(&mut entries, true, opts.allow_absolute);
    }
    let count = entries.len();
    let sorted = sort_and_mark_duplicates(entries, opts.protocol);
    assert_eq!(sorted.len(), count, "sorting keeps every slot");
    for pair in sorted.windows(2) {
        let (a, b) = (&pair[0].entry, &pair[1].entry);
        assert!(
            f_name_cmp(&a.name, a.is_dir(), &b.name, b.is_dir(), opts.protocol) != std::cmp::Ordering::Greater,
            "not sorted: {:?} before {:?}",
            String::from_utf8_lossy(&a.name),
            String::from_utf8_lossy(&b.name)
        );
    }
    let _ = check_parents_listed(&sorted);
}

/// What the decoder promises about one entry.
fn check_entry(e: &FileEntry, o: &FlistOptions) {
    assert!(!e.name.is_empty() && !e.name.contains(&0), "{:?}", e.name);
    assert!(e.name.len() < MAXPATHLEN);
    assert!(
        !e.name.split(|&b| b == b'/').any(|c| c == b".."),
        "`..` in {:?}",
        String::from_utf8_lossy(&e.name)
    );
    if !o.allow_absolute {
        assert!(!e.name.starts_with(b"/"), "absolute name {:?}", String::from_utf8_lossy(&e.name));
    }
    let kind = e.mode & S_IFMT;
    assert!(
        VALID_TYPES.contains(&kind) || (o.missing_entries && e.mode == 0),
        "mode {:o}",
        e.mode
    );
    assert!(e.size <= i64::MAX as u64);
    if let Some(t) = &e.link_target {
        assert!(t.len() < MAXPATHLEN);
    }
    if let (Some(sum), Some(len)) = (&e.checksum, o.checksum_len) {
        assert_eq!(sum.len(), len);
    }
}

/// Names nobody: the re-encoded list carries ids only.
struct NoNames;

impl IdNamer for NoNames {
    fn name(&self, _kind: IdKind, _id: u32) -> Option<Vec<u8>> {
        None
    }
}

/// Encode the decoded entries with the same options, decode that again:
/// the same entries must come back (fields the encoder cannot carry at
/// this protocol set aside).
fn round_trip(opts: &FlistOptions, entries: &[FileEntry], roles: &[HlinkRole]) {
    let mut enc_opts = opts.clone();
    enc_opts.local_numeric_ids = true;
    let mut encoder = FlistEncoder::with_namer(enc_opts, Box::new(NoNames));
    let mut wire = Vec::new();
    for (e, role) in entries.iter().zip(roles) {
        let mut e = e.clone();
        e.nlink = if *role == HlinkRole::DevIno { 2 } else { 0 };
        if e.is_dir() {
            (e.dev, e.ino) = (0, 0);
        }
        if let Err(err) = encoder.encode(&e, &mut wire) {
            panic!("a decoded entry does not encode: {err}");
        }
    }
    encoder.finish(0, &mut wire);
    let mut decoder = FlistDecoder::new(opts.clone());
    let mut r = &wire[..];
    for (i, e) in entries.iter().enumerate() {
        let again = match decoder.next(&mut r) {
            Ok(Some(again)) => again,
            other => panic!("entry {i} of the re-encoded list: {other:?}"),
        };
        assert_eq!(normal(again, opts), normal(e.clone(), opts), "entry {i} changed in a round trip");
    }
    assert!(matches!(decoder.next(&mut r), Ok(None)), "the re-encoded list ends where it should");
}

/// Set aside what the wire does not carry back: nanoseconds below 31,
/// the link count (the encoder's input only), sizes of devices and
/// specials, dev/ino of directories.
fn normal(mut e: FileEntry, o: &FlistOptions) -> FileEntry {
    if o.protocol < 31 {
        e.mtime_nsec = 0;
    }
    if e.is_device() || e.is_special() {
        // Upstream reads a size for a fifo or socket whose rdev does not
        // travel, and sends 0 for it.
        e.size = 0;
    }
    if e.is_dir() {
        // A directory flagged as hard-linked (protocol 28, 29): read as
        // upstream reads it, but no sender lists a directory so.
        e.dev = 0;
        e.ino = 0;
    }
    e.nlink = 0;
    e
}
