//! `refuse options`: which of the client's options the module refuses, with
//! upstream's matching rules (names, one-letter forms, wildcards, `!`
//! negation with the last match winning, `a`/`archive` standing for the
//! options `-a` implies, `delete` covering every delete mode and, for a
//! sending daemon, `--remove-source-files`; wildcards never match the vital
//! options).

use crate::wildmatch::wildmatch;

/// Long name and one-letter form of the options a client may send a server.
const OPTIONS: &[(&str, Option<char>)] = &[
    ("verbose", Some('v')),
    ("quiet", Some('q')),
    ("checksum", Some('c')),
    ("archive", Some('a')),
    ("recursive", Some('r')),
    ("relative", Some('R')),
    ("dirs", Some('d')),
    ("links", Some('l')),
    ("copy-links", Some('L')),
    ("copy-unsafe-links", None),
    ("safe-links", None),
    ("munge-links", None),
    ("copy-dirlinks", Some('k')),
    ("keep-dirlinks", Some('K')),
    ("hard-links", Some('H')),
    ("perms", Some('p')),
    ("executability", Some('E')),
    ("acls", Some('A')),
    ("xattrs", Some('X')),
    ("owner", Some('o')),
    ("group", Some('g')),
    ("devices", None),
    ("specials", None),
    ("times", Some('t')),
    ("atimes", Some('U')),
    ("crtimes", Some('N')),
    ("omit-dir-times", Some('O')),
    ("omit-link-times", Some('J')),
    ("super", None),
    ("sparse", Some('S')),
    ("dry-run", Some('n')),
    ("whole-file", Some('W')),
    ("one-file-system", Some('x')),
    ("block-size", Some('B')),
    ("existing", None),
    ("ignore-existing", None),
    ("remove-source-files", None),
    ("delete", None),
    ("delete-before", None),
    ("delete-during", None),
    ("delete-delay", None),
    ("delete-after", None),
    ("delete-excluded", None),
    ("delete-missing-args", None),
    ("ignore-missing-args", None),
    ("ignore-errors", None),
    ("force", None),
    ("max-delete", None),
    ("max-size", None),
    ("min-size", None),
    ("max-alloc", None),
    ("partial", None),
    ("partial-dir", None),
    ("delay-updates", None),
    ("prune-empty-dirs", Some('m')),
    ("numeric-ids", None),
    ("usermap", None),
    ("groupmap", None),
    ("timeout", None),
    ("ignore-times", Some('I')),
    ("size-only", None),
    ("modify-window", Some('@')),
    ("temp-dir", Some('T')),
    ("fuzzy", Some('y')),
    ("compare-dest", None),
    ("copy-dest", None),
    ("link-dest", None),
    ("compress", Some('z')),
    ("compress-choice", None),
    ("compress-level", None),
    ("skip-compress", None),
    ("cvs-exclude", Some('C')),
    ("files-from", None),
    ("from0", Some('0')),
    ("iconv", None),
    ("checksum-choice", None),
    ("checksum-seed", None),
    ("itemize-changes", Some('i')),
    ("log-format", None),
    ("bwlimit", None),
    ("backup", Some('b')),
    ("backup-dir", None),
    ("suffix", None),
    ("update", Some('u')),
    ("inplace", None),
    ("append", None),
    ("append-verify", None),
    ("list-only", None),
    ("stats", None),
    ("secluded-args", Some('s')),
    ("protect-args", None),
    ("server", None),
    ("sender", None),
];

/// Options a wildcard never matches (upstream's exact-match-only names):
/// a wildcard neither refuses the vital ones nor re-allows the ones a
/// daemon refuses by default.
const VITAL: &[&str] = &[
    "server",
    "sender",
    "dry-run",
    "no-iconv",
    "secluded-args",
    "protect-args",
    "copy-devices",
    "write-devices",
];
/// Refused by every module unless its `refuse options` lists them negated
/// (`!copy-devices`), as upstream's daemon does: reading or writing a
/// device's contents is never a module's default.
const REFUSED_BY_DEFAULT: &[&str] = &["copy-devices", "write-devices"];
/// Options with a second long name, as upstream's option table has them:
/// a rule on either name refuses both, and the refusal names the spelling
/// the client used (upstream's `set_refuse_options` once stopped at the
/// first name, leaving `--zt` open where `compress-threads` was refused).
const ALIASES: &[(&str, &str)] = &[("zt", "compress-threads")];

/// What an explicit `a` / `archive` stands for.
const ARCHIVE_PARTS: &[&str] = &[
    "recursive",
    "dirs",
    "links",
    "perms",
    "times",
    "group",
    "owner",
    "devices",
    "specials",
];

/// The long names of the options the client's server arguments use.
pub fn used_options(options: &[String]) -> Vec<String> {
    let mut used = Vec::new();
    let mut push = |name: &str| {
        if !used.iter().any(|u| u == name) {
            used.push(name.to_string());
        }
    };
    for opt in options {
        if let Some(long) = opt.strip_prefix("--") {
            let name = long.split_once('=').map(|(n, _)| n).unwrap_or(long);
            let name = match name {
                "old-compress" | "new-compress" => "compress",
                "cc" => "checksum-choice",
                "zc" => "compress-choice",
                // --del is --delete-during written short: one capability.
                "del" => "delete-during",
                "no-specials" => continue,
                other => other,
            };
            if name.starts_with("delete") {
                push("delete");
            }
            push(name);
        } else if let Some(cluster) = opt.strip_prefix('-') {
            for c in cluster.chars() {
                if c == 'e' || c == 'B' || c == '@' {
                    break; // the rest is the value
                }
                if c == 'D' {
                    push("devices");
                    push("specials");
                    continue;
                }
                if let Some((name, _)) = OPTIONS.iter().find(|(_, short)| *short == Some(c)) {
                    push(name);
                }
            }
        }
    }
    used
}

