//! `-A` pulls against stock: POSIX ACLs (named users and groups, masks,
//! directories' default ACLs, ids without names) arrive as stock's daemon
//! sends them, with every client, with and without incremental recursion
//! and `--numeric-ids`; changed ACLs are itemized as stock itemizes them;
//! a `fake super` module sends the ACLs it keeps in rsync's attributes.

use std::path::Path;

use crate::harness::client::{clients, pull_paths, ClientRun};
use crate::harness::pair::{start_pair, Pair};
use crate::harness::tree::{copy_tree, set_mtime, snapshot, TreeBuilder};

/// The kernel's ACL entry tags (linux/posix_acl_xattr.h).
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const NO_ID: u32 = u32::MAX;

/// Set `path`'s access (or default) ACL to `entries` (tag, perms, id),
/// written as the kernel's attribute, as setfacl would.
pub(crate) fn set_acl(path: &Path, default: bool, entries: &[(u16, u16, u32)]) {
    let mut value = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        value.extend_from_slice(&tag.to_le_bytes());
        value.extend_from_slice(&perm.to_le_bytes());
        value.extend_from_slice(&id.to_le_bytes());
    }
    let name = if default {
        "system.posix_acl_default"
    } else {
        "system.posix_acl_access"
    };
    xattr::set(path, name, &value).unwrap_or_else(|e| panic!("setting {name} on {}: {e}", path.display()));
}

/// A named user and group that exist on this machine, and an id nobody has.
fn ids() -> (u32, u32, u32) {
    let user = nix::unistd::User::from_name("daemon").unwrap().expect("user daemon").uid.as_raw();
    let group = nix::unistd::Group::from_name("bin").unwrap().expect("group bin").gid.as_raw();
    (user, group, 54_321)
}

/// The served tree: plain files, a file with named entries and a mask, one
/// whose ACL equals another's (sent by index), an id without a name, and a
/// directory with a default ACL.
fn acl_tree(root: &Path) {
    let (user, group, unnamed) = ids();
    TreeBuilder::new(root).self_named_files(["plain", "named", "same-as-named", "unnamed", "dir/inner", "dir/sub/deep"]);
    let named = [
        (USER_OBJ, 6, NO_ID),
        (USER, 4, user),
        (GROUP_OBJ, 4, NO_ID),
        (GROUP, 6, group),
        (MASK, 6, NO_ID),
        (OTHER, 4, NO_ID),
    ];
    set_acl(&root.join("named"), false, &named);
    set_acl(&root.join("same-as-named"), false, &named);
    set_acl(
        &root.join("unnamed"),
        false,
        &[
            (USER_OBJ, 6, NO_ID),
            (USER, 6, unnamed),
            (GROUP_OBJ, 4, NO_ID),
            (MASK, 6, NO_ID),
            (OTHER, 4, NO_ID),
        ],
    );
    let dir = root.join("dir");
    set_acl(
        &dir,
        false,
        &[
            (USER_OBJ, 7, NO_ID),
            (USER, 5, user),
            (GROUP_OBJ, 5, NO_ID),
            (MASK, 5, NO_ID),
            (OTHER, 5, NO_ID),
        ],
    );
    set_acl(
        &dir,
        true,
        &[
            (USER_OBJ, 7, NO_ID),
            (GROUP_OBJ, 5, NO_ID),
            (GROUP, 4, group),
            (MASK, 7, NO_ID),
            (OTHER, 5, NO_ID),
        ],
    );
    set_acl(
        &dir.join("sub"),
        true,
        &[(USER_OBJ, 7, NO_ID), (GROUP_OBJ, 5, NO_ID), (OTHER, 0, NO_ID)],
    );
}

fn pair() -> Pair {
    start_pair(acl_tree, |root| format!("[mod]\n path = {}\n", root.display()))
}

/// One client's pull from both daemons into fresh directories (or ones
/// `seed` prepares): same output, exit code and tree, ACLs included.
fn compare(p: &Pair, bin: &Path, options: &[&str], seed: &dyn Fn(&Path)) -> (ClientRun, ClientRun) {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [d1.path(), d2.path()] {
        seed(d);
        set_mtime(d, 1_500_000_000, 0);
    }
    let s = pull_paths(bin, p.stock.addr, options, &["mod/"], d1.path());
    let o = pull_paths(bin, p.ours.addr, options, &["mod/"], d2.path());
    assert_eq!(
        s.visible(true),
        o.visible(false),
        "{bin:?} {options:?}: output differs\nours: {o:?}\nlog:\n{}",
        p.ours.log()
    );
    assert_eq!(snapshot(d1.path()), snapshot(d2.path()), "{bin:?} {options:?}: trees differ");
    (s, o)
}

