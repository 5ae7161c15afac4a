//! Filter options given to the daemon itself (`rsync -M--exclude=PAT`,
//! `-M--filter=RULE`, `-M--exclude-from=FILE`, ...): turned into rules in
//! the wire's short form, which go before the client's own rules, as
//! upstream's server parses its command line before it reads the client's
//! list. A file they name (`--exclude-from`, a `merge` rule) is read
//! inside the module, after the module's own filters have had their say
//! about its path, exactly like a `--files-from` list.

use std::io::{BufRead, BufReader};

use crate::transfer::filter::files_from::{open_named_in_module, NamedFileError};
use crate::transfer::filter::rules::FilterList;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::options::client::ServerFilter;

/// Rules a merge file may hold, and merge files nested in merge files.
const MAX_RULES: usize = 10_000;
const MAX_DEPTH: usize = 8;

/// Why the options cannot be taken: the line for the client and whether
/// it is a file error (exit 11) or a refusal (exit 4).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub message: String,
    pub file_error: bool,
}

/// The rules of `given`, in order, in the wire's short form (`- pat`,
/// `+ pat`, `: .rules`, ...). `role` names us in messages ("sender",
/// "receiver").
pub(crate) fn expand(
    given: &[(ServerFilter, String)],
    root: &ModuleRoot,
    daemon_filters: &FilterList,
    role: &str,
) -> Result<Vec<String>, Refusal> {
    let mut out = Vec::new();
    for (kind, value) in given {
        match kind {
            ServerFilter::Exclude => out.push(with_old_prefix('-', value)),
            ServerFilter::Include => out.push(with_old_prefix('+', value)),
            ServerFilter::Rule => add_rule(value, root, daemon_filters, role, 0, &mut out)?,
            ServerFilter::ExcludeFrom | ServerFilter::IncludeFrom => {
                let sign = if *kind == ServerFilter::ExcludeFrom { '-' } else { '+' };
                let what = if sign == '-' { "exclude" } else { "include" };
                for line in read_lines(value, what, root, daemon_filters, role)? {
                    out.push(with_old_prefix(sign, &line));
                }
            }
        }
        if out.len() > MAX_RULES {
            return Err(refused("too many filter rules"));
        }
    }
    Ok(out)
}

/// `--exclude`/`--include` patterns, and the lines of their files, may
/// start with upstream's old "- " / "+ " prefixes; else `sign` applies.
fn with_old_prefix(sign: char, pattern: &str) -> String {
    if pattern.starts_with("- ") || pattern.starts_with("+ ") {
        pattern.to_string()
    } else {
        format!("{sign} {pattern}")
    }
}

/// One `--filter` rule (short or long form); a merge rule is replaced by
/// the rules of its file.
fn add_rule(
    rule: &str,
    root: &ModuleRoot,
    daemon_filters: &FilterList,
    role: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), Refusal> {
    let rule = rule.trim_start();
    if rule.is_empty() || rule.starts_with('#') || rule.starts_with(';') {
        return Ok(());
    }
    if rule == "!" || rule == "clear" {
        out.push("!".into());
        return Ok(());
    }
    let (head, pattern) = rule.split_once([' ', '_']).unwrap_or((rule, ""));
    // Long names ("exclude", "merge,-", ...) have their modifiers after a comma.
    let (word, modifiers) = head.split_once(',').unwrap_or((head, ""));
    let long = match word {
        "exclude" => Some('-'),
        "include" => Some('+'),
        "hide" => Some('H'),
        "show" => Some('S'),
        "protect" => Some('P'),
        "risk" => Some('R'),
        "merge" => Some('.'),
        "dir-merge" => Some(':'),
        _ => None,
    };
    let (short, modifiers) = match (long, word.chars().next()) {
        (Some(c), _) => (c, modifiers),
        // The short form: the rule's letter, then its modifiers.
        (None, Some(c)) if "-+HSPR.:".contains(c) => (c, &word[c.len_utf8()..]),
        _ => return Err(refused(&format!("Unknown filter rule: `{rule}'"))),
    };
    if short != '.' {
        out.push(format!("{short}{modifiers} {pattern}"));
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Err(refused("merge files nest too deep"));
    }
    // A merge file: its lines are rules, or with "-"/"+" plain patterns.
    let plain = modifiers.chars().find(|c| *c == '-' || *c == '+');
    for line in read_lines(pattern, "merge", root, daemon_filters, role)? {
        match plain {
            Some(sign) => out.push(format!("{sign} {line}")),
            None => add_rule(&line, root, daemon_filters, role, depth + 1, out)?,
        }
        if out.len() > MAX_RULES {
            return Err(refused("too many filter rules"));
        }
    }
    Ok(())
}