/// The first used option the module refuses, as upstream words the error:
/// `The server is configured to refuse --times (-t)`.
pub fn first_refused(refuse: &str, used: &[String], we_send: bool) -> Option<String> {
    let defaults = REFUSED_BY_DEFAULT.iter().map(|&p| (true, p));
    let rules: Vec<(bool, &str)> = defaults
        .chain(
            refuse
                .split_whitespace()
                .map(|r| if let Some(p) = r.strip_prefix('!') { (false, p) } else { (true, r) }),
        )
        // A rule on --del is a rule on --delete-during (used_options says so too).
        .map(|(refuse_it, p)| (refuse_it, if p == "del" { "delete-during" } else { p }))
        .collect();
    for name in used {
        let short = OPTIONS.iter().find(|(n, _)| n == name).and_then(|(_, s)| *s);
        let mut refused = false;
        for (refuse_it, pattern) in &rules {
            if rule_matches(pattern, name, short, we_send) {
                refused = *refuse_it;
            }
        }
        if refused {
            return Some(match short {
                Some(c) => format!("The server is configured to refuse --{name} (-{c})"),
                None => format!("The server is configured to refuse --{name}"),
            });
        }
    }
    None
}

fn rule_matches(pattern: &str, name: &str, short: Option<char>, we_send: bool) -> bool {
    let wild = pattern.contains(['*', '?', '[']);
    if wild {
        // An alias is refused with its option: `compress-*` covers `--zt`.
        let canonical = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, c)| *c);
        return !VITAL.contains(&name) && (wildmatch(pattern, name) || wildmatch(pattern, canonical));
    }
    if pattern == name || (pattern.len() == 1 && short.map(|c| pattern.starts_with(c)).unwrap_or(false)) {
        return true;
    }
    if ALIASES
        .iter()
        .any(|&(alias, canonical)| (name == alias && pattern == canonical) || (name == canonical && pattern == alias))
    {
        return true;
    }
    if (pattern == "a" || pattern == "archive") && ARCHIVE_PARTS.contains(&name) {
        return true;
    }
    pattern == "delete" && we_send && name == "remove-source-files"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(v: &[&str]) -> Vec<String> {
        used_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_rule_on_either_name_of_an_option_refuses_both() {
        for rule in ["compress-threads", "zt", "compress-*"] {
            for (spelled, shown) in [("--zt=256", "--zt"), ("--compress-threads=2", "--compress-threads")] {
                assert_eq!(
                    first_refused(rule, &used(&["--server", "--sender", spelled]), true),
                    Some(format!("The server is configured to refuse {shown}")),
                    "{rule} against {spelled}"
                );
            }
        }
    }

    #[test]
    fn names_letters_and_wildcards() {
        let u = used(&["--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--delete-during"]);
        assert_eq!(
            first_refused("times", &u, true).as_deref(),
            Some("The server is configured to refuse --times (-t)")
        );
        assert_eq!(
            first_refused("t", &u, true).as_deref(),
            Some("The server is configured to refuse --times (-t)")
        );
        assert_eq!(
            first_refused("delete", &u, true).as_deref(),
            Some("The server is configured to refuse --delete")
        );
        assert_eq!(first_refused("c", &u, true), None);
        assert_eq!(
            first_refused("delete-* !delete-during", &used(&["--server", "--delete-during"]), true),
            None
        );
        // --del is --delete-during: a rule on either spelling covers both.
        assert_eq!(
            first_refused("delete-during", &used(&["--server", "--del"]), false).as_deref(),
            Some("The server is configured to refuse --delete-during")
        );
        assert!(first_refused("delete", &used(&["--server", "--del"]), false).is_some());
        assert!(first_refused("del", &used(&["--server", "--delete-during"]), false).is_some());
    }

    #[test]
    fn device_contents_are_refused_unless_allowed_by_name() {
        let pull = used(&["--server", "--sender", "-re.iLsfxCIvu", "--copy-devices"]);
        let text = Some("The server is configured to refuse --copy-devices");
        assert_eq!(first_refused("", &pull, true).as_deref(), text, "refused by default");
        assert_eq!(first_refused("!*", &pull, true).as_deref(), text, "a wildcard does not allow it");
        assert_eq!(first_refused("!copy-devices", &pull, true), None, "its own name does");
        let push = used(&["--server", "-re.iLsfxCIvu", "--write-devices"]);
        assert!(first_refused("", &push, false).is_some());
        assert_eq!(first_refused("", &used(&["--server", "-rD"]), false), None, "-D is not refused");
    }

    #[test]
    fn star_with_exceptions_and_vital_options() {
        let u = used(&["--server", "--sender", "-vre.iLsfxCIvu"]);
        assert_eq!(first_refused("* !v !r", &u, true), None, "server/sender are vital");
        assert!(first_refused("* !v", &u, true).unwrap().contains("--recursive"));
        assert!(first_refused("a", &used(&["--server", "-rlpt"]), true)
            .unwrap()
            .contains("--recursive"));
        assert_eq!(
            first_refused("archive*", &used(&["--server", "-rlpt"]), true),
            None,
            "a wildcard archive has no side effect"
        );
    }

    #[test]
    fn delete_covers_remove_source_files_when_sending() {
        let u = used(&["--server", "--sender", "-r", "--remove-source-files"]);
        assert!(first_refused("delete", &u, true).unwrap().contains("remove-source-files"));
        assert_eq!(first_refused("delete", &u, false), None);
        assert!(first_refused("z", &used(&["--server", "-rz", "--new-compress"]), true)
            .unwrap()
            .contains("--compress (-z)"));
    }
}
