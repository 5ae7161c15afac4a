//! `-A` and `-X` pushes against stock: with every client, into a module
//! running as root and into a `fake super` module, the trees left (ACLs,
//! extended attributes and rsync's own `user.rsync.*` records included,
//! compared attribute by attribute) and the client's output match stock's
//! daemon: new files and directories, a long value (sent as a checksum,
//! then asked for), a tree already up to date or with changed attributes,
//! and incremental recursion through subdirectories.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::harness::push_pair::{every_dir_made_by_the_run, start_push_pair, PushPair};
use crate::harness::tree::{set_mtime, TreeBuilder};

/// The kernel's ACL entry tags (linux/posix_acl_xattr.h).
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const NO_ID: u32 = u32::MAX;

/// A value longer than the 32 bytes sent whole: only its checksum is in
/// the list, so the daemon has to ask for it.
const LONG: &[u8] = b"a value well past the thirty-two bytes sent in the list itself";

use crate::acls::set_acl;

/// Named entries for the user `daemon` and the group `bin`.
fn named() -> [(u16, u16, u32); 6] {
    let user = nix::unistd::User::from_name("daemon").unwrap().expect("user daemon").uid.as_raw();
    let group = nix::unistd::Group::from_name("bin").unwrap().expect("group bin").gid.as_raw();
    [
        (USER_OBJ, 6, NO_ID),
        (USER, 4, user),
        (GROUP_OBJ, 4, NO_ID),
        (GROUP, 6, group),
        (MASK, 6, NO_ID),
        (OTHER, 4, NO_ID),
    ]
}

/// A tree with ACLs (named entries, a mask, a directory's default ACL) and
/// attributes (short and long values, shared sets) in subdirectories.
fn tree(root: &Path) {
    TreeBuilder::new(root)
        .self_named_files(["plain", "acl", "attrs", "long", "d/inner", "d/sub/deep", "d/sub/long2"])
        .xattr("attrs", "user.short", b"one")
        .xattr("attrs", "user.other", b"two")
        .xattr("long", "user.big", LONG)
        .xattr("long", "user.short", b"one")
        .xattr("d/sub/long2", "user.big", LONG)
        .xattr("d/sub/deep", "user.short", b"one")
        .xattr("d", "user.dir", b"a directory's");
    set_acl(&root.join("acl"), false, &named());
    set_acl(&root.join("d/inner"), false, &named());
    set_acl(&root.join("d/sub"), true, &named());
    for rel in [
        "plain",
        "acl",
        "attrs",
        "long",
        "d/inner",
        "d/sub/deep",
        "d/sub/long2",
        "d/sub",
        "d",
        ".",
    ] {
        set_mtime(&root.join(rel), 1_600_000_000, 0);
    }
}

/// Every attribute of every file under `root`, ACLs and rsync's own
/// records included (symlinks left out: Linux keeps none of these there).
fn attributes(root: &Path) -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let mut out = BTreeMap::new();
    for entry in walk(root) {
        let rel = entry.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let mut attrs: Vec<(String, Vec<u8>)> = xattr::list(&entry)
            .unwrap()
            .map(|n| {
                let value = xattr::get(&entry, &n).unwrap().unwrap_or_default();
                (String::from_utf8_lossy(n.as_bytes()).into_owned(), value)
            })
            .collect();
        attrs.sort();
        out.insert(rel, attrs);
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            out.extend(walk(&p));
        } else if !m.file_type().is_symlink() {
            out.push(p);
        }
    }
    out
}

/// Push with every client (`compare`), then compare every attribute.
fn check(pair: &PushPair, options: &[&str], seed: Option<&dyn Fn(&Path)>) {
    pair.compare_normalised(options, "", "w/", seed, &every_dir_made_by_the_run);
    let (stock, ours) = (attributes(pair.stock_dst.path()), attributes(pair.ours_dst.path()));
    assert_eq!(stock, ours, "{options:?}: attributes differ");
}

/// What the source has, into the module (the module root aside).
fn seed_like_source(src: &Path) -> impl Fn(&Path) + '_ {
    move |d: &Path| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", src.display()))
            .arg(d)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn acls_and_xattrs_into_a_root_module() {
    let pair = start_push_pair(tree, "");
    for opts in [
        &["-ai", "-A"][..],
        &["-ai", "-X"],
        &["-ai", "-AX"],
        &["-ai", "-XX"],
        &["-ai", "-AX", "--no-inc-recursive"],
    ] {
        check(&pair, opts, None);
    }
    let ours = attributes(pair.ours_dst.path());
    assert!(
        ours["long"].iter().any(|(n, v)| n == "user.big" && v == LONG),
        "the long value arrived: {ours:?}"
    );
    assert!(
        ours["d/sub"].iter().any(|(n, _)| n == "system.posix_acl_default"),
        "the default ACL arrived: {ours:?}"
    );
}

#[test]
fn up_to_date_and_changed_attributes() {
    let pair = start_push_pair(tree, "");
    let src = pair.src.path().to_path_buf();
    let same = seed_like_source(&src);
    // Everything there already, long value included: nothing is asked for.
    check(&pair, &["-ai", "-AX"], Some(&same));
    // Same content, attributes changed on our side: itemized (`a`, `x`),
    // the long value asked for again and the extra names removed.
    let changed = |d: &Path| {
        same(d);
        xattr::remove(d.join("long"), "user.big").unwrap();
        xattr::set(d.join("attrs"), "user.extra", b"gone after").unwrap();
        xattr::set(d.join("d/sub/long2"), "user.big", b"short now").unwrap();
        set_acl(
            &d.join("acl"),
            false,
            &[(USER_OBJ, 6, NO_ID), (GROUP_OBJ, 4, NO_ID), (OTHER, 4, NO_ID)],
        );
        for rel in ["long", "attrs", "acl", "d/sub/long2"] {
            set_mtime(&d.join(rel), 1_600_000_000, 0);
        }
    };
    check(&pair, &["-ai", "-AX"], Some(&changed));
    check(&pair, &["-ai", "-X"], Some(&changed));
}

#[test]
fn acls_and_xattrs_into_a_fake_super_module() {
    // Directories carry ACLs or attributes here, not both (stock's
    // receiver drops a directory's `%aacl` when it writes its attributes).
    let fake_tree = |root: &Path| {
        TreeBuilder::new(root)
            .self_named_files(["plain", "acl", "attrs", "long", "d/inner", "d/sub/long2"])
            .xattr("attrs", "user.short", b"one")
            .xattr("long", "user.big", LONG)
            .xattr("d/sub/long2", "user.big", LONG)
            .xattr("d", "user.dir", b"a directory's");
        set_acl(&root.join("acl"), false, &named());
        set_acl(&root.join("d/inner"), false, &named());
        set_acl(&root.join("d/sub"), true, &named());
        for rel in ["plain", "acl", "attrs", "long", "d/inner", "d/sub/long2", "d/sub", "d", "."] {
            set_mtime(&root.join(rel), 1_600_000_000, 0);
        }
    };
    let pair = start_push_pair(fake_tree, " fake super = yes\n");
    for opts in [&["-ai", "-A"][..], &["-ai", "-X"], &["-ai", "-AX"]] {
        check(&pair, opts, None);
    }
    let ours = attributes(pair.ours_dst.path());
    assert!(ours["acl"].iter().any(|(n, _)| n == "user.rsync.%aacl"), "{ours:?}");
    assert!(ours["d/sub"].iter().any(|(n, _)| n == "user.rsync.%dacl"), "{ours:?}");
}
