//! Hostile `-A` / `-X` list data: indexes naming nothing sent before,
//! counts and lengths past upstream's bounds, bits outside rwx, names a
//! module must not take; and the well-formed cases they are cut from.

use std::sync::Arc;

use crate::transfer::flist::acl::{NAME_IS_USER, NO_ENTRY, XFLAG_NAME_IS_USER, XMIT_NAME_LIST, XMIT_USER_OBJ};
use crate::transfer::flist::error::FlistError;
use crate::transfer::flist::wire30::put_varint;
use crate::transfer::receive::meta::acl_wire::{self, AclLists};
use crate::transfer::receive::meta::xattr_wire::{self, XattrSet, XattrWire};

fn varints(values: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        put_varint(&mut out, v);
    }
    out
}

fn acl(bytes: &[u8], lists: &mut AclLists, default: bool) -> Result<u32, FlistError> {
    acl_wire::receive(&mut &bytes[..], lists, default, 0o100640)
}

#[test]
fn an_acl_index_must_name_one_sent_before() {
    let mut lists = AclLists::default();
    // Index 1 names the first ACL, and none was sent.
    let err = acl(&varints(&[1]), &mut lists, false).unwrap_err();
    assert!(err.to_string().contains("ACL index 1 > 0"), "{err}");
    assert!(acl(&varints(&[-1]), &mut lists, false).is_err());
    // A literal (empty) ACL, then its index.
    assert_eq!(acl(&[0, 0], &mut lists, false).unwrap(), 0);
    assert_eq!(acl(&varints(&[1]), &mut lists, false).unwrap(), 0);
    assert!(acl(&varints(&[2]), &mut lists, false).is_err());
    // The default list counts on its own.
    assert!(acl(&varints(&[1]), &mut lists, true).is_err());
}

#[test]
fn acl_counts_and_bits_are_bounded() {
    let mut lists = AclLists::default();
    let mut too_many = vec![0, XMIT_NAME_LIST];
    put_varint(&mut too_many, acl_wire::MAX_NAMES + 1);
    assert!(acl(&too_many, &mut lists, false).unwrap_err().to_string().contains("ACL count"));
    let mut negative = vec![0, XMIT_NAME_LIST];
    put_varint(&mut negative, -5);
    assert!(acl(&negative, &mut lists, false).is_err());
    // A huge count with nothing behind it ends at the stream, not in memory.
    let mut truncated = vec![0, XMIT_NAME_LIST];
    put_varint(&mut truncated, acl_wire::MAX_NAMES);
    assert!(acl(&truncated, &mut lists, false).is_err());
    let mut bits = vec![0, XMIT_USER_OBJ];
    put_varint(&mut bits, 8);
    assert!(acl(&bits, &mut lists, false).unwrap_err().to_string().contains("out of range"));
    assert!(lists.access.is_empty(), "nothing kept from refused ACLs");
}

#[test]
fn a_named_entry_gets_a_mask_from_the_mode() {
    let mut lists = AclLists::default();
    let mut bytes = vec![0, XMIT_NAME_LIST];
    put_varint(&mut bytes, 1);
    put_varint(&mut bytes, 1000);
    put_varint(&mut bytes, ((4 << 2) | XFLAG_NAME_IS_USER) as i32);
    assert_eq!(acl(&bytes, &mut lists, false).unwrap(), 0);
    let got = &lists.access[0];
    assert_eq!(got.names, [(1000, 4 | NAME_IS_USER)]);
    assert_eq!(
        (got.user_obj, got.mask_obj),
        (NO_ENTRY, 4),
        "mask from the mode's group bits (0o640)"
    );
}

fn wire(privileged: bool, fake_super: bool, level: u8) -> XattrWire {
    XattrWire {
        level,
        fake_super,
        privileged,
        sum_len: 16,
    }
}

/// A literal set of `(name, value)` as the client sends it.
fn set_bytes(items: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = varints(&[0, items.len() as i32]);
    for (name, value) in items {
        put_varint(&mut out, name.len() as i32 + 1);
        put_varint(&mut out, value.len() as i32);
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
    }
    out
}

fn xattrs(bytes: &[u8], w: &XattrWire, sets: &mut Vec<Arc<XattrSet>>) -> Result<u32, FlistError> {
    xattr_wire::receive(&mut &bytes[..], w, sets, b"f")
}

#[test]
fn an_xattr_index_must_name_a_set_sent_before() {
    let mut sets = Vec::new();
    let w = wire(true, false, 1);
    assert!(xattrs(&varints(&[1]), &w, &mut sets)
        .unwrap_err()
        .to_string()
        .contains("out of range"));
    assert_eq!(xattrs(&set_bytes(&[(b"user.a", b"1")]), &w, &mut sets).unwrap(), 0);
    assert_eq!(xattrs(&varints(&[1]), &w, &mut sets).unwrap(), 0);
    assert!(xattrs(&varints(&[2]), &w, &mut sets).is_err());
}

#[test]
fn xattr_counts_and_lengths_are_bounded() {
    let mut sets = Vec::new();
    let w = wire(true, false, 1);
    assert!(xattrs(&varints(&[0, xattr_wire::MAX_COUNT + 1]), &w, &mut sets).is_err());
    assert!(xattrs(&varints(&[0, 1, xattr_wire::MAX_NAME_LEN + 1, 1]), &w, &mut sets).is_err());
    assert!(xattrs(&varints(&[0, 1, 5, -1]), &w, &mut sets).is_err());
    assert!(xattrs(&varints(&[0, 1, 5, (xattr_wire::MAX_VALUE_LEN + 1) as i32]), &w, &mut sets).is_err());
    // A name without its NUL.
    let mut no_nul = varints(&[0, 1, 3, 1]);
    no_nul.extend_from_slice(b"abcv");
    assert!(xattrs(&no_nul, &w, &mut sets).unwrap_err().to_string().contains("trailing"));
    assert!(sets.is_empty(), "nothing kept from refused sets");
}

#[test]
fn names_are_kept_only_where_the_module_may_write_them() {
    let sent: [(&[u8], &[u8]); 5] = [
        (b"system.posix_acl_access", b"x"),
        (b"trusted.t", b"t"),
        (b"user.rsync.%stat", b"100644 0,0 0:0"),
        (b"user.rsync.%other", b"o"),
        (b"user.u", b"u"),
    ];
    let names = |w: XattrWire| {
        let mut sets = Vec::new();
        let n = xattrs(&set_bytes(&sent), &w, &mut sets).unwrap();
        sets[n as usize]
            .items
            .iter()
            .map(|i| String::from_utf8_lossy(&i.name).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(wire(true, false, 1)), ["trusted.t", "user.u"]);
    assert_eq!(
        names(wire(true, false, 2)),
        ["trusted.t", "user.rsync.%other", "user.rsync.%stat", "user.u"]
    );
    assert_eq!(names(wire(false, false, 2)), ["user.rsync.%other", "user.rsync.%stat", "user.u"]);
    // fake super: other namespaces under rsync's prefix, its own records never.
    assert_eq!(names(wire(false, true, 2)), ["user.rsync.%other", "user.rsync.trusted.t", "user.u"]);
}
