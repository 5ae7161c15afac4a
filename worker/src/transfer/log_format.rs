//! `transfer logging` lines: upstream's `log format` escapes (`%o %h [%a]
//! %m (%u) %f %l` by default, every escape of `log_formatted()` in log.c)
//! expanded for one transferred file, and the same values as the typed
//! fields of the event, which `log style = json` writes as an object.

use std::path::Path;

use oxrsyncd_protocol::item;

use crate::transfer::context::ModuleContext;
use crate::transfer::delta::ChecksumKind;
use crate::transfer::flist::FileEntry;

/// The `tracing` target of transfer lines; the logging layer writes their
/// typed fields (see docs/operations.md, "Machine-readable logs").
pub(crate) const TARGET: &str = "oxrsyncd::transfer";

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

/// One file that travelled, as the sender or receiver saw it.
pub(crate) struct Transferred<'a> {
    /// `send` (we sent it: a pull) or `recv` (a push).
    pub operation: &'static str,
    /// The entry as the list has it.
    pub entry: &'a FileEntry,
    /// Where it is in the module (`%f`).
    pub path: &'a Path,
    /// Its size (`%l`).
    pub length: u64,
    /// Protocol data bytes sent (sender) or received (receiver) for it,
    /// from its index and attributes to its whole-file sum (`%b`).
    pub bytes: u64,
    /// Protocol data bytes read for it (sender: the sum head and block
    /// checksums of the client's basis file; receiver: 0) (`%c`).
    pub checksum_bytes: u64,
    /// The whole-file transfer sum sent after the data.
    pub file_sum: &'a [u8],
    /// The item flags the client's generator (or ours) sent with it (`%i`).
    pub iflags: u16,
}

impl TransferLog<'_> {
    /// Log the line of one file that travelled: the `log format` line as
    /// the message, and every escape's value as a field of its own.
    pub(crate) fn file(&self, context: &ModuleContext<'_>, t: &Transferred<'_>) {
        let root = context.module_root.to_string_lossy();
        let opts = context.options;
        let kind = ChecksumKind::from_negotiated(&context.negotiated.checksum, context.protocol)
            .unwrap_or_else(|| ChecksumKind::implied(context.protocol));
        // `-c`: the list's checksum of the file; else the transfer's sum.
        let checksum = match &t.entry.checksum {
            Some(sum) if opts.always_checksum => checksum_hex(kind, sum),
            _ => checksum_hex(kind, t.file_sum),
        };
        let f = LoggedFile {
            operation: t.operation,
            host: self.host,
            addr: self.addr,
            module: context.module_name,
            module_path: &root,
            user: self.user,
            long_name: t.path.as_os_str().as_encoded_bytes(),
            short_name: &t.entry.name,
            length: t.length,
            bytes: t.bytes,
            checksum_bytes: t.checksum_bytes,
            checksum: checksum.as_deref(),
            checksum_width: 2 * kind.digest_len(),
            mode: t.entry.mode,
            uid: opts.preserve_uid.then_some(t.entry.uid),
            gid: opts.preserve_gid.then_some(t.entry.gid),
            mtime: t.entry.mtime,
            iflags: t.iflags,
            preserve_times: opts.preserve_times,
            link_target: t.entry.link_target.as_deref(),
        };
        let line = render(self.format, &f);
        let text = |b: &[u8]| oxrsyncd_shared::logging::escaped_name(b).into_owned();
        let raw = |b: &[u8]| std::str::from_utf8(b).is_err().then(|| hex(b));
        let (file, name) = (strip_slash(f.long_name), f.short_name);
        let (file_text, file_hex) = (text(file), raw(file));
        let (name_text, name_hex) = (text(name), raw(name));
        let link_text = f.link_target.map(text);
        let link_hex = f.link_target.and_then(raw);
        let (itemize, permissions) = (itemize(&f), permission_string(f.mode));
        tracing::info!(
            target: TARGET,
            event = "transfer",
            operation = f.operation,
            host = f.host,
            addr = f.addr,
            module = f.module,
            module_path = f.module_path,
            user = (!f.user.is_empty()).then_some(f.user),
            file = file_text.as_str(),
            file_hex = file_hex.as_deref(),
            name = name_text.as_str(),
            name_hex = name_hex.as_deref(),
            length = f.length,
            bytes = f.bytes,
            checksum_bytes = f.checksum_bytes,
            checksum = f.checksum,
            checksum_type = kind.name(),
            mode = f.mode,
            permissions = permissions.as_str(),
            uid = f.uid,
            gid = f.gid,
            mtime = f.mtime,
            itemize = itemize.as_str(),
            link_target = link_text.as_deref(),
            link_target_hex = link_hex.as_deref(),
            "{}",
            line
        );
    }
}

