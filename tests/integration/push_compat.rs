//! Pushes where stock rsync 3.5's daemon behaves in a way a provider's
//! users depend on (issue 16's differential findings): each test runs the
//! same client command against stock `rsync --daemon` and ours and
//! compares what both leave in the module.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::harness::client::clients;
use crate::harness::push_pair::start_push_pair;
use crate::harness::tree::TreeBuilder;

/// An entry's modification time, to the nanosecond.
fn mtime_ns(path: &Path) -> (i64, i64) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// Entries already up to date keep their own modification time when
/// only its nanoseconds differ from the list's, at every protocol (below
/// 31 the list carries none), directories included: stock's
/// `same_mtime` compares seconds without `--modify-window`, so it leaves
/// them alone; ours used to rewrite them, dropping the nanoseconds.
#[test]
fn up_to_date_entries_keep_their_nanoseconds_like_stock() {
    const NAMES: [&str; 3] = ["d/f", "g", "d"];
    let build = |root: &Path| {
        TreeBuilder::new(root)
            .file("d/f", b"same\n")
            .file("g", b"also the same\n")
            .mtimes(NAMES, 1_600_000_000, 123_456_789);
    };
    let p = start_push_pair(build, "");
    let seed = |dst: &Path| {
        TreeBuilder::new(dst)
            .file("d/f", b"same\n")
            .file("g", b"also the same\n")
            .mtimes(NAMES, 1_600_000_000, 999_999_999);
    };
    for (label, bin) in clients() {
        for protocol in ["27", "29", "30", "31"] {
            p.reset(Some(&seed));
            let option = format!("--protocol={protocol}");
            let (stock, ours) = p.push_with(&bin, &["-a", &option], "", "w/");
            assert_eq!((stock.code, ours.code), (0, 0), "{label} {protocol}: {stock:?} {ours:?}");
            for name in NAMES {
                let (s, o) = (mtime_ns(&p.stock_dst.path().join(name)), mtime_ns(&p.ours_dst.path().join(name)));
                assert_eq!(o, s, "{label}, protocol {protocol}: {name}");
                assert_eq!(o, (1_600_000_000, 999_999_999), "{label}, protocol {protocol}: {name} left alone");
            }
        }
    }
}
