//! The handshake state machine driven by hand, without sockets.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use oxrsyncd_shared::config::{parse_rsyncd_conf, Config};

use super::digest::AuthDigest;
use super::*;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn config(extra: &str, dir: &Path) -> Arc<Config> {
    let text = format!(
        "reverse lookup = no\nlock file = {d}/lock\n[pub]\n path = {d}\n comment = Public files\n[hidden]\n path = {d}\n list = no\n[closed]\n path = {d}\n hosts allow = 10.0.0.0/8\n[nopath]\n comment = x\n{extra}",
        d = dir.display()
    );
    Arc::new(parse_rsyncd_conf(&text, Path::new("test.conf"), &[]).unwrap())
}

fn text(hs: &mut Handshake) -> String {
    String::from_utf8(hs.take_output()).unwrap()
}

fn greeted(cfg: Arc<Config>) -> Handshake {
    let mut hs = Handshake::new(cfg, LOCALHOST);
    assert!(matches!(hs.begin(), Progress::Need(Want::Line)));
    assert_eq!(text(&mut hs), "@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n");
    assert!(matches!(
        hs.feed(b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4"),
        Progress::Need(Want::Line)
    ));
    hs
}

#[test]
fn listing_shows_listed_modules_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    assert!(matches!(hs.feed(b"#list"), Progress::Close));
    let listing = text(&mut hs);
    assert_eq!(
        listing,
        "pub            \tPublic files\nclosed         \t\nnopath         \tx\n@RSYNCD: EXIT\n"
    );
}

#[test]
fn unknown_module_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    assert!(matches!(hs.feed(b"nosuch"), Progress::Close));
    assert_eq!(text(&mut hs), "@ERROR: Unknown module 'nosuch'\n");
    let mut hs = greeted(config("", dir.path()));
    hs.feed(b"#frobnicate");
    assert_eq!(text(&mut hs), "@ERROR: Unknown command '#frobnicate'\n");
}

#[test]
fn host_deny_wording_depends_on_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    hs.feed(b"closed");
    assert_eq!(text(&mut hs), "@ERROR: access denied to closed from UNDETERMINED (127.0.0.1)\n");
    let cfg = config("[secret]\n path = /tmp\n list = no\n hosts deny = 127.0.0.1\n", dir.path());
    let mut hs = greeted(cfg);
    hs.feed(b"secret");
    assert_eq!(text(&mut hs), "@ERROR: Unknown module 'secret'\n");
}

#[test]
fn missing_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    hs.feed(b"nopath");
    assert_eq!(text(&mut hs), "@ERROR: no path setting.\n");
}

#[test]
fn admitted_client_sends_nul_separated_args() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    assert!(matches!(hs.feed(b"pub"), Progress::Need(Want::Arg { nul_terminated: true })));
    assert_eq!(text(&mut hs), "@RSYNCD: OK\n");
    for a in ["--server", "--sender", "-vlogDtpre.iLsfxCIvu", ".", "pub/"] {
        assert!(matches!(hs.feed(a.as_bytes()), Progress::Need(_)));
    }
    let Progress::Session(req) = hs.feed(b"") else {
        panic!("expected a session")
    };
    assert_eq!(req.options, ["--server", "--sender", "-vlogDtpre.iLsfxCIvu"]);
    assert_eq!(req.paths_text(), ["pub/"]);
    assert_eq!(req.protocol, 32);
    assert!(req.read_only);
}

#[test]
fn old_protocol_uses_newline_args() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = Handshake::new(config("", dir.path()), LOCALHOST);
    hs.begin();
    hs.take_output();
    hs.feed(b"@RSYNCD: 29");
    assert!(matches!(hs.feed(b"pub"), Progress::Need(Want::Arg { nul_terminated: false })));
}

#[test]
fn secluded_args_add_to_the_first_block() {
    // All arguments again in the secluded block: parsed after the first, as upstream.
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    hs.feed(b"pub");
    for a in ["--server", "-s", "."] {
        hs.feed(a.as_bytes());
    }
    assert!(matches!(hs.feed(b""), Progress::Need(Want::Arg { nul_terminated: true })));
    for a in ["rsync", "--server", "--sender", "-re.iLsfxCIvu", ".", "pub/a b"] {
        hs.feed(a.as_bytes());
    }
    let Progress::Session(req) = hs.feed(b"") else {
        panic!("expected a session")
    };
    assert_eq!(req.options, ["--server", "-s", "--server", "--sender", "-re.iLsfxCIvu"]);
    assert_eq!(req.paths_text(), ["pub/a b"]);
}

