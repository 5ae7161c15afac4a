//! Tests of the config module as a whole: the parameter table against the
//! model, both parsers, includes, `%VAR%`, dparams, the report and the
//! embedded default.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::values::{split_list, Value};
use super::*;

fn conf(text: &str) -> Result<Config, ConfigError> {
    parse_rsyncd_conf(text, Path::new("/etc/test.conf"), &[])
}

fn ok(text: &str) -> Config {
    conf(text).unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn err(text: &str) -> String {
    match conf(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn get(c: &Config, module: Option<&str>, param: &str) -> Value {
    let v = match module {
        None if lookup(param).unwrap().scope == Scope::Global => c.global.get_param(param),
        None => c.module_defaults.get_param(param),
        Some(m) => c.module(m).unwrap().settings.get_param(param),
    };
    v.unwrap()
}

/// A valid non-default value for a parameter, and the value it must parse to.
fn sample(def: &ParamDef) -> (String, Value) {
    match def.kind {
        Kind::String => ("x y %Z%".into(), Value::Text("x y %Z%".into())),
        Kind::Path => ("/a/b//".into(), Value::Text("/a/b".into())),
        Kind::Integer { min, max, .. } => {
            let n = if (min..=max).contains(&7) { 7 } else { min };
            (n.to_string(), Value::Int(n))
        }
        Kind::Bool => {
            let default_yes = def.default == Some("yes");
            let text = if default_yes { "No" } else { "TRUE" };
            (text.into(), Value::Bool(!default_yes))
        }
        Kind::Bool3 => ("1".into(), Value::Bool3(Some(true))),
        Kind::Enum(names) => (names[names.len() - 1].to_uppercase(), Value::Text(names[names.len() - 1].into())),
        Kind::List(_) => ("a, b c".into(), Value::List(vec!["a".into(), "b".into(), "c".into()])),
    }
}

/// Invalid values for a parameter's kind (none for free text).
fn invalid(def: &ParamDef) -> Vec<String> {
    match def.kind {
        Kind::Integer { max, .. } => vec!["abc".into(), "12x".into(), (max + 1).to_string()],
        Kind::Bool | Kind::Bool3 => vec!["maybe".into(), "on".into()],
        Kind::Enum(_) => vec!["nosuch".into(), "0".into()],
        Kind::String | Kind::Path | Kind::List(_) => vec![],
    }
}

/// Upstream's parameter names (its variable names, underscores as spaces)
/// and scopes.
const UPSTREAM: &[(&str, Scope)] = &[
    ("bind address", Scope::Global),
    ("daemon chroot", Scope::Global),
    ("daemon gid", Scope::Global),
    ("daemon uid", Scope::Global),
    ("motd file", Scope::Global),
    ("pid file", Scope::Global),
    ("proxy protocol hosts", Scope::Global),
    ("socket options", Scope::Global),
    ("listen backlog", Scope::Global),
    ("rsync port", Scope::Global),
    ("proxy protocol", Scope::Global),
    ("auth digest", Scope::Module),
    ("auth users", Scope::Module),
    ("charset", Scope::Module),
    ("comment", Scope::Module),
    ("dont compress", Scope::Module),
    ("early exec", Scope::Module),
    ("exclude", Scope::Module),
    ("exclude from", Scope::Module),
    ("filter", Scope::Module),
    ("gid", Scope::Module),
    ("hosts allow", Scope::Module),
    ("hosts deny", Scope::Module),
    ("include", Scope::Module),
    ("include from", Scope::Module),
    ("incoming chmod", Scope::Module),
    ("lock file", Scope::Module),
    ("log file", Scope::Module),
    ("log format", Scope::Module),
    ("name", Scope::Module),
    ("name converter", Scope::Module),
    ("outgoing chmod", Scope::Module),
    ("post-xfer exec", Scope::Module),
    ("pre-xfer exec", Scope::Module),
    ("refuse options", Scope::Module),
    ("secrets file", Scope::Module),
    ("syslog tag", Scope::Module),
    ("uid", Scope::Module),
    ("path", Scope::Module),
    ("temp dir", Scope::Module),
    ("max connections", Scope::Module),
    ("max verbosity", Scope::Module),
    ("timeout", Scope::Module),
    ("syslog facility", Scope::Module),
    ("fake super", Scope::Module),
    ("forward lookup", Scope::Module),
    ("ignore errors", Scope::Module),
    ("ignore nonreadable", Scope::Module),
    ("insecure links", Scope::Module),
    ("list", Scope::Module),
    ("read only", Scope::Module),
    ("reverse lookup", Scope::Module),
    ("strict modes", Scope::Module),
    ("transfer logging", Scope::Module),
    ("write only", Scope::Module),
    ("munge symlinks", Scope::Module),
    ("numeric ids", Scope::Module),
    ("open noatime", Scope::Module),
    ("use chroot", Scope::Module),
];

#[test]
fn table_and_model_agree() {
    for def in PARAMS {
        let names = match def.scope {
            Scope::Global => GlobalSettings::PARAM_NAMES,
            Scope::Module => ModuleSettings::PARAM_NAMES,
        };
        assert!(names.contains(&def.name), "{} has no field", def.name);
        assert_eq!(lookup(def.name), Some(def), "{} not found by its own name", def.name);
        for alias in def.aliases {
            assert_eq!(lookup(alias).map(|d| d.name), Some(def.name));
        }
        if let Some(text) = def.default {
            assert!(
                values::parse_value(def.kind, values::RawValue::Text(text.into())).is_ok(),
                "default of {} does not parse",
                def.name
            );
        }
    }
    for name in GlobalSettings::PARAM_NAMES {
        assert_eq!(lookup(name).map(|d| d.scope), Some(Scope::Global), "{name}");
    }
    for name in ModuleSettings::PARAM_NAMES {
        assert_eq!(lookup(name).map(|d| d.scope), Some(Scope::Module), "{name}");
    }
    // Upstream's full table (daemon-parm.txt) has 59 entries; we add 15.
    assert_eq!(PARAMS.len(), UPSTREAM.len() + 15);
    for (name, scope) in UPSTREAM {
        assert_eq!(lookup(name).map(|d| d.scope), Some(*scope), "upstream parameter {name}");
    }
    let mut keys: Vec<String> = PARAMS.iter().map(|d| normalize_name(d.name)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), PARAMS.len(), "two parameters normalise to the same key");
}

#[test]
fn enforced_flags() {
    let enforced: Vec<&str> = PARAMS.iter().filter(|d| d.enforced).map(|d| d.name).collect();
    for name in [
        "path",
        "hosts allow",
        "auth users",
        "port",
        "address",
        "max sessions per worker",
        "write only",
        "dont compress",
        "temp dir",
        "fake super",
        "proxy protocol",
        "proxy protocol hosts",
        "early exec",
        "open noatime",
        "max session memory",
        "name converter",
        "insecure links",
    ] {
        assert!(enforced.contains(&name), "{name}");
    }
    for name in ["use chroot", "syslog facility", "syslog tag"] {
        assert!(!enforced.contains(&name), "{name}");
    }
    assert_eq!(enforced.len(), 36 + 29);
}

#[test]
fn every_parameter_parses_in_its_scope() {
    for def in PARAMS {
        let (text, expected) = sample(def);
        let section = match def.scope {
            Scope::Global => "[global]",
            Scope::Module => "[m]",
        };
        let c = ok(&format!("{section}\n{} = {text}\n", def.name));
        let module = (def.scope == Scope::Module).then_some("m");
        let got = get(&c, module, def.name);
        assert_eq!(got, expected, "{}", def.name);
        assert!(c.explicitly_set.iter().any(|e| e.param == def.name));
        // Module parameters in the global section are module defaults.
        if def.scope == Scope::Module {
            let c = ok(&format!("{} = {text}\n[m]\n", def.name));
            assert_eq!(get(&c, None, def.name), expected, "{} as default", def.name);
            assert_eq!(get(&c, Some("m"), def.name), expected, "{} inherited", def.name);
        }
        for bad in invalid(def) {
            let msg = err(&format!("{section}\n{} = {bad}\n", def.name));
            assert!(
                msg.starts_with(&format!("/etc/test.conf:2: invalid value for \"{}\"", def.name)),
                "{msg}"
            );
        }
    }
}

#[test]
fn global_parameter_in_module_is_ignored_with_warning() {
    let c = ok("[m]\nport = 99\n");
    assert_eq!(c.global.port, 873);
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].starts_with("/etc/test.conf:2: global parameter \"port\""),
        "{:?}",
        c.warnings
    );
}

