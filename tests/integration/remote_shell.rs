//! The daemon a client starts over a remote shell (`rsync -e ssh
//! host::module` runs `rsync --server --daemon .` on the far side):
//! the same listing, pull and push through a stand-in shell, against
//! stock `rsync --server --daemon` and against ours.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::client::rsync_bin;
use crate::harness::daemon::binary;
use crate::harness::tree::snapshot;

#[test]
fn a_daemon_over_a_remote_shell_serves_like_stock() {
    let dir = tempfile::tempdir().unwrap();
    // The stand-in for ssh: drop the host, run the command line.
    let rsh = dir.path().join("rsh.sh");
    std::fs::write(&rsh, "#!/bin/sh\nshift\nexec sh -c \"$*\"\n").unwrap();
    std::fs::set_permissions(&rsh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let module = dir.path().join("m");
    std::fs::create_dir_all(module.join("sub")).unwrap();
    std::fs::write(module.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(module.join("sub/b.txt"), b"beta\n").unwrap();
    let conf = dir.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "use chroot = no\n[m]\n path = {}\n read only = no\n uid = root\n gid = root\n",
            module.display()
        ),
    )
    .unwrap();
    let e = format!("-e{}", rsh.display());
    let servers = [
        ("stock", format!("--rsync-path=rsync --config={}", conf.display())),
        ("ours", format!("--rsync-path={} --config={}", binary().display(), conf.display())),
    ];
    let mut results = Vec::new();
    for (who, server) in &servers {
        let listing = rsync_bin(Path::new("rsync"), &[&e, server, "localhost::"], &[]);
        let dst = tempfile::tempdir().unwrap();
        let pull = rsync_bin(
            Path::new("rsync"),
            &["-a", &e, server, "localhost::m/", &format!("{}/", dst.path().display())],
            &[],
        );
        assert_eq!((listing.code, pull.code), (0, 0), "{who}: {listing:?}\n{pull:?}");
        results.push((listing.visible(true), pull.visible(true), snapshot(dst.path())));
    }
    for (who, server) in &servers {
        let up = tempfile::tempdir().unwrap();
        std::fs::write(up.path().join(format!("{who}.txt")), b"pushed\n").unwrap();
        let push = rsync_bin(
            Path::new("rsync"),
            &["-a", &e, server, &format!("{}/", up.path().display()), "localhost::m/sub/"],
            &[],
        );
        assert_eq!(push.code, 0, "{who}: {push:?}");
        assert_eq!(
            std::fs::read(module.join(format!("sub/{who}.txt"))).unwrap(),
            b"pushed\n",
            "{who}: pushed"
        );
    }
    let ours = results.pop().unwrap();
    let stock = results.pop().unwrap();
    assert_eq!(stock.0, ours.0, "listing");
    assert_eq!(stock.1, ours.1, "pull output");
    assert_eq!(stock.2, ours.2, "pulled tree");
}
