//! /proc lookups: a process's children, and which process owns a TCP connection.

use std::collections::HashSet;

use nix::unistd::Pid;

/// Direct children of `parent`.
pub fn children(parent: Pid) -> Vec<Pid> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Field 4 (ppid) follows the parenthesised command name.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(parent.as_raw()) && fields.first() != Some(&"Z") {
            out.push(Pid::from_raw(pid));
        }
    }
    out.sort();
    out
}

/// Socket inodes open in `pid`.
fn socket_inodes(pid: Pid) -> HashSet<u64> {
    let mut out = HashSet::new();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in entries.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    if let Ok(i) = inode.parse() {
                        out.insert(i);
                    }
                }
            }
        }
    }
    out
}

/// Remote ports of the established IPv4/IPv6 connections `pid` holds.
pub fn peer_ports(pid: Pid) -> HashSet<u16> {
    let inodes = socket_inodes(pid);
    let mut ports = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let Ok(inode) = f[9].parse::<u64>() else { continue };
            if !inodes.contains(&inode) {
                continue;
            }
            // Connected sockets only: the shared listener (state 0A) has no peer.
            if f[3] == "0A" {
                continue;
            }
            if let Some(port) = f[2].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) {
                ports.insert(port);
            }
        }
    }
    ports
}

/// A process's peak resident set (VmHWM) in KiB.
pub fn peak_rss_kib(pid: Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