#[test]
fn defaults_match_upstream() {
    let c = ok("");
    assert_eq!(c.global.port, 873);
    assert_eq!(c.global.listen_backlog, 5);
    assert_eq!(c.global.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.global.handshake_timeout, Duration::from_secs(10));
    assert!(c.global.use_async_listener);
    assert_eq!(c.global.workers, None);
    assert_eq!(c.global.max_sessions, 0);
    assert_eq!(c.global.max_sessions_per_worker, 16384);
    let m = &c.module_defaults;
    assert!(m.list && m.read_only && !m.write_only && m.strict_modes);
    assert!(m.reverse_lookup && m.forward_lookup);
    assert_eq!(m.lock_file, PathBuf::from("/var/run/rsyncd.lock"));
    assert_eq!(m.log_format, "%o %h [%a] %m (%u) %f %l");
    assert_eq!(m.syslog_facility, "daemon");
    assert_eq!(m.syslog_tag, "rsyncd");
    assert_eq!(m.max_verbosity, 1);
    assert_eq!(m.comment, "");
    assert_eq!(m.use_chroot, None);
    assert!(m.dont_compress.as_deref().unwrap().contains("*.gz"));
}

#[test]
fn name_normalisation() {
    for spelling in ["read only", "Read-Only", "read_only", "READ   ONLY", "readonly", "  read-only  "] {
        let c = ok(&format!("[m]\n{spelling} = no\n"));
        assert!(!c.module("m").unwrap().settings.read_only, "{spelling}");
    }
    assert_eq!(ok("bind address = 1.2.3.4\n").global.address.as_deref(), Some("1.2.3.4"));
    assert_eq!(ok("rsync_port = 1234\n").global.port, 1234);
    assert_eq!(
        ok("post xfer exec = /bin/true\n[m]\n").module_defaults.post_xfer_exec.as_deref(),
        Some("/bin/true")
    );
    assert!(err("-read only = no\n").contains("unknown parameter"));
}

