//! `transfer logging` lines: upstream's `log format` escapes (`%o %h [%a]
//! %m (%u) %f %l` by default) expanded for one transferred file.

use std::path::Path;

use crate::transfer::context::ModuleContext;
use crate::transfer::flist::FileEntry;

/// What a `transfer logging` line needs besides the file: the module's
/// `log format` and the session's names for the client.
pub(crate) struct TransferLog<'a> {
    /// The module's `log format`.
    pub format: &'a str,
    /// The client's host name (`%h`).
    pub host: &'a str,
    /// The client's address (`%a`).
    pub addr: &'a str,
    /// The authenticated user, or empty (`%u`).
    pub user: &'a str,
}

impl TransferLog<'_> {
    /// Log the line of one file that travelled (`operation`: `send` or
    /// `recv`): `entry` as the list has it, `path` where it is in the
    /// module (`%f`), `length` its size, `bytes` its literal data (`%b`).
    pub(crate) fn file(&self, operation: &str, context: &ModuleContext<'_>, entry: &FileEntry, path: &Path, length: u64, bytes: u64) {
        let root = context.module_root.to_string_lossy();
        let (long_name, short_name) = (path.to_string_lossy(), String::from_utf8_lossy(&entry.name));
        let line = render(
            self.format,
            &LoggedFile {
                operation,
                host: self.host,
                addr: self.addr,
                module: context.module_name,
                module_path: &root,
                user: self.user,
                long_name: &long_name,
                short_name: &short_name,
                length,
                bytes,
                mode: entry.mode,
                uid: entry.uid,
                gid: entry.gid,
                mtime: entry.mtime,
                itemize: "",
                link_target: None,
            },
        );
        tracing::info!("{}", line);
    }
}

/// What one log line can mention.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoggedFile<'a> {
    /// `send`, `recv` or `del.`.
    pub operation: &'a str,
    pub host: &'a str,
    pub addr: &'a str,
    pub module: &'a str,
    pub module_path: &'a str,
    pub user: &'a str,
    /// Path as upstream's `%f` shows it (within the module).
    pub long_name: &'a str,
    /// Path relative to the transfer root (`%n`).
    pub short_name: &'a str,
    pub length: u64,
    /// Bytes actually sent for the file (`%b`).
    pub bytes: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Itemize string (`%i`), e.g. `>f+++++++++`.
    pub itemize: &'a str,
    pub link_target: Option<&'a str>,
}

/// Expand `format` for `f`. Unknown escapes are kept as written; a
/// numeric width (`%10l`, `%-10n`) pads, and `'` adds thousands separators.
pub(crate) fn render(format: &str, f: &LoggedFile<'_>) -> String {
    let mut out = String::with_capacity(format.len() + 64);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d == '-' || d == '\'' || d.is_ascii_digit() {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(letter) = chars.next() else {
            out.push('%');
            out.push_str(&spec);
            break;
        };
        let separators = spec.contains('\'');
        let number = |n: u64| if separators { with_separators(n) } else { n.to_string() };
        let value = match letter {
            '%' => "%".to_string(),
            'o' => f.operation.to_string(),
            'h' => f.host.to_string(),
            'a' => f.addr.to_string(),
            'm' => f.module.to_string(),
            'P' => f.module_path.to_string(),
            'u' => f.user.to_string(),
            'f' => f.long_name.to_string(),
            'n' => f.short_name.to_string(),
            'l' => number(f.length),
            'b' => number(f.bytes),
            'p' => std::process::id().to_string(),
            'B' => permission_string(f.mode),
            'U' => f.uid.to_string(),
            'G' => f.gid.to_string(),
            'M' => chrono_like(f.mtime),
            'i' => f.itemize.to_string(),
            'L' => f.link_target.map(|t| format!(" -> {t}")).unwrap_or_default(),
            't' => chrono_like(now()),
            other => format!("%{spec}{other}"),
        };
        let spec_digits: String = spec.chars().filter(char::is_ascii_digit).collect();
        match spec_digits.parse::<usize>() {
            Ok(width) if spec.starts_with('-') => out.push_str(&format!("{value:<width$}")),
            Ok(width) => out.push_str(&format!("{value:>width$}")),
            Err(_) => out.push_str(&value),
        }
    }
    out
}

/// A number with upstream's thousands separators (`do_big_num`).
pub(crate) fn with_separators(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `rwxr-xr-x` for the permission bits.
fn permission_string(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYY/MM/DD-HH:MM:SS` in UTC, as upstream's `%M`/`%t` shape.
fn chrono_like(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}/{m:02}/{d:02}-{:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_format_and_widths() {
        let f = LoggedFile {
            operation: "send",
            host: "localhost",
            addr: "127.0.0.1",
            module: "mod",
            user: "",
            long_name: "dir/file.txt",
            short_name: "file.txt",
            length: 1234567,
            mode: 0o100644,
            mtime: 1_600_000_000,
            ..Default::default()
        };
        assert_eq!(
            render("%o %h [%a] %m (%u) %f %l", &f),
            "send localhost [127.0.0.1] mod () dir/file.txt 1234567"
        );
        assert_eq!(
            render("%'l|%10n|%-5o|%B|%M|%%|%z", &f),
            "1,234,567|  file.txt|send |rw-r--r--|2020/09/13-12:26:40|%|%z"
        );
    }
}
