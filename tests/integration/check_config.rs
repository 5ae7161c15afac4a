//! `--check-config` and config formats through the real binary.

use std::process::Command;

use crate::harness::daemon::binary;
use crate::harness::raw::list_modules;

#[test]
fn valid_config_prints_effective_settings() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "# comment\nmax connections = 4\n[www]\n path = {}\n Read-Only = no\n charset = utf-8\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("--check-config")
        .arg(format!("--config={}", conf.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[www]"), "{text}");
    assert!(text.contains("read only = no"), "{text}");
    assert!(text.contains("max connections = 4"), "{text}");
    assert!(
        text.contains("charset"),
        "charset is reported as accepted but not yet enforced:\n{text}"
    );
}

#[test]
fn bad_line_is_reported_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(&conf, "[www]\n path = /tmp\n raed only = no\n").unwrap();
    let out = Command::new(binary())
        .arg("--check-config")
        .arg(format!("--config={}", conf.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3", conf.display())), "{err}");
    assert!(err.contains("raed only"), "{err}");

    // Starting the daemon on it fails the same way, before anything binds.
    let out = Command::new(binary())
        .arg(format!("--config={}", conf.display()))
        .arg("--port=1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":3"));
}

#[test]
fn toml_config_serves_the_same_modules() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("oxrsyncd.toml");
    std::fs::write(
        &toml_path,
        format!("[global]\n\"use chroot\" = false\n\n[modules.alpha]\npath = \"{d}\"\ncomment = \"first\"\n\n[modules.beta]\npath = \"{d}\"\nlist = false\n", d = dir.path().display()),
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("--check-config")
        .arg(format!("--config={}", toml_path.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = crate::harness::daemon::spawn_with_listener(&listener, &toml_path, &["--workers=1"]);
    drop(listener);
    let names = crate::harness::eventually(std::time::Duration::from_secs(10), || {
        list_modules(addr, std::time::Duration::from_secs(2)).is_ok()
    });
    assert!(names);
    assert_eq!(list_modules(addr, std::time::Duration::from_secs(5)).unwrap(), ["alpha"]);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-(child.id() as i32)), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

/// An unknown name in `socket options` is left out with upstream's
/// warning; the config still loads, as upstream's does.
#[test]
fn unknown_socket_options_warn_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!("socket options = SO_KEEPALIVE NOSUCHOPT\n[m]\n path = {}\n", dir.path().display()),
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("--check-config")
        .arg(format!("--config={}", conf.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Unknown socket option NOSUCHOPT"), "{text}");
}
