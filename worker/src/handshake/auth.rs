//! Daemon authentication of a module's users: `auth users` rules, the
//! `secrets file`, `strict modes`, the `auth digest` floor and the check of
//! the client's challenge response.
//!
//! The behaviour follows upstream rsync's daemon: rules are tried in order
//! and only the first matching one counts; the secrets file is consulted
//! only for a rule that does not deny.  Failures carry the same reason text
//! upstream logs; writing log lines and `@ERROR` replies is the caller's job.

use std::collections::VecDeque;
use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::unistd::{getgrouplist, Group, User};
use subtle::ConstantTimeEq;

use crate::handshake::digest::AuthDigest;
use crate::wildmatch::wildmatch;

/// A module's authentication settings, borrowed from the parsed config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthPolicy<'a> {
    /// `auth users`, already split into rules such as `joe:deny` or `@staff:ro`.
    pub auth_users: &'a [String],
    /// `secrets file`, if configured.
    pub secrets_file: Option<&'a Path>,
    /// `strict modes`: refuse an other-accessible (or, as root, non-root-owned) secrets file.
    pub strict_modes: bool,
    /// `auth digest`: the weakest digest name accepted, if any.
    pub auth_digest_floor: Option<&'a str>,
    /// Whether the daemon runs as uid 0, which tightens `strict modes`.
    pub running_as_root: bool,
}

/// A per-rule `:ro` / `:rw` override of the module's `read only` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessOverride {
    /// Keep the module's `read only` setting.
    None,
    /// The rule said `:ro`.
    ReadOnly,
    /// The rule said `:rw`.
    ReadWrite,
}

/// A successful authentication: who, and any access override of their rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorized {
    pub user: String,
    pub access: AccessOverride,
}

/// A refused authentication.
///
/// `reason` is worded like upstream's log text (e.g. "password mismatch"),
/// so the caller can log `auth failed on module M from H (A) for U: REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub(crate) struct AuthFailure {
    /// The user name the client sent, once it could be parsed.
    pub user: Option<String>,
    pub reason: String,
}

