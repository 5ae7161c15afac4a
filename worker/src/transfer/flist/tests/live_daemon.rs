//! Byte-exact checks against the installed stock rsync: a loopback daemon
//! over a temp tree sends a real file list to a tiny raw client; we decode
//! it, check it against the tree, re-encode it and compare the bytes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxrsyncd_protocol::wire::{read_varint, read_vstring, write_vstring};

use crate::transfer::flist::{FileEntry, FlistDecoder, FlistEncoder, FlistOptions, FlistTrailer};

struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rsync_available() -> bool {
    Command::new("rsync")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn start_daemon(root: &Path, work: &Path) -> Daemon {
    let conf = work.join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "use chroot = no\nlog file = {}\npid file = {}\n[mod]\npath = {}\nread only = yes\nuid = root\ngid = root\n",
            work.join("log").display(),
            work.join("pid").display(),
            root.display()
        ),
    )
    .unwrap();
    // The port is free when probed, but another test's connection may take
    // it before the daemon binds it: then the daemon exits, and we try a
    // new one. A daemon counts as up once it greets.
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("rsync")
            .args(["--daemon", "--no-detach", &format!("--port={port}"), "--address=127.0.0.1"])
            .arg(format!("--config={}", conf.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rsync --daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut greeting = String::new();
                if BufReader::new(s).read_line(&mut greeting).is_ok() && greeting.starts_with("@RSYNCD: ") {
                    return Daemon { child, port };
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("rsync --daemon never came up");
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
                return s;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("daemon never listened: {e}"),
        }
    }
}

/// Reads the MSG_DATA stream of a multiplexed connection and records every
/// data byte handed out, so the recording is exactly what the decoder used.
struct Demux<R: Read> {
    inner: R,
    pending: Vec<u8>,
    pos: usize,
    consumed: Vec<u8>,
}

impl<R: Read> Read for Demux<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.pending.len() {
            let mut h = [0u8; 4];
            self.inner.read_exact(&mut h)?;
            let h = u32::from_le_bytes(h);
            let tag = (h >> 24) as u8;
            let len = (h & 0xFF_FFFF) as usize;
            let mut payload = vec![0u8; len];
            self.inner.read_exact(&mut payload)?;
            match tag.wrapping_sub(7) {
                0 => {
                    self.pending = payload;
                    self.pos = 0;
                }
                1 | 3 => return Err(io::Error::other(format!("daemon error: {}", String::from_utf8_lossy(&payload)))),
                _ => {}
            }
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.consumed.extend_from_slice(&buf[..n]);
        self.pos += n;
        Ok(n)
    }
}

struct Pulled {
    opts: FlistOptions,
    entries: Vec<FileEntry>,
    trailer: FlistTrailer,
    bytes: Vec<u8>,
}