#[test]
fn comments_blank_lines_and_continuation() {
    let text = "# comment\n; another\n   # indented comment \\\nport = 10\n\n[m]\npath = /a\\\n/b\ncomment = hello \\\n   world \\\n\n";
    let c = ok(text);
    assert_eq!(c.global.port, 10);
    let m = &c.module("m").unwrap().settings;
    assert_eq!(m.path.as_deref(), Some(Path::new("/a/b")));
    assert_eq!(m.comment, "hello    world");
    // '#' inside a value is not a comment; '=' in a value is kept.
    let c = ok("[m]\ncomment = a # b = c\n");
    assert_eq!(c.module("m").unwrap().settings.comment, "a # b = c");
    // CRLF line endings.
    let c = ok("[m]\r\nread only = no\r\n");
    assert!(!c.module("m").unwrap().settings.read_only);
}

#[test]
fn last_wins_and_repeated_sections_merge() {
    let c = ok("port = 1\nport = 2\n[m]\ncomment = a\ncomment = b\n[n]\n[M]\npath = /p\n[ global ]\nport = 3\n");
    assert_eq!(c.global.port, 3);
    assert_eq!(c.modules.len(), 2);
    let m = c.module("m").unwrap();
    assert_eq!(m.settings.comment, "b");
    assert_eq!(m.settings.path.as_deref(), Some(Path::new("/p")));
    assert!(c.module("M").is_none(), "lookup is case-sensitive");
}

#[test]
fn modules_start_from_defaults_as_they_are_when_opened() {
    let c = ok("read only = no\n[a]\n[global]\nread only = yes\ncomment = later\n[b]\n[a]\nlist = no\n");
    let a = &c.module("a").unwrap().settings;
    let b = &c.module("b").unwrap().settings;
    assert!(!a.read_only);
    assert_eq!(a.comment, "", "a repeated section does not re-apply defaults");
    assert!(!a.list);
    assert!(b.read_only);
    assert_eq!(b.comment, "later");
    assert!(c.module_defaults.read_only);
}

#[test]
fn section_names() {
    let c = ok("[  my   mod  ]\n");
    assert_eq!(c.modules[0].name, "my mod");
    assert_eq!(
        err("\n[a/b]\n"),
        "/etc/test.conf:2: invalid module name \"a/b\": it must not contain '/'"
    );
    assert!(err("[ ]\n").starts_with("/etc/test.conf:1: empty section name"));
    assert!(err("[abc\n").starts_with("/etc/test.conf:1: section header without closing"));
}

