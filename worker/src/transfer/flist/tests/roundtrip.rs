//! encode -> decode round trips over every entry type and option mix.

use crate::transfer::flist::xmit::*;
use crate::transfer::flist::{FileEntry, FlistDecoder, FlistEncoder, FlistOptions, HlinkRole, IdKind, IdNamer};

struct FakeNamer;
impl IdNamer for FakeNamer {
    fn name(&self, kind: IdKind, id: u32) -> Option<Vec<u8>> {
        match (kind, id) {
            (_, 0) => Some(b"root".to_vec()),
            (IdKind::User, 1000) => Some(b"alice".to_vec()),
            (IdKind::Group, 100) => Some(b"users".to_vec()),
            (_, 7) => Some(vec![b'n'; 300]), // longer than 255: truncated
            _ => None,
        }
    }
}

fn sample(checksum_len: usize) -> Vec<FileEntry> {
    let mut v = Vec::new();
    let mut d = FileEntry::new(".", S_IFDIR | 0o755);
    d.mtime = 1_700_000_000;
    d.size = 4096;
    d.top_dir = true;
    v.push(d);
    let mut f = FileEntry::new("a.txt", S_IFREG | 0o644);
    f.size = 12;
    f.mtime = 1_700_000_001;
    f.mtime_nsec = 123_456_789;
    f.uid = 1000;
    f.gid = 100;
    f.checksum = Some(vec![0xAB; checksum_len]);
    v.push(f.clone());
    let mut big = FileEntry::new("big", S_IFREG | 0o600);
    big.size = 5 << 32;
    big.mtime = 1_700_000_001; // same time as previous
    big.uid = 1000;
    big.gid = 7;
    big.checksum = Some(vec![1; checksum_len]);
    v.push(big);
    let mut ln = FileEntry::new("link", S_IFLNK | 0o777);
    ln.size = 5;
    ln.mtime = 5;
    ln.link_target = Some(b"a.txt".to_vec());
    ln.uid = 7;
    ln.gid = 7;
    v.push(ln);
    let mut cdev = FileEntry::new("dev/null", S_IFCHR | 0o666);
    cdev.rdev_major = 1;
    cdev.rdev_minor = 3;
    v.push(cdev.clone());
    let mut cdev2 = FileEntry::new("dev/zero", S_IFCHR | 0o666);
    cdev2.rdev_major = 1; // same major
    cdev2.rdev_minor = 70000; // > 8 bits
    v.push(cdev2);
    let mut bdev = FileEntry::new("dev/sda", S_IFBLK | 0o660);
    bdev.rdev_major = 300;
    bdev.rdev_minor = 2;
    v.push(bdev);
    v.push(FileEntry::new("fifo", S_IFIFO | 0o644));
    v.push(FileEntry::new("sock", S_IFSOCK | 0o755));
    let mut sub = FileEntry::new("sub", S_IFDIR | 0o700);
    sub.no_content_dir = false;
    sub.mtime = 99;
    v.push(sub);
    // long names: > 255 bytes not shared with the previous one
    let long = format!("{}/{}", "d".repeat(200), "f".repeat(250));
    let mut lf = FileEntry::new(long.as_bytes(), S_IFREG | 0o644);
    lf.size = 1;
    lf.checksum = Some(vec![2; checksum_len]);
    v.push(lf);
    let mut lf2 = FileEntry::new(format!("{long}2").as_bytes(), S_IFREG | 0o644);
    lf2.checksum = Some(vec![3; checksum_len]);
    v.push(lf2);
    let mut hi = FileEntry::new(b"\xff\xfe\x80name".to_vec(), S_IFREG | 0o644);
    hi.checksum = Some(vec![4; checksum_len]);
    hi.mtime = -5; // negative times travel from 30
    v.push(hi);
    // hard links: two groups, the second interleaved
    for (i, (name, ino)) in [("h1", 10u64), ("h2", 11), ("h3", 10), ("h4", 11), ("h5", 10)].iter().enumerate() {
        let mut h = FileEntry::new(*name, S_IFREG | 0o644);
        h.size = 3;
        h.mtime = 1000;
        h.dev = 0x803;
        h.ino = *ino;
        h.nlink = 3;
        h.uid = 1000 + i as u32 % 2;
        h.checksum = Some(vec![*ino as u8; checksum_len]);
        v.push(h);
    }
    v
}