/// The non-empty, non-comment lines of `name`, opened inside the module
/// (its filters consulted first: a list they hide is refused, a merge
/// file they hide reads as empty). Upstream's words when it cannot be.
fn read_lines(name: &str, what: &str, root: &ModuleRoot, daemon_filters: &FilterList, role: &str) -> Result<Vec<String>, Refusal> {
    if name == "-" {
        return Err(refused(&format!("--{what}-from=- would read the daemon's own input")));
    }
    let file = match open_named_in_module(root, name, daemon_filters) {
        Ok(file) => file,
        // Upstream: a merge file the module hides is as good as empty,
        // neither an error nor a sign that it exists.
        Err(NamedFileError::Rejected) if what == "merge" => return Ok(Vec::new()),
        Err(NamedFileError::Rejected) => {
            return Err(Refusal {
                message: "Your options have been rejected by the server.\n".into(),
                file_error: false,
            })
        }
        Err(NamedFileError::Open { rel, err }) => {
            let shown = root.path().join(&rel);
            return Err(Refusal {
                message: oxrsyncd_protocol::message::rsyserr_as(role, &format!("failed to open {what} file {}", shown.display()), &err),
                file_error: true,
            });
        }
    };
    let mut lines = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| Refusal {
            message: oxrsyncd_protocol::message::rsyserr_as(role, &format!("reading {what} file {name}"), &e),
            file_error: true,
        })?;
        let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        lines.push(line);
        if lines.len() > MAX_RULES {
            return Err(refused("too many filter rules"));
        }
    }
    Ok(lines)
}

fn refused(why: &str) -> Refusal {
    Refusal {
        message: format!("ERROR: {why}\n"),
        file_error: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> (tempfile::TempDir, ModuleRoot) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/list"), "# comment\n*.log\n\n+ keep.log\n").unwrap();
        std::fs::write(dir.path().join("rules/merge"), "- *.tmp\ninclude *.c\n. /rules/more\n").unwrap();
        std::fs::write(dir.path().join("rules/more"), "exclude core\n").unwrap();
        let root = ModuleRoot::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn options_become_short_rules_in_order_with_files_read_in_the_module() {
        let (_dir, root) = module();
        let given = vec![
            (ServerFilter::Exclude, "*.o".to_string()),
            (ServerFilter::Include, "+ x".to_string()),
            (ServerFilter::Rule, "dir-merge .rules".to_string()),
            (ServerFilter::ExcludeFrom, "../../rules/list".to_string()),
            (ServerFilter::Rule, "merge /rules/merge".to_string()),
            (ServerFilter::Rule, "-! y".to_string()),
        ];
        let rules = expand(&given, &root, &FilterList::default(), "sender").unwrap();
        assert_eq!(
            rules,
            [
                "- *.o",
                "+ x",
                ": .rules",
                "- *.log",
                "+ keep.log",
                "- *.tmp",
                "+ *.c",
                "- core",
                "-! y"
            ]
        );
    }

    #[test]
    fn a_file_the_module_excludes_or_lacks_is_refused_and_a_hidden_merge_file_is_empty() {
        let (_dir, root) = module();
        let mut daemon = FilterList::default();
        daemon.add_wire_rule("- /rules/***", 31).unwrap();
        let given = vec![(ServerFilter::ExcludeFrom, "/rules/list".to_string())];
        let refusal = expand(&given, &root, &daemon, "sender").unwrap_err();
        assert!(!refusal.file_error && refusal.message.contains("rejected"), "{refusal:?}");
        let hidden_merge = vec![(ServerFilter::Rule, "._/rules/merge".to_string())];
        assert_eq!(expand(&hidden_merge, &root, &daemon, "sender").unwrap(), Vec::<String>::new());
        let missing = vec![(ServerFilter::ExcludeFrom, "/nope".to_string())];
        let refusal = expand(&missing, &root, &FilterList::default(), "sender").unwrap_err();
        assert!(
            refusal.file_error && refusal.message.contains("failed to open exclude file"),
            "{refusal:?}"
        );
        assert!(expand(
            &[(ServerFilter::Rule, "bogus x".to_string())],
            &root,
            &FilterList::default(),
            "sender"
        )
        .is_err());
    }
}