#[test]
fn secluded_args_split_between_the_blocks_as_3_x_clients_send_them() {
    // Short options first, the rest after the cut; at protocol 29 the
    // client prints the cut itself as "(null)", which is no option.
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    hs.feed(b"pub");
    for a in ["--server", "--sender", "-slogDtpre.iLsfxCIvu", "(null)"] {
        hs.feed(a.as_bytes());
    }
    assert!(matches!(hs.feed(b""), Progress::Need(Want::Arg { nul_terminated: true })));
    for a in ["rsync", "--usermap=a:b", ".", "pub/"] {
        hs.feed(a.as_bytes());
    }
    let Progress::Session(req) = hs.feed(b"") else {
        panic!("expected a session")
    };
    assert_eq!(req.options, ["--server", "--sender", "-slogDtpre.iLsfxCIvu", "--usermap=a:b"]);
    assert_eq!(req.paths_text(), ["pub/"]);
}

#[test]
fn bad_greetings_get_upstream_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = Handshake::new(config("", dir.path()), LOCALHOST);
    hs.begin();
    hs.take_output();
    assert!(matches!(hs.feed(b"GET / HTTP/1.0"), Progress::Close));
    assert_eq!(text(&mut hs), "@ERROR: protocol startup error\n");
    let mut hs = Handshake::new(config("", dir.path()), LOCALHOST);
    hs.begin();
    hs.take_output();
    hs.feed(b"@RSYNCD: 32.0");
    assert_eq!(text(&mut hs), "@ERROR: your client omitted the digest name list: @RSYNCD: 32.0\n");
}

#[test]
fn early_input_is_read_then_the_module_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut hs = greeted(config("", dir.path()));
    assert!(matches!(hs.feed(b"#early_input=5"), Progress::Need(Want::Bytes(5))));
    assert!(matches!(hs.feed(b"hello"), Progress::Need(Want::Line)));
    hs.feed(b"pub");
    assert_eq!(text(&mut hs), "@RSYNCD: OK\n");
    let mut hs = greeted(config("", dir.path()));
    hs.feed(b"#early_input=999999");
    assert_eq!(text(&mut hs), "@ERROR: invalid early_input length\n");
}

#[test]
fn auth_challenge_and_response() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(&secrets, "alice:wonder\n").unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!(
        "[priv]\n path = {}\n auth users = alice:rw\n secrets file = {}\n",
        dir.path().display(),
        secrets.display()
    );
    let cfg = config(&extra, dir.path());

    for (password, ok) in [("wonder", true), ("land", false)] {
        let mut hs = greeted(cfg.clone());
        assert!(matches!(hs.feed(b"priv"), Progress::Need(Want::Line)));
        let out = text(&mut hs);
        let challenge = out.strip_prefix("@RSYNCD: AUTHREQD ").unwrap().trim_end().to_string();
        let reply = format!(
            "alice {}",
            AuthDigest::Sha512.hash_b64(&[password.as_bytes(), challenge.as_bytes()])
        );
        let progress = hs.feed(reply.as_bytes());
        if ok {
            assert!(matches!(progress, Progress::Need(Want::Arg { .. })));
            assert_eq!(text(&mut hs), "@RSYNCD: OK\n");
            for a in ["--server", "."] {
                hs.feed(a.as_bytes());
            }
            let Progress::Session(req) = hs.feed(b"") else { panic!() };
            assert_eq!(req.user.as_deref(), Some("alice"));
            assert!(!req.read_only, ":rw lifts read only");
        } else {
            assert!(matches!(progress, Progress::Close));
            assert_eq!(text(&mut hs), "@ERROR: auth failed on module priv\n");
        }
    }
}

#[test]
fn max_connections_counts_held_slots() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[one]\n path = {}\n max connections = 1\n", dir.path().display());
    let cfg = config(&extra, dir.path());
    let mut first = greeted(cfg.clone());
    first.feed(b"one");
    assert_eq!(text(&mut first), "@RSYNCD: OK\n");
    let mut second = greeted(cfg.clone());
    second.feed(b"one");
    assert_eq!(text(&mut second), "@ERROR: max connections (1) reached -- try again later\n");
    drop(first);
    let mut third = greeted(cfg);
    third.feed(b"one");
    assert_eq!(text(&mut third), "@RSYNCD: OK\n");
}