impl AuthFailure {
    fn new(user: Option<&str>, reason: impl Into<String>) -> Self {
        AuthFailure {
            user: user.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// Whether the module asks for a password at all.  With no `auth users`
/// upstream admits everyone anonymously and sends no challenge.
#[cfg(test)]
pub(crate) fn requires_auth(policy: &AuthPolicy) -> bool {
    !policy.auth_users.is_empty()
}

/// Whether the negotiated digest meets the module's `auth digest` floor.
///
/// Checked before the challenge is sent, like upstream, so a downgraded
/// client never gets a challenge to answer.  A floor naming a digest we do
/// not implement refuses everyone (fail closed).
pub(crate) fn check_digest_floor(policy: &AuthPolicy, digest: AuthDigest) -> Result<(), AuthFailure> {
    let floor_name = match policy.auth_digest_floor {
        Some(name) if !name.is_empty() => name,
        _ => return Ok(()),
    };
    let Some(floor) = AuthDigest::from_name(floor_name) else {
        return Err(AuthFailure::new(
            None,
            format!("the configured 'auth digest = {floor_name}' is not a supported digest on this build"),
        ));
    };
    if digest.strength_rank() > floor.strength_rank() {
        return Err(AuthFailure::new(
            None,
            format!(
                "negotiated auth digest {} is weaker than the required 'auth digest = {floor_name}'",
                digest.name()
            ),
        ));
    }
    Ok(())
}

/// Check the client's reply `"<user> <b64 response>"` to `challenge`.
///
/// The response must equal `H(password || challenge)` for the password of
/// the user (or of the group whose `@group` rule matched) in the secrets
/// file; the comparison is constant-time.  `response_line` is the line as
/// read, without its newline (a trailing `\n` and any `\r` are ignored).
/// The digest floor is re-checked here so a caller cannot skip it.
pub(crate) fn verify_response(
    policy: &AuthPolicy,
    digest: AuthDigest,
    challenge: &str,
    response_line: &str,
) -> Result<Authorized, AuthFailure> {
    check_digest_floor(policy, digest)?;
    let (user, response) = split_response(response_line).ok_or_else(|| AuthFailure::new(None, "invalid challenge response"))?;
    let fail = |reason: &str| AuthFailure::new(Some(&user), reason);

    let matched = first_matching_rule(policy.auth_users, &user).ok_or_else(|| fail("no matching rule"))?;
    let access = match matched.action {
        RuleAction::Deny => return Err(fail("denied by rule")),
        RuleAction::Allow(access) => access,
    };
    let request = SecretCheck {
        user: &user,
        group: matched.group.as_deref(),
        digest,
        challenge: challenge.as_bytes(),
        response: response.as_bytes(),
    };
    check_secret(policy, &request).map_err(fail)?;
    Ok(Authorized { user, access })
}

/// Split the reply into user name and response at the first space, after
/// dropping what upstream's line reader drops.  `None` if malformed.
fn split_response(line: &str) -> Option<(String, String)> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if line.contains('\0') || line.contains('\n') {
        return None;
    }
    let line: String = line.chars().filter(|&c| c != '\r').collect();
    let (user, response) = line.split_once(' ')?;
    Some((user.to_owned(), response.to_owned()))
}

/// What the first matching rule decided.
#[derive(Debug, PartialEq, Eq)]
enum RuleAction {
    Deny,
    Allow(AccessOverride),
}

/// The first rule that matched, and the group that made an `@group` rule match.
#[derive(Debug)]
struct MatchedRule {
    action: RuleAction,
    group: Option<String>,
}

/// Split `pattern:opts` and interpret the options like upstream: only the
/// first letter(s) count, case-insensitively (`d…` denies, `ro`, `rw`);
/// anything else is ignored.
fn parse_rule(rule: &str) -> (&str, RuleAction) {
    let Some((pattern, opts)) = rule.split_once(':') else {
        return (rule, RuleAction::Allow(AccessOverride::None));
    };
    let opts = opts.as_bytes();
    let first = opts.first().map(u8::to_ascii_lowercase);
    let second = opts.get(1).map(u8::to_ascii_lowercase);
    let action = match (first, second) {
        (Some(b'd'), _) => RuleAction::Deny,
        (Some(b'r'), Some(b'o')) => RuleAction::Allow(AccessOverride::ReadOnly),
        (Some(b'r'), Some(b'w')) => RuleAction::Allow(AccessOverride::ReadWrite),
        _ => RuleAction::Allow(AccessOverride::None),
    };
    (pattern, action)
}

/// Try the rules in order; the user's groups are looked up at most once,
/// and only if an `@group` rule is reached.
fn first_matching_rule(rules: &[String], user: &str) -> Option<MatchedRule> {
    let mut groups: Option<Vec<String>> = None;
    for rule in rules {
        let (pattern, action) = parse_rule(rule);
        if let Some(group_pattern) = pattern.strip_prefix('@') {
            let groups = groups.get_or_insert_with(|| groups_of_user(user));
            if let Some(group) = groups.iter().find(|group| wildmatch(group_pattern, group)) {
                return Some(MatchedRule {
                    action,
                    group: Some(group.clone()),
                });
            }
        } else if wildmatch(pattern, user) {
            return Some(MatchedRule { action, group: None });
        }
    }
    None
}

/// Names of all groups of the system user called `user_name` (primary group
/// first), or none if there is no such user.  Like upstream, the account is
/// found by name and its groups are listed for the uid's canonical name.
fn groups_of_user(user_name: &str) -> Vec<String> {
    if user_name.is_empty() {
        return Vec::new();
    }
    let Ok(Some(by_name)) = User::from_name(user_name) else {
        return Vec::new();
    };
    let Ok(Some(account)) = User::from_uid(by_name.uid) else {
        return Vec::new();
    };
    let Ok(c_name) = CString::new(account.name) else {
        return Vec::new();
    };
    let Ok(mut gids) = getgrouplist(&c_name, account.gid) else {
        return Vec::new();
    };
    if let Some(primary) = gids.iter().position(|&gid| gid == account.gid) {
        gids[..=primary].rotate_right(1);
    }
    gids.into_iter()
        .filter_map(|gid| Group::from_gid(gid).ok().flatten())
        .map(|group| group.name)
        .collect()
}

/// One lookup in the secrets file.
struct SecretCheck<'a> {
    user: &'a str,
    group: Option<&'a str>,
    digest: AuthDigest,
    challenge: &'a [u8],
    response: &'a [u8],
}

/// Upstream's check_secret(): open and vet the secrets file, then look for
/// the user's line and (for a group rule) the group's line.  Returns the
/// failure reason.
fn check_secret(policy: &AuthPolicy, request: &SecretCheck) -> Result<(), &'static str> {
    let path = match policy.secrets_file {
        Some(path) if !path.as_os_str().is_empty() => path,
        _ => return Err("no secrets file"),
    };
    let mut file = open_without_untrusted_symlinks(path).map_err(|_| "no secrets file")?;
    let metadata = file.metadata().map_err(|_| "ignoring secrets file")?;
    if policy.strict_modes && !strict_modes_allow(&metadata, policy.running_as_root) {
        return Err("ignoring secrets file");
    }
    if request.user.starts_with('#') {
        return Err("invalid username");
    }
    let mut contents = Vec::new();
    // A read error ends the scan like EOF does upstream.
    let _ = file.read_to_end(&mut contents);
    let result = find_secret(&contents, request);
    contents.fill(0);
    result
}

