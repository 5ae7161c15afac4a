//! `log format` escapes against stock's daemon, and `log style = json`
//! lines read back with serde_json (issue 17, part 5).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::Value;

use crate::harness::client::{clients, rsync_bin};
use crate::harness::daemon::Daemon;
use crate::harness::push_pair::start_push_pair;
use crate::harness::tree::{copy_tree, TreeBuilder};

/// Every escape whose value is the same for stock and ours (not `%p`, `%t`
/// or `%P`, which name the process, the clock and the module's directory).
const FORMAT: &str = "%i|%o %h [%a] %m (%u) %f %n %l %'l %''l %b %c %C %B %U %G %M %L|%-8n|%8l|%%|%z";

fn tree(root: &Path) {
    TreeBuilder::new(root)
        .file("a", b"one")
        .file("d/b", vec![7u8; 3000])
        .file("big", (0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
        .symlink("l", "a")
        .mtimes(["a", "d/b", "d", "big"], 1_600_000_000, 0);
}

/// The per-file transfer lines of a log, without date, time and pid,
/// sorted (the data lines: itemize `<f`/`>f`).
fn file_lines(log: &str) -> Vec<String> {
    let mut out: Vec<String> = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .filter(|l| l.starts_with("<f") || l.starts_with(">f"))
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// Pushes, plain pulls and delta pulls (`-I` against an identical copy,
/// so the client sends block checksums: `%c`) log the same lines as stock.
#[test]
fn every_escape_like_stock() {
    let p = start_push_pair(tree, &format!(" transfer logging = yes\n log format = {FORMAT}\n"));
    for (label, bin) in clients() {
        for protocol in ["29", "31"] {
            p.reset(None);
            let proto = format!("--protocol={protocol}");
            let (stock, ours) = p.push_with(&bin, &["-a", &proto], "", "w/");
            assert_eq!((stock.code, ours.code), (0, 0), "{label}: {stock:?} {ours:?}");
            for extra in [&[][..], &["-I"][..], &["-c", "-I"][..]] {
                for addr in [p.stock.addr, p.ours.addr] {
                    let dst = tempfile::tempdir().unwrap();
                    if !extra.is_empty() {
                        copy_tree(p.src.path(), dst.path());
                    }
                    let mut args = vec!["-a".to_string(), proto.clone()];
                    args.extend(extra.iter().map(|s| s.to_string()));
                    args.push(format!("rsync://{addr}/w/"));
                    args.push(format!("{}/", dst.path().display()));
                    let pulled = rsync_bin(&bin, &args, &[]);
                    assert_eq!(pulled.code, 0, "{label}: {pulled:?}");
                }
            }
        }
        let ok = crate::harness::eventually(std::time::Duration::from_secs(5), || {
            file_lines(&p.stock.log()).len() == file_lines(&p.ours.log()).len()
        });
        let (s, o) = (file_lines(&p.stock.log()), file_lines(&p.ours.log()));
        assert!(ok, "{label}: {s:#?} {o:#?}");
        assert_eq!(o, s, "{label}");
        assert!(o.iter().any(|l| l.starts_with(">f+++++++++|recv ")), "{o:#?}");
        assert!(o.iter().any(|l| l.starts_with("<f+++++++++|send ")), "{o:#?}");
        // A delta pull reads the client's block sums: a non-zero %c.
        assert!(o.iter().any(|l| l.starts_with("<f") && !l.contains(" 0 36 ")), "{o:#?}");
    }
}

fn json_lines(log: &str) -> Vec<serde_json::Map<String, Value>> {
    log.lines()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(map)) => map,
            other => panic!("not a JSON object: {l:?}: {other:?}"),
        })
        .collect()
}

