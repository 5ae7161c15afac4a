//! Per-module `uid` / `gid`, applied per session *thread*.
//!
//! Upstream forks a process per connection and calls setuid; we serve many
//! sessions in one process, so a session thread instead takes the module's
//! identity for file access only: `setfsuid`/`setfsgid` and a raw
//! `setgroups` system call all act on the calling thread alone on Linux
//! (glibc's `setgroups()` wrapper would change every thread, so it is not
//! used). Moving the filesystem uid away from 0 also drops the thread's
//! file capabilities (DAC override and friends), so a root daemon's session
//! reads and writes exactly what the module's user may. A thread the
//! session thread starts (a push's generator, `-c` hashing helpers) begins
//! with a copy of these credentials: the kernel gives a new thread its
//! creator's.

use std::io;

use nix::unistd::{Group, User};

/// Who a session acts as on the file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleIdentity {
    pub uid: u32,
    /// Primary group first, then supplementary ones.
    pub gids: Vec<u32>,
}

/// Upstream's defaults for a root daemon with no `uid` / `gid`.
const NOBODY_USER: &str = "nobody";
const NOBODY_GROUPS: [&str; 2] = ["nogroup", "nobody"];

/// The identity for a module, as upstream picks it: the configured `uid`
/// and `gid` list, else `nobody`/`nogroup` when the daemon runs as root,
/// else none (a non-root daemon keeps its own identity). The error text is
/// what follows `@ERROR: ` for the client.
pub(crate) fn resolve(uid: Option<&str>, gid: Option<&str>, running_as_root: bool) -> Result<Option<ModuleIdentity>, String> {
    let uid_name = uid.map(str::trim).filter(|s| !s.is_empty());
    let gid_list = gid.map(str::trim).filter(|s| !s.is_empty());
    if !running_as_root {
        // Without root we cannot change identity; upstream would fail the
        // setuid the same way, so only accept a request for ourselves.
        return Ok(None);
    }
    let uid = match uid_name {
        Some(name) => user_id(name).ok_or_else(|| format!("invalid uid {name}"))?,
        None => user_id(NOBODY_USER).ok_or_else(|| format!("invalid uid {NOBODY_USER}"))?,
    };
    let mut gids = Vec::new();
    match gid_list {
        Some(list) => {
            for (i, name) in list.split([',', ' ', '\t']).filter(|s| !s.is_empty()).enumerate() {
                if name == "*" && i == 0 {
                    // Every group of the uid, its primary group first (upstream's getallgroups).
                    gids.extend(all_groups_of(uid)?);
                    continue;
                }
                gids.push(group_id(name).ok_or_else(|| format!("invalid gid {name}"))?);
            }
        }
        None => {
            let g = NOBODY_GROUPS
                .iter()
                .find_map(|n| group_id(n))
                .ok_or_else(|| "invalid gid nogroup".to_string())?;
            gids.push(g);
        }
    }
    Ok(Some(ModuleIdentity { uid, gids }))
}

/// `gid = *`: the groups of `uid` as its passwd and group entries give
/// them, its primary group first.
fn all_groups_of(uid: u32) -> Result<Vec<u32>, String> {
    let user = User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .ok_or_else(|| "getpwuid failed".to_string())?;
    let name = std::ffi::CString::new(user.name.as_bytes()).map_err(|_| "getgrouplist failed".to_string())?;
    let mut gids: Vec<u32> = nix::unistd::getgrouplist(&name, user.gid)
        .map_err(|_| "getgrouplist failed".to_string())?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    let primary = user.gid.as_raw();
    gids.retain(|&g| g != primary);
    gids.insert(0, primary);
    Ok(gids)
}

fn user_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    User::from_name(name).ok().flatten().map(|u| u.uid.as_raw())
}

fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw())
}

/// The file-system uid this thread acts as. (setfsuid with an id that
/// cannot be taken changes nothing and reports the current one.)
pub(crate) fn thread_fsuid() -> u32 {
    // SAFETY: setfsuid takes a plain integer; u32::MAX is never a valid
    // uid, so the call only returns the thread's current fsuid.
    unsafe { libc::setfsuid(u32::MAX) as u32 }
}

