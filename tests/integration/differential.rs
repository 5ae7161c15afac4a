//! The same stock-client commands against stock `rsync --daemon` and
//! oxrsyncd on the same rsyncd.conf: listings, refusals and auth must give
//! the same output and exit codes. Run for both accept front ends.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::client::{clients, rsync, rsync_bin, rsync_env, ClientRun};
use crate::harness::daemon::Daemon;
use crate::harness::stock::StockDaemon;

/// A module tree and config exercising listing, ACLs and auth.
struct Fixture {
    _dir: tempfile::TempDir,
    config: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("file.txt"), "content\n").unwrap();
    std::fs::write(d.join("motd"), "Welcome to the mirror\nSecond line\n").unwrap();
    let secrets = d.join("secrets");
    std::fs::write(&secrets, "alice:wonderland\n@staff:groupsecret\n").unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "use chroot = no\nmotd file = {d}/motd\n\
         [pub]\n path = {s}\n comment = Public mirror\n\
         [hidden]\n path = {s}\n list = no\n\
         [denied]\n path = {s}\n comment = no entry\n hosts deny = 127.0.0.1\n\
         [hiddendeny]\n path = {s}\n list = no\n hosts allow = 10.9.9.9\n\
         [allowonly]\n path = {s}\n hosts allow = 127.0.0.0/8\n comment = loopback only\n\
         [secure]\n path = {s}\n comment = members\n auth users = alice, bob:deny\n secrets file = {secrets}\n",
        d = d.display(),
        s = src.display(),
        secrets = secrets.display()
    );
    Fixture { _dir: dir, config }
}

/// `rsync://[USER@]ADDR/PATH` from a target written `[USER@]PATH`.
fn url(addr: SocketAddr, target: &str) -> String {
    match target.split_once('@') {
        Some((user, path)) => format!("rsync://{user}@{addr}/{path}"),
        None => format!("rsync://{addr}/{target}"),
    }
}

fn assert_same(what: &str, stock: &ClientRun, ours: &ClientRun) {
    assert_eq!(stock.code, ours.code, "{what}: exit codes differ\nstock: {stock:?}\nours: {ours:?}");
    assert_eq!(stock.stdout, ours.stdout, "{what}: stdout differs");
    assert_eq!(stock.normalized_stderr(), ours.normalized_stderr(), "{what}: stderr differs");
}

/// Environment for one client run.
type Env = Vec<(&'static str, &'static str)>;

fn compare_daemons(async_listener: bool) {
    let fx = fixture();
    let stock = StockDaemon::start(&fx.config);
    let ours = Daemon::start(
        &format!("use async listener = {}\n{}", if async_listener { "yes" } else { "no" }, fx.config),
        &["--workers=2"],
    );

    // (what, client options then target, environment)
    let cases: Vec<(&str, Vec<String>, Env)> = vec![
        ("listing", vec![String::new()], vec![]),
        ("listing at protocol 29", vec!["--protocol=29".into(), String::new()], vec![]),
        ("listing at protocol 27", vec!["--protocol=27".into(), String::new()], vec![]),
        ("unknown module", vec!["nosuch/".into()], vec![]),
        (
            "unknown module at protocol 28",
            vec!["--protocol=28".into(), "nosuch/".into()],
            vec![],
        ),
        ("hosts deny", vec!["denied/".into()], vec![]),
        ("hosts allow miss on unlisted module", vec!["hiddendeny/".into()], vec![]),
        ("wrong password", vec!["alice@secure/".into()], vec![("RSYNC_PASSWORD", "wrong")]),
        (
            "unknown user",
            vec!["mallory@secure/".into()],
            vec![("RSYNC_PASSWORD", "wonderland")],
        ),
        ("denied user", vec!["bob@secure/".into()], vec![("RSYNC_PASSWORD", "x")]),
        (
            "wrong password at protocol 29 (md4)",
            vec!["--protocol=29".into(), "alice@secure/".into()],
            vec![("RSYNC_PASSWORD", "nope")],
        ),
    ];
    for (label, bin) in clients() {
        for (what, args, env) in &cases {
            let (last, options) = args.split_last().expect("a target");
            let run = |addr| {
                let mut argv: Vec<String> = options.to_vec();
                argv.push(url(addr, last));
                let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
                rsync_bin(&bin, &refs, env)
            };
            assert_same(&format!("{label}: {what}"), &run(stock.addr), &run(ours.addr));
        }
    }

    // A correct password passes auth on both; the transfer itself is not
    // ours to run yet, so only the absence of an auth failure is compared.
    let s = rsync_env(&[&url(stock.addr, "alice@secure/")], &[("RSYNC_PASSWORD", "wonderland")]);
    let o = rsync_env(&[&url(ours.addr, "alice@secure/")], &[("RSYNC_PASSWORD", "wonderland")]);
    assert_eq!(s.code, 0, "stock accepts the right password: {s:?}");
    assert!(!o.stderr.contains("auth failed"), "we accept the right password: {o:?}");
    assert!(
        ours.log().contains("rsync on secure/ from alice@localhost (127.0.0.1)"),
        "log names the user:\n{}",
        ours.log()
    );
    assert!(Path::new(&ours.log_path).exists());
}

#[test]
fn same_as_stock_with_async_listener() {
    compare_daemons(true);
}

#[test]
fn same_as_stock_with_blocking_listener() {
    compare_daemons(false);
}

#[test]
fn log_lines_look_like_upstream() {
    let fx = fixture();
    let ours = Daemon::start(&fx.config, &["--workers=1"]);
    rsync(&[&ours.url("")]);
    rsync(&[&ours.url("nosuch/")]);
    rsync(&[&ours.url("denied/")]);
    let log = ours.log();
    for needle in [
        "] connect from localhost (127.0.0.1)",
        "] module-list request from localhost (127.0.0.1)",
        "] unknown module 'nosuch' tried from localhost (127.0.0.1)",
        "] rsync denied on module denied from localhost (127.0.0.1)",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in log:\n{log}");
    }
    // `YYYY/MM/DD HH:MM:SS [PID] ` prefix.
    let line = log.lines().find(|l| l.contains("connect from")).unwrap();
    let b = line.as_bytes();
    assert!(
        b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[13] == b':' && b[19] == b' ' && b[20] == b'[',
        "{line}"
    );
}