/// What the receiver can know about `e` under `o` (fields the wire does
/// not carry are zero).
fn expected(e: &FileEntry, o: &FlistOptions) -> FileEntry {
    let mut x = e.clone();
    let p = o.protocol;
    if p < 31 {
        x.mtime_nsec = 0;
    }
    if p < 30 {
        x.mtime = i64::from(x.mtime as u32);
    }
    if !o.preserve_uid {
        x.uid = 0;
    }
    if !o.preserve_gid {
        x.gid = 0;
    }
    if !(o.preserve_devices && x.is_device()) {
        x.rdev_major = 0;
        x.rdev_minor = 0;
    }
    if x.is_device() || x.is_special() {
        x.size = 0;
    }
    if !(o.preserve_links && x.is_symlink()) {
        x.link_target = None;
    }
    if o.checksum_len.is_none() || !x.is_reg() {
        x.checksum = None;
    }
    let linked = o.preserve_hard_links && if p >= 28 { !x.is_dir() && x.nlink > 1 } else { x.is_reg() };
    if !(linked && p < 30) {
        x.dev = 0;
        x.ino = 0;
    }
    x.nlink = 0;
    if !x.is_dir() {
        x.top_dir = false;
        x.no_content_dir = false;
    } else if p < 30 {
        x.no_content_dir = false;
    }
    x
}

fn round_trip(o: &FlistOptions, entries: &[FileEntry], io_error: i32) {
    let mut enc = FlistEncoder::with_namer(o.clone(), Box::new(FakeNamer));
    let mut buf = Vec::new();
    for e in entries {
        enc.encode(e, &mut buf).unwrap();
    }
    enc.finish(io_error, &mut buf);
    let mut dec = FlistDecoder::new(o.clone());
    let mut r = &buf[..];
    let mut got = Vec::new();
    while let Some(e) = dec.next(&mut r).unwrap_or_else(|e| panic!("{o:?}: {e} after {:?}", got.last())) {
        got.push(e);
    }
    let trailer = dec.finish(&mut r).unwrap();
    assert!(r.is_empty(), "{} trailing bytes for {o:?}", r.len());
    assert_eq!(got.len(), entries.len());
    for (g, e) in got.iter().zip(entries) {
        assert_eq!(*g, expected(e, o), "options {o:?}");
    }
    // io_error travels unless protocol 30 without safe flist (MSG_IO_ERROR then).
    let want_err = if o.io_error_needs_msg(io_error) { 0 } else { io_error };
    assert_eq!(trailer.io_error, want_err, "{o:?}");
    if o.sends_id_lists() && !entries.is_empty() {
        if o.preserve_uid {
            assert!(trailer.uid_names.contains(&(1000, b"alice".to_vec())), "{:?}", trailer.uid_names);
            assert!(trailer.uid_names.contains(&(7, vec![b'n'; 255])));
            assert_eq!(trailer.uid_names.last() == Some(&(0, b"root".to_vec())), o.id0_names);
        }
        if o.preserve_gid {
            assert!(trailer.gid_names.contains(&(100, b"users".to_vec())));
        }
    } else if !o.sends_id_lists() {
        assert!(trailer.uid_names.is_empty() && trailer.gid_names.is_empty());
    }
    if o.preserve_hard_links && o.protocol >= 30 && !entries.is_empty() {
        let roles = dec.hlink_roles();
        let base = entries.iter().position(|e| e.name == b"h1").unwrap();
        assert_eq!(roles[base], HlinkRole::Leader);
        assert_eq!(roles[base + 1], HlinkRole::Leader);
        assert_eq!(roles[base + 2], HlinkRole::Follower(base as u32));
        assert_eq!(roles[base + 3], HlinkRole::Follower(base as u32 + 1));
    }
    // Re-encoding what was decoded gives the same bytes (nothing lost that matters).
    if !(o.preserve_hard_links && o.protocol >= 30) {
        let mut enc2 = FlistEncoder::with_namer(o.clone(), Box::new(FakeNamer));
        let mut buf2 = Vec::new();
        for g in &got {
            let mut g = g.clone();
            if g.dev != 0 || g.ino != 0 {
                g.nlink = 2;
            }
            enc2.encode(&g, &mut buf2).unwrap();
        }
        enc2.finish(io_error, &mut buf2);
        assert_eq!(buf2, buf, "{o:?}");
    }
}