#[test]
fn errors_name_file_and_line() {
    assert_eq!(
        err("port = 1\n\n[m]\nraed only = yes\n"),
        "/etc/test.conf:4: unknown parameter \"raed only\""
    );
    assert_eq!(
        err("[m]\nread only = maybe\n"),
        "/etc/test.conf:2: invalid value for \"read only\": \"maybe\" is not a boolean (use yes/no, true/false or 1/0)"
    );
    assert!(err("# x\nport = eighty\n").starts_with("/etc/test.conf:2: invalid value for \"port\": \"eighty\" is not an integer"));
    assert!(err("port = 70000\n").contains("out of range"));
    assert!(err("max connections = -1\n").contains("out of range"));
    assert!(err("[m]\n\njust some words\n").starts_with("/etc/test.conf:3: badly formed line"));
    assert!(err("= value\n").starts_with("/etc/test.conf:1: badly formed line"));
    // A continued line is reported at the line it starts on.
    assert!(err("[m]\ncomment = a \\\n b\nbogus \\\n = 1\n").starts_with("/etc/test.conf:4: unknown parameter \"bogus\""));
    assert!(err("&frobnicate /x\n").starts_with("/etc/test.conf:1: unknown directive \"&frobnicate\""));
    let missing = err("[m]\n&include /nonexistent/oxrsyncd-test.conf\n");
    assert!(
        missing.starts_with("/etc/test.conf:2: cannot read included config \"/nonexistent/oxrsyncd-test.conf\""),
        "{missing}"
    );
}

#[test]
fn booleans_accept_upstream_spellings() {
    for (text, want) in [
        ("yes", true),
        ("YES", true),
        ("True", true),
        ("1", true),
        ("no", false),
        ("FALSE", false),
        ("0", false),
    ] {
        let c = ok(&format!("[m]\nlist = {text}\n"));
        assert_eq!(c.module("m").unwrap().settings.list, want, "{text}");
    }
    let c = ok("[m]\nuse chroot = yes\nnumeric ids = unset\nmunge symlinks = -1\nopen noatime = no\n");
    let s = &c.module("m").unwrap().settings;
    assert_eq!(
        (s.use_chroot, s.numeric_ids, s.munge_symlinks, s.open_noatime),
        (Some(true), None, None, Some(false))
    );
    assert!(err("[m]\nlist = unset\n").contains("not a boolean"));
}

#[test]
fn list_splitting() {
    let c = ok("[m]\nhosts allow = 10.0.0.0/8, 192.168.1.1\t,,host.example\nauth users = joe, @staff:rw sam\n");
    let s = &c.module("m").unwrap().settings;
    assert_eq!(s.hosts_allow, ["10.0.0.0/8", "192.168.1.1", "host.example"]);
    assert_eq!(s.auth_users, ["joe", "@staff:rw", "sam"]);
    let c = ok("[m]\nauth users = , joe smith ,@my group:ro,,\nhosts deny = ,a b\n");
    let s = &c.module("m").unwrap().settings;
    assert_eq!(s.auth_users, ["joe smith", "@my group:ro"]);
    assert_eq!(s.hosts_deny, ["a", "b"], "only auth users uses the comma-only form");
    assert_eq!(split_list("   ", ListStyle::ConfStrtok), Vec::<String>::new());
}

#[test]
fn path_values() {
    let c = ok("[m]\npath = /srv/data///\ntemp dir = /\n");
    let s = &c.module("m").unwrap().settings;
    assert_eq!(s.path.as_deref(), Some(Path::new("/srv/data")));
    assert_eq!(s.temp_dir.as_deref(), Some(Path::new("/")));
    let c = ok("[m]\npath =\n");
    assert_eq!(c.module("m").unwrap().settings.path, None);
}

#[test]
fn port_zero_means_default() {
    assert_eq!(ok("port = 0\n").global.port, 873);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn include_file_is_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let inc = write(
        dir.path(),
        "inc.conf",
        "read only = no\nmotd file = /inc/motd\n[inc]\npath = /inc\n",
    );
    let main = write(
        dir.path(),
        "main.conf",
        &format!("comment = parent\n[before]\n&include {}\n[after]\n", inc.display()),
    );
    let c = load_file(&main, &[]).unwrap();
    let names: Vec<_> = c.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["before", "inc", "after"]);
    let inc_m = &c.module("inc").unwrap().settings;
    assert!(!inc_m.read_only, "the included file's defaults apply to its modules");
    assert_eq!(inc_m.comment, "parent", "an included file inherits the parent's defaults");
    assert!(c.module("after").unwrap().settings.read_only, "defaults restored after &include");
    assert_eq!(c.global.motd_file, None, "globals restored after &include");
}