/// `log style = json`: every line of the daemon's log is an object; the
/// transfer lines carry every escape as a typed field, hostile names
/// included.
#[test]
fn json_lines_field_by_field() {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let hostile = b"x\n\"q\"\xff";
    std::fs::write(src.path().join(std::ffi::OsStr::from_bytes(hostile)), b"hostile").unwrap();
    let dst = tempfile::tempdir().unwrap();
    let config = format!(
        "log style = json\nuse chroot = no\n[r]\n path = {}\n transfer logging = yes\n[w]\n path = {}\n read only = no\n uid = root\n gid = root\n transfer logging = yes\n",
        src.path().display(),
        dst.path().display()
    );
    let ours = Daemon::start(&config, &["--workers=1"]);
    let pulled_to = tempfile::tempdir().unwrap();
    let pull = rsync_bin(
        Path::new("rsync"),
        &[
            "-a".to_string(),
            format!("rsync://{}/r/", ours.addr),
            format!("{}/", pulled_to.path().display()),
        ],
        &[],
    );
    assert_eq!(pull.code, 0, "{pull:?}");
    let push = rsync_bin(
        Path::new("rsync"),
        &[
            "-a".to_string(),
            format!("{}/", src.path().display()),
            format!("rsync://{}/w/", ours.addr),
        ],
        &[],
    );
    assert_eq!(push.code, 0, "{push:?}");
    assert!(crate::harness::eventually(std::time::Duration::from_secs(5), || {
        json_lines(&ours.log()).iter().filter(|m| m["event"] == "session_end").count() == 2
    }));
    let lines = json_lines(&ours.log());
    for m in &lines {
        for key in ["time", "level", "event", "message"] {
            assert!(m[key].is_string(), "{key}: {m:?}");
        }
        assert!(m["pid"].is_u64(), "{m:?}");
    }
    let connects: Vec<_> = lines.iter().filter(|m| m["event"] == "connect").collect();
    assert_eq!(connects.len(), 2, "{lines:?}");
    assert_eq!(connects[0]["addr"], "127.0.0.1");
    let ends: Vec<_> = lines.iter().filter(|m| m["event"] == "session_end").collect();
    assert!(ends
        .iter()
        .all(|m| m["sent"].is_u64() && m["received"].is_u64() && m["total_size"].is_u64()));
    assert!(ends.iter().any(|m| m["module"] == "r") && ends.iter().any(|m| m["module"] == "w"));
    let transfer = |op: &str, name: &str| -> serde_json::Map<String, Value> {
        lines
            .iter()
            .find(|m| m["event"] == "transfer" && m["operation"] == op && m["name"] == name)
            .unwrap_or_else(|| panic!("no {op} {name}: {lines:#?}"))
            .clone()
    };
    for (op, module) in [("send", "r"), ("recv", "w")] {
        let b = transfer(op, "d/b");
        assert_eq!(b["module"], module);
        assert_eq!(b["host"], "localhost");
        assert_eq!(b["addr"], "127.0.0.1");
        assert_eq!(b["file"], "d/b");
        assert_eq!(b["length"], 3000);
        assert!(b["bytes"].as_u64().unwrap() > 0);
        assert!(b["checksum_bytes"].is_u64());
        assert_eq!(b["checksum"].as_str().unwrap().len(), 32, "{b:?}");
        assert!(b["checksum_type"].is_string());
        assert_eq!(b["mode"].as_u64().unwrap() & 0o170000, 0o100000);
        assert_eq!(b["permissions"].as_str().unwrap().len(), 9);
        assert!(b["uid"].is_u64() && b["gid"].is_u64());
        assert_eq!(b["mtime"], 1_600_000_000);
        assert_eq!(b["itemize"], if op == "send" { "<f+++++++++" } else { ">f+++++++++" });
        assert!(!b.contains_key("user") && !b.contains_key("file_hex") && !b.contains_key("link_target"));
        assert!(b["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{op} localhost [127.0.0.1] {module} () ")));
        let h = transfer(op, "x\n\"q\"\\#377");
        assert_eq!(h["name_hex"], "780a227122ff");
        assert_eq!(h["file_hex"], h["name_hex"]);
        assert_eq!(h["length"], 7);
    }
}
