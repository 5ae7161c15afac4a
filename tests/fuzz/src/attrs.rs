//! Targets of `-X` and `-A` on a pull (the only side the daemon has):
//! the client's requests for abbreviated xattr values, answered from a
//! file with long and short user xattrs; and the ACLs the sender reads,
//! from `fake super` stand-in attributes (which a module's users can
//! write) or, where the kernel accepts the bytes, real POSIX ACLs.

use std::io::Read;
use std::path::Path;

use oxrsyncd_worker::fuzzing::delta::{ChecksumKind, ChecksumParams};
use oxrsyncd_worker::fuzzing::flist::IdKind;
use oxrsyncd_worker::fuzzing::wire::{read_varint, AclSender, ModuleRoot, XattrSender};

use crate::fixture::{self, ACL_DIR, ACL_FILE, XATTRS, XATTR_FILE};
use crate::input::Input;

const MD5: ChecksumParams = ChecksumParams {
    kind: ChecksumKind::Md5,
    seed: 0,
    proper_seed_order: true,
};

/// Input: a byte (0x01: -XX, 0x02: the request names the set sent twice,
/// 0x04: an unknown set), then requests as the client's generator sends
/// them (varint steps ending in 0), each answered before the next.
pub fn xattr_request(data: &[u8]) {
    let Ok(fx) = fixture::get() else { return };
    let Ok(root) = ModuleRoot::open(&fx.module) else { return };
    let mut input = Input::new(data);
    let b = input.byte();
    let mut sender = XattrSender::new(MD5, if b & 1 != 0 { 2 } else { 1 }, false, true, true, true);
    let rel = Path::new(XATTR_FILE);
    let mode = 0o100644;
    let Ok(set) = sender.read_entry(&root, rel, mode) else { return };
    let mut list = Vec::new();
    let mut index = sender.send(set, &mut list);
    if b & 2 != 0 {
        let Ok(again) = sender.read_entry(&root, rel, mode) else { return };
        assert_eq!(sender.send(again, &mut list), index, "an equal set goes as a reference");
    }
    if b & 4 != 0 {
        index += 1;
    }
    let long = XATTRS.iter().filter(|(_, len)| *len > 32).count();
    let mut sent = Vec::new();
    let mut r = input.rest();
    for _ in 0..16 {
        if sender.read_request(Some(index), &mut r, "xa").is_err() {
            return;
        }
        let mut reply = Vec::new();
        let Ok(failed) = sender.send_requested(index, &root, rel, &mut reply, "xa") else {
            return;
        };
        assert!(failed.is_empty(), "{failed:?}");
        sent.extend(parse_reply(&reply));
        if r.is_empty() {
            break;
        }
    }
    let mut unique = sent.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), sent.len(), "a value sent twice: {sent:?}");
    assert!(sent.len() <= long, "more values than abbreviated ones: {sent:?}");
}

/// The attribute numbers of a reply: (step, length, value)*, then 0.
fn parse_reply(mut reply: &[u8]) -> Vec<i32> {
    let mut nums = Vec::new();
    let mut num = 0;
    loop {
        let step = read_varint(&mut reply).expect("our reply parses");
        if step == 0 {
            assert!(reply.is_empty(), "bytes after the reply's end");
            return nums;
        }
        assert!(step > 0, "numbers go up");
        num += step;
        nums.push(num);
        let len = read_varint(&mut reply).expect("our reply parses");
        let mut value = vec![0u8; len as usize];
        reply.read_exact(&mut value).expect("the value is there");
        assert!(value.len() > 32, "a short value on request");
    }
}

/// Input: a byte (0x01: a directory, else a file; 0x02: real ACLs instead
/// of fake super; 0x04: devices; 0x08: names inline), two bytes of
/// permissions, then the access and default ACL attribute values (two
/// length bytes before each).
pub fn acls(data: &[u8]) {
    let Ok(fx) = fixture::get() else { return };
    let Ok(root) = ModuleRoot::open(&fx.module) else { return };
    let mut input = Input::new(data);
    let b = input.byte();
    let is_dir = b & 1 != 0;
    let fake_super = b & 2 == 0;
    let perms = u32::from(input.u16()) & 0o7777;
    let (rel, mode) = if is_dir {
        (ACL_DIR, 0o040000 | perms)
    } else {
        (ACL_FILE, 0o100000 | perms)
    };
    let (access, default) = (input.chunk(), input.chunk());
    let path = fx.module.join(rel);
    let names = if fake_super {
        ["user.rsync.%aacl", "user.rsync.%dacl"]
    } else {
        ["system.posix_acl_access", "system.posix_acl_default"]
    };
    for (name, value) in names.iter().zip([access, default]) {
        let _ = xattr::remove(&path, name);
        if !value.is_empty() && xattr::set(&path, name, value).is_err() {
            return; // the kernel refused these bytes as an ACL
        }
    }
    let mut sender = AclSender::new(fake_super, b & 4 != 0, b & 4 != 0, b & 8 != 0);
    let mut namer = |_: IdKind, _: u32| Some(b"someone".to_vec());
    let Ok(first) = sender.read_entry(&root, Path::new(rel), mode) else {
        return;
    };
    let mut out = Vec::new();
    sender.send(first, mode, &mut namer, &mut out);
    let Ok(second) = sender.read_entry(&root, Path::new(rel), mode) else {
        return;
    };
    let mut again = Vec::new();
    sender.send(second, mode, &mut namer, &mut again);
    let refs = if is_dir { 2 } else { 1 };
    assert!(again.len() <= refs * 5, "an ACL sent before goes as its index: {again:?}");
}
