//! The decoder refuses hostile or corrupt lists with errors, never panics.

use crate::transfer::flist::error::FlistError;
use crate::transfer::flist::xmit::*;
use crate::transfer::flist::{FileEntry, FlistDecoder, FlistEncoder, FlistOptions};

fn opts(protocol: u32) -> FlistOptions {
    FlistOptions {
        protocol,
        varint_flags: protocol >= 30,
        preserve_links: true,
        preserve_uid: true,
        checksum_len: Some(16),
        ..Default::default()
    }
}

/// Hand-built single entry: flags, name, size, mtime, mode.
fn raw_entry(name: &[u8], mode: u32) -> Vec<u8> {
    let mut v = vec![0x80, 0x18]; // varint XMIT_SAME_UID|XMIT_SAME_GID (no SAME_TIME)
    if name.len() > 255 {
        v[1] |= XMIT_LONG_NAME as u8;
        v.extend_from_slice(&oxrsyncd_protocol::wire::encode_varint(name.len() as i32));
    } else {
        v.push(name.len() as u8);
    }
    v.extend_from_slice(name);
    v.extend_from_slice(&[0, 0, 0]); // size 0
    v.extend_from_slice(&[0, 0, 0, 0]); // mtime 0
    v.extend_from_slice(&(mode as i32).to_le_bytes());
    v
}

fn decode_all(o: FlistOptions, bytes: &[u8]) -> Result<Vec<FileEntry>, FlistError> {
    let mut d = FlistDecoder::new(o);
    let mut r = bytes;
    let mut v = Vec::new();
    while let Some(e) = d.next(&mut r)? {
        v.push(e);
    }
    d.finish(&mut r)?;
    Ok(v)
}

#[test]
fn rejects_dot_dot_and_absolute_names() {
    let o = FlistOptions {
        protocol: 31,
        varint_flags: true,
        ..Default::default()
    };
    for bad in [&b"../etc/passwd"[..], b"a/../../x", b"a/..", b"..", b"/etc/passwd", b"a\0b"] {
        let mut bytes = raw_entry(bad, S_IFREG | 0o644);
        bytes.extend_from_slice(&[0, 0]);
        let err = decode_all(o.clone(), &bytes).unwrap_err();
        assert!(matches!(err, FlistError::UnsafeName { .. }), "{bad:?}: {err}");
    }
    // ...unless the caller allows absolute names (--relative); ".." never.
    let allow = FlistOptions {
        allow_absolute: true,
        ..o.clone()
    };
    let mut bytes = raw_entry(b"/etc//./passwd/", S_IFREG | 0o644);
    bytes.extend_from_slice(&[0, 0]);
    assert_eq!(decode_all(allow.clone(), &bytes).unwrap()[0].name, b"/etc/passwd");
    let mut bytes = raw_entry(b"/../x", S_IFREG | 0o644);
    bytes.extend_from_slice(&[0, 0]);
    assert!(decode_all(allow, &bytes).is_err());
    // harmless forms are cleaned like upstream clean_fname
    let mut bytes = raw_entry(b"./a//b/./c/", S_IFREG | 0o644);
    bytes.extend_from_slice(&[0, 0]);
    assert_eq!(decode_all(o, &bytes).unwrap()[0].name, b"a/b/c");
}

#[test]
fn rejects_overlong_names_and_bad_prefixes() {
    let o = FlistOptions {
        protocol: 31,
        varint_flags: true,
        ..Default::default()
    };
    let mut bytes = raw_entry(&vec![b'x'; 4096], S_IFREG | 0o644);
    bytes.extend_from_slice(&[0, 0]);
    assert!(matches!(
        decode_all(o.clone(), &bytes).unwrap_err(),
        FlistError::NameOverflow { .. }
    ));
    // prefix longer than the previous name
    let bytes = vec![0x80, XMIT_SAME_NAME as u8 | 0x18, 5, 1, b'a'];
    assert!(matches!(
        decode_all(o.clone(), &bytes).unwrap_err(),
        FlistError::NameOverflow { .. }
    ));
    // negative long-name length
    let mut bytes = vec![0x80, XMIT_LONG_NAME as u8 | 0x18];
    bytes.extend_from_slice(&oxrsyncd_protocol::wire::encode_varint(-5));
    assert!(decode_all(o, &bytes).is_err());
}