fn option_grid() -> Vec<FlistOptions> {
    let mut all = Vec::new();
    for protocol in [27u32, 28, 29, 30, 31, 32] {
        for varint in [false, true] {
            if varint && protocol < 30 {
                continue;
            }
            for bits in 0u32..32 {
                let o = FlistOptions {
                    protocol,
                    varint_flags: varint,
                    id0_names: varint && bits & 1 != 0,
                    safe_flist: bits & 1 != 0,
                    preserve_uid: bits & 2 != 0,
                    preserve_gid: bits & 2 != 0,
                    numeric_ids: bits & 16 != 0,
                    local_numeric_ids: false,
                    preserve_links: bits & 4 != 0,
                    preserve_devices: bits & 4 != 0,
                    preserve_specials: bits & 8 != 0,
                    preserve_hard_links: bits & 8 != 0,
                    checksum_len: if bits & 1 != 0 {
                        Some(16)
                    } else if bits & 8 != 0 {
                        Some(8)
                    } else {
                        None
                    },
                    inc_recurse: false,
                    missing_entries: false,
                    // (-U needs protocol 28's two-byte flags.)
                    preserve_atimes: protocol >= 28 && bits & 4 != 0,
                    allow_absolute: false,
                    // (ACLs are sender-only: the decoder does not read them.)
                    preserve_acls: false,
                };
                all.push(o);
            }
        }
    }
    all
}

#[test]
fn round_trips_every_type_and_option_combination() {
    let mut n = 0;
    for o in option_grid() {
        let entries = sample(o.checksum_len.unwrap_or(0));
        round_trip(&o, &entries, 0);
        round_trip(&o, &entries, 1);
        n += 1;
    }
    assert_eq!(n, 288);
}

#[test]
fn empty_list_ends_cleanly() {
    for o in option_grid() {
        round_trip(&o, &[], 0);
    }
}

#[test]
fn inc_recurse_names_follow_inline_and_no_id_lists() {
    let o = FlistOptions {
        protocol: 31,
        varint_flags: true,
        preserve_uid: true,
        preserve_gid: true,
        inc_recurse: true,
        ..Default::default()
    };
    let mut enc = FlistEncoder::with_namer(o.clone(), Box::new(FakeNamer));
    let mut buf = Vec::new();
    let entries = sample(0);
    for e in &entries {
        enc.encode(e, &mut buf).unwrap();
    }
    enc.finish(0, &mut buf);
    let mut dec = FlistDecoder::new(o);
    let mut r = &buf[..];
    while dec.next(&mut r).unwrap().is_some() {}
    let t = dec.finish(&mut r).unwrap();
    assert!(r.is_empty());
    assert!(t.uid_names.is_empty());
    assert_eq!(t.inline_uid_names[0], (0, b"root".to_vec()));
    assert!(t.inline_uid_names.contains(&(1000, b"alice".to_vec())));
    assert!(t.inline_gid_names.contains(&(100, b"users".to_vec())));
}

#[test]
fn local_numeric_ids_sends_empty_lists() {
    let o = FlistOptions {
        protocol: 31,
        preserve_uid: true,
        preserve_gid: true,
        local_numeric_ids: true,
        id0_names: true,
        varint_flags: true,
        ..Default::default()
    };
    let mut enc = FlistEncoder::with_namer(o.clone(), Box::new(FakeNamer));
    let mut buf = Vec::new();
    for e in &sample(0) {
        enc.encode(e, &mut buf).unwrap();
    }
    enc.finish(0, &mut buf);
    let mut dec = FlistDecoder::new(o);
    let mut r = &buf[..];
    while dec.next(&mut r).unwrap().is_some() {}
    let t = dec.finish(&mut r).unwrap();
    assert_eq!(t.uid_names, vec![(0, b"root".to_vec())]);
    assert_eq!(t.gid_names, vec![(0, b"root".to_vec())]);
}

#[test]
fn known_bytes_for_a_tiny_list() {
    // Worked by hand from upstream's send_file_entry at protocol 31, varint flags.
    let o = FlistOptions {
        protocol: 31,
        varint_flags: true,
        ..Default::default()
    };
    let mut enc = FlistEncoder::new(o);
    let mut out = Vec::new();
    let mut e = FileEntry::new("a", S_IFREG | 0o644);
    e.size = 3;
    e.mtime = 0; // same as the initial state: XMIT_SAME_TIME
    enc.encode(&e, &mut out).unwrap();
    enc.encode(
        &FileEntry {
            name: b"ab".to_vec(),
            ..e.clone()
        },
        &mut out,
    )
    .unwrap();
    enc.finish(0, &mut out);
    assert_eq!(
        out,
        vec![
            // varint flags SAME_UID|SAME_GID|SAME_TIME, l2=1 "a", varlong size 3, mode
            0x80, 0x98, 1, b'a', 0, 3, 0, 0xA4, 0x81, 0, 0, // + SAME_MODE|SAME_NAME, l1=1, l2=1 "b", size 3
            0x80, 0xBA, 1, 1, b'b', 0, 3, 0, 0, 0, // end, io_error 0
        ]
    );
}

