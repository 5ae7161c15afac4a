//! Upstream f_name_cmp order and the receiver's duplicate marking.

use std::cmp::Ordering::*;

use crate::transfer::flist::sort::sort_and_clean;
use crate::transfer::flist::xmit::{S_IFDIR, S_IFREG};
use crate::transfer::flist::{f_name_cmp, sort_and_mark_duplicates, FileEntry};

fn f(n: &str) -> FileEntry {
    FileEntry::new(n, S_IFREG | 0o644)
}
fn d(n: &str) -> FileEntry {
    FileEntry::new(n, S_IFDIR | 0o755)
}
fn names(v: &[FileEntry]) -> Vec<String> {
    v.iter().map(|e| String::from_utf8_lossy(&e.name).into_owned()).collect()
}

#[test]
fn files_before_dirs_from_protocol_29() {
    let list = vec![d("b"), f("c"), d("a"), f("a.txt"), d("."), f("b/x"), d("a/sub"), f("a/z")];
    let sorted = sort_and_clean(list.clone(), 31);
    assert_eq!(names(&sorted), [".", "a.txt", "c", "a", "a/z", "a/sub", "b", "b/x"]);
    // Before 29: plain byte order of the full path; "." is just a name.
    let old = sort_and_clean(list, 28);
    assert_eq!(names(&old), [".", "a", "a.txt", "a/sub", "a/z", "b", "b/x", "c"]);
}

#[test]
fn dir_compares_with_a_trailing_slash() {
    // "foo" (dir) vs "foo-bar" (file): at 29 the dir is "foo/" and also
    // sorts after every file at its level.
    assert_eq!(f_name_cmp(b"foo", true, b"foo-bar", false, 31), Greater);
    assert_eq!(f_name_cmp(b"foo", true, b"foo-bar", false, 28), Less);
    // two dirs: "foo/" vs "foo-bar/": '/' (0x2F) > '-' (0x2D)
    assert_eq!(f_name_cmp(b"foo", true, b"foo-bar", true, 31), Greater);
    assert_eq!(f_name_cmp(b"foo", true, b"foo-bar", true, 28), Less);
    // contents follow their directory
    assert_eq!(f_name_cmp(b"foo", true, b"foo/a", false, 31), Less);
    assert_eq!(f_name_cmp(b"foo/a", false, b"foo-bar", true, 31), Greater);
}

#[test]
fn dot_first_and_equal_names() {
    assert_eq!(f_name_cmp(b".", true, b"a", false, 31), Less);
    assert_eq!(f_name_cmp(b".", true, b"!", true, 31), Less);
    assert_eq!(f_name_cmp(b"a/b", false, b"a/b", false, 31), Equal);
    assert_eq!(f_name_cmp(b"a", true, b"a", true, 31), Equal);
    // protocol >= 29: same name, dir vs file, never equal
    assert_ne!(f_name_cmp(b"a", true, b"a", false, 31), Equal);
    assert_eq!(f_name_cmp(b"a", true, b"a", false, 28), Equal);
}

#[test]
fn high_bytes_sort_unsigned_after_ascii() {
    let list = vec![
        f("\u{e9}t\u{e9}"),
        f("zz"),
        f("Zz"),
        FileEntry::new(b"\xff".to_vec(), S_IFREG),
        f("~"),
    ];
    let sorted = sort_and_clean(list, 31);
    assert_eq!(
        sorted.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        vec![
            b"Zz".to_vec(),
            b"zz".to_vec(),
            b"~".to_vec(),
            "\u{e9}t\u{e9}".as_bytes().to_vec(),
            b"\xff".to_vec()
        ]
    );
}

#[test]
fn nested_dirs_depth_first() {
    let list = vec![d("."), d("x"), d("x/y"), f("x/y/z"), f("x/b"), d("x/a"), f("x/a/1"), f("y")];
    let sorted = sort_and_clean(list, 30);
    assert_eq!(names(&sorted), [".", "y", "x", "x/b", "x/a", "x/a/1", "x/y", "x/y/z"]);
}

#[test]
fn sender_keeps_duplicates_receiver_marks_them_in_place() {
    let mut a1 = f("a");
    a1.size = 1;
    let mut a2 = f("a");
    a2.size = 2;
    let list = vec![d("."), a1, f("b"), a2, d("b")];
    let sender = sort_and_clean(list.clone(), 31);
    assert_eq!(sender.len(), 5, "sender never drops entries");
    let recv = sort_and_mark_duplicates(list, 31);
    assert_eq!(recv.len(), 5, "slots never move");
    let view: Vec<(String, u64, bool, usize)> = recv
        .iter()
        .map(|s| {
            (
                String::from_utf8_lossy(&s.entry.name).into_owned(),
                s.entry.size,
                s.active,
                s.orig_index,
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            (".".into(), 0, true, 0),
            ("a".into(), 1, true, 1),  // first of equal names kept (stable sort)
            ("a".into(), 2, false, 3), // later duplicate dropped
            ("b".into(), 0, false, 2), // file knocked out by the dir of the same name
            ("b".into(), 0, true, 4),
        ]
    );
    // Below 29 dir "b" and file "b" compare equal: the dir still wins.
    let recv28 = sort_and_mark_duplicates(vec![f("b"), d("b")], 28);
    assert_eq!(
        recv28.iter().map(|s| (s.entry.is_dir(), s.active)).collect::<Vec<_>>(),
        vec![(false, false), (true, true)]
    );
}
