//! Findings already reported (each has its input under `tests/fuzz/crashes/`),
//! stepped around so a target keeps looking for new ones instead of hitting
//! the same one again. Delete a predicate (and its uses) once its finding
//! is fixed: the crash input then becomes a regression seed.
//!
//! With `OXRSYNCD_FUZZ_KNOWN=1` in the environment nothing is stepped
//! around, which is how the saved inputs are reproduced.

use std::sync::OnceLock;

/// Whether known findings are stepped around (the default).
fn stepping_around() -> bool {
    static STEP: OnceLock<bool> = OnceLock::new();
    *STEP.get_or_init(|| std::env::var_os("OXRSYNCD_FUZZ_KNOWN").is_none_or(|v| v.is_empty() || v == "0"))
}

/// `crashes/option_values-size-arg-char-boundary`: `parse_size_arg`
/// slices a unit suffix at byte 2, inside a multi-byte character
/// (`--max-size=1m€` panics in worker/src/transfer/size_arg.rs).
pub fn size_value_not_ascii(text: &str) -> bool {
    stepping_around() && !text.is_ascii()
}

/// The same finding reached through the options of an argument block.
pub fn size_option_not_ascii(options: &[String]) -> bool {
    stepping_around()
        && options.iter().any(|o| o.starts_with("--max-size") || o.starts_with("--min-size"))
        && options.iter().any(|o| !o.is_ascii())
}

/// `crashes/args-capabilities-split` and `crashes/args-capabilities-separate-value`:
/// `ServerOptions` does not know which options take a value.
/// It looks for `e` and `z` anywhere in a short-option cluster, where
/// `TransferOptions` (and the refuse check) stop at `B` and `@`, whose
/// values take the rest (`-B1e.iLsfxCIvu`); and it reads the separate
/// value of `--temp-dir` and its kind (`--temp-dir -ze.x`) as options.
/// The two then disagree on the capabilities, compression, even
/// `--sender` (`--partial-dir --sender`).
pub fn options_with_values(options: &[String]) -> bool {
    const SEPARATE_VALUE: &[&str] = &[
        "--files-from",
        "--backup-dir",
        "--partial-dir",
        "--temp-dir",
        "--compare-dest",
        "--copy-dest",
        "--link-dest",
        "--suffix",
        "--exclude",
        "--include",
        "--filter",
        "--exclude-from",
        "--include-from",
    ];
    let in_cluster = |o: &String| {
        o.strip_prefix('-')
            .filter(|c| !c.starts_with('-'))
            .is_some_and(|c| c.contains(['B', '@']))
    };
    stepping_around() && (options.iter().any(in_cluster) || options.iter().any(|o| SEPARATE_VALUE.contains(&o.as_str())))
}

/// `crashes/flist-hardlink-dev-zero`: below protocol 30 the encoder keeps
/// the previous hard-link dev without upstream's +1, so a first linked
/// entry whose dev is 0 goes out as "same dev" and comes back as dev -1.
pub fn linked_dev_zero(protocol: u32, dev: u64) -> bool {
    stepping_around() && protocol < 30 && dev == 0
}

/// `crashes/config-report-trailing-space`: a value that ends in white
/// space once a trailing `/` is cut (`path = /x \` continued by ` /`) is
/// written so by `Config::report`, and parsed back trimmed.
pub fn report_value_ends_in_space(report: &str) -> bool {
    stepping_around()
        && report
            .lines()
            .any(|l| !l.starts_with('#') && l.contains(" = ") && l.ends_with([' ', '\t']))
}

/// `crashes/config_toml-report-newline`: a TOML string with a line break
/// inside is written by `Config::report` as is, and the report no longer
/// parses (the rest of the value is a line of its own).
pub fn toml_value_has_line_break(text: &str) -> bool {
    fn breaks(v: &toml::Value) -> bool {
        match v {
            toml::Value::String(s) => s.trim().contains(['\n', '\r']),
            toml::Value::Array(items) => items.iter().any(breaks),
            toml::Value::Table(t) => t.values().any(breaks),
            _ => false,
        }
    }
    stepping_around() && text.parse::<toml::Table>().is_ok_and(|t| t.values().any(breaks))
}