/// What one log line can mention.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoggedFile<'a> {
    /// `send` or `recv`.
    pub operation: &'a str,
    pub host: &'a str,
    pub addr: &'a str,
    pub module: &'a str,
    pub module_path: &'a str,
    pub user: &'a str,
    /// Path as upstream's `%f` shows it (within the module).
    pub long_name: &'a [u8],
    /// Path relative to the transfer root (`%n`).
    pub short_name: &'a [u8],
    pub length: u64,
    /// Protocol data bytes moved for the file (`%b`).
    pub bytes: u64,
    /// Bytes of block checksums read for it (`%c`).
    pub checksum_bytes: u64,
    /// The file's checksum in hex (`%C`); `None`: blanks of `checksum_width`.
    pub checksum: Option<&'a str>,
    pub checksum_width: usize,
    pub mode: u32,
    /// The owner, when owners are preserved (`%U`; else 0).
    pub uid: Option<u32>,
    /// The group, when groups are preserved (`%G`; else `DEFAULT`).
    pub gid: Option<u32>,
    pub mtime: i64,
    /// The item flags (`%i`).
    pub iflags: u16,
    /// Whether modification times are preserved (`%i`: `t`, else `T`).
    pub preserve_times: bool,
    pub link_target: Option<&'a [u8]>,
}

/// Widest width upstream parses (its escape buffer: 32 bytes less 8).
const MAX_WIDTH_DIGITS: usize = 24;

/// Expand `format` for `f`, as upstream's `log_formatted()`: an unknown
/// escape is kept as written; `%-10n`/`%10n` pad to the left/right; one
/// `'` adds thousands separators to `%l %b %c`, two show them in units of
/// 1000 (`1.23K`), three in units of 1024.
pub(crate) fn render(format: &str, f: &LoggedFile<'_>) -> String {
    let mut out = String::with_capacity(format.len() + 64);
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let mut chars = escape.char_indices().skip(1).peekable();
        let mut humanize = 0;
        let mut left = false;
        let mut digits = String::new();
        while chars.next_if(|&(_, c)| c == '\'').is_some() {
            humanize += 1;
        }
        if chars.next_if(|&(_, c)| c == '-').is_some() {
            left = true;
        }
        while digits.len() < MAX_WIDTH_DIGITS {
            match chars.next_if(|&(_, c)| c.is_ascii_digit()) {
                Some((_, d)) => digits.push(d),
                None => break,
            }
        }
        while chars.next_if(|&(_, c)| c == '\'').is_some() {
            humanize += 1;
        }
        let Some((i, letter)) = chars.next() else {
            // A trailing `%` (with its modifiers) stays as written.
            out.push_str(escape);
            return out;
        };
        let end = i + letter.len_utf8();
        let width = digits.parse::<usize>().ok().filter(|_| !digits.is_empty() || left);
        let has_width = left || !digits.is_empty();
        match expand(letter, humanize, has_width, f) {
            Some(Expanded::Padded(value)) => out.push_str(&pad(&value, width.unwrap_or(0), left)),
            Some(Expanded::Exact(value)) => out.push_str(&value),
            Some(Expanded::LinkPadded(prefix, value)) => {
                out.push_str(prefix);
                out.push_str(&pad(&value, width.unwrap_or(0), left));
            }
            None => out.push_str(&escape[..end]),
        }
        rest = &escape[end..];
    }
    out.push_str(rest);
    out
}

/// One escape's value and whether the width applies to it.
enum Expanded {
    /// Padded to the width.
    Padded(String),
    /// Written as is (upstream's blank `%C`).
    Exact(String),
    /// `%L`: a fixed prefix, then the padded target.
    LinkPadded(&'static str, String),
}

fn expand(letter: char, humanize: usize, has_width: bool, f: &LoggedFile<'_>) -> Option<Expanded> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let value = match letter {
        '%' => "%".to_string(),
        'o' => f.operation.to_string(),
        'h' => f.host.to_string(),
        'a' => f.addr.to_string(),
        'm' => f.module.to_string(),
        'P' => f.module_path.to_string(),
        'u' => f.user.to_string(),
        'f' => text(strip_slash(f.long_name)),
        'n' if f.mode & 0o170000 == 0o040000 => format!("{}/", text(f.short_name)),
        'n' => text(f.short_name),
        'l' => big_num(f.length, humanize),
        'b' => big_num(f.bytes, humanize),
        'c' => big_num(f.checksum_bytes, humanize),
        'p' => std::process::id().to_string(),
        'B' => permission_string(f.mode),
        'U' => f.uid.unwrap_or(0).to_string(),
        'G' => f.gid.map_or_else(|| "DEFAULT".to_string(), |g| g.to_string()),
        'M' => oxrsyncd_shared::logging::local_time(f.mtime, '-'),
        't' => oxrsyncd_shared::logging::local_time(now(), ' '),
        'i' => itemize(f),
        'C' => match f.checksum {
            Some(hex) => hex.to_string(),
            None => return Some(Expanded::Exact(" ".repeat(f.checksum_width))),
        },
        'L' => {
            return match f.link_target {
                Some(target) if f.mode & 0o170000 == 0o120000 => Some(Expanded::LinkPadded(" -> ", text(target))),
                _ if has_width => Some(Expanded::LinkPadded("    ", String::new())),
                _ => Some(Expanded::Exact(String::new())),
            }
        }
        _ => return None,
    };
    Some(Expanded::Padded(value))
}

