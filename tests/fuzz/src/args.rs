//! Targets of the client's argument block and the option values in it:
//! the block split as the driver reads it, both option parsers, refused
//! options, the protocol setup that reads the client's checksum and
//! compression lists, and the value parsers (sizes, chmod rules,
//! `--usermap`/`--groupmap`, requested paths and option directories).

use std::io::BufReader;
use std::path::Path;

use oxrsyncd_worker::fuzzing::delta::{ChecksumKind, Compression};
use oxrsyncd_worker::fuzzing::handshake::{read_input, wants_secluded_args, ArgBlock, Want, MAX_ARGS};
use oxrsyncd_worker::fuzzing::options::{
    compat_flags_for, first_refused, module_relative, operator_path, parse_size_arg, sanitize_bytes, sanitize_keep_dots,
    setup_protocol_with, used_options, ChmodRules, NameMap, TransferOptions,
};

use crate::input::{no_deadline, protocol, Input, NoSocket};

/// `refuse options` values a module may have.
const REFUSE: &[&str] = &["", "delete* c", "!copy-devices archive", "*", "r t z compress", "-- -"];

/// Input: a byte for the protocol and terminator, a byte for the module's
/// refuse list, then the block as sent (entries ending in NUL, or newline
/// before protocol 30, an empty one ending it) and what follows it (the
/// client's checksum and compression lists).
pub fn args(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let protocol = protocol(flags);
    let refuse = input.choose(REFUSE);
    let mut reader = BufReader::new(input.rest());
    let clock = no_deadline();
    let nul_terminated = protocol >= 30;
    let mut block = ArgBlock::default();
    loop {
        let Ok(entry) = read_input(&mut reader, Want::Arg { nul_terminated }, &NoSocket, &clock) else {
            return;
        };
        match block.push(&entry, true) {
            Ok(true) => break,
            Ok(false) => {}
            Err(_) => return,
        }
    }
    assert!(block.options().len() + block.paths().len() <= MAX_ARGS);
    let options = block.options().to_vec();
    let _ = wants_secluded_args(&options);
    check_options(&options, refuse);
    for path in block.paths() {
        check_requested_path(path);
    }
    let transfer = TransferOptions::parse(&options);
    let server = transfer.setup_options();
    let inc_recurse = transfer.allow_inc_recurse();
    let seed = i32::from(flags);
    let rest = [reader.buffer(), *reader.get_ref()].concat();
    let mut out = Vec::new();
    if let Ok(negotiated) = setup_protocol_with(&mut &rest[..], &mut out, protocol, &server, inc_recurse, seed) {
        assert!(out.ends_with(&seed.to_le_bytes()), "the seed goes last");
        let level = TransferOptions::parse(&options).compress_level;
        let _ = Compression::from_negotiated(negotiated.compression.as_deref(), level);
        let _ = ChecksumKind::from_negotiated(&negotiated.checksum, protocol);
    }
}

/// Everything the session derives from the options, with the module's
/// `refuse options`.
pub(crate) fn check_options(options: &[String], refuse: &str) {
    let transfer = TransferOptions::parse(options);
    let server = transfer.setup_options();
    // One parser serves both (SetupOptions is derived from TransferOptions
    // since the fuzz finding args-capabilities-split), so they cannot disagree.
    let used = used_options(options);
    let _ = first_refused(refuse, &used, server.we_send);
    let _ = compat_flags_for(&server);
    let half = u64::MAX / 2;
    for size in [transfer.max_size, transfer.min_size, transfer.bwlimit].into_iter().flatten() {
        assert!(size <= half, "a size above upstream's bound: {size}");
    }
    for map in [(&transfer.usermap, true), (&transfer.groupmap, false)] {
        if let (Some(text), users) = map {
            if text.len() <= 256 {
                let _ = NameMap::parse(text, users);
            }
        }
    }
    let dest = Path::new("dest/sub");
    for dir in [&transfer.temp_dir, &transfer.backup_dir, &transfer.partial_dir]
        .into_iter()
        .flatten()
    {
        check_operator_path(dest, dir, false);
    }
    for dir in &transfer.basis_dirs {
        check_operator_path(dest, dir, true);
    }
}

/// A requested path, sanitised as the daemon does, never climbs out.
fn check_requested_path(path: &[u8]) {
    for clean in [module_relative(path, "mod"), sanitize_bytes(path), sanitize_keep_dots(path)] {
        assert!(!clean.starts_with(b"/"), "absolute after sanitising: {clean:?}");
        assert!(!clean.split(|&b| b == b'/').any(|c| c == b".."), "`..` after sanitising: {clean:?}");
    }
}

/// An option's directory stays inside the module.
fn check_operator_path(dest: &Path, given: &str, up_to_root: bool) {
    let path = operator_path(dest, given, up_to_root);
    assert!(!path.is_absolute(), "{given:?} -> {path:?}");
    assert!(
        path.components()
            .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)),
        "{given:?} -> {path:?} leaves the module"
    );
}

const SIZE_UNITS: &[char] = &['b', 'k', 'K', 'm', 'g'];
const SIZE_MINS: &[u64] = &[0, 1, 512, 1 << 20];

/// Input: a byte of parameters, then one value given to every value
/// parser: a size, a chmod rule list, a user/group map, a path.
pub fn option_values(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let raw = input.rest();
    let text = String::from_utf8_lossy(raw);
    let unit = SIZE_UNITS[usize::from(flags) % SIZE_UNITS.len()];
    let min = SIZE_MINS[usize::from(flags >> 4) % SIZE_MINS.len()];
    let zero_unlimited = flags & 0x80 != 0;
    {
        match parse_size_arg(&text, unit, "max-size", min, zero_unlimited) {
            Ok(v) => assert!(v <= u64::MAX / 2 && (v >= min || (v == 0 && zero_unlimited)), "{text:?} -> {v}"),
            Err(message) => assert!(message.len() <= 198, "upstream's buffer holds 198 bytes"),
        }
    }
    let umask = u32::from(flags) & 0o777;
    if let Ok(rules) = ChmodRules::parse(&text, umask) {
        for mode in [0o100644u32, 0o040755, 0o120777, 0o100000, 0o047777, 0o020600] {
            let changed = rules.apply(mode);
            assert_eq!(
                changed & 0o170000,
                mode & 0o170000,
                "chmod changed the file type: {text:?} on {mode:o}"
            );
        }
    }
    if text.len() <= 256 {
        let _ = NameMap::parse(&text, flags & 1 != 0);
    }
    check_requested_path(raw);
    check_operator_path(Path::new("dest/sub"), &text, flags & 2 != 0);
    check_operator_path(Path::new(""), &text, flags & 2 != 0);
}
