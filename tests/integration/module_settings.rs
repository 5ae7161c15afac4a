//! Module settings that act on a transfer, against stock on the same config.

use std::path::Path;

use crate::harness::client::{clients, rsync_bin, ClientRun};
use crate::harness::daemon::Daemon;
use crate::harness::stock::StockDaemon;
use crate::harness::tree::{set_mtime, TreeBuilder};

/// The module tree: a few small files, some of which the filter tests'
/// rules (`secret/`, `*.key`, `*.tmp`, `+ keep/`) pick.
fn tree(root: &Path) {
    TreeBuilder::new(root).files([
        ("a.txt", "a"),
        ("b.tmp", "b"),
        ("secret/key", "k"),
        ("sub/c.key", "c"),
        ("sub/d.txt", "d"),
        ("keep/e.tmp", "e"),
    ]);
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs `args` + url + a fresh destination against a daemon, per client.
fn pull(bin: &Path, addr: std::net::SocketAddr, args: &[&str], path: &str) -> (ClientRun, tempfile::TempDir) {
    let dst = tempfile::tempdir().unwrap();
    let url = format!("rsync://{addr}/{path}");
    let d = format!("{}/", dst.path().display());
    let mut argv = args.to_vec();
    argv.push(&url);
    argv.push(&d);
    (rsync_bin(bin, &argv, &[]), dst)
}

fn daemons(module_extra: &str) -> (tempfile::TempDir, StockDaemon, Daemon) {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let config = format!("use chroot = no\n[mod]\n path = {}\n{module_extra}", src.path().display());
    let stock = StockDaemon::start(&config);
    let ours = Daemon::start(&config, &["--workers=1"]);
    (src, stock, ours)
}

#[test]
fn daemon_filters_hide_files_like_stock() {
    let (_src, stock, ours) = daemons(" exclude = secret/ *.key\n filter = - *.tmp + keep/\n");
    for (label, bin) in clients() {
        let (s, d1) = pull(&bin, stock.addr, &["-a"], "mod/");
        let (o, d2) = pull(&bin, ours.addr, &["-a"], "mod/");
        assert_eq!((s.code, &s.stderr), (o.code, &o.stderr), "{label}");
        assert_eq!(listing(d1.path()), listing(d2.path()), "{label}");
        assert!(
            !listing(d2.path()).iter().any(|p| p.contains("secret") || p.ends_with(".key")),
            "excluded files never leave the daemon"
        );
        // Asking for an excluded file by name does not reveal it either.
        let (s, _) = pull(&bin, stock.addr, &["-a"], "mod/sub/c.key");
        let (o, _) = pull(&bin, ours.addr, &["-a"], "mod/sub/c.key");
        assert_eq!(s.code, o.code, "{label}: {s:?} {o:?}");
    }
}

#[test]
fn refuse_options_refuses_with_upstreams_words() {
    let (_src, stock, ours) = daemons(" refuse options = times c\n");
    for (label, bin) in clients() {
        let (s, _) = pull(&bin, stock.addr, &["-a"], "mod/");
        let (o, _) = pull(&bin, ours.addr, &["-a"], "mod/");
        let line = "rsync: The server is configured to refuse --times (-t)";
        assert!(s.stderr.contains(line), "{label} stock: {s:?}");
        assert!(o.stderr.contains(line), "{label} ours: {o:?}");
        assert_eq!(o.code, 4, "{label}: requested action not supported");
        let (o, _) = pull(&bin, ours.addr, &["-r"], "mod/");
        assert_eq!(o.code, 0, "{label}: options not refused still work: {o:?}");
    }
}

/// `--copy-devices` (a pull) and `--write-devices` (a push) are refused by
/// every module that does not name them negated in `refuse options`, in
/// upstream's words, as stock's daemon refuses them. (The 3.2 client has
/// `--copy-devices` only.)
#[test]
fn device_contents_are_refused_by_default_like_stock() {
    let (src, stock, ours) = daemons(" read only = no\n");
    for (label, bin) in clients() {
        let (s, _) = pull(&bin, stock.addr, &["-a", "--copy-devices"], "mod/");
        let (o, _) = pull(&bin, ours.addr, &["-a", "--copy-devices"], "mod/");
        let line = "rsync: The server is configured to refuse --copy-devices";
        assert!(s.stderr.contains(line), "{label} stock: {s:?}");
        assert!(o.stderr.contains(line) && o.code == 4, "{label} ours: {o:?}");
    }
    let from = format!("{}/a.txt", src.path().display());
    let runs: Vec<ClientRun> = [stock.addr, ours.addr]
        .iter()
        .map(|addr| {
            rsync_bin(
                Path::new("rsync"),
                &["--write-devices", &from, &format!("rsync://{addr}/mod/w.txt")],
                &[],
            )
        })
        .collect();
    let line = "rsync: The server is configured to refuse --write-devices";
    assert!(runs[0].stderr.contains(line), "stock: {:?}", runs[0]);
    assert!(runs[1].stderr.contains(line) && runs[1].code == 4, "ours: {:?}", runs[1]);
    assert!(!src.path().join("w.txt").exists(), "nothing is written");
}

#[test]
fn write_only_and_read_only_refuse_like_stock() {
    let (src, stock, ours) = daemons(" write only = yes\n");
    for (label, bin) in clients() {
        let (s, _) = pull(&bin, stock.addr, &["-a"], "mod/");
        let (o, _) = pull(&bin, ours.addr, &["-a"], "mod/");
        assert!(s.stderr.contains("ERROR: module is write only"), "{label} {s:?}");
        assert!(o.stderr.contains("ERROR: module is write only"), "{label} {o:?}");
        assert_eq!(o.code, 1, "{label}");
        // A push into the (read-only by default) module.
        let url = format!("rsync://{}/mod/", ours.addr);
        let file = src.path().join("a.txt");
        let push = rsync_bin(&bin, &["-a", file.to_str().unwrap(), &url], &[]);
        assert!(push.stderr.contains("ERROR: module is read only"), "{label} {push:?}");
        assert_eq!(push.code, 1, "{label}");
    }
}

#[test]
fn uid_setting_decides_what_the_session_may_read() {
    use std::os::unix::fs::PermissionsExt;
    // As root with no uid, sessions run as nobody: a 0600 root file is unreadable.
    let (src, _stock, ours) = daemons("");
    std::fs::set_permissions(src.path().join("a.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (o, dst) = pull(Path::new("rsync"), ours.addr, &["-a"], "mod/");
    assert_eq!(o.code, 23, "{o:?}");
    assert!(
        o.stderr
            .contains("send_files failed to open \"a.txt\" (in mod): Permission denied (13)"),
        "{o:?}"
    );
    assert!(!dst.path().join("a.txt").exists());
    // With uid = root the same file is served.
    let (src2, _s2, ours2) = daemons(" uid = root\n gid = root\n");
    std::fs::set_permissions(src2.path().join("a.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (o, dst) = pull(Path::new("rsync"), ours2.addr, &["-a"], "mod/");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(std::fs::read(dst.path().join("a.txt")).unwrap(), b"a");
}

/// Modes as the client received them.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::MetadataExt;
    listing(dir)
        .into_iter()
        .map(|p| (p.clone(), std::fs::symlink_metadata(dir.join(&p)).unwrap().mode()))
        .collect()
}

#[test]
fn outgoing_chmod_and_ignore_nonreadable_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    let (src, stock, ours) = daemons(" outgoing chmod = Dg+s,ug+w,Fo-w,+X,o-r\n ignore nonreadable = yes\n");
    std::fs::set_permissions(src.path().join("b.tmp"), std::fs::Permissions::from_mode(0o600)).unwrap();
    for (label, bin) in clients() {
        let (s, d1) = pull(&bin, stock.addr, &["-a"], "mod/");
        let (o, d2) = pull(&bin, ours.addr, &["-a"], "mod/");
        assert_eq!((s.code, &s.stderr), (o.code, &o.stderr), "{label}");
        assert_eq!(modes(d1.path()), modes(d2.path()), "{label}: modes after outgoing chmod");
        assert!(!d2.path().join("b.tmp").exists(), "{label}: a file nobody may read is ignored");
    }
}

/// `ignore nonreadable` leaves out devices and FIFOs the module's user
/// may not read, as stock's `access(R_OK)` does, and keeps those it may.
#[test]
fn ignore_nonreadable_leaves_out_devices_and_fifos_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    let (src, stock, ours) = daemons(" ignore nonreadable = yes\n");
    let node = |name: &str, kind: nix::sys::stat::SFlag, dev: u64, mode: u32| {
        let path = src.path().join(name);
        nix::sys::stat::mknod(&path, kind, nix::sys::stat::Mode::from_bits_truncate(mode), dev).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let null = nix::sys::stat::makedev(1, 3);
    node("fifo-closed", nix::sys::stat::SFlag::S_IFIFO, 0, 0o600);
    node("fifo-open", nix::sys::stat::SFlag::S_IFIFO, 0, 0o644);
    node("dev-closed", nix::sys::stat::SFlag::S_IFCHR, null, 0o600);
    node("dev-open", nix::sys::stat::SFlag::S_IFCHR, null, 0o666);
    for (label, bin) in clients() {
        let (s, d1) = pull(&bin, stock.addr, &["-a"], "mod/");
        let (o, d2) = pull(&bin, ours.addr, &["-a"], "mod/");
        assert_eq!((s.code, &s.stderr), (o.code, &o.stderr), "{label}");
        assert_eq!(listing(d1.path()), listing(d2.path()), "{label}");
        let names = listing(d2.path());
        assert!(!names.iter().any(|n| n.ends_with("-closed")), "{label}: {names:?}");
        assert!(
            names.iter().any(|n| n.contains("fifo-open")) && names.iter().any(|n| n.contains("dev-open")),
            "{label}: {names:?}"
        );
    }
}

#[test]
fn transfer_logging_writes_a_line_per_file() {
    let (_src, _stock, ours) = daemons(" transfer logging = yes\n log format = %o %h [%a] %m (%u) %f %l\n");
    let (o, _) = pull(Path::new("rsync"), ours.addr, &["-a"], "mod/");
    assert_eq!(o.code, 0, "{o:?}");
    let log = ours.log();
    assert!(log.contains("send localhost [127.0.0.1] mod () sub/d.txt 1"), "{log}");
    assert!(log.contains("send localhost [127.0.0.1] mod () a.txt 1"), "{log}");
}

#[test]
fn unimplemented_options_are_refused_by_name_not_hung() {
    // A module that allows --copy-devices (refused by default).
    let (_src, _stock, ours) = daemons(" refuse options = !copy-devices\n");
    for (label, bin) in clients() {
        for (opts, name) in [
            (vec!["-a", "--copy-devices"], "--copy-devices"),
            (vec!["-aX", "--copy-devices"], "--copy-devices"),
        ] {
            let (o, _) = pull(&bin, ours.addr, &opts, "mod/");
            assert_eq!(o.code, 4, "{label} {opts:?}: {o:?}");
            assert!(
                o.stderr.contains("ERROR: oxrsyncd does not support ") && o.stderr.contains(name),
                "{label}: {o:?}"
            );
        }
    }
}

/// "Total bytes received: N" from `--stats` output.
fn bytes_received(run: &ClientRun) -> u64 {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Total bytes received: "))
        .map(|n| n.replace(',', "").trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no stats: {run:?}"))
}

#[test]
fn dont_compress_star_turns_deflate_off_like_stock() {
    // 512 KiB of highly compressible text.
    let text: String = (0..16384).map(|i| format!("line {:08}\n", i % 64)).collect::<String>().repeat(2);
    for (setting, compressed) in [("", true), (" dont compress = *\n", false)] {
        let (src, stock, ours) = daemons(setting);
        std::fs::write(src.path().join("big.txt"), &text).unwrap();
        for (label, bin) in clients() {
            for choice in ["zlib", "zlibx"] {
                let args = ["-a", "--stats", "-z", &format!("--compress-choice={choice}")];
                let (s, _) = pull(&bin, stock.addr, &args, "mod/big.txt");
                let (o, d) = pull(&bin, ours.addr, &args, "mod/big.txt");
                assert_eq!((s.code, o.code), (0, 0), "{label} {choice}: {s:?} {o:?}");
                assert_eq!(std::fs::read_to_string(d.path().join("big.txt")).unwrap(), text);
                let (stock_bytes, our_bytes) = (bytes_received(&s), bytes_received(&o));
                let size = text.len() as u64;
                // Stored deflate blocks cost a few bytes per 64 KiB over the data.
                assert_eq!(
                    stock_bytes < size / 4,
                    compressed,
                    "{label} {choice} {setting:?}: stock {stock_bytes}"
                );
                assert_eq!(our_bytes < size / 4, compressed, "{label} {choice} {setting:?}: ours {our_bytes}");
                let ratio = our_bytes as f64 / stock_bytes as f64;
                assert!(
                    (0.8..1.25).contains(&ratio),
                    "{label} {choice} {setting:?}: {our_bytes} vs {stock_bytes}"
                );
            }
        }
    }
}

#[test]
fn remove_source_files_like_stock() {
    use crate::harness::tree::snapshot;
    // Each daemon gets its own copy of the tree: the pull deletes sources.
    let (stock_src, ours_src) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    tree(stock_src.path());
    tree(ours_src.path());
    // Same times on both sides, so itemized directory lines agree.
    for src in [stock_src.path(), ours_src.path()] {
        for d in ["", "sub", "secret", "keep"] {
            set_mtime(&src.join(d), 1_500_000_000, 0);
        }
    }
    let conf = |src: &Path, extra: &str| {
        format!(
            "use chroot = no\n[mod]\n path = {}\n uid = root\n gid = root\n{extra}",
            src.display()
        )
    };
    let stock = StockDaemon::start(&conf(stock_src.path(), " read only = no\n"));
    let ours = Daemon::start(&conf(ours_src.path(), " read only = no\n"), &["--workers=1"]);
    for args in [
        vec!["-a", "--remove-source-files", "-i"],
        vec!["-a", "--remove-source-files", "--protocol=29"],
    ] {
        let (s, d1) = pull(Path::new("rsync"), stock.addr, &args, "mod/sub/");
        let (o, d2) = pull(Path::new("rsync"), ours.addr, &args, "mod/sub/");
        assert_eq!(s.visible(true), o.visible(false), "{args:?}\n{}", ours.log());
        assert_eq!(listing(d1.path()), listing(d2.path()));
        assert_eq!(
            snapshot(stock_src.path()).keys().collect::<Vec<_>>(),
            snapshot(ours_src.path()).keys().collect::<Vec<_>>()
        );
    }
    assert!(!ours_src.path().join("sub/d.txt").exists(), "the sent file was removed");
    assert!(ours_src.path().join("a.txt").exists(), "files not sent stay");
    // A read-only module refuses the option, as stock does.
    let (stock_ro, ours_ro) = (
        StockDaemon::start(&conf(stock_src.path(), "")),
        Daemon::start(&conf(ours_src.path(), ""), &[]),
    );
    for (label, bin) in clients() {
        let (s, _) = pull(&bin, stock_ro.addr, &["-a", "--remove-source-files"], "mod/");
        let (o, _) = pull(&bin, ours_ro.addr, &["-a", "--remove-source-files"], "mod/");
        assert_eq!(s.visible(true), o.visible(false), "{label}");
        assert!(o.stderr.contains("cannot be used with a read-only module"), "{label}: {o:?}");
    }
    assert!(ours_src.path().join("a.txt").exists());
}

#[test]
fn pre_and_post_xfer_exec_like_stock() {
    // A refusing pre-xfer command: its output reaches the client, as stock's.
    let (_src, stock, ours) = daemons(" pre-xfer exec = echo no transfers today; exit 3\n");
    for (label, bin) in clients() {
        let (s, _) = pull(&bin, stock.addr, &["-a"], "mod/");
        let (o, d) = pull(&bin, ours.addr, &["-a"], "mod/");
        // Stock then resets the connection (exit 10); we close in order
        // with upstream's code for the refusal (4). The words match.
        let words = |r: &ClientRun| {
            r.visible(true)
                .2
                .into_iter()
                .filter(|l| !l.starts_with("rsync error:"))
                .collect::<Vec<_>>()
        };
        assert_eq!(words(&s), words(&o), "{label}");
        assert_eq!(o.code, 4, "{label}: {o:?}");
        assert!(o.stderr.contains("no transfers today"), "{label}: {o:?}");
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none(), "nothing transferred");
    }
    // The environment both commands see, and the exit status afterwards.
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("log");
    let extra = format!(
        " pre-xfer exec = echo pre $RSYNC_MODULE_NAME $RSYNC_REQUEST $RSYNC_HOST_ADDR $RSYNC_ARG0 >> {0}\n post-xfer exec = echo post $RSYNC_EXIT_STATUS $RSYNC_RAW_STATUS >> {0}\n",
        log.display()
    );
    let (_src2, _stock2, ours2) = daemons(&extra);
    let (o, d) = pull(Path::new("rsync"), ours2.addr, &["-a"], "mod/sub/");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(d.path().join("d.txt").exists());
    let (missing, _) = pull(Path::new("rsync"), ours2.addr, &["-a"], "mod/nosuch");
    assert_eq!(missing.code, 23);
    let seen = crate::harness::eventually(std::time::Duration::from_secs(5), || {
        std::fs::read_to_string(&log).unwrap_or_default().lines().count() >= 4
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(seen, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pre mod mod/sub/ 127.0.0.1 rsyncd", "{text}");
    assert_eq!(lines[1], "post 0 0", "{text}");
    assert_eq!(lines[3], "post 23 5888", "{text}");
}

/// What `pre-xfer exec` and `post-xfer exec` are told, compared with
/// stock variable by variable: the pre-xfer command gets `RSYNC_REQUEST`
/// as the client wrote it and `RSYNC_ARG#` with each path made
/// module-relative (a `/./` kept, wildcards expanded in the module); the
/// post-xfer command gets the connection and the exit status only.
#[test]
fn hook_environment_like_stock() {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let (stock_out, ours_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("hook-env.sh");
    std::fs::write(&script, "#!/bin/sh\nenv | grep '^RSYNC_' | grep -v '^RSYNC_PID=' | sort > \"$1\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = |out: &Path| {
        format!(
            "use chroot = no\n[mod]\n path = {}\n pre-xfer exec = {s} {o}/pre\n post-xfer exec = {s} {o}/post\n",
            src.path().display(),
            s = script.display(),
            o = out.display()
        )
    };
    let stock = StockDaemon::start(&config(stock_out.path()));
    let ours = Daemon::start(&config(ours_out.path()), &["--workers=1"]);
    let read = |dir: &Path, name: &str| {
        let path = dir.join(name);
        crate::harness::eventually(std::time::Duration::from_secs(5), || path.exists());
        std::thread::sleep(std::time::Duration::from_millis(100));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        text.replace(&stock.addr.port().to_string(), "PORT")
            .replace(&ours.addr.port().to_string(), "PORT")
    };
    for path in ["mod/sub/", "mod/./sub", "mod/su?/d.txt", "mod", "mod/sub/../a.txt"] {
        let (s, _) = pull(Path::new("rsync"), stock.addr, &["-a"], path);
        let (o, _) = pull(Path::new("rsync"), ours.addr, &["-a"], path);
        assert_eq!(s.code, o.code, "{path}: {s:?} {o:?}");
        for hook in ["pre", "post"] {
            let (theirs, mine) = (read(stock_out.path(), hook), read(ours_out.path(), hook));
            assert!(!theirs.is_empty(), "{path}: stock ran its {hook}-xfer command");
            assert_eq!(mine, theirs, "{path}: {hook}-xfer environment");
        }
    }
}

/// `-c` hashes a big list on several threads: each reads as the module's
/// user (here `nobody`, a root daemon's default), so 0600 root files are as
/// unreadable as for stock (zero sums, then a failed send), and every sum
/// lands on its own file.
#[test]
fn checksum_pulls_read_as_the_module_user_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("note: not root, no identity to take: skipped");
        return;
    }
    let (src, stock, ours) = daemons("");
    // Enough bytes and files for the parallel path (4 MiB, 8 files).
    for i in 0..24u32 {
        let data: Vec<u8> = (0..300_000u32).map(|b| (b.wrapping_mul(31) ^ i) as u8).collect();
        std::fs::write(src.path().join(format!("sub/f{i:02}")), data).unwrap();
    }
    // Every other file is the root's alone: some land on each thread.
    for i in (1..24).step_by(2) {
        std::fs::set_permissions(src.path().join(format!("sub/f{i:02}")), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::set_permissions(src.path().join("a.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // The destinations already hold every file: only a file whose sum the
    // daemon could not compute (zeros) is asked for again, and fails.
    let seeded = || {
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir(dst.path().join("sub")).unwrap();
        for i in 0..24u32 {
            let name = format!("sub/f{i:02}");
            std::fs::copy(src.path().join(&name), dst.path().join(&name)).unwrap();
        }
        dst
    };
    let run = |client: &Path, addr: std::net::SocketAddr, dst: &Path| {
        let d = format!("{}/", dst.display());
        let url = format!("rsync://{addr}/mod/");
        rsync_bin(client, &["-rc", "--no-inc-recursive", &url, &d], &[])
    };
    for (name, client) in clients() {
        let (sd, od) = (seeded(), seeded());
        let s = run(&client, stock.addr, sd.path());
        let o = run(&client, ours.addr, od.path());
        assert_eq!(o.code, 23, "{o:?}");
        for i in (1..24).step_by(2) {
            assert!(o.stderr.contains(&format!("\"sub/f{i:02}\"")), "f{i:02}: {o:?}");
        }
        assert_eq!(s.visible(true), o.visible(true), "{name}");
        assert_eq!(listing(sd.path()), listing(od.path()));
    }
}

/// A module below a directory its uid may not enter (a 0700 home) is
/// served: the daemon opens the module directory before taking the
/// module's identity, as upstream changes into it while still root.
#[test]
fn a_module_below_a_private_parent_is_served_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; module uids cannot be switched");
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let module = top.path().join("private/mod");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(module.join("file.txt"), b"served\n").unwrap();
    std::os::unix::fs::chown(&module, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(top.path().join("private"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = format!(
        "use chroot = no\n[mod]\n path = {}\n uid = 65534\n gid = 65534\n read only = no\n",
        module.display()
    );
    let (stock, ours) = (StockDaemon::start(&config), Daemon::start(&config, &["--workers=1"]));
    let (s, sd) = pull(Path::new("rsync"), stock.addr, &["-r"], "mod/");
    let (o, od) = pull(Path::new("rsync"), ours.addr, &["-r"], "mod/");
    assert_eq!((s.code, o.code), (0, 0), "{o:?}\n{}", ours.log());
    assert_eq!(std::fs::read(od.path().join("file.txt")).unwrap(), b"served\n");
    assert!(sd.path().join("file.txt").exists());
    // And a push into it.
    let up = tempfile::tempdir().unwrap();
    std::fs::write(up.path().join("new.txt"), b"uploaded\n").unwrap();
    let from = format!("{}/", up.path().display());
    let o = rsync_bin(Path::new("rsync"), &["-r", &from, &format!("rsync://{}/mod/", ours.addr)], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(std::fs::read(module.join("new.txt")).unwrap(), b"uploaded\n");
}

/// A size option upstream's parser refuses (`-M--max-size=...`) is refused
/// with its words, before anything is sent. Stock's daemon then resets the
/// connection (exit 10 at the client); we close in order (exit 1).
#[test]
fn invalid_size_values_are_refused_with_upstreams_words() {
    let (_src, stock, ours) = daemons("");
    let big = format!("--max-size={}", "9".repeat(300));
    for (value, why) in [
        ("--max-size=12x", "is invalid"),
        (big.as_str(), "is too large"),
        ("--min-size=1kq", "is invalid"),
    ] {
        let arg = format!("-M{value}");
        let (s, sd) = pull(Path::new("rsync"), stock.addr, &["-a", &arg], "mod/");
        let (o, od) = pull(Path::new("rsync"), ours.addr, &["-a", &arg], "mod/");
        // (Upstream's buffer keeps 198 characters of the message.)
        let line: String = format!("rsync: {value} {why}").chars().take(7 + 198).collect();
        assert!(s.stderr.contains(&line) && o.stderr.contains(&line), "{value}: {s:?}\n{o:?}");
        assert_eq!((s.code, o.code), (10, 1), "{value}");
        assert!(std::fs::read_dir(sd.path()).unwrap().next().is_none() && std::fs::read_dir(od.path()).unwrap().next().is_none());
    }
    let (o, _) = pull(Path::new("rsync"), ours.addr, &["-a", "-M--min-size=1k"], "mod/");
    assert_eq!(o.code, 0, "{o:?}");
}

/// `%RSYNC_MODULE_NAME%` (and the other connection variables upstream's
/// daemon sets before reading a module) expand in `path`.
#[test]
fn connection_variables_expand_in_the_module_path() {
    let top = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(top.path().join("served/127.0.0.1")).unwrap();
    std::fs::write(top.path().join("served/127.0.0.1/hello.txt"), b"EXPANDED\n").unwrap();
    let config = format!(
        "use chroot = no\n[served]\n path = {}/%RSYNC_MODULE_NAME%/%RSYNC_HOST_ADDR%\n",
        top.path().display()
    );
    let (stock, ours) = (StockDaemon::start(&config), Daemon::start(&config, &["--workers=1"]));
    for addr in [stock.addr, ours.addr] {
        let (o, d) = pull(Path::new("rsync"), addr, &["-a"], "served/hello.txt");
        assert_eq!(o.code, 0, "{o:?}");
        assert_eq!(std::fs::read(d.path().join("hello.txt")).unwrap(), b"EXPANDED\n");
    }
}

/// `gid = *`: the module's uid with all of its groups (upstream's
/// getallgroups), as stock serves it.
#[test]
fn gid_star_serves_with_every_group_of_the_uid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; module uids cannot be switched");
        return;
    }
    let (src, stock, ours) = daemons(" uid = 0\n gid = *\n read only = no\n");
    let up = tempfile::tempdir().unwrap();
    std::fs::write(up.path().join("star.txt"), b"x").unwrap();
    let from = format!("{}/", up.path().display());
    for addr in [stock.addr, ours.addr] {
        let o = rsync_bin(Path::new("rsync"), &["-r", &from, &format!("rsync://{addr}/mod/")], &[]);
        assert_eq!(o.code, 0, "{o:?}");
    }
    assert!(src.path().join("star.txt").exists());
}

/// `proxy protocol`: the client address a trusted load balancer's PROXY
/// header carries is the one `hosts allow` sees; an untrusted peer or a
/// malformed header is dropped before the greeting.
#[test]
fn proxy_protocol_headers_give_the_client_address() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let config = |hosts: &str, async_listener: &str| {
        format!(
            "use async listener = {async_listener}\nproxy protocol = yes\nproxy protocol hosts = {hosts}\nreverse lookup = no\n[mod]\n path = {}\n hosts allow = 10.0.0.0/8\n",
            dir.path().display()
        )
    };
    let talk = |addr: std::net::SocketAddr, header: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let _ = s.write_all(header);
        let _ = s.write_all(b"@RSYNCD: 30.0\nmod\n");
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    for listener in ["yes", "no"] {
        let ours = Daemon::start(&config("127.0.0.0/8", listener), &["--workers=1"]);
        let ok = talk(ours.addr, b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 873\r\n");
        assert!(ok.contains("@RSYNCD: OK"), "{listener}: {ok:?}");
        let denied = talk(ours.addr, b"PROXY TCP4 192.168.1.1 127.0.0.1 40000 873\r\n");
        assert!(
            denied.contains("@ERROR: access denied to mod from UNDETERMINED (192.168.1.1)"),
            "{listener}: {denied:?}"
        );
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        v2.extend_from_slice(&[10, 9, 8, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x03, 0x69]);
        assert!(talk(ours.addr, &v2).contains("@RSYNCD: OK"), "{listener}: v2");
        assert!(
            talk(ours.addr, b"GET / HTTP/1.0\r\n\r\n").is_empty(),
            "{listener}: no header, dropped"
        );
        assert!(ours.log().contains("connect from UNDETERMINED (10.1.2.3)"), "{}", ours.log());
        let untrusted = Daemon::start(&config("192.0.2.0/24", listener), &["--workers=1"]);
        assert!(talk(untrusted.addr, b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 873\r\n").is_empty());
        assert!(
            untrusted.log().contains("proxy protocol rejected from untrusted peer"),
            "{}",
            untrusted.log()
        );
    }
}

/// `early exec`: the command gets the client's `--early-input` on its
/// standard input and the connection in RSYNC_* variables before the
/// client is admitted; a failing one refuses it, as stock's daemon does.
#[test]
fn early_exec_like_stock() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    std::fs::write(&input, b"token=abc123\n").unwrap();
    let module_dir = tempfile::tempdir().unwrap();
    std::fs::write(module_dir.path().join("f"), b"x").unwrap();
    // One hook per daemon, each writing what it got to its own file.
    let config = |who: &str| {
        let hook = dir.path().join(format!("{who}.sh"));
        let capture = dir.path().join(format!("{who}.capture"));
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\ncat >> {c}\necho \"$RSYNC_MODULE_NAME $RSYNC_REQUEST $RSYNC_HOST_ADDR\" >> {c}\n[ \"$RSYNC_MODULE_NAME\" != fails ]\n",
                c = capture.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!(
            "use chroot = no\n[ok]\n path = {m}\n early exec = {h}\n[fails]\n path = {m}\n early exec = {h}\n",
            m = module_dir.path().display(),
            h = hook.display()
        )
    };
    let (stock, ours) = (
        StockDaemon::start(&config("stock")),
        Daemon::start(&config("ours"), &["--workers=1"]),
    );
    let early = format!("--early-input={}", input.display());
    for (who, addr) in [("stock", stock.addr), ("ours", ours.addr)] {
        let ok = rsync_bin(Path::new("rsync"), &[&early, &format!("rsync://{addr}/ok/")], &[]);
        assert_eq!(ok.code, 0, "{who}: {ok:?}");
        let fails = rsync_bin(Path::new("rsync"), &[&early, &format!("rsync://{addr}/fails/")], &[]);
        assert_eq!(fails.code, 5, "{who}: {fails:?}");
        assert!(fails.stderr.contains("@ERROR: early exec failed"), "{who}: {fails:?}");
    }
    let captured = |who: &str| std::fs::read_to_string(dir.path().join(format!("{who}.capture"))).unwrap();
    assert_eq!(captured("stock"), captured("ours"));
    assert!(
        captured("ours").starts_with("token=abc123\nok (NONE) 127.0.0.1\n"),
        "{}",
        captured("ours")
    );
}

/// A module path that goes through a symlink another user owns (who could
/// point it anywhere) is refused, as stock 3.5's daemon refuses it; one
/// root owns is followed.
#[test]
fn a_module_path_through_an_untrusted_symlink_is_refused_like_stock() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root; the planted link cannot be given another owner");
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let target = top.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("canary"), b"not for you\n").unwrap();
    for (owner, served) in [(65534, false), (0, true)] {
        let link = top.path().join(format!("plant-{owner}"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        nix::unistd::fchownat(
            None,
            &link,
            Some(nix::unistd::Uid::from_raw(owner)),
            Some(nix::unistd::Gid::from_raw(owner)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let config = format!("use chroot = no\n[mod]\n path = {}\n uid = 0\n gid = 0\n", link.display());
        let (stock, ours) = (StockDaemon::start(&config), Daemon::start(&config, &["--workers=1"]));
        for (who, addr) in [("stock", stock.addr), ("ours", ours.addr)] {
            let o = rsync_bin(Path::new("rsync"), &[&format!("rsync://{addr}/mod/")], &[]);
            assert_eq!(o.stdout.contains("canary"), served, "{who}, link owned by {owner}: {o:?}");
            if !served {
                assert!(o.stderr.contains("@ERROR: chdir failed"), "{who}: {o:?}");
            }
        }
    }
}

/// `hosts allow`/`hosts deny` names written in Unicode are folded to
/// their IDNA form before matching the peer's (ASCII) name, as upstream
/// built with IDN support does: a fullwidth spelling of the peer's name
/// matches, in either list; a fullwidth `*` or `/` never turns into a
/// wildcard or a mask. (Debian's stock daemon is built without IDN, so
/// this is checked against upstream's rules, not a stock run.)
#[test]
fn hosts_lists_fold_unicode_names_like_upstream() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let fullwidth = |ascii: &str| -> String {
        ascii
            .chars()
            .map(|c| {
                if c != '.' && ('!'..='~').contains(&c) {
                    char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()
                } else {
                    c
                }
            })
            .collect()
    };
    // The name this host's resolver gives the loopback peer.
    let probe = Daemon::start(&format!("[probe]\n path = {}\n", dir.path().display()), &["--workers=1"]);
    rsync_bin(Path::new("rsync"), &[format!("rsync://{}/probe/", probe.addr)], &[]);
    let log = probe.log();
    let peer = log
        .split("connect from ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("a connect line")
        .to_string();
    assert!(
        peer.is_ascii() && peer.chars().any(|c| c.is_ascii_alphabetic()),
        "peer name {peer:?}"
    );
    let modules = [
        ("idnname", format!("hosts allow = {}", fullwidth(&peer)), true),
        ("idnupper", format!("hosts allow = {}", fullwidth(&peer.to_uppercase())), true),
        ("idndeny", format!("hosts deny = {}", fullwidth(&peer)), false),
        ("idnother", "hosts allow = čičku.example".to_string(), false),
        ("widestar", "hosts allow = \u{ff0a}".to_string(), false),
        ("widemask", "hosts allow = 127.0.0.0\u{ff0f}8".to_string(), false),
        ("nothing", "hosts allow = \u{200b}.example".to_string(), false),
    ];
    let config: String = modules
        .iter()
        .map(|(name, line, _)| format!("[{name}]\n path = {}\n {line}\n", dir.path().display()))
        .collect();
    let ours = Daemon::start(&format!("forward lookup = no\n{config}"), &["--workers=1"]);
    for (name, line, allowed) in &modules {
        let run = rsync_bin(Path::new("rsync"), &[format!("rsync://{}/{name}/", ours.addr)], &[]);
        assert_eq!(run.code == 0, *allowed, "{name} ({line}): {run:?}");
        if !allowed {
            assert!(run.stderr.contains("@ERROR: access denied"), "{name}: {run:?}");
        }
    }
}

/// `%RSYNC_USER_NAME%` and the other connection variables in a hook's
/// command line are substituted as upstream 3.5 substitutes them: quoted
/// for where they stand, and a value that could be shell syntax (here an
/// authenticated user name carrying `$(...)`) refuses the hook and the
/// transfer, in every quoting context, a nested shell's included; an
/// ordinary value reaches the hook intact. Compared with stock.
#[test]
fn hook_command_variables_refuse_shell_syntax_like_stock() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    TreeBuilder::new(&src).file("f", "x\n");
    let hostile = "$(touch${IFS}pwned)x";
    let benign = "alice.b-1_x";
    let templates = [
        ("unq", "printf %s %RSYNC_USER_NAME% >{out}"),
        ("sq", "printf %s '%RSYNC_USER_NAME%' >{out}"),
        ("dq", "printf %s \"%RSYNC_USER_NAME%\" >{out}"),
        ("nest", "sh -c 'printf %s %RSYNC_USER_NAME% >{out}'"),
    ];
    let secrets = work.path().join("secrets");
    std::fs::write(&secrets, format!("{hostile}:pw\n{benign}:pw\n")).unwrap();
    std::fs::set_permissions(&secrets, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let password = work.path().join("password");
    std::fs::write(&password, "pw\n").unwrap();
    std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for daemon in ["stock", "oxrsyncd"] {
        let out_dir = work.path().join(format!("out-{daemon}"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let mut config = String::from("use chroot = no\n");
        for (label, template) in templates {
            let dest = work.path().join(format!("dest-{daemon}-{label}"));
            std::fs::create_dir_all(&dest).unwrap();
            let out = out_dir.join(label);
            config.push_str(&format!(
                "[{label}]\n path = {}\n read only = no\n uid = root\n gid = root\n auth users = *\n secrets file = {}\n pre-xfer exec = cd {} && {}\n",
                dest.display(),
                secrets.display(),
                out_dir.display(),
                template.replace("{out}", &out.display().to_string())
            ));
        }
        let (stock, ours);
        let addr = if daemon == "stock" {
            stock = Some(StockDaemon::start(&config));
            stock.as_ref().unwrap().addr
        } else {
            ours = Some(Daemon::start(&config, &["--workers=1"]));
            ours.as_ref().unwrap().addr
        };
        for (label, _) in templates {
            for (user, ok) in [(hostile, false), (benign, true)] {
                let url = format!("rsync://{user}@{addr}/{label}/");
                let run = rsync_bin(
                    Path::new("rsync"),
                    &[
                        "-r".to_string(),
                        format!("--password-file={}", password.display()),
                        format!("{}/", src.display()),
                        url,
                    ],
                    &[],
                );
                let out = out_dir.join(label);
                assert!(!out_dir.join("pwned").exists(), "{daemon} {label}: the value ran as shell syntax");
                if ok {
                    assert_eq!(run.code, 0, "{daemon} {label}: {run:?}");
                    // Inside double quotes upstream also wraps the value in
                    // single quotes (for a nested shell): they show.
                    let expected = if label == "dq" { format!("'{benign}'") } else { benign.to_string() };
                    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), expected, "{daemon} {label}");
                    let _ = std::fs::remove_file(&out);
                } else {
                    assert_ne!(run.code, 0, "{daemon} {label}: a hostile value ran the transfer: {run:?}");
                }
            }
        }
    }
}

/// `insecure links = yes` (3.5's per-module opt-out, not chrooted): a
/// link to a directory outside the module is followed as stock follows
/// it, by a pull with `-k` and by a push with `-K` (into the directory
/// it leads to); without it the same pull lists nothing outside (exit 23).
#[test]
fn insecure_links_follow_links_out_of_the_module_like_stock() {
    use crate::harness::pair::start_pair;
    use crate::harness::push_pair::start_push_pair;
    use crate::harness::tree::{snapshot, TreeBuilder};
    let outside = tempfile::tempdir().unwrap();
    TreeBuilder::new(outside.path())
        .file("secret.txt", "OUT-OF-MODULE\n")
        .mtimes(["secret.txt", "."], 1_600_000_000, 0);
    let target = outside.path().to_path_buf();
    let p = start_pair(
        |root| {
            TreeBuilder::new(root)
                .file("intree.txt", "in-module\n")
                .symlink("sub", &target)
                .mtimes(["intree.txt", "."], 1_600_000_000, 0);
        },
        |root| {
            format!(
                "[secure]\n path = {0}\n uid = root\n gid = root\n[insecure]\n path = {0}\n uid = root\n gid = root\n insecure links = yes\n",
                root.display()
            )
        },
    );
    for (label, bin) in clients() {
        for (module, served) in [("secure", false), ("insecure", true)] {
            let (s_dst, o_dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let pull = |addr: std::net::SocketAddr, dst: &Path| {
                rsync_bin(
                    &bin,
                    &["-rtk", &format!("rsync://{addr}/{module}/"), &format!("{}/", dst.display())],
                    &[],
                )
            };
            let (stock, ours) = (pull(p.stock.addr, s_dst.path()), pull(p.ours.addr, o_dst.path()));
            assert_eq!(stock.code, ours.code, "{label} {module}: {stock:?} {ours:?}");
            assert_eq!(snapshot(s_dst.path()), snapshot(o_dst.path()), "{label} {module}");
            assert_eq!(o_dst.path().join("sub/secret.txt").is_file(), served, "{label} {module}: {ours:?}");
        }
    }
    // A push with -K writes through such a link, as stock's does.
    let push = start_push_pair(
        |root| {
            TreeBuilder::new(root)
                .file("sub/new.txt", "pushed\n")
                .mtimes(["sub/new.txt", "sub"], 1_600_000_000, 0);
        },
        " insecure links = yes\n use chroot = no\n",
    );
    let (stock_out, ours_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (so, oo) = (stock_out.path().to_path_buf(), ours_out.path().to_path_buf());
    push.reset(None);
    std::os::unix::fs::symlink(&so, push.stock_dst.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(&oo, push.ours_dst.path().join("sub")).unwrap();
    let (stock, ours) = push.push_with(Path::new("rsync"), &["-rtK"], "", "w/");
    assert_eq!((stock.code, ours.code), (0, 0), "{stock:?} {ours:?}");
    assert_eq!(snapshot(&so), snapshot(&oo));
    assert!(oo.join("new.txt").is_file(), "{ours:?}");
}

/// `name converter`: owners' names and ids go through the module's
/// program instead of the system's databases, as stock's do. A push with
/// `-og` (files owned by `daemon`) lands with the ids the converter gives
/// for the names; a pull sends the converter's names for the module's
/// ids, which the client maps to its own (`daemon` is uid 1 here).
#[test]
fn a_name_converter_maps_owners_like_stock() {
    use crate::harness::pair::start_pair;
    use crate::harness::push_pair::start_push_pair;
    use crate::harness::tree::{snapshot, TreeBuilder};
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("nameconvert");
    std::fs::write(
        &script,
        "#!/bin/sh\nwhile read req arg; do case \"$req $arg\" in\n\
         'usr daemon') echo 4242;; 'grp daemon') echo 4343;; usr*|grp*) echo;;\n\
         'uid 4242') echo daemon;; 'gid 4343') echo daemon;; *) echo;; esac; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let extra = format!(" name converter = {}\n numeric ids = no\n", script.display());
    let push = start_push_pair(
        |root| {
            TreeBuilder::new(root)
                .file("d/f", "data\n")
                .file("g", "more\n")
                .owner("d/f", 1, 1)
                .owner("d", 1, 1)
                .owner("g", 2, 2)
                .mtimes(["d/f", "g", "d"], 1_600_000_000, 0);
        },
        &extra,
    );
    for (label, bin) in clients() {
        push.reset(None);
        let (stock, ours) = push.push_with(&bin, &["-rtog"], "", "w/");
        assert_eq!((stock.code, ours.code), (0, 0), "{label}: {stock:?} {ours:?}");
        assert_eq!(snapshot(push.stock_dst.path()), snapshot(push.ours_dst.path()), "{label}");
        let owner = |rel: &str| {
            let m = std::fs::metadata(push.ours_dst.path().join(rel)).unwrap();
            (std::os::unix::fs::MetadataExt::uid(&m), std::os::unix::fs::MetadataExt::gid(&m))
        };
        assert_eq!(owner("d/f"), (4242, 4343), "{label}: the converter's ids");
        assert_eq!(owner("g"), (2, 2), "{label}: a name it does not know keeps its id");
    }
    let pull = start_pair(
        |root| {
            TreeBuilder::new(root)
                .file("f", "data\n")
                .owner("f", 4242, 4343)
                .mtimes(["f", "."], 1_600_000_000, 0);
        },
        |root| format!("[mod]\n path = {}\n uid = root\n gid = root\n{extra}", root.display()),
    );
    for (label, bin) in clients() {
        let (s_dst, o_dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let run = |addr: std::net::SocketAddr, dst: &Path| {
            rsync_bin(
                &bin,
                &["-rtog", &format!("rsync://{addr}/mod/"), &format!("{}/", dst.display())],
                &[],
            )
        };
        let (stock, ours) = (run(pull.stock.addr, s_dst.path()), run(pull.ours.addr, o_dst.path()));
        assert_eq!((stock.code, ours.code), (0, 0), "{label}: {stock:?} {ours:?}");
        assert_eq!(snapshot(s_dst.path()), snapshot(o_dst.path()), "{label}");
        let m = std::fs::metadata(o_dst.path().join("f")).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&m),
            1,
            "{label}: named by the converter, mapped by the client"
        );
    }
}

/// A module's own `log file` gets its sessions' lines, as stock's daemon
/// reopens its log for the module: the transfer's lines (here a push
/// with `transfer logging`) are there, not in the daemon's log; a module
/// log path through a symlink someone else owns is refused.
#[test]
fn a_modules_log_file_gets_its_sessions_lines_like_stock() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "data\n").unwrap();
    let logs = tempfile::tempdir().unwrap();
    for who in ["stock", "ours"] {
        let dst = tempfile::tempdir().unwrap();
        let module_log = logs.path().join(format!("{who}-module.log"));
        let config = format!(
            "use chroot = no\n[w]\n path = {}\n read only = no\n uid = root\n gid = root\n transfer logging = yes\n log file = {}\n",
            dst.path().display(),
            module_log.display()
        );
        let (stock, ours) = if who == "stock" {
            (Some(StockDaemon::start(&config)), None)
        } else {
            (None, Some(Daemon::start(&config, &["--workers=1"])))
        };
        let addr = stock.as_ref().map(|d| d.addr).or(ours.as_ref().map(|d| d.addr)).unwrap();
        let daemon_log = || ours.as_ref().map(|d| d.log()).unwrap_or_default();
        let run = rsync_bin(
            Path::new("rsync"),
            &["-a", &format!("{}/", src.path().display()), &format!("rsync://{addr}/w/")],
            &[],
        );
        assert_eq!(run.code, 0, "{who}: {run:?}");
        let mut text = String::new();
        for _ in 0..50 {
            text = std::fs::read_to_string(&module_log).unwrap_or_default();
            if text.contains("recv ") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(text.contains("rsync to w/ from"), "{who}: {text}");
        assert!(text.contains("recv ") && text.contains(" f "), "{who}: {text}");
        if who == "ours" {
            assert!(
                !daemon_log().contains("rsync to w/ from"),
                "ours: the daemon log has the session's lines"
            );
        }
    }
}
