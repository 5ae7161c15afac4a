//! The daemon's footprint, read from /proc: the process tree under a pid
//! (supervisor and workers, or stock's per-connection children), its
//! resident and proportional set sizes and thread count.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// One sample of a process tree.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct TreeUsage {
    pub processes: u32,
    pub threads: u32,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

/// `pid` and every descendant, from the parent links in /proc/*/stat.
pub fn tree(pid: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(ppid) = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| parent_of(&s))
            {
                children.entry(ppid).or_default().push(child);
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if !seen.insert(p) {
            continue;
        }
        out.push(p);
        todo.extend(children.get(&p).into_iter().flatten());
    }
    out
}

/// The parent pid field of /proc/PID/stat (after the parenthesised name,
/// which may itself hold spaces and parentheses).
pub fn parent_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A `Key:   N kB` value from /proc status-like text.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Sum the tree's usage now.
pub fn sample(pid: i32) -> TreeUsage {
    let mut usage = TreeUsage::default();
    for p in tree(pid) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        usage.processes += 1;
        usage.threads += kib_field(&status, "Threads:").unwrap_or(0) as u32;
        usage.rss_kib += kib_field(&status, "VmRSS:").unwrap_or(0);
        let rollup = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default();
        usage.pss_kib += kib_field(&rollup, "Pss:").unwrap_or(0);
    }
    usage
}

/// The highest of several samples, field by field.
pub fn peak(a: TreeUsage, b: TreeUsage) -> TreeUsage {
    TreeUsage {
        processes: a.processes.max(b.processes),
        threads: a.threads.max(b.threads),
        rss_kib: a.rss_kib.max(b.rss_kib),
        pss_kib: a.pss_kib.max(b.pss_kib),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_text() {
        assert_eq!(parent_of("123 (odd) name) S 42 123 123 0"), Some(42));
        let status = "Name:\tx\nThreads:\t7\nVmRSS:\t  2048 kB\n";
        assert_eq!(kib_field(status, "Threads:"), Some(7));
        assert_eq!(kib_field(status, "VmRSS:"), Some(2048));
        assert_eq!(kib_field(status, "Pss:"), None);
    }

    #[test]
    fn samples_our_own_process() {
        let me = std::process::id() as i32;
        assert!(tree(me).contains(&me));
        let u = sample(me);
        assert!(u.processes >= 1 && u.threads >= 1 && u.rss_kib > 0, "{u:?}");
        assert_eq!(peak(u, TreeUsage::default()), u);
    }
}