/// Pull the list for `mod/` with the given option letters at `protocol`.
fn pull_list(port: u16, protocol: u32, short_opts: &str, caps: &str) -> Pulled {
    let mut s = connect(port);
    let mut rd = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert!(line.starts_with("@RSYNCD: "), "greeting {line:?}");
    if protocol >= 30 {
        writeln!(s, "@RSYNCD: {protocol}.0 md5").unwrap();
    } else {
        writeln!(s, "@RSYNCD: {protocol}").unwrap();
    }
    s.write_all(b"mod\n").unwrap();
    loop {
        line.clear();
        assert!(rd.read_line(&mut line).unwrap() > 0, "daemon hung up");
        assert!(!line.starts_with("@ERROR"), "{line}");
        if line == "@RSYNCD: OK\n" {
            break;
        }
    }
    let opt_arg = format!("-{short_opts}e{caps}");
    let numeric = short_opts.contains('N');
    let short_opts = short_opts.replace('N', "");
    let opt_arg = opt_arg.replace('N', "");
    let mut args = vec!["--server", "--sender", opt_arg.as_str()];
    if numeric {
        args.push("--numeric-ids");
    }
    args.extend([".", "mod/"]);
    let sep = if protocol >= 30 { b'\0' } else { b'\n' };
    let mut buf = Vec::new();
    for a in args {
        buf.extend_from_slice(a.as_bytes());
        buf.push(sep);
    }
    buf.push(sep);
    s.write_all(&buf).unwrap();

    let mut opts = FlistOptions {
        protocol,
        ..Default::default()
    };
    let mut negotiated = false;
    if protocol >= 30 {
        let cf = read_varint(&mut rd).unwrap();
        assert_eq!(cf & 1, 0, "inc_recurse must be off");
        opts.safe_flist = cf & (1 << 3) != 0;
        opts.varint_flags = cf & (1 << 7) != 0;
        opts.id0_names = cf & (1 << 8) != 0;
        negotiated = opts.varint_flags;
    }
    if negotiated {
        let list = read_vstring(&mut rd, 1024).unwrap();
        assert!(String::from_utf8_lossy(&list).contains("md5"));
        write_vstring(&mut s, b"md5").unwrap();
    }
    let mut seed = [0u8; 4];
    rd.read_exact(&mut seed).unwrap();
    // Empty filter list: multiplexed from the client only from protocol 30.
    if protocol >= 30 {
        let mut f = ((7u32 << 24) | 4).to_le_bytes().to_vec();
        f.extend_from_slice(&0i32.to_le_bytes());
        s.write_all(&f).unwrap();
    } else {
        s.write_all(&0i32.to_le_bytes()).unwrap();
    }
    let has = |c: char| short_opts.contains(c);
    opts.numeric_ids = numeric;
    opts.preserve_uid = has('o');
    opts.preserve_gid = has('g');
    opts.preserve_links = has('l');
    opts.preserve_devices = has('D');
    opts.preserve_specials = has('D');
    opts.preserve_hard_links = has('H');
    opts.checksum_len = if has('c') { Some(16) } else { None };

    let mut demux = Demux {
        inner: rd,
        pending: Vec::new(),
        pos: 0,
        consumed: Vec::new(),
    };
    let mut dec = FlistDecoder::new(opts.clone());
    let mut entries = Vec::new();
    while let Some(e) = dec.next(&mut demux).expect("decode live list") {
        entries.push(e);
    }
    let trailer = dec.finish(&mut demux).expect("decode live trailer");
    Pulled {
        opts,
        entries,
        trailer,
        bytes: demux.consumed,
    }
}

