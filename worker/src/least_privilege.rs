//! Least privilege per session thread.
//!
//! Sessions share a worker process, and a root daemon's worker keeps its
//! full capability set for the accept loop and for taking each module's
//! identity. Capabilities are per *thread* on Linux, so once a session
//! thread has taken its module's file identity ([`crate::identity`]) it
//! drops, on itself only, every capability its module does not need:
//!
//! - a module whose identity is not root (the default `nobody`, any
//!   `uid`, `fake super` included: its `user.` attributes need no
//!   capability): none at all;
//! - a module running as uid 0: [`ROOT_MODULE`] (owners and groups on a
//!   push, devices, modes and times of any file, reading and writing any
//!   file, `O_NOATIME` on others' files), plus `CAP_SYS_ADMIN` with `-X`,
//!   without which the kernel hides `trusted.` attributes (and refuses
//!   to write them on a push).
//!
//! The effective, permitted and inheritable sets are set to that; the
//! bounding set is cut to it and the ambient set cleared, so a hook the
//! session execs as root (`pre-xfer exec`, `post-xfer exec`) cannot regain
//! more; `PR_SET_NO_NEW_PRIVS` is set so no set-uid program or file
//! capability adds any either. Threads the session thread starts later (a
//! push's generator, `-c` hashing helpers) and its child processes inherit
//! all of it from the kernel. The accept loop and the other sessions keep
//! their own sets.

use caps::{CapSet, Capability, CapsHashSet};

use crate::identity::ModuleIdentity;

/// What a session of a module running as uid 0 keeps: what the transfer
/// does on files it does not own (`chown`/`lchown` on a push with `-o`/`-g`,
/// `mknod` with `-D`, `chmod` and `utimensat` and `O_NOATIME` on others'
/// files, keeping set-gid bits, reading and writing past permission bits,
/// as upstream's root daemon does).
pub(crate) const ROOT_MODULE: [Capability; 6] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_MKNOD,
];

/// Why a session thread could not shed its privileges (the session is
/// then refused: it never runs with more than it should).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfineError {
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
    #[error("cannot reduce the {set} capability set: {source}")]
    Capabilities {
        set: &'static str,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("cannot drop {cap} from the bounding set: {source}")]
    Bounding {
        cap: Capability,
        #[source]
        source: caps::errors::CapsError,
    },
}

/// The capabilities a session keeps: none unless it acts as uid 0.
/// `reads_xattrs`: a transfer with `-X` (a pull reads `trusted.`
/// attributes, a push writes them).
pub(crate) fn kept(identity: Option<&ModuleIdentity>, reads_xattrs: bool) -> CapsHashSet {
    let mut keep = CapsHashSet::new();
    if identity.is_some_and(|id| id.uid == 0) {
        keep.extend(ROOT_MODULE);
        if reads_xattrs {
            keep.insert(Capability::CAP_SYS_ADMIN);
        }
    }
    keep
}

/// Reduce the calling thread to `keep` (intersected with what it has) and
/// set no_new_privs. Irreversible for the thread: session threads only.
pub(crate) fn confine_this_thread(keep: &CapsHashSet) -> Result<(), ConfineError> {
    set_no_new_privs().map_err(ConfineError::NoNewPrivs)?;
    let permitted = caps::read(None, CapSet::Permitted).map_err(|source| ConfineError::Capabilities { set: "permitted", source })?;
    let keep: CapsHashSet = keep.intersection(&permitted).copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which
    // the effective set is about to lose. Without CAP_SETPCAP (a non-root
    // daemon) nothing can be dropped, and nothing is needed: such a
    // thread's permitted set is empty and no_new_privs keeps it so.
    let can_drop_bounding = caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false);
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            if let Err(source) = caps::drop(None, CapSet::Bounding, cap) {
                if can_drop_bounding {
                    return Err(ConfineError::Bounding { cap, source });
                }
            }
        }
    }
    // Kernels without ambient capabilities (before 4.3) have none to clear.
    let _ = caps::clear(None, CapSet::Ambient);
    // Effective before permitted: it must stay a subset of it.
    for (set, name, value) in [
        (CapSet::Inheritable, "inheritable", CapsHashSet::new()),
        (CapSet::Effective, "effective", keep.clone()),
        (CapSet::Permitted, "permitted", keep),
    ] {
        caps::set(None, set, &value).map_err(|source| ConfineError::Capabilities { set: name, source })?;
    }
    Ok(())
}

/// `keep` as a bit mask (bit n: capability n), for [`confine_child`].
pub(crate) fn mask(keep: &CapsHashSet) -> u64 {
    keep.iter().fold(0, |m, cap| m | cap.bitmask())
}