#[test]
fn acl_pulls_like_stock() {
    let p = pair();
    let fresh = |_: &Path| {};
    for (label, bin) in clients() {
        for options in [
            &["-aA"][..],
            &["-aA", "--no-inc-recursive"],
            &["-aAi", "--numeric-ids"],
            &["-aAi", "--numeric-ids", "--no-inc-recursive"],
            &["-rtA", "--protocol=30"],
            &["-aAX", "--protocol=31"],
            &["-rtlAv", "--no-inc-recursive"],
            // Names decide: the client maps the daemon's user and group
            // names in ACLs to others of its own.
            &["-aA", "--usermap=daemon:bin", "--groupmap=bin:sys"],
            &["-aA", "--usermap=daemon:bin", "--groupmap=bin:sys", "--no-inc-recursive"],
        ] {
            let (s, o) = compare(&p, &bin, options, &fresh);
            assert_eq!((s.code, o.code), (0, 0), "{label} {options:?}: {o:?}");
        }
        // The ACLs arrived (not only the same as stock's).
        let d = tempfile::tempdir().unwrap();
        pull_paths(&bin, p.ours.addr, &["-aA"], &["mod/"], d.path());
        for f in ["named", "unnamed", "dir"] {
            assert!(
                xattr::get(d.path().join(f), "system.posix_acl_access").unwrap().is_some(),
                "{label}: {f}"
            );
        }
        assert!(
            xattr::get(d.path().join("dir"), "system.posix_acl_default").unwrap().is_some(),
            "{label}"
        );
        assert!(
            xattr::get(d.path().join("plain"), "system.posix_acl_access").unwrap().is_none(),
            "{label}"
        );
    }
}

/// Into a copy whose ACLs differ (one removed, one added, a default ACL
/// gone): the client itemizes the `a` changes exactly as with stock.
#[test]
fn changed_acls_are_itemized_like_stock() {
    let p = pair();
    let src = p.src.path().to_path_buf();
    let (_, group, _) = ids();
    let seed = move |d: &Path| {
        // A copy with the ACLs (cp -a keeps them with the mode) and times.
        copy_tree(&src, d);
        set_acl(
            &d.join("plain"),
            false,
            &[
                (USER_OBJ, 6, NO_ID),
                (GROUP_OBJ, 4, NO_ID),
                (GROUP, 4, group),
                (MASK, 4, NO_ID),
                (OTHER, 4, NO_ID),
            ],
        );
        xattr::remove(d.join("named"), "system.posix_acl_access").unwrap();
        xattr::remove(d.join("dir"), "system.posix_acl_default").unwrap();
    };
    for (label, bin) in clients() {
        for options in [&["-aAi"][..], &["-aAi", "--no-inc-recursive"]] {
            let (_, o) = compare(&p, &bin, options, &seed);
            for name in ["plain", "named", "dir/"] {
                let line = o.stdout.lines().find(|l| l.ends_with(&format!(" {name}")));
                assert!(
                    line.is_some_and(|l| l.contains('a')),
                    "{label} {options:?}: {name} not itemized: {o:?}"
                );
            }
        }
    }
}

/// A `fake super` module keeps ACLs in rsync's own attributes; `-A` sends
/// those, as stock's daemon does.
#[test]
fn fake_super_acls_like_stock() {
    let (user, _, _) = ids();
    let p = start_pair(
        move |root| {
            // Owner, group, mask, other (0x80: none), then (id, perms | user bit).
            let mut value = Vec::new();
            for v in [0x80u32, 0x80, 6, 0x80, user, 4 | (1 << 31)] {
                value.extend_from_slice(&v.to_le_bytes());
            }
            TreeBuilder::new(root)
                .file("kept", b"kept")
                .file("none", b"none")
                .xattr("kept", "user.rsync.%aacl", &value);
        },
        |root| format!("[mod]\n path = {}\n fake super = yes\n", root.display()),
    );
    for (label, bin) in clients() {
        let (s, o) = compare(&p, &bin, &["-rtA", "-i"], &|_: &Path| {});
        assert_eq!((s.code, o.code), (0, 0), "{label}: {o:?}");
    }
    // A malformed record: the file is left out, silently, exit 23.
    xattr::set(p.src.path().join("none"), "user.rsync.%aacl", &[1, 2, 3]).unwrap();
    for (label, bin) in clients() {
        let (s, o) = compare(&p, &bin, &["-rtA", "-i"], &|_: &Path| {});
        assert_eq!((s.code, o.code), (23, 23), "{label}: {o:?}");
        assert!(!o.stdout.contains("none"), "{label}: {o:?}");
    }
}