/// A tree with every kind of entry the list can describe.
fn build_tree(root: &Path) -> bool {
    use std::os::unix::fs::chown;
    let w = |p: &str, data: &[u8]| std::fs::write(root.join(p), data).unwrap();
    std::fs::create_dir_all(root.join("dir/sub")).unwrap();
    w("empty", b"");
    w("small.txt", b"hello world\n");
    w("dir/big.bin", &vec![7u8; 300_000]);
    w("dir/sub/deep", b"deep");
    w("high\u{e9}\u{2603}.txt", b"utf8 name");
    let long_dir = "L".repeat(200);
    std::fs::create_dir(root.join(&long_dir)).unwrap();
    w(&format!("{long_dir}/{}", "f".repeat(200)), b"long");
    w("zzz_last", b"z");
    symlink("small.txt", root.join("link")).unwrap();
    symlink("/nonexistent/absolute/target", root.join("dir/abslink")).unwrap();
    let fifo_ok = Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(fifo_ok, "mkfifo");
    // Devices need root and a permissive container; optional.
    let dev_ok = Command::new("mknod")
        .arg(root.join("dir/chardev"))
        .args(["c", "1", "3"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        && Command::new("mknod")
            .arg(root.join("blkdev"))
            .args(["b", "300", "70000"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    std::fs::hard_link(root.join("small.txt"), root.join("dir/hardlink")).unwrap();
    std::fs::hard_link(root.join("small.txt"), root.join("dir/sub/hardlink2")).unwrap();
    // Owners: named ids (daemon, bin) and an unnamed one, when we may chown.
    if nix::unistd::geteuid().is_root() {
        chown(root.join("empty"), Some(1), Some(1)).unwrap();
        chown(root.join("dir/big.bin"), Some(2), Some(2)).unwrap();
        chown(root.join("zzz_last"), Some(54321), Some(54321)).unwrap();
        chown(root.join("dir/sub"), Some(1), Some(2)).unwrap();
    }
    // Times: one with nanoseconds, one whole second, one old.
    let touch = |p: &str, d: &str| {
        assert!(Command::new("touch")
            .args(["-h", "-d", d])
            .arg(root.join(p))
            .status()
            .unwrap()
            .success());
    };
    touch("small.txt", "2021-03-04 05:06:07.123456789");
    touch("empty", "2020-01-01 00:00:00");
    touch("zzz_last", "1999-12-31 23:59:59.5");
    dev_ok
}

fn check_against_tree(root: &Path, p: &Pulled) {
    assert!(p.entries.iter().any(|e| e.name == b"."), "no root entry");
    for e in &p.entries {
        let path = if e.name == b"." {
            root.to_path_buf()
        } else {
            root.join(std::str::from_utf8(&e.name).unwrap())
        };
        let md = std::fs::symlink_metadata(&path).unwrap_or_else(|err| panic!("{path:?}: {err}"));
        let name = String::from_utf8_lossy(&e.name);
        assert_eq!(e.mode, md.mode(), "mode of {name}");
        assert_eq!(e.mtime, md.mtime(), "mtime of {name}");
        if p.opts.protocol >= 31 {
            assert_eq!(e.mtime_nsec as i64, md.mtime_nsec(), "nsec of {name}");
        } else {
            assert_eq!(e.mtime_nsec, 0);
        }
        if e.is_reg() || e.is_dir() || e.is_symlink() {
            assert_eq!(e.size, md.size(), "size of {name}");
        }
        if p.opts.preserve_uid {
            assert_eq!(e.uid, md.uid(), "uid of {name}");
        }
        if p.opts.preserve_gid {
            assert_eq!(e.gid, md.gid(), "gid of {name}");
        }
        if e.is_symlink() && p.opts.preserve_links {
            assert_eq!(
                e.link_target.as_deref().unwrap(),
                std::fs::read_link(&path).unwrap().as_os_str().as_encoded_bytes()
            );
        }
        if e.is_device() && p.opts.preserve_devices {
            let rdev = md.rdev();
            assert_eq!(
                (e.rdev_major, e.rdev_minor),
                (
                    crate::transfer::flist::xmit::dev_major(rdev),
                    crate::transfer::flist::xmit::dev_minor(rdev)
                )
            );
        }
    }
    // every path in the tree is listed
    let mut count = 1;
    fn walk(d: &Path, n: &mut usize) {
        for ent in std::fs::read_dir(d).unwrap() {
            let ent = ent.unwrap();
            *n += 1;
            if ent.file_type().unwrap().is_dir() {
                walk(&ent.path(), n);
            }
        }
    }
    walk(root, &mut count);
    assert_eq!(p.entries.len(), count, "entry count");
}

fn reencode(p: &Pulled) -> Vec<u8> {
    let mut enc = FlistEncoder::new(p.opts.clone());
    let mut out = Vec::new();
    // Below 30 the decoder reports dev/ino; from 30 rebuild groups from roles.
    let mut entries = p.entries.clone();
    if p.opts.preserve_hard_links {
        for e in entries.iter_mut() {
            if !e.is_dir() && (e.dev != 0 || e.ino != 0) {
                e.nlink = 2;
            }
        }
    }
    for e in &entries {
        enc.encode(e, &mut out).unwrap();
    }
    enc.finish(p.trailer.io_error, &mut out);
    out
}

fn run_case(protocol: u32, short_opts: &str, caps: &str) {
    if !rsync_available() {
        eprintln!("stock rsync not installed: skipping");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    build_tree(&root);
    let daemon = start_daemon(&root, tmp.path());
    let pulled = pull_list(daemon.port, protocol, short_opts, caps);
    check_against_tree(&root, &pulled);
    if std::env::var_os("FLIST_DEBUG").is_some() {
        eprintln!(
            "proto {protocol}: {} entries, {} bytes, trailer {:?}",
            pulled.entries.len(),
            pulled.bytes.len(),
            pulled.trailer
        );
        for e in &pulled.entries {
            eprintln!(
                "  {:?} {:o} size {} dev {} ino {} rdev {}:{} nsec {}",
                String::from_utf8_lossy(&e.name),
                e.mode,
                e.size,
                e.dev,
                e.ino,
                e.rdev_major,
                e.rdev_minor,
                e.mtime_nsec
            );
        }
    }
    let mine = if pulled.opts.preserve_hard_links && protocol >= 30 {
        reencode_with_roles(&pulled)
    } else {
        reencode(&pulled)
    };
    assert_eq!(
        hex(&mine),
        hex(&pulled.bytes),
        "re-encoded list differs from rsync's (proto {protocol} -{short_opts}e{caps})"
    );
}

/// From 30 the wire has no dev/ino: give each hard-link group a synthetic one.
fn reencode_with_roles(p: &Pulled) -> Vec<u8> {
    // Decode again to get roles.
    let mut dec = FlistDecoder::new(p.opts.clone());
    let mut r = &p.bytes[..];
    let mut entries = Vec::new();
    while let Some(e) = dec.next(&mut r).unwrap() {
        entries.push(e);
    }
    let roles = dec.hlink_roles().to_vec();
    for (i, role) in roles.iter().enumerate() {
        use crate::transfer::flist::HlinkRole::*;
        let (dev, ino) = match role {
            Leader => (1, i as u64 + 1),
            Follower(l) => (1, *l as u64 + 1),
            _ => continue,
        };
        entries[i].dev = dev;
        entries[i].ino = ino;
        entries[i].nlink = 2;
    }
    let mut enc = FlistEncoder::new(p.opts.clone());
    let mut out = Vec::new();
    for e in &entries {
        enc.encode(e, &mut out).unwrap();
    }
    enc.finish(p.trailer.io_error, &mut out);
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn live_proto31_varint_flags_id0_names() {
    run_case(31, "logDtpr", ".LsfxCIvu");
}

#[test]
fn live_proto31_byte_flags() {
    run_case(31, "logDtpr", ".LsfxCI");
}

#[test]
fn live_proto30_byte_flags_no_safe_flist() {
    run_case(30, "logDtpr", ".LsxCI");
}

#[test]
fn live_proto29() {
    run_case(29, "logDtpr", ".LsfxCIvu");
}

#[test]
fn live_proto27() {
    run_case(27, "logDtpr", "");
}

#[test]
fn live_proto31_no_owner_checksums() {
    run_case(31, "lDtprc", ".LsfxCIvu");
}

/// 'N' stands for --numeric-ids: no id lists at all.
#[test]
fn live_proto31_numeric_ids() {
    run_case(31, "logDtprN", ".LsfxCIvu");
}

#[test]
fn live_proto29_numeric_ids() {
    run_case(29, "logDtprN", ".LsfxCIvu");
}

#[test]
fn live_proto31_hard_links_checksums() {
    run_case(31, "logDtpHrc", ".LsfxCIvu");
}

#[test]
fn live_proto29_hard_links_checksums() {
    run_case(29, "logDtpHrc", ".LsfxCIvu");
}

#[test]
fn live_proto27_hard_links() {
    run_case(27, "logDtpHr", "");
}
