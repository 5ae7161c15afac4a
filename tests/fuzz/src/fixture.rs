//! The file-system fixture some targets need, made once per process in a
//! fresh temporary directory: a module directory, a secrets file, the
//! daemon config the handshake runs under, a file with user xattrs (long
//! and short values) and an ACL file and directory. Directories left by
//! earlier processes that are gone are removed on the way.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use oxrsyncd_shared::config::{parse_rsyncd_conf, Config};

/// Users and passwords of the secrets file (the handshake target answers
/// a challenge for them when the input says `USER AUTO`).
pub const USERS: &[(&str, &str)] = &[("joe", "secret"), ("ann", "pw-ann"), ("evil", "evil"), ("jim", "jimpw")];

/// The file with xattrs, and the ACL file and directory, in the module.
pub const XATTR_FILE: &str = "xa";
pub const ACL_FILE: &str = "acl-file";
pub const ACL_DIR: &str = "acl-dir";

/// User xattrs on [`XATTR_FILE`]: two short (sent whole), three long
/// (only their checksum in the list, the value on request).
pub const XATTRS: &[(&str, usize)] = &[
    ("user.a", 5),
    ("user.long1", 100),
    ("user.long2", 1000),
    ("user.mid", 33),
    ("user.z", 32),
];

pub struct Fixture {
    pub module: PathBuf,
    pub config: Arc<Config>,
}

static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();

/// The fixture, made on first use.
pub fn get() -> Result<&'static Fixture, &'static str> {
    FIXTURE.get_or_init(make).as_ref().map_err(String::as_str)
}

fn make() -> Result<Fixture, String> {
    let base = std::env::temp_dir();
    remove_stale(&base);
    let dir = base.join(format!("oxrsyncd-fuzz-{}", std::process::id()));
    let module = dir.join("mod");
    let io = |what: &str, e: std::io::Error| format!("fuzz fixture: {what}: {e}");
    std::fs::create_dir_all(&module).map_err(|e| io("module directory", e))?;
    let secrets = dir.join("secrets");
    let text: String = USERS.iter().map(|(u, p)| format!("{u}:{p}\n")).collect();
    std::fs::write(&secrets, text).map_err(|e| io("secrets file", e))?;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).map_err(|e| io("secrets mode", e))?;
    let xa = module.join(XATTR_FILE);
    std::fs::write(&xa, b"x").map_err(|e| io("xattr file", e))?;
    for (i, (name, len)) in XATTRS.iter().enumerate() {
        let value: Vec<u8> = (0..*len).map(|j| (i * 7 + j) as u8).collect();
        xattr::set(&xa, name, &value).map_err(|e| io("user xattrs (the file system must support them)", e))?;
    }
    std::fs::write(module.join(ACL_FILE), b"y").map_err(|e| io("ACL file", e))?;
    std::fs::create_dir_all(module.join(ACL_DIR)).map_err(|e| io("ACL directory", e))?;
    let config = parse_rsyncd_conf(&config_text(&dir, &module, &secrets), Path::new("fuzz.conf"), &[])
        .map_err(|e| format!("fuzz fixture: config: {e}"))?;
    Ok(Fixture {
        module,
        config: Arc::new(config),
    })
}

/// Modules for every branch of module selection: plain, writable, with a
/// connection limit (lock file), with auth (and a digest floor), hidden
/// and denied, allowed elsewhere only, without a path, refusing options.
fn config_text(dir: &Path, module: &Path, secrets: &Path) -> String {
    let (d, m, s) = (dir.display(), module.display(), secrets.display());
    format!(
        "reverse lookup = no\nlock file = {d}/lock\n\
         [pub]\n path = {m}\n comment = Public\n\
         [rw]\n path = {m}\n read only = no\n refuse options = delete* c\n\
         [limited]\n path = {m}\n max connections = 1000\n\
         [auth]\n path = {m}\n read only = no\n auth users = joe:rw, ann:ro, evil:deny, j*\n secrets file = {s}\n\
         [strong]\n path = {m}\n auth users = joe\n secrets file = {s}\n auth digest = sha256\n\
         [hidden]\n path = {m}\n list = no\n hosts deny = 127.0.0.0/8 ::1\n\
         [closed]\n path = {m}\n hosts allow = 10.0.0.0/8 fd00::/8\n\
         [nopath]\n comment = no path\n\
         [wo]\n path = {m}\n write only = yes\n read only = no\n refuse options = !copy-devices archive\n"
    )
}

/// Remove `oxrsyncd-fuzz-PID` directories whose process is gone.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("oxrsyncd-fuzz-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