#[test]
fn encoder_refuses_unencodable_entries() {
    let mut enc = FlistEncoder::new(FlistOptions {
        protocol: 31,
        ..Default::default()
    });
    let mut out = Vec::new();
    assert!(enc.encode(&FileEntry::new("", S_IFREG), &mut out).is_err());
    assert!(enc.encode(&FileEntry::new("a\0b", S_IFREG), &mut out).is_err());
    assert!(enc.encode(&FileEntry::new(vec![b'x'; 4096], S_IFREG), &mut out).is_err());
    assert!(enc.encode(&FileEntry::new("m", 0o644), &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn inc_recurse_lists_share_state_and_hard_links_span_lists() {
    use oxrsyncd_protocol::wire::{encode_varint, encode_varlong};
    let o = FlistOptions {
        protocol: 31,
        varint_flags: true,
        preserve_uid: true,
        preserve_hard_links: true,
        inc_recurse: true,
        ..Default::default()
    };
    let mut enc = FlistEncoder::with_namer(o, Box::new(FakeNamer));
    let mut leader = FileEntry::new("a", S_IFREG | 0o644);
    leader.size = 12;
    leader.mtime = 1_700_000_000;
    leader.uid = 1000;
    leader.nlink = 2;
    leader.dev = 1;
    leader.ino = 9;
    // First list (ndx_start 1): "." then the leader at index 2.
    let mut first = Vec::new();
    enc.start_list(1);
    let mut dot = FileEntry::new(".", S_IFDIR | 0o755);
    dot.top_dir = true;
    enc.encode(&dot, &mut first).unwrap();
    enc.encode(&leader, &mut first).unwrap();
    enc.end_list(0, &mut first);
    assert_eq!(&first[first.len() - 2..], [0, 0]);
    // A later list (ndx_start 4): the follower names its leader by index
    // and, the leader being in an earlier list, carries its whole entry;
    // "same as previous" state (mode, time, uid) carries over between lists.
    let mut second = Vec::new();
    enc.start_list(4);
    let follower = FileEntry {
        name: b"d/b".to_vec(),
        ..leader.clone()
    };
    enc.encode(&follower, &mut second).unwrap();
    let flags = XMIT_HLINKED | XMIT_SAME_UID | XMIT_SAME_GID | XMIT_SAME_TIME | XMIT_SAME_MODE;
    let mut want = encode_varint(flags as i32);
    want.push(3);
    want.extend_from_slice(b"d/b");
    want.push(2); // leader index: ndx_start 1 + position 1
    want.extend_from_slice(&encode_varlong(12, 3));
    assert_eq!(second, want);
    // An io_error travels in a list's end (protocol 31 has the safe form).
    let mut end = Vec::new();
    enc.end_list(1, &mut end);
    assert_eq!(end, [0, 1]);
}

/// Fuzz finding `flist-hardlink-dev-zero`: below protocol 30 a first
/// hard-linked entry on dev 0 travels as "same dev" and must come back as
/// dev 0 (it came back as -1).
#[test]
fn a_linked_entry_on_dev_zero_keeps_its_dev_before_protocol_30() {
    for protocol in [27u32, 28, 29] {
        let o = FlistOptions {
            protocol,
            preserve_hard_links: true,
            ..FlistOptions::default()
        };
        let files = [("a", 0u64, 9u64), ("b", 0, 9), ("c", 4, 2)].map(|(name, dev, ino)| FileEntry {
            dev,
            ino,
            nlink: 2,
            size: 1,
            ..FileEntry::new(name, 0o100644)
        });
        let mut enc = FlistEncoder::new(o.clone());
        let mut wire = Vec::new();
        for f in &files {
            enc.encode(f, &mut wire).unwrap();
        }
        enc.finish(0, &mut wire);
        let mut dec = FlistDecoder::new(o);
        let mut r = &wire[..];
        let got: Vec<(u64, u64)> = std::iter::from_fn(|| dec.next(&mut r).unwrap()).map(|e| (e.dev, e.ino)).collect();
        assert_eq!(got, vec![(0, 9), (0, 9), (4, 2)], "protocol {protocol}");
    }
}