/// `strict modes`: no other-read/-write bits, and root-owned when we are root.
fn strict_modes_allow(metadata: &std::fs::Metadata, running_as_root: bool) -> bool {
    let other_accessible = metadata.mode() & 0o006 != 0;
    let wrong_owner = running_as_root && metadata.uid() != 0;
    !other_accessible && !wrong_owner
}

/// Scan the secrets file for `user:password` and `@group:password` lines.
/// A name is tried only on its first line; a wrong password there ends the
/// search for that name.
fn find_secret(contents: &[u8], request: &SecretCheck) -> Result<(), &'static str> {
    let mut user = Some(request.user.as_bytes());
    let mut group = request.group.map(str::as_bytes);
    let mut outcome = Err("secret not found");
    for line in secrets_lines(contents) {
        if user.is_none() && group.is_none() {
            break;
        }
        let (name_slot, entry) = match line.strip_prefix(b"@") {
            Some(rest) => (&mut group, rest),
            None => (&mut user, line),
        };
        let Some(password) = name_slot.and_then(|name| password_for(entry, name)) else {
            continue;
        };
        if response_matches(request, password) {
            return Ok(());
        }
        outcome = Err("password mismatch");
        *name_slot = None;
    }
    outcome
}

/// The password of `entry` if it reads `name:password`.
fn password_for<'a>(entry: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    entry.strip_prefix(name)?.strip_prefix(b":")
}

fn response_matches(request: &SecretCheck, password: &[u8]) -> bool {
    let expected = request.digest.hash_b64(&[password, request.challenge]);
    bool::from(expected.as_bytes().ct_eq(request.response))
}

/// Longest line piece upstream's 1024-byte fgets() buffer returns at once.
const SECRETS_LINE_MAX: usize = 1023;

/// The secrets file's lines as upstream sees them: pieces of at most 1023
/// bytes ending at a newline, each cut at its first NUL, reduced to the
/// first run of bytes other than CR/LF; empty pieces are skipped.
fn secrets_lines(contents: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = contents;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let piece_len = match rest.iter().position(|&b| b == b'\n') {
                Some(newline) => (newline + 1).min(SECRETS_LINE_MAX),
                None => rest.len().min(SECRETS_LINE_MAX),
            };
            let (piece, tail) = rest.split_at(piece_len);
            rest = tail;
            let piece = piece.split(|&b| b == 0).next().unwrap_or_default();
            if let Some(line) = piece.split(|&b| b == b'\r' || b == b'\n').find(|part| !part.is_empty()) {
                return Some(line);
            }
        }
        None
    })
}

/// Most symlinks followed while opening one path, as the kernel allows.
const MAX_SYMLINK_FOLLOWS: usize = 40;

/// Open `path` for reading, following a symlink (at any component) only if
/// it is owned by root or by us.
///
/// A planted symlink from the secrets file to e.g. `/etc/shadow` would
/// otherwise pass the mode checks (they look at the target) and let the
/// daemon authenticate against foreign secrets.  The final component is
/// opened with `O_NOFOLLOW` so it cannot be swapped for a link afterwards.
pub(crate) fn open_without_untrusted_symlinks(path: &Path) -> io::Result<File> {
    let leaf = resolve_trusted_symlinks(path)?;
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(leaf)
}

