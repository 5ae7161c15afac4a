//! The shipped systemd units pass `systemd-analyze verify` with no
//! complaint (pointed at the binary under test, as they would be installed).

use std::process::Command;

use crate::harness::daemon::binary;

#[test]
fn units_verify_clean() {
    let units_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/oxrsyncd", &binary().display().to_string());
        std::fs::write(dir.path().join(&name), text).unwrap();
        names.push(format!("./{name}"));
    }
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&names)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze");
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
}