/// The first module is in an included file, so the command line's
/// overrides are applied there; they must outlive the file's globals
/// (`--port` and `--address` become `--dparam`s).
#[test]
fn overrides_applied_inside_an_include_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let inc = write(dir.path(), "inc.conf", "[inc]\npath = /inc\n");
    let main = write(
        dir.path(),
        "main.conf",
        &format!("use chroot = no\n&include {}\n[after]\npath = /a\n", inc.display()),
    );
    let c = load_file(&main, &["port=12893".to_string(), "address=127.0.0.1".to_string()]).unwrap();
    assert_eq!(c.global.port, 12893);
    assert_eq!(c.global.address.as_deref(), Some("127.0.0.1"));
}

#[test]
fn after_include_parsing_continues_in_global_section() {
    let dir = tempfile::tempdir().unwrap();
    let inc = write(dir.path(), "x.conf", "[x]\n");
    let c = ok(&format!("[m]\n&include {}\ncomment = where\n", inc.display()));
    assert_eq!(c.module_defaults.comment, "where");
    assert_eq!(c.module("m").unwrap().settings.comment, "");
}

#[test]
fn merge_file_acts_inline() {
    let dir = tempfile::tempdir().unwrap();
    let inc = write(dir.path(), "g.inc", "read only = no\nmotd file = /m\n");
    let mod_inc = write(dir.path(), "m.inc", "comment = merged\n");
    let c = ok(&format!("&merge {}\n[a]\n&merge = {}\n[b]\n", inc.display(), mod_inc.display()));
    assert_eq!(c.global.motd_file.as_deref(), Some(Path::new("/m")));
    assert!(!c.module("a").unwrap().settings.read_only);
    assert_eq!(
        c.module("a").unwrap().settings.comment,
        "merged",
        "merge continues the current module"
    );
    assert_eq!(c.module("b").unwrap().settings.comment, "");
}

#[test]
fn include_and_merge_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("rsyncd.d");
    fs::create_dir(&d).unwrap();
    write(&d, "b.conf", "[mb]\n");
    write(&d, "a.conf", "comment = from a\n[ma]\n");
    write(&d, "c.inc", "max connections = 9\n");
    write(&d, "notes.txt", "this is not config\n");
    let c = ok(&format!("&merge {0}\n&include {0}\n[last]\n", d.display()));
    let names: Vec<_> = c.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ma", "mb", "last"], "sorted *.conf only");
    assert_eq!(c.module("ma").unwrap().settings.comment, "from a");
    assert_eq!(
        c.module("mb").unwrap().settings.comment,
        "",
        "defaults reset between included files"
    );
    assert_eq!(c.module_defaults.max_connections, 9, "*.inc merged");
    assert_eq!(c.module("mb").unwrap().settings.max_connections, 9);
    assert_eq!(c.module_defaults.comment, "");
    // An empty directory is fine.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(ok(&format!("&include {}\n", empty.display())).modules.is_empty());
}

#[test]
fn errors_inside_included_files_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let inc = write(dir.path(), "bad.conf", "[x]\n\nraed only = no\n");
    let msg = err(&format!("\n&include {}\n", inc.display()));
    assert_eq!(msg, format!("{}:3: unknown parameter \"raed only\"", inc.display()));
}

#[test]
fn include_loops_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.conf");
    let b = dir.path().join("b.conf");
    fs::write(&a, format!("[a]\n&merge {}\n", b.display())).unwrap();
    fs::write(&b, format!("[b]\n&include {}\n", a.display())).unwrap();
    let e = load_file(&a, &[]).unwrap_err();
    assert!(matches!(e, ConfigError::IncludeLoop { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}:2: include loop", b.display())), "{e}");
    // Self-include through a directory.
    let d = dir.path().join("d");
    fs::create_dir(&d).unwrap();
    write(&d, "self.inc", &format!("&merge {}\n", d.display()));
    let e = conf(&format!("&merge {}\n", d.display())).unwrap_err();
    assert!(matches!(e, ConfigError::IncludeLoop { .. }), "{e}");
}

#[test]
fn include_depth_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    // A chain of distinct files longer than the limit.
    for i in 0..40 {
        let next = dir.path().join(format!("f{}.conf", i + 1));
        write(dir.path(), &format!("f{i}.conf"), &format!("&merge {}\n", next.display()));
    }
    write(dir.path(), "f40.conf", "");
    let e = load_file(&dir.path().join("f0.conf"), &[]).unwrap_err();
    assert!(matches!(e, ConfigError::IncludeTooDeep { .. }), "{e}");
}

