//! Pushes with incremental recursion (the client sends each directory's
//! contents in a list of its own as the transfer goes on): deep trees with
//! `--delete` and hard links against stock `rsync --daemon`, and the
//! hostile list streams upstream refuses, each refused with upstream's
//! words by both daemons while the worker keeps serving.

use std::path::Path;
use std::time::Duration;

use oxrsyncd_protocol::ndx::{NdxCodec, NDX_FLIST_OFFSET};
use oxrsyncd_protocol::setup::compat;
use oxrsyncd_worker::codecs::{FileEntry, FlistEncoder, FlistOptions};

use crate::harness::daemon::Daemon;
use crate::harness::hostile::Hostile;
use crate::harness::push_pair::start_push_pair;
use crate::harness::stock::StockDaemon;
use crate::harness::tree::{snapshot, TreeBuilder};

/// A tree five levels deep with files at every level: more than a
/// thousand entries, so the client keeps several lists in flight.
fn deep_tree(root: &Path) {
    let t = TreeBuilder::new(root);
    for a in 0..4 {
        for b in 0..4 {
            for c in 0..3 {
                let dir = format!("a{a}/b{b}/c{c}/d/e");
                for f in 0..20 {
                    t.file(format!("{dir}/f{f}"), format!("{a}{b}{c}{f}\n").repeat(f + 1));
                }
                t.file(format!("a{a}/b{b}/c{c}/top"), "top\n");
            }
            t.file(format!("a{a}/b{b}/mid"), "mid\n");
        }
        t.file(format!("a{a}/x"), "x\n");
    }
    t.symlink("link", "a0/x");
    set_all_mtimes(root, 1_600_000_000);
}

/// One time for every entry, so both modules' trees compare equal.
fn set_all_mtimes(root: &Path, secs: i64) {
    for entry in walk(root) {
        crate::harness::tree::set_mtime(&entry, secs, 0);
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// What an older copy of the tree in the module holds: some files out of
/// date, extraneous files and directories at every depth, a file where
/// the tree has a directory.
fn stale_copy(dst: &Path) {
    let t = TreeBuilder::new(dst);
    t.file("a0/b0/c0/d/e/f3", "old\n")
        .file("a0/b0/c0/d/e/gone", "extraneous\n")
        .file("a1/b2/extra/deeper/g", "extraneous dir\n")
        .file("a2/b3/c1/d/e/f0", "0\n")
        .file("a3/gone", "extraneous\n")
        .file("a3/b0", "a file where a directory comes\n")
        .file("gone-top", "extraneous\n");
    set_all_mtimes(dst, 1_500_000_000);
}

/// A deep tree pushed with `--delete` into an empty module and into a
/// stale copy, by both clients: the same output (sorted: deletions and
/// items interleave as the lists arrive), exit code and tree as stock's,
/// and the client says it sent an incremental list.
#[test]
fn deep_incremental_pushes_with_delete_like_stock() {
    let p = start_push_pair(deep_tree, "");
    for options in [
        vec!["-ai", "--delete"],
        vec!["-av", "--delete"],
        vec!["-ai", "--delete", "--checksum"],
    ] {
        for seed in [None, Some(&stale_copy as &dyn Fn(&Path))] {
            let (_, ours) = p.compare_unordered(&options, "", "w/", seed);
            assert_eq!(ours.code, 0, "{options:?}: {ours:?}");
            if options.contains(&"-av") {
                assert!(ours.stdout.contains("sending incremental file list"), "{ours:?}");
            }
        }
    }
    assert!(!p.ours_dst.path().join("a3/gone").exists());
    assert!(p.ours_dst.path().join("a3/b0/c2/d/e/f19").is_file());
}

/// `-H` across lists: files linked between directories that travel in
/// different lists land linked, as stock leaves them. (Which of a group
/// is sent and which linked may differ from stock's choice, which
/// depends on how far ahead the client's lists are; the tree does not.)
#[test]
fn hard_links_across_incremental_lists_like_stock() {
    let build = |root: &Path| {
        deep_tree(root);
        let t = TreeBuilder::new(root);
        t.hard_link("a3/b3/c2/d/e/linked", "a0/b0/c0/d/e/f7")
            .hard_link("a1/x-linked", "a0/b0/c0/d/e/f7")
            .file("z/one", "group two\n")
            .hard_link("a2/b1/two", "z/one");
        set_all_mtimes(root, 1_600_000_000);
    };
    let p = start_push_pair(build, "");
    for (label, bin) in crate::harness::client::clients() {
        p.reset(None);
        let (stock, ours) = p.push_with(&bin, &["-aH", "--delete"], "", "w/");
        assert_eq!((stock.code, ours.code), (0, 0), "{label}: {stock:?} {ours:?}");
        assert_eq!(snapshot(p.stock_dst.path()), snapshot(p.ours_dst.path()), "{label}");
        let ino = |rel: &str| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p.ours_dst.path().join(rel)).unwrap());
        assert_eq!(ino("a3/b3/c2/d/e/linked"), ino("a0/b0/c0/d/e/f7"), "{label}");
        assert_eq!(ino("a1/x-linked"), ino("a0/b0/c0/d/e/f7"), "{label}");
        assert_eq!(ino("a2/b1/two"), ino("z/one"), "{label}");
    }
}