#[test]
fn rejects_bad_modes_sizes_links_and_root() {
    let o = opts(31);
    let mut bytes = raw_entry(b"a", 0o644); // no file type
    bytes.extend_from_slice(&[0, 0]);
    assert!(matches!(decode_all(o.clone(), &bytes).unwrap_err(), FlistError::BadMode { .. }));
    let mut bytes = raw_entry(b".", S_IFREG | 0o644);
    bytes.extend_from_slice(&[0, 0]);
    // uid (preserve_uid but SAME_UID set) ... then checksum of 16 bytes
    bytes.extend_from_slice(&[0; 16]);
    let e = decode_all(o.clone(), &bytes).unwrap_err();
    assert!(matches!(e, FlistError::RootNotDir { .. } | FlistError::Io { .. }), "{e}");
    // symlink target longer than MAXPATHLEN
    let mut bytes = raw_entry(b"l", S_IFLNK | 0o777);
    bytes.extend_from_slice(&oxrsyncd_protocol::wire::encode_varint(5000));
    assert!(matches!(decode_all(o.clone(), &bytes).unwrap_err(), FlistError::BadLength { .. }));
    let mut bytes = raw_entry(b"l", S_IFLNK | 0o777);
    bytes.extend_from_slice(&oxrsyncd_protocol::wire::encode_varint(-1));
    assert!(matches!(decode_all(o.clone(), &bytes).unwrap_err(), FlistError::BadLength { .. }));
    // negative size
    let mut bytes = vec![0x80, 0x18, 1, b'a'];
    bytes.extend_from_slice(&oxrsyncd_protocol::wire::encode_varlong(-7, 3));
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(&((S_IFREG | 0o644) as i32).to_le_bytes());
    bytes.extend_from_slice(&[0; 16]);
    assert!(matches!(decode_all(o.clone(), &bytes).unwrap_err(), FlistError::BadLength { .. }));
    // nsec out of range
    let mut bytes = vec![0x80 | 0x20, 0x18, 1, b'a', 0, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&oxrsyncd_protocol::wire::encode_varint(1_000_000_000));
    assert!(matches!(decode_all(o.clone(), &bytes).unwrap_err(), FlistError::BadLength { .. }));
    // hard-link follower pointing forward
    let mut bytes = vec![0x82, 0x18, 1, b'a'];
    bytes.extend_from_slice(&oxrsyncd_protocol::wire::encode_varint(0));
    assert!(matches!(decode_all(o, &bytes).unwrap_err(), FlistError::BadHlinkIndex { .. }));
    // io_error end form without safe flist at protocol 30 (byte flags)
    let o30 = FlistOptions {
        protocol: 30,
        ..Default::default()
    };
    assert!(matches!(
        decode_all(o30, &[0x04, 0x10, 1]).unwrap_err(),
        FlistError::BadFlags { .. }
    ));
}

#[test]
fn every_truncation_of_a_valid_list_is_an_error() {
    for p in [27u32, 29, 30, 31] {
        let o = FlistOptions {
            preserve_gid: true,
            preserve_devices: true,
            preserve_hard_links: true,
            ..opts(p)
        };
        let mut enc = FlistEncoder::new(o.clone());
        let mut buf = Vec::new();
        let mut a = FileEntry::new("dir", S_IFDIR | 0o755);
        a.mtime = 12345;
        enc.encode(&a, &mut buf).unwrap();
        let mut l = FileEntry::new("dir/link", S_IFLNK | 0o777);
        l.link_target = Some(b"target".to_vec());
        enc.encode(&l, &mut buf).unwrap();
        let mut fi = FileEntry::new("dir/file", S_IFREG | 0o600);
        fi.checksum = Some(vec![9; 16]);
        fi.size = 1 << 40;
        fi.nlink = 2;
        fi.ino = 5;
        enc.encode(&fi, &mut buf).unwrap();
        enc.finish(0, &mut buf);
        assert!(decode_all(o.clone(), &buf).is_ok());
        for cut in 0..buf.len() {
            assert!(decode_all(o.clone(), &buf[..cut]).is_err(), "protocol {p}: cut at {cut} accepted");
        }
    }
}

#[test]
fn garbage_never_panics() {
    // Deterministic pseudo-random bytes through every option shape.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..3000 {
        let len = (round % 97) + 1;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let p = [27, 29, 30, 31][round % 4];
        let o = FlistOptions {
            varint_flags: p >= 30 && round % 3 == 0,
            preserve_gid: true,
            preserve_devices: true,
            preserve_specials: true,
            preserve_hard_links: true,
            ..opts(p)
        };
        let _ = decode_all(o, &bytes);
    }
}