fn pad(value: &str, width: usize, left: bool) -> String {
    if left {
        format!("{value:<width$}")
    } else {
        format!("{value:>width$}")
    }
}

/// `%f` drops a leading slash, as upstream does.
fn strip_slash(name: &[u8]) -> &[u8] {
    name.strip_prefix(b"/").unwrap_or(name)
}

/// Upstream's `do_big_num`: plain, with separators, or in units.
fn big_num(n: u64, humanize: usize) -> String {
    match humanize {
        0 => n.to_string(),
        1 => with_separators(n),
        _ => {
            let mult = if humanize == 2 { 1000.0 } else { 1024.0 };
            if (n as f64) < mult {
                return with_separators(n);
            }
            let mut value = n as f64 / mult;
            let mut units = 'K';
            for next in ['M', 'G', 'T', 'P'] {
                if value < mult {
                    break;
                }
                value /= mult;
                units = next;
            }
            format!("{value:.2}{units}")
        }
    }
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

/// `rwxr-xr-x` for the permission bits (upstream's `permstring` without
/// the type character: set-id and sticky bits shown as `s`/`S`, `t`/`T`).
fn permission_string(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    for (shift, special, set_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (mode & special != 0, bits & 1 != 0) {
            (true, true) => set_char,
            (true, false) => set_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Upstream's `%i` for a logged item: `>f+++++++++` for a new file received.
pub(crate) fn itemize(f: &LoggedFile<'_>) -> String {
    let fl = f.iflags;
    let on = |bit: u16| fl & bit != 0;
    let file_type = f.mode & 0o170000;
    let mut c = [b'.'; 11];
    c[0] = if on(item::LOCAL_CHANGE) {
        if on(item::XNAME_FOLLOWS) {
            b'h'
        } else {
            b'c'
        }
    } else if !on(item::TRANSFER) {
        b'.'
    } else if f.operation.starts_with('s') {
        b'<'
    } else {
        b'>'
    };
    let time = if !on(item::REPORT_TIME) {
        b'.'
    } else if f.preserve_times {
        b't'
    } else {
        b'T'
    };
    if file_type == 0o120000 {
        c[1] = b'L';
        c[3] = b'.';
        c[4] = time;
    } else {
        c[1] = match file_type {
            0o040000 => b'd',
            0o010000 | 0o140000 => b'S',
            0o020000 | 0o060000 => b'D',
            _ => b'f',
        };
        c[3] = if on(item::REPORT_SIZE) { b's' } else { b'.' };
        c[4] = time;
    }
    c[2] = if on(item::REPORT_CHANGE) { b'c' } else { b'.' };
    c[5] = if on(item::REPORT_PERMS) { b'p' } else { b'.' };
    c[6] = if on(item::REPORT_OWNER) { b'o' } else { b'.' };
    c[7] = if on(item::REPORT_GROUP) { b'g' } else { b'.' };
    const REPORT_CRTIME: u16 = 1 << 10;
    c[8] = match (on(item::REPORT_ATIME), on(REPORT_CRTIME)) {
        (true, true) => b'b',
        (true, false) => b'u',
        (false, true) => b'n',
        (false, false) => b'.',
    };
    c[9] = if on(item::REPORT_ACL) { b'a' } else { b'.' };
    c[10] = if on(item::REPORT_XATTR) { b'x' } else { b'.' };
    if on(item::IS_NEW) {
        c[2..].fill(b'+');
    } else if matches!(c[0], b'.' | b'h' | b'c') && c[2..].iter().all(|&b| b == b'.') {
        c[2..].fill(b' ');
    }
    String::from_utf8_lossy(&c).into_owned()
}

/// Upstream's `sum_as_hex`: MD4/MD5/SHA digests in byte order, xxhash
/// ones as the number they are (reversed); `None` for the sums upstream
/// does not show (the seeded MD4 of protocols below 30, and `none`).
pub(crate) fn checksum_hex(kind: ChecksumKind, sum: &[u8]) -> Option<String> {
    let len = kind.digest_len().min(sum.len());
    let sum = &sum[..len];
    match kind {
        ChecksumKind::Md4Old | ChecksumKind::None => None,
        ChecksumKind::Md4 | ChecksumKind::Md5 | ChecksumKind::Sha1 => Some(hex(sum)),
        ChecksumKind::Xxh64 | ChecksumKind::Xxh3 | ChecksumKind::Xxh128 => {
            let reversed: Vec<u8> = sum.iter().rev().copied().collect();
            Some(hex(&reversed))
        }
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LoggedFile<'static> {
        LoggedFile {
            operation: "send",
            host: "localhost",
            addr: "127.0.0.1",
            module: "mod",
            module_path: "/srv/mod",
            user: "joe",
            long_name: b"dir/file.txt",
            short_name: b"file.txt",
            length: 1234567,
            bytes: 2048,
            checksum_bytes: 36,
            checksum: Some("0123456789abcdef0123456789abcdef"),
            checksum_width: 32,
            mode: 0o100644,
            uid: Some(1000),
            gid: Some(100),
            mtime: 1_600_000_000,
            iflags: item::TRANSFER | item::IS_NEW,
            preserve_times: true,
            link_target: None,
        }
    }

    #[test]
    fn default_format_and_widths() {
        let f = LoggedFile { user: "", ..sample() };
        assert_eq!(
            render("%o %h [%a] %m (%u) %f %l", &f),
            "send localhost [127.0.0.1] mod () dir/file.txt 1234567"
        );
        assert_eq!(
            render("%'l|%10n|%-5o|%B|%%|%z|%5%", &f),
            "1,234,567|  file.txt|send |rw-r--r--|%|%z|    %"
        );
        assert_eq!(render("%''l|%'''l|%''b|%''c", &f), "1.23M|1.18M|2.05K|36");
        assert_eq!(render("%-'10l|%'-10l|%10'l", &f), "%-'10l|1,234,567 | 1,234,567");
        assert_eq!(render("trailing %", &f), "trailing %");
        assert_eq!(render("trailing %-5", &f), "trailing %-5");
    }

    #[test]
    fn every_escape() {
        let f = sample();
        let line = render("%o|%h|%a|%m|%P|%u|%f|%n|%l|%b|%c|%C|%B|%U|%G|%i|%L|%p", &f);
        let pid = std::process::id();
        assert_eq!(
            line,
            format!(
                "send|localhost|127.0.0.1|mod|/srv/mod|joe|dir/file.txt|file.txt|1234567|2048|36|\
                 0123456789abcdef0123456789abcdef|rw-r--r--|1000|100|<f+++++++++||{pid}"
            )
        );
        // Local time, dashes for %M, a space for %t.
        let m = render("%M", &f);
        assert_eq!(m.len(), 19, "{m}");
        assert_eq!(&m[10..11], "-");
        assert_eq!(&render("%t", &f)[10..11], " ");
    }

    #[test]
    fn escapes_without_a_value() {
        let f = LoggedFile {
            uid: None,
            gid: None,
            checksum: None,
            operation: "recv",
            iflags: item::TRANSFER | item::REPORT_SIZE | item::REPORT_TIME,
            preserve_times: false,
            ..sample()
        };
        assert_eq!(
            render("%U %G %5G|%C|%i", &f),
            format!("0 DEFAULT DEFAULT|{}|>f.sT......", " ".repeat(32))
        );
        assert_eq!(render("[%L] [%5L] [%-5L]", &f), "[] [         ] [         ]");
        let link = LoggedFile {
            mode: 0o120777,
            link_target: Some(b"target"),
            iflags: 0,
            ..f.clone()
        };
        assert_eq!(render("%L|%8L|%i", &link), " -> target| ->   target|.L         ");
        let dir = LoggedFile {
            mode: 0o040755,
            short_name: b"d",
            ..f
        };
        assert_eq!(render("%n %B", &dir), "d/ rwxr-xr-x");
        assert_eq!(permission_string(0o104755), "rwsr-xr-x");
        assert_eq!(permission_string(0o041770), "rwxrwx--T");
    }

    #[test]
    fn hostile_names_render_without_panicking() {
        let f = LoggedFile {
            long_name: b"a\nb\"c\xff",
            short_name: b"\xfe\xff",
            ..sample()
        };
        assert_eq!(render("%f|%n", &f), "a\nb\"c\u{fffd}|\u{fffd}\u{fffd}");
        // A multi-byte character right after `%` is an unknown escape.
        assert_eq!(render("%é%-3ü", &f), "%é%-3ü");
    }

    #[test]
    fn checksums_as_upstream_shows_them() {
        let sum = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(checksum_hex(ChecksumKind::Xxh64, &sum).unwrap(), "0807060504030201");
        assert_eq!(checksum_hex(ChecksumKind::Md5, &[0xab; 16]).unwrap(), "ab".repeat(16));
        assert_eq!(checksum_hex(ChecksumKind::Md4Old, &[0xab; 16]), None);
    }
}