/// [`confine_this_thread`] for a child between fork and exec (a hook's
/// `pre_exec`): only raw system calls, no allocation, so it is safe in the
/// child of a threaded process. `keep` is a mask from [`mask`].
pub(crate) fn confine_child(keep: u64) -> std::io::Result<()> {
    set_no_new_privs()?;
    // Capabilities this kernel does not know fail with EINVAL; without
    // CAP_SETPCAP nothing can be dropped (and no_new_privs suffices).
    for cap in 0..64u32 {
        if keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            unsafe {
                if libc::prctl(
                    libc::PR_CAPBSET_READ,
                    cap as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                ) == 1
                {
                    libc::prctl(
                        libc::PR_CAPBSET_DROP,
                        cap as libc::c_ulong,
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                    );
                }
            }
        }
    }
    // SAFETY: prctl with integer arguments only (EINVAL before Linux 4.3: no ambient set).
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
    raw_capset(keep)
}

/// capset(2) version 3 on the calling thread: effective and permitted set
/// to `keep` (as far as it is permitted now), inheritable emptied.
fn raw_capset(keep: u64) -> std::io::Result<()> {
    /// The kernel's `__user_cap_header_struct`.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    /// The kernel's `__user_cap_data_struct`; version 3 takes two (low and high 32 bits).
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget/capset with a valid header and two data structs, as
    // version 3 requires; pid 0 is the calling thread.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        for (i, d) in data.iter_mut().enumerate() {
            let keep = (keep >> (32 * i)) as u32 & d.permitted;
            *d = Data {
                effective: keep,
                permitted: keep,
                inheritable: 0,
            };
        }
        header = Header {
            version: VERSION_3,
            pid: 0,
        };
        if libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn set_no_new_privs() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only; PR_SET_NO_NEW_PRIVS acts
    // on the calling thread (and what it later creates).
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/thread-self/status` field of the calling thread, as a number.
    fn status_hex(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("{field} in {status}"))
            .trim()
            .to_string();
        if field == "NoNewPrivs" {
            value.parse().unwrap()
        } else {
            u64::from_str_radix(&value, 16).unwrap()
        }
    }

    fn mask(set: &CapsHashSet) -> u64 {
        set.iter().map(|c| c.bitmask()).fold(0, |a, b| a | b)
    }

    /// Take `id`, confine to what it needs, and report the thread's sets.
    fn confined(id: ModuleIdentity, reads_xattrs: bool) -> [u64; 6] {
        std::thread::spawn(move || {
            crate::identity::assume_on_this_thread(&id).unwrap();
            confine_this_thread(&kept(Some(&id), reads_xattrs)).unwrap();
            // A thread started now inherits all of it.
            let child = std::thread::spawn(|| status_hex("CapEff")).join().unwrap();
            ["CapEff", "CapPrm", "CapInh", "CapBnd", "NoNewPrivs"]
                .map(status_hex)
                .into_iter()
                .chain([child])
                .collect::<Vec<_>>()
                .try_into()
                .unwrap()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_plain_module_keeps_no_capability() {
        if !nix::unistd::geteuid().is_root() {
            return; // CI runs as root
        }
        let before = status_hex("CapEff");
        let nobody = crate::identity::resolve(None, None, true).unwrap().unwrap();
        let [eff, prm, inh, bnd, nnp, child] = confined(nobody, true);
        assert_eq!((eff, prm, inh, bnd, child), (0, 0, 0, 0, 0));
        assert_eq!(nnp, 1);
        assert_eq!(status_hex("CapEff"), before, "other threads keep theirs");
        assert_eq!(status_hex("NoNewPrivs"), 0);
    }

    #[test]
    fn a_root_module_keeps_the_documented_set() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let root = ModuleIdentity { uid: 0, gids: vec![0] };
        let expected = mask(&ROOT_MODULE.into_iter().collect());
        let [eff, prm, inh, bnd, nnp, child] = confined(root.clone(), false);
        assert_eq!((eff, prm, bnd, child), (expected, expected, expected, expected));
        assert_eq!((inh, nnp), (0, 1));
        assert_ne!(expected & Capability::CAP_CHOWN.bitmask(), 0);
        assert_eq!(expected & Capability::CAP_SETUID.bitmask(), 0);
        let [eff, ..] = confined(root, true);
        assert_eq!(
            eff,
            expected | Capability::CAP_SYS_ADMIN.bitmask(),
            "a pull with -X reads trusted. attributes"
        );
    }
}