#[test]
fn var_expansion_rules() {
    let lookup = |name: &str| match name {
        "FOO" => Some("foo".to_string()),
        "A B" => Some("spaced".to_string()),
        _ => None,
    };
    assert_eq!(expand_vars("/x/%FOO%/y", lookup), "/x/foo/y");
    assert_eq!(expand_vars("%NOPE%", lookup), "%NOPE%");
    assert_eq!(expand_vars("100%", lookup), "100%");
    assert_eq!(expand_vars("100%%", lookup), "100%%");
    assert_eq!(expand_vars("%foo%", lookup), "%foo%");
    assert_eq!(expand_vars("%NOPE%FOO%", lookup), "%NOPEfoo");
    assert_eq!(expand_vars("%%FOO%", lookup), "%foo");
    assert_eq!(expand_vars("%A B%", lookup), "spaced");
    assert_eq!(expand_vars("é%FOO%é", lookup), "éfooé");
}

#[test]
fn var_expansion_in_config_values() {
    std::env::set_var("OXRSYNCD_TEST_RO", "no");
    std::env::set_var("OXRSYNCD_TEST_PORT", "2222");
    std::env::set_var("OXRSYNCD_TEST_DIR", "expanded");
    let c = ok("port = %OXRSYNCD_TEST_PORT%\n[m]\nread only = %OXRSYNCD_TEST_RO%\npath = /home/%OXRSYNCD_TEST_DIR%/%RSYNC_USER_NAME%\n");
    assert_eq!(c.global.port, 2222);
    let s = &c.module("m").unwrap().settings;
    assert!(!s.read_only, "non-string values are expanded when read");
    let raw = s.path.as_deref().unwrap().to_str().unwrap();
    assert_eq!(
        raw, "/home/%OXRSYNCD_TEST_DIR%/%RSYNC_USER_NAME%",
        "strings are expanded at use time"
    );
    assert_eq!(expand_env_vars(raw), "/home/expanded/%RSYNC_USER_NAME%");
    assert!(err("[m]\nlist = %OXRSYNCD_TEST_UNSET_VAR%\n").contains("\"%OXRSYNCD_TEST_UNSET_VAR%\" is not a boolean"));
}

#[test]
fn dparams_apply_at_end_of_global_section() {
    let dp = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let text = "port = 10\nread only = yes\n[a]\n[b]\nread only = yes\n";
    let c = parse_rsyncd_conf(text, Path::new("/x.conf"), &dp(&["port=20", "Read-Only = no", "comment= hi there"])).unwrap();
    assert_eq!(c.global.port, 20);
    assert!(!c.module_defaults.read_only);
    assert!(!c.module("a").unwrap().settings.read_only);
    assert!(c.module("b").unwrap().settings.read_only, "a module's own setting wins");
    assert_eq!(c.module("a").unwrap().settings.comment, "hi there");
    assert!(c.explicitly_set.iter().any(|e| e.param == "port" && e.source == "--dparam"));
    // No modules: still applied.
    let c = parse_rsyncd_conf("port = 10\n", Path::new("/x.conf"), &dp(&["port=30"])).unwrap();
    assert_eq!(c.global.port, 30);
    // Errors name the dparam.
    let e = parse_rsyncd_conf("", Path::new("/x.conf"), &dp(&["nosuch=1"])).unwrap_err();
    assert_eq!(e.to_string(), "--dparam \"nosuch=1\": unknown parameter \"nosuch\"");
    let e = parse_rsyncd_conf("[m]\n", Path::new("/x.conf"), &dp(&["port=abc"])).unwrap_err();
    assert!(
        e.to_string().starts_with("--dparam \"port=abc\": invalid value for \"port\""),
        "{e}"
    );
    let e = parse_rsyncd_conf("", Path::new("/x.conf"), &dp(&["port"])).unwrap_err();
    assert!(matches!(e, ConfigError::DparamSyntax { .. }));
    // Same in TOML.
    let c = parse_toml("[global]\nport = 10\n", Path::new("/x.toml"), &dp(&["port=40"])).unwrap();
    assert_eq!(c.global.port, 40);
}

const CLASSIC: &str = "\
# sample
address = 0.0.0.0
rsync port = 8730
listen backlog = 64
workers = 3
drain timeout = 5
use async listener = no
max sessions = 100
log file = /var/log/oxrsyncd.log
read only = no
hosts deny = *

[pub]
path = /srv/pub/
comment = Public files
hosts allow = 10.0.0.0/8 192.168.0.0/16
auth users = , joe smith:rw, @staff
use chroot = no
timeout = 600
syslog facility = local5
transfer logging = yes

[priv]
path = /srv/priv
read only = yes
list = false
max connections = 4
port = 1
";

