//! `hosts deny` with host-name patterns fails closed when the client's
//! name cannot be determined (CVE-2026-70452): the stock client connects
//! from 127.0.0.2, which has no PTR record here, so its name is UNKNOWN.

use crate::harness::client::rsync;
use crate::harness::daemon::Daemon;

fn modules(dir: &std::path::Path, async_listener: bool) -> String {
    format!(
        "use chroot = no\nuse async listener = {1}\n\
         [guarded]\n path = {0}\n hosts deny = *.example.com\n\
         [named]\n path = {0}\n hosts deny = bad.example.com\n\
         [byaddr]\n path = {0}\n hosts deny = 10.0.0.0/8\n\
         [allowed]\n path = {0}\n hosts allow = 127.0.0.2\n hosts deny = *.example.com\n",
        dir.display(),
        if async_listener { "yes" } else { "no" },
    )
}

fn unknown_name_fails_closed(async_listener: bool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let daemon = Daemon::start(&modules(dir.path(), async_listener), &["--workers=1"]);
    let pull = |module: &str, from: &str| rsync(&[&format!("--address={from}"), &daemon.url(&format!("{module}/"))]);
    // The name of 127.0.0.2 is unknown: name patterns in deny refuse it.
    for module in ["guarded", "named"] {
        let run = pull(module, "127.0.0.2");
        assert_ne!(run.code, 0, "{module}: {run:?}");
        assert!(run.stderr.contains("@ERROR: access denied"), "{module}: {run:?}");
    }
    assert!(daemon.log().contains("from UNKNOWN (127.0.0.2)"), "{}", daemon.log());
    // Address tokens and allow matches are unaffected; a named peer passes.
    assert_eq!(pull("byaddr", "127.0.0.2").code, 0);
    assert_eq!(pull("allowed", "127.0.0.2").code, 0);
    let named = pull("guarded", "127.0.0.1");
    assert_eq!(named.code, 0, "localhost has a name: {named:?}");
}

#[test]
fn hosts_deny_name_patterns_refuse_an_unknown_peer_async() {
    unknown_name_fails_closed(true);
}

#[test]
fn hosts_deny_name_patterns_refuse_an_unknown_peer_blocking() {
    unknown_name_fails_closed(false);
}