/// A hand-made incremental push: `lists` are (first index, entries) and
/// go out each after its announcement (`None` for the first list).
struct IncPush {
    session: Hostile,
    encoder: FlistEncoder,
    ndx: NdxCodec,
}

impl IncPush {
    fn start(addr: std::net::SocketAddr, options: &str) -> IncPush {
        let args = ["--server", options, ".", "up/"];
        let session = Hostile::start(addr, "up", &args, 30).unwrap();
        assert_ne!(
            session.compat_flags & compat::INC_RECURSE,
            0,
            "incremental recursion was not offered"
        );
        let encoder = FlistEncoder::new(FlistOptions {
            protocol: 30,
            inc_recurse: true,
            safe_flist: true,
            preserve_hard_links: options.contains('H'),
            id0_names: session.compat_flags & compat::ID0_NAMES != 0,
            ..FlistOptions::default()
        });
        IncPush {
            session,
            encoder,
            ndx: NdxCodec::new(30),
        }
    }

    /// Send a list: announced for directory `dir_ndx` (None: the first).
    fn list(&mut self, dir_ndx: Option<i32>, ndx_start: u32, entries: &[FileEntry]) {
        let mut out = Vec::new();
        if let Some(d) = dir_ndx {
            self.ndx.write(&mut out, NDX_FLIST_OFFSET - d).unwrap();
        }
        self.encoder.start_list(ndx_start);
        for e in entries {
            self.encoder.encode(e, &mut out).unwrap();
        }
        self.encoder.end_list(0, &mut out);
        self.session.send_data(&out).unwrap();
    }

    fn raw_ndx(&mut self, ndx: i32) {
        let mut out = Vec::new();
        self.ndx.write(&mut out, ndx).unwrap();
        self.session.send_data(&out).unwrap();
    }
}

fn dir(name: &str) -> FileEntry {
    FileEntry {
        top_dir: !name.contains('/'),
        mtime: 1_600_000_000,
        ..FileEntry::new(name, 0o040755)
    }
}

fn file(name: &str, size: u64) -> FileEntry {
    FileEntry {
        size,
        mtime: 1_600_000_000,
        ..FileEntry::new(name, 0o100644)
    }
}

/// Run `attack` against stock and against ours (each in a fresh module):
/// both must end the session with `refusal` in their words to the client
/// and error code `code`, and ours must keep serving.
fn refused_like_stock(options: &str, refusal: &str, code: i32, attack: impl Fn(&mut IncPush)) {
    let dest = tempfile::tempdir().unwrap();
    let config = format!(
        "use chroot = no\n[up]\n path = {}\n read only = no\n uid = root\n gid = root\n",
        dest.path().display()
    );
    let ours = Daemon::start(&config, &["--workers=1"]);
    let stock = StockDaemon::start(&config);
    for (daemon, addr) in [("stock", stock.addr), ("oxrsyncd", ours.addr)] {
        let mut push = IncPush::start(addr, options);
        attack(&mut push);
        let end = push.session.finish(Duration::from_secs(10));
        assert!(end.says(refusal), "{daemon} did not refuse with {refusal:?}: {end:?}");
        assert!(end.says(&format!("(code {code})")), "{daemon}: {end:?}");
    }
    assert!(
        crate::harness::raw::list_modules(ours.addr, Duration::from_secs(5)).is_ok(),
        "the worker stopped serving"
    );
}