const TOML: &str = r#"
[global]
address = "0.0.0.0"
port = 8730
listen_backlog = 64
Workers = 3
drain-timeout = 5
"use async listener" = false
max_sessions = 100
log_file = "/var/log/oxrsyncd.log"
read_only = false
hosts_deny = "*"

[modules.pub]
path = "/srv/pub/"
comment = "Public files"
hosts_allow = ["10.0.0.0/8", "192.168.0.0/16"]
auth_users = ["joe smith:rw", "@staff"]
use_chroot = false
timeout = 600
syslog_facility = "LOCAL5"
transfer_logging = true

[modules.priv]
path = "/srv/priv"
read-only = true
list = "false"
max_connections = 4
port = 1
"#;

#[test]
fn toml_and_classic_are_equivalent() {
    let a = ok(CLASSIC);
    let b = parse_toml(TOML, Path::new("/etc/test.toml"), &[]).unwrap();
    assert_eq!(a.global, b.global);
    assert_eq!(a.module_defaults, b.module_defaults);
    assert_eq!(a.modules, b.modules);
    assert!(a.same_settings(&b));
    assert_eq!(a.modules[0].name, "pub", "file order kept");
    assert_eq!(b.modules[0].name, "pub", "file order kept");
    assert_eq!(a.global.workers, Some(3));
    assert_eq!(a.module("pub").unwrap().settings.auth_users, ["joe smith:rw", "@staff"]);
    assert_eq!(a.warnings.len(), 1);
    assert_eq!(b.warnings.len(), 1);
    assert!(b.warnings[0].starts_with("/etc/test.toml:29:"), "{:?}", b.warnings);
    // A changed value is noticed.
    let c = parse_toml(&TOML.replace("timeout = 600", "timeout = 601"), Path::new("/t.toml"), &[]).unwrap();
    assert!(!a.same_settings(&c));
}

#[test]
fn toml_errors() {
    let t = |text: &str| parse_toml(text, Path::new("/etc/x.toml"), &[]).unwrap_err().to_string();
    assert_eq!(
        t("[global]\nport = 1\n\n\"raed only\" = true\n"),
        "/etc/x.toml:4: unknown parameter \"raed only\""
    );
    assert!(t("[modules.m]\npath = \"/x\"\nlist = \"maybe\"\n").starts_with("/etc/x.toml:3: invalid value for \"list\""));
    assert!(t("[global]\nport = 1.5\n").starts_with("/etc/x.toml:2: \"port\": a TOML float is not accepted"));
    assert!(t("[modules.m]\ncomment = [\"a\"]\n").contains("a list is not accepted"));
    assert!(t("[modules.m]\nauth_users = [\"a,b\"]\n").contains("must not contain a comma"));
    assert!(t("[modules.m]\nhosts_allow = [1]\n").contains("a TOML integer is not accepted"));
    let shape = t("[globals]\nport = 1\n");
    assert!(shape.starts_with("/etc/x.toml:1: unknown field `globals`"), "{shape}");
    assert!(t("[global\n").starts_with("/etc/x.toml:1:"));
    assert!(t("[modules.\"a/b\"]\n").contains("must not contain '/'"));
    assert!(t("[modules.Global]\n").contains("cannot be named"));
}

#[test]
fn report_reparses_to_equal_config() {
    let dp = vec!["max verbosity=3".to_string()];
    let a = parse_rsyncd_conf(CLASSIC, Path::new("/etc/test.conf"), &dp).unwrap();
    let report = a.report();
    let b = parse_rsyncd_conf(&report, Path::new("/report"), &[]).unwrap_or_else(|e| panic!("{e}\n{report}"));
    assert!(a.same_settings(&b), "{report}");
    assert_eq!(a.global, b.global);
    assert_eq!(a.modules, b.modules);
    // Also for the defaults and the embedded config.
    let d = ok("[m]\n");
    assert!(d.same_settings(&ok(&d.report())));
    let e = Config::embedded_default();
    assert!(e.same_settings(&ok(&e.report())));
}