/// Walk `path` one component at a time, splicing in the targets of trusted
/// symlinks, and return a path whose every component is a real directory
/// except the last, which is not a symlink.
fn resolve_trusted_symlinks(path: &Path) -> io::Result<PathBuf> {
    let trusted_uid = nix::unistd::geteuid().as_raw();
    let mut resolved = PathBuf::from(if path.is_absolute() { "/" } else { "." });
    let mut pending: VecDeque<OsString> = VecDeque::new();
    queue_components(&mut pending, path, &mut resolved);
    let mut follows = 0;
    while let Some(component) = pending.pop_front() {
        let candidate = resolved.join(&component);
        let metadata = std::fs::symlink_metadata(&candidate)?;
        if metadata.file_type().is_symlink() {
            if metadata.uid() != 0 && metadata.uid() != trusted_uid {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "untrusted symlink"));
            }
            follows += 1;
            if follows > MAX_SYMLINK_FOLLOWS {
                return Err(io::Error::other("too many symlinks"));
            }
            let target = std::fs::read_link(&candidate)?;
            let mut spliced = VecDeque::new();
            queue_components(&mut spliced, &target, &mut resolved);
            spliced.extend(pending.drain(..));
            pending = spliced;
        } else if pending.is_empty() {
            return Ok(candidate);
        } else if metadata.is_dir() {
            resolved = candidate;
        } else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidInput, "path names a directory"))
}