/// A list for a directory the first list named twice (the second copy
/// was cleared): upstream refuses the cleared slot.
#[test]
fn a_list_for_a_cleared_duplicate_directory_is_refused_like_stock() {
    refused_like_stock("-re.isfxCu", "refusing flist for cleared dir_ndx 1", 2, |p| {
        // An unfinished file keeps the first list alive.
        p.list(None, 1, &[dir("d"), dir("d"), file("f", 100)]);
        p.list(Some(1), 5, &[file("d/x", 0)]);
    });
}

/// A list announced after the client released every list (its early
/// end of the phase): nothing is left for it to belong to.
#[test]
fn a_list_after_the_last_was_freed_is_refused_like_stock() {
    refused_like_stock("-re.isfxCu", "refusing sub-flist after final flist was freed", 2, |p| {
        p.list(None, 1, &[dir("d"), dir("d")]);
        p.raw_ndx(oxrsyncd_protocol::ndx::NDX_DONE);
        p.list(Some(0), 4, &[]);
    });
}

/// Two lists for the same directory.
#[test]
fn a_second_list_for_a_directory_is_refused_like_stock() {
    refused_like_stock("-re.isfxCu", "refusing malicious duplicate flist for dir 0", 2, |p| {
        p.list(None, 1, &[dir("d"), file("f", 100)]);
        p.list(Some(0), 4, &[file("d/x", 0)]);
        p.list(Some(0), 6, &[file("d/y", 0)]);
    });
}

/// A hard-linked entry naming a group no list declared, before its own
/// list's start.
#[test]
fn an_undeclared_hard_link_group_is_refused_like_stock() {
    refused_like_stock("-rHe.isfxCu", "hard-link gnum 1 precedes flist start 4", 2, |p| {
        p.list(None, 1, &[dir("d"), file("f", 100)]);
        let mut out = Vec::new();
        p.ndx.write(&mut out, NDX_FLIST_OFFSET).unwrap();
        // A follower of index 1 (the directory "d"), which no list
        // declared as a hard-link group's first entry.
        out.extend_from_slice(&hlink_follower_entry(b"d/h", 1));
        out.extend_from_slice(&[0, 0]);
        p.session.send_data(&out).unwrap();
    });
}

/// An entry of a directory's list that lies elsewhere.
#[test]
fn an_entry_outside_its_lists_directory_is_refused_like_stock() {
    refused_like_stock("-re.isfxCu", "ABORTING due to invalid path from sender: e/x", 4, |p| {
        p.list(None, 1, &[dir("d"), dir("e"), file("f", 100)]);
        p.list(Some(0), 5, &[file("e/x", 0)]);
    });
}

/// A protocol-30 entry (byte flags, no varint) for `name` that follows
/// hard-link group `gnum`, with its attributes in full (the group's
/// first entry is in no earlier list of this stream).
fn hlink_follower_entry(name: &[u8], gnum: u8) -> Vec<u8> {
    const XMIT_EXTENDED_FLAGS: u16 = 1 << 2;
    const XMIT_SAME_UID: u16 = 1 << 3;
    const XMIT_SAME_GID: u16 = 1 << 4;
    const XMIT_HLINKED: u16 = 1 << 9;
    let flags = XMIT_EXTENDED_FLAGS | XMIT_SAME_UID | XMIT_SAME_GID | XMIT_HLINKED;
    let mut out = flags.to_le_bytes().to_vec();
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(gnum); // varint
    out.push(0); // size: varlong30(0, 3)
    out.extend_from_slice(&[0, 0]);
    out.push(0); // mtime: varlong(.., 4)
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&0o100644u32.to_le_bytes());
    out
}