#[test]
fn report_lists_unenforced_and_warnings() {
    let a = ok(CLASSIC);
    let report = a.report();
    assert!(report.contains("[global]\n"));
    assert!(report.contains("\n[pub]\n"));
    assert!(report.contains("port = 8730\n"));
    assert!(report.contains("workers = 3\n"));
    assert!(report.contains("worker threads =\n"));
    assert!(report.contains("auth users = , joe smith:rw, @staff\n"), "{report}");
    assert!(
        !report.contains("#   [pub] transfer logging"),
        "transfer logging is enforced now: {report}"
    );
    assert!(report.contains("#   [pub] use chroot (set at /etc/test.conf:18)"), "{report}");
    assert!(!report.contains("#   [pub] path"), "enforced parameters are not listed");
    assert!(!report.contains("#   [global] read only"), "enforced parameters are not listed");
    assert!(
        report.contains("# Warnings:\n#   /etc/test.conf:28: global parameter \"port\" in module [priv] ignored"),
        "{report}"
    );
    let quiet = ok("[m]\npath = /x\n").report();
    assert!(quiet.contains("# No parameter is set that oxrsyncd accepts but does not enforce yet."));
    assert!(quiet.contains("# No warnings."));
}

#[test]
fn embedded_default() {
    let c = Config::embedded_default();
    assert_eq!(c.origin, ConfigOrigin::Embedded);
    assert_eq!(c.global.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.global.port, 8873);
    assert_eq!(c.modules.len(), 1);
    let m = c.module("demo").unwrap();
    assert_eq!(m.settings.comment, "oxrsyncd demo module");
    assert_eq!(m.settings.path.as_deref(), Some(std::env::current_dir().unwrap().as_path()));
    assert!(m.settings.read_only && m.settings.list);
    assert_eq!(m.settings.use_chroot, Some(false));
    assert_eq!(m.settings.lock_file, std::env::temp_dir().join("oxrsyncd-demo.lock"));
}

#[test]
fn json_round_trip() {
    let a = ok(CLASSIC);
    let json = serde_json::to_string(&a).unwrap();
    let b: Config = serde_json::from_str(&json).unwrap();
    assert_eq!(a, b);
    let e = Config::embedded_default();
    assert_eq!(e, serde_json::from_str::<Config>(&serde_json::to_string(&e).unwrap()).unwrap());
}

#[test]
fn load_file_picks_format_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "c.toml", TOML);
    let r = write(dir.path(), "c.conf", CLASSIC);
    let a = load_file(&t, &[]).unwrap();
    let b = load_file(&r, &[]).unwrap();
    assert!(a.same_settings(&b));
    assert_eq!(a.origin, ConfigOrigin::File(t.clone()));
    let e = load_file(&dir.path().join("missing.conf"), &[]).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("missing.conf"));
}

#[test]
fn daemon_log_settings_come_from_global_section() {
    let c = ok("log file = /var/log/d.log\nsyslog facility = local1\nsyslog tag = oxr\n[m]\nlog file = /var/log/m.log\n");
    assert_eq!(c.daemon_log_file(), Some(Path::new("/var/log/d.log")));
    assert_eq!(c.daemon_syslog_facility(), "local1");
    assert_eq!(c.daemon_syslog_tag(), "oxr");
    let m = &c.module("m").unwrap().settings;
    assert_eq!(m.log_file.as_deref(), Some(Path::new("/var/log/m.log")));
    assert_eq!(m.syslog_tag, "oxr");
    assert_eq!(ok("syslog facility = 17\n").daemon_syslog_facility(), "17");
}

#[test]
fn every_parameter_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    for def in PARAMS {
        let row = doc.lines().find(|l| l.starts_with(&format!("| `{}`", def.name)));
        let row = row.unwrap_or_else(|| panic!("docs/configuration.md has no row for {}", def.name));
        let says_enforced = row.contains("| yes |");
        assert_eq!(
            says_enforced, def.enforced,
            "docs/configuration.md is wrong about whether {} is enforced",
            def.name
        );
    }
}

/// Fuzz findings `config-report-trailing-space` and
/// `config_toml-report-newline`: what `--check-config` reports parses back
/// to the same settings, because a value never ends in white space and
/// never holds a line break.
#[test]
fn values_the_report_cannot_write_are_not_kept() {
    let c = ok("[a]\n path = /x \\\n /\n");
    assert_eq!(get(&c, Some("a"), "path"), Value::Text("/x".into()));
    let reparsed = ok(&c.report());
    assert_eq!(get(&reparsed, Some("a"), "path"), Value::Text("/x".into()));
    assert!(err("[a]\n path = /x \\/\n").contains("must not end in a backslash"));
    let toml = parse_toml("[modules.m]\npath = \"/a\"\ncomment = \"x\\ny\"\n", Path::new("/etc/t.toml"), &[]);
    let e = toml.expect_err("a comment with a line break");
    assert!(e.to_string().contains("line break"), "{e}");
}
