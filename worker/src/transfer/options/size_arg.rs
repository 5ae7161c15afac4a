//! Size option values (`--max-size`, `--min-size`, `--bwlimit`), read as
//! upstream's `parse_size_arg` reads them: a number with an optional
//! fraction, a unit (`b`, `k`, `m`, `g`, `t`, `p`; the option's default
//! unit when none), `kb`-style units in powers of 1000 and `kib`/`k` in
//! powers of 1024, and an optional `+1`/`-1` adjustment. A value that is
//! not one, or is out of range, is refused with upstream's message.

/// The largest size upstream accepts (`SIZE_MAX / 2` on 64-bit).
const SIZE_MAX_HALF: u64 = u64::MAX / 2;

/// Parse `arg` for option `--name` (its default unit `default_unit`); the
/// value must be at least `min` (0 allowed too when `zero_is_unlimited`).
/// The error is upstream's line: `--NAME=ARG is invalid` / `is too large` /
/// `is too small (min: N)`.
pub fn parse_size_arg(arg: &str, default_unit: char, name: &str, min: u64, zero_is_unlimited: bool) -> Result<u64, String> {
    parse(arg, default_unit, name, min, zero_is_unlimited).map_err(|mut message| {
        // Upstream's message buffer holds 198 characters of it.
        let mut end = message.len().min(ERR_BUF_TEXT);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message
    })
}

/// How much of a message upstream's `err_buf` keeps (200 bytes, less the
/// newline and the terminator).
const ERR_BUF_TEXT: usize = 198;

fn parse(arg: &str, default_unit: char, name: &str, min: u64, zero_is_unlimited: bool) -> Result<u64, String> {
    let fail = |why: &str| format!("--{name}={arg} is {why}");
    let bytes = arg.as_bytes();
    let mut i = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        i += bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    }
    let number = &arg[..i];
    let mut rest = &arg[i..];
    let unit = match rest.chars().next() {
        Some(c) if c != '+' && c != '-' => {
            rest = &rest[c.len_utf8()..];
            c
        }
        _ => default_unit,
    };
    let reps = match unit.to_ascii_lowercase() {
        'b' => 0,
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        _ => return Err(fail("invalid")),
    };
    let mult: u64 = if rest.starts_with(['b', 'B']) {
        rest = &rest[1..];
        1000
    } else if rest.is_empty() || rest.starts_with(['+', '-']) {
        1024
    } else if rest.get(..2).is_some_and(|ib| ib.eq_ignore_ascii_case("ib")) {
        // `get`: the client's text may hold a multi-byte character here.
        rest = &rest[2..];
        1024
    } else {
        return Err(fail("invalid"));
    };
    let mut scale: u64 = 1;
    for _ in 0..reps {
        scale = scale
            .checked_mul(mult)
            .filter(|&s| s <= SIZE_MAX_HALF)
            .ok_or_else(|| fail("too large"))?;
    }
    let value: f64 = if number.is_empty() {
        0.0
    } else {
        number.parse().map_err(|_| fail("invalid"))?
    };
    if value >= SIZE_MAX_HALF as f64 / scale as f64 {
        return Err(fail("too large"));
    }
    let mut size = (value * scale as f64) as u64;
    if let Some(adjust) = rest
        .strip_prefix('+')
        .or_else(|| rest.strip_prefix('-'))
        .filter(|_| !number.is_empty())
    {
        if let Some(after) = adjust.strip_prefix('1') {
            size = if rest.starts_with('+') { size + 1 } else { size.saturating_sub(1) };
            rest = after;
        }
    }
    if !rest.is_empty() {
        return Err(fail("invalid"));
    }
    if size < min && !(zero_is_unlimited && size == 0) {
        let unlimited = if zero_is_unlimited { " or 0 for unlimited" } else { "" };
        return Err(format!(
            "{} (min: {}{unlimited})",
            fail("too small"),
            crate::transfer::log_format::with_separators(min)
        ));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_fractions_and_adjustments_as_upstream() {
        let p = |a: &str| parse_size_arg(a, 'b', "max-size", 0, false);
        assert_eq!(p("100"), Ok(100));
        assert_eq!(p("1k"), Ok(1024));
        assert_eq!(p("1kb"), Ok(1000));
        assert_eq!(p("1KiB"), Ok(1024));
        assert_eq!(p("1.5m"), Ok(1_572_864));
        assert_eq!(p("1m-1"), Ok(1_048_575));
        assert_eq!(p("1k+1"), Ok(1025));
        assert_eq!(p("2G"), Ok(2 << 30));
        assert_eq!(p("12x"), Err("--max-size=12x is invalid".into()));
        assert_eq!(p("1kq"), Err("--max-size=1kq is invalid".into()));
        let big = "9".repeat(5000);
        assert_eq!(
            p(&big),
            Err(format!("--max-size={}", &big[..198 - 11])),
            "cut as upstream's buffer cuts it"
        );
        assert_eq!(p(&big[..100]), Err(format!("--max-size={} is too large", &big[..100])));
        assert_eq!(p("99999999p"), Err("--max-size=99999999p is too large".into()));
        let bw = |a: &str| parse_size_arg(a, 'K', "bwlimit", 512, true);
        assert_eq!(bw("100"), Ok(102_400));
        assert_eq!(bw("0"), Ok(0));
        assert_eq!(bw("100b"), Err("--bwlimit=100b is too small (min: 512 or 0 for unlimited)".into()));
    }

    /// Found by fuzzing (tests/fuzz/crashes/option_values-size-arg-char-boundary):
    /// a multi-byte character after the unit panicked on a slice.
    #[test]
    fn a_unit_followed_by_a_multibyte_character_is_invalid() {
        for text in ["1m\u{20ac}", "1k\u{e9}", "5g\u{1f600}x"] {
            assert!(parse_size_arg(text, 'b', "--max-size", 0, false).is_err(), "{text}");
        }
    }
}
