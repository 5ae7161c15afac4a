//! Targets of the shared crate's config parsers: classic `rsyncd.conf`
//! text and TOML. What parses must come back equal from the report
//! (`--check-config`'s output, which says it is valid rsyncd.conf).

use std::path::Path;

use oxrsyncd_shared::config::{parse_rsyncd_conf, parse_toml, Config};

/// `&include` and `&merge` read other files: not what this target is
/// about, and a fuzzer must not read the machine's files.
fn reads_files(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("&include") || lower.contains("&merge")
}

fn check_report(config: &Config, what: &str) {
    let report = config.report();
    match parse_rsyncd_conf(&report, Path::new("report.conf"), &[]) {
        Ok(again) => assert!(
            config.same_settings(&again),
            "{what}: the report parses to other settings:\n{report}"
        ),
        Err(e) => panic!("{what}: the report does not parse: {e}\n{report}"),
    }
}

/// Input: rsyncd.conf text.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if reads_files(&text) {
        return;
    }
    match parse_rsyncd_conf(&text, Path::new("fuzz.conf"), &[]) {
        Ok(config) => check_report(&config, "rsyncd.conf"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Input: TOML config text.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_toml(text, Path::new("fuzz.toml"), &[]) {
        Ok(config) => check_report(&config, "TOML"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