/// Append the walkable components of `path` to `queue`; an absolute path
/// restarts `resolved` at the root.
fn queue_components(queue: &mut VecDeque<OsString>, path: &Path, resolved: &mut PathBuf) {
    for component in path.components() {
        match component {
            Component::RootDir => *resolved = PathBuf::from("/"),
            Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => queue.push_back(OsString::from("..")),
            Component::Normal(name) => queue.push_back(name.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    const CHALLENGE: &str = "Zm9vYmFyYmF6cXV4cXV1eA";

    struct Fixture {
        _dir: tempfile::TempDir,
        secrets: PathBuf,
        rules: Vec<String>,
    }

    fn fixture(rules: &[&str], secrets: &str, mode: u32) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsyncd.secrets");
        let mut file = File::create(&path).unwrap();
        file.write_all(secrets.as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        Fixture {
            _dir: dir,
            secrets: path,
            rules: rules.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn policy(fx: &Fixture) -> AuthPolicy<'_> {
        AuthPolicy {
            auth_users: &fx.rules,
            secrets_file: Some(&fx.secrets),
            strict_modes: true,
            auth_digest_floor: None,
            running_as_root: nix::unistd::geteuid().is_root(),
        }
    }

    fn reply(user: &str, password: &str, digest: AuthDigest) -> String {
        format!("{user} {}", digest.hash_b64(&[password.as_bytes(), CHALLENGE.as_bytes()]))
    }

    fn verify(policy: &AuthPolicy, line: &str) -> Result<Authorized, AuthFailure> {
        verify_response(policy, AuthDigest::Md5, CHALLENGE, line)
    }

    fn reason(result: Result<Authorized, AuthFailure>) -> String {
        result.unwrap_err().reason
    }

    #[test]
    fn correct_password_is_accepted_with_every_digest() {
        let fx = fixture(&["joe"], "joe:pw\n", 0o600);
        for digest in [
            AuthDigest::Sha512,
            AuthDigest::Sha256,
            AuthDigest::Sha1,
            AuthDigest::Md5,
            AuthDigest::Md4,
            AuthDigest::Md4Old,
        ] {
            let got = verify_response(&policy(&fx), digest, CHALLENGE, &reply("joe", "pw", digest));
            assert_eq!(
                got,
                Ok(Authorized {
                    user: "joe".into(),
                    access: AccessOverride::None
                })
            );
        }
    }

    #[test]
    fn wrong_password_and_unknown_user() {
        let fx = fixture(&["*"], "joe:pw\n", 0o600);
        let p = policy(&fx);
        assert_eq!(reason(verify(&p, &reply("joe", "nope", AuthDigest::Md5))), "password mismatch");
        assert_eq!(reason(verify(&p, &reply("ann", "pw", AuthDigest::Md5))), "secret not found");
        let wrong_digest = reply("joe", "pw", AuthDigest::Sha1);
        assert_eq!(reason(verify(&p, &wrong_digest)), "password mismatch");
    }

    #[test]
    fn only_the_first_line_for_a_name_counts() {
        let fx = fixture(&["joe"], "joe:first\njoe:second\n", 0o600);
        let p = policy(&fx);
        assert!(verify(&p, &reply("joe", "first", AuthDigest::Md5)).is_ok());
        assert_eq!(reason(verify(&p, &reply("joe", "second", AuthDigest::Md5))), "password mismatch");
    }

    #[test]
    fn secrets_lines_tolerate_crlf_and_comments() {
        let fx = fixture(&["*"], "# comment\r\n\r\njoe:pw\r\nann:pass word\n", 0o600);
        let p = policy(&fx);
        assert!(verify(&p, &reply("joe", "pw", AuthDigest::Md5)).is_ok());
        assert!(verify(&p, &reply("ann", "pass word", AuthDigest::Md5)).is_ok());
        assert!(verify(&p, &format!("{}\r\n", reply("joe", "pw", AuthDigest::Md5))).is_ok());
    }

    #[test]
    fn hash_leading_username_is_rejected() {
        let fx = fixture(&["*"], "# comment:pw\n", 0o600);
        assert_eq!(reason(verify(&policy(&fx), &reply("#", "pw", AuthDigest::Md5))), "invalid username");
    }

    #[test]
    fn malformed_reply_is_invalid() {
        let fx = fixture(&["*"], "joe:pw\n", 0o600);
        let err = verify(&policy(&fx), "joe-without-space").unwrap_err();
        assert_eq!((err.user, err.reason.as_str()), (None, "invalid challenge response"));
    }

    #[test]
    fn rules_are_ordered_and_first_match_wins() {
        let fx = fixture(
            &["joe:deny", "j*:ro", "admin:RW", "*"],
            "joe:pw\njill:pw\nadmin:pw\nzed:pw\n",
            0o600,
        );
        let p = policy(&fx);
        assert_eq!(reason(verify(&p, &reply("joe", "pw", AuthDigest::Md5))), "denied by rule");
        assert_eq!(
            verify(&p, &reply("jill", "pw", AuthDigest::Md5)).unwrap().access,
            AccessOverride::ReadOnly
        );
        assert_eq!(
            verify(&p, &reply("admin", "pw", AuthDigest::Md5)).unwrap().access,
            AccessOverride::ReadWrite
        );
        assert_eq!(
            verify(&p, &reply("zed", "pw", AuthDigest::Md5)).unwrap().access,
            AccessOverride::None
        );
    }

    #[test]
    fn deny_suffix_denies_even_with_right_password_and_unknown_suffix_is_ignored() {
        let fx = fixture(&["joe:Deny", "ann:bogus"], "joe:pw\nann:pw\n", 0o600);
        let p = policy(&fx);
        assert_eq!(reason(verify(&p, &reply("joe", "pw", AuthDigest::Md5))), "denied by rule");
        assert_eq!(
            verify(&p, &reply("ann", "pw", AuthDigest::Md5)).unwrap().access,
            AccessOverride::None
        );
    }

    #[test]
    fn no_matching_rule() {
        let fx = fixture(&["joe", "@no-such-group-xyz"], "ann:pw\n", 0o600);
        let err = verify(&policy(&fx), &reply("ann", "pw", AuthDigest::Md5)).unwrap_err();
        assert_eq!((err.user.as_deref(), err.reason.as_str()), (Some("ann"), "no matching rule"));
    }

    #[test]
    fn group_rule_uses_system_groups_and_group_password() {
        // root is a member of group root on any Unix system we run on.
        let fx = fixture(&["@ro*:rw"], "@root:grouppw\n", 0o600);
        let p = policy(&fx);
        let ok = verify(&p, &reply("root", "grouppw", AuthDigest::Md5)).unwrap();
        assert_eq!(ok.access, AccessOverride::ReadWrite);
        // The user's own line is accepted too.
        let fx = fixture(&["@root"], "root:userpw\n@root:grouppw\n", 0o600);
        assert!(verify(&policy(&fx), &reply("root", "userpw", AuthDigest::Md5)).is_ok());
        // A name that is not a system user has no groups.
        let fx = fixture(&["@*"], "@root:grouppw\n", 0o600);
        let got = verify(&policy(&fx), &reply("no-such-user-xyz", "grouppw", AuthDigest::Md5));
        assert_eq!(reason(got), "no matching rule");
    }

    #[test]
    fn strict_modes_refuse_other_accessible_file() {
        let fx = fixture(&["joe"], "joe:pw\n", 0o644);
        let mut p = policy(&fx);
        assert_eq!(reason(verify(&p, &reply("joe", "pw", AuthDigest::Md5))), "ignoring secrets file");
        p.strict_modes = false;
        assert!(verify(&p, &reply("joe", "pw", AuthDigest::Md5)).is_ok());
        let fx = fixture(&["joe"], "joe:pw\n", 0o640);
        assert!(verify(&policy(&fx), &reply("joe", "pw", AuthDigest::Md5)).is_ok());
    }

    #[test]
    fn strict_modes_require_root_owner_when_root() {
        if !nix::unistd::geteuid().is_root() {
            return; // Needs root to create a file owned by someone else.
        }
        let fx = fixture(&["joe"], "joe:pw\n", 0o600);
        std::os::unix::fs::chown(&fx.secrets, Some(65534), None).unwrap();
        let p = policy(&fx);
        assert_eq!(reason(verify(&p, &reply("joe", "pw", AuthDigest::Md5))), "ignoring secrets file");
        let not_root = AuthPolicy {
            running_as_root: false,
            ..p
        };
        assert!(verify(&not_root, &reply("joe", "pw", AuthDigest::Md5)).is_ok());
    }

    #[test]
    fn missing_secrets_file() {
        let fx = fixture(&["joe"], "joe:pw\n", 0o600);
        let mut p = policy(&fx);
        p.secrets_file = None;
        assert_eq!(reason(verify(&p, &reply("joe", "pw", AuthDigest::Md5))), "no secrets file");
        let absent = fx.secrets.with_file_name("absent");
        p.secrets_file = Some(&absent);
        assert_eq!(reason(verify(&p, &reply("joe", "pw", AuthDigest::Md5))), "no secrets file");
    }

    #[test]
    fn symlinked_secrets_file_is_followed_only_if_trusted() {
        let fx = fixture(&["joe"], "joe:pw\n", 0o600);
        let link = fx.secrets.with_file_name("link");
        std::os::unix::fs::symlink("rsyncd.secrets", &link).unwrap();
        let mut p = policy(&fx);
        p.secrets_file = Some(&link);
        assert!(
            verify(&p, &reply("joe", "pw", AuthDigest::Md5)).is_ok(),
            "our own symlink is trusted"
        );
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
            assert_eq!(reason(verify(&p, &reply("joe", "pw", AuthDigest::Md5))), "no secrets file");
        }
    }

    #[test]
    fn digest_floor() {
        let fx = fixture(&["joe"], "joe:pw\n", 0o600);
        let mut p = policy(&fx);
        p.auth_digest_floor = Some("SHA256");
        assert!(check_digest_floor(&p, AuthDigest::Sha512).is_ok());
        assert!(check_digest_floor(&p, AuthDigest::Sha256).is_ok());
        assert_eq!(
            check_digest_floor(&p, AuthDigest::Md5).unwrap_err().reason,
            "negotiated auth digest md5 is weaker than the required 'auth digest = SHA256'"
        );
        assert!(verify_response(&p, AuthDigest::Md4Old, CHALLENGE, &reply("joe", "pw", AuthDigest::Md4Old)).is_err());
        p.auth_digest_floor = Some("blake3");
        assert_eq!(
            check_digest_floor(&p, AuthDigest::Sha512).unwrap_err().reason,
            "the configured 'auth digest = blake3' is not a supported digest on this build"
        );
        p.auth_digest_floor = Some("");
        assert!(check_digest_floor(&p, AuthDigest::Md4Old).is_ok());
    }

    #[test]
    fn secrets_lines_split_like_fgets() {
        let long = format!("{}:x\njoe:pw\n", "a".repeat(1500));
        let lines: Vec<&[u8]> = secrets_lines(long.as_bytes()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), 1023);
        assert_eq!(lines[2], b"joe:pw");
    }

    #[test]
    fn requires_auth_only_with_rules() {
        let fx = fixture(&[], "", 0o600);
        assert!(!requires_auth(&policy(&fx)));
    }
}