/// The file-system gid this thread acts as (as [`thread_fsuid`]).
pub(crate) fn thread_fsgid() -> u32 {
    // SAFETY: setfsgid takes a plain integer; u32::MAX is never a valid
    // gid, so the call only returns the thread's current fsgid.
    unsafe { libc::setfsgid(u32::MAX) as u32 }
}

/// This thread's supplementary groups (the raw system call reports the
/// caller's own, which `assume_on_this_thread` sets per thread).
pub(crate) fn thread_groups() -> Vec<u32> {
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        // SAFETY: the raw getgroups system call with a valid pointer/length
        // pair; it writes at most `len` ids.
        let n = unsafe { libc::syscall(libc::SYS_getgroups, groups.len(), groups.as_mut_ptr()) };
        if n >= 0 {
            groups.truncate(n as usize);
            return groups;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) || groups.len() >= 65536 {
            return Vec::new();
        }
        // More groups than room: try a bigger buffer.
        groups.resize(groups.len() * 4, 0);
    }
}

/// Take `id` for file access on the calling thread (irreversible for the
/// thread: call it on the session thread only).
///
/// A thread that already acts as `id` (one the session thread started
/// after taking it: the kernel copied its credentials) is left as it is:
/// it may no longer hold the capabilities a change would need.
pub(crate) fn assume_on_this_thread(id: &ModuleIdentity) -> io::Result<()> {
    let primary = *id.gids.first().unwrap_or(&id.uid);
    if thread_fsuid() == id.uid && thread_fsgid() == primary && same_groups(&thread_groups(), &id.gids) {
        return Ok(());
    }
    let groups: Vec<libc::gid_t> = id.gids.clone();
    // SAFETY: the raw setgroups system call with a valid pointer/length pair;
    // unlike glibc's wrapper it changes only this thread's groups.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // setfsgid/setfsuid return the previous value; verify by a second call.
    // SAFETY: plain per-thread system calls without pointers.
    unsafe {
        libc::setfsgid(primary);
        libc::setfsuid(id.uid);
        if libc::setfsuid(u32::MAX) as u32 != id.uid || libc::setfsgid(u32::MAX) as u32 != primary {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "cannot change the session's file identity",
            ));
        }
    }
    Ok(())
}

/// Whether two group lists hold the same groups (the kernel keeps them
/// sorted, so order and repeats do not count).
fn same_groups(a: &[u32], b: &[u32]) -> bool {
    let norm = |g: &[u32]| {
        let mut g = g.to_vec();
        g.sort_unstable();
        g.dedup();
        g
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_numbers_and_defaults() {
        assert_eq!(
            resolve(Some("0"), Some("0"), true).unwrap(),
            Some(ModuleIdentity { uid: 0, gids: vec![0] })
        );
        assert_eq!(resolve(Some("root"), Some("root, 0"), true).unwrap().unwrap().gids, vec![0, 0]);
        let nobody = resolve(None, None, true).unwrap().unwrap();
        assert_ne!(nobody.uid, 0);
        assert_eq!(
            resolve(Some("no-such-user-xyz"), None, true),
            Err("invalid uid no-such-user-xyz".into())
        );
        assert_eq!(resolve(None, None, false).unwrap(), None);
    }

    #[test]
    fn gid_star_is_every_group_of_the_uid_primary_first() {
        // root's primary group is 0 everywhere; "*" may be followed by more.
        let id = resolve(Some("0"), Some("*, 4242"), true).unwrap().unwrap();
        assert_eq!(id.gids.first(), Some(&0));
        assert_eq!(id.gids.last(), Some(&4242));
        assert_eq!(resolve(Some("0"), Some("0 *"), true), Err("invalid gid *".into()), "only first");
    }

    #[test]
    fn a_thread_with_nobody_cannot_read_a_private_file() {
        if !nix::unistd::geteuid().is_root() {
            return; // changing identity needs root (CI runs as root)
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let id = resolve(None, None, true).unwrap().unwrap();
        let path = secret.clone();
        let denied = std::thread::spawn(move || {
            assume_on_this_thread(&id).unwrap();
            std::fs::read(&path).is_err()
        })
        .join()
        .unwrap();
        assert!(denied, "nobody must not read a 0600 root file");
        assert!(std::fs::read(&secret).is_ok(), "other threads keep their identity");
    }
}
