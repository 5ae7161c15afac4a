//! Turning a parameter's written value into a typed [`Value`] according to
//! its [`Kind`], and back into rsyncd.conf text for reports.  The one place
//! that decides what "a boolean" or "an integer" is, shared by both parsers
//! and `--dparam`.

use super::error::ValueError;
use super::params::{Kind, ListStyle};

/// A value as written, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// Text (rsyncd.conf value, dparam value, or a TOML scalar rendered as
    /// text).
    Text(String),
    /// A TOML array of strings; only list parameters accept it.
    List(Vec<String>),
}

/// A validated, typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text of a string/path/enum parameter (empty means unset).
    Text(String),
    /// An integer within the parameter's range.
    Int(i64),
    /// An integer parameter explicitly left unset.
    Unset,
    /// A boolean.
    Bool(bool),
    /// A boolean that may be unset (`None`).
    Bool3(Option<bool>),
    /// List entries, already split and trimmed.
    List(Vec<String>),
}

impl Value {
    /// Renders the value in rsyncd.conf syntax, such that parsing the text
    /// again yields the same value.
    pub fn to_conf_text(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Unset => String::new(),
            Value::Bool(b) => yes_no(*b).to_string(),
            Value::Bool3(None) => "unset".to_string(),
            Value::Bool3(Some(b)) => yes_no(*b).to_string(),
            Value::List(items) => {
                if items.iter().any(|i| i.chars().any(char::is_whitespace)) {
                    // Leading-comma form: split on commas only.
                    format!(", {}", items.join(", "))
                } else {
                    items.join(" ")
                }
            }
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Compares like upstream's `strwiEQ`: case-insensitive, whitespace ignored.
fn loose_eq(a: &str, b: &str) -> bool {
    let fold = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect() };
    fold(a) == fold(b)
}

/// Parses a boolean the way upstream does: yes/true/1 and no/false/0,
/// case-insensitive.  (`on`/`off` are rejected: upstream does not accept
/// them, and silently reading them differently would change meaning.)
pub fn parse_bool(text: &str) -> Option<bool> {
    if ["yes", "true", "1"].iter().any(|w| loose_eq(text, w)) {
        Some(true)
    } else if ["no", "false", "0"].iter().any(|w| loose_eq(text, w)) {
        Some(false)
    } else {
        None
    }
}

/// Splits a list value.  See [`ListStyle`].
pub fn split_list(text: &str, style: ListStyle) -> Vec<String> {
    let is_sep = |c: char| c == ',' || c.is_whitespace();
    let trimmed = text.trim_start();
    match (style, trimmed.strip_prefix(',')) {
        (ListStyle::ConfStrtok, Some(rest)) => rest
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        _ => text.split(is_sep).filter(|t| !t.is_empty()).map(str::to_string).collect(),
    }
}

/// Validates `raw` for a parameter of kind `kind`.  `raw` text must already
/// have had `%VAR%` references expanded if the kind calls for it (see
/// [`expands_at_parse_time`]).
pub fn parse_value(kind: Kind, raw: RawValue) -> Result<Value, ValueError> {
    let text = match raw {
        RawValue::Text(t) => t,
        RawValue::List(items) => {
            if items.iter().any(|i| i.contains(['\n', '\r'])) {
                return Err(ValueError::LineBreak);
            }
            return parse_list_items(kind, items);
        }
    };
    if text.contains(['\n', '\r']) {
        return Err(ValueError::LineBreak);
    }
    match kind {
        Kind::String => Ok(Value::Text(text)),
        Kind::Path => {
            let path = strip_trailing_slashes(&text);
            // `/x \/` would end in a backslash once its slash is cut, which
            // no config line can hold (it continues the line).
            if path.ends_with('\\') {
                return Err(ValueError::TrailingBackslash);
            }
            Ok(Value::Text(path))
        }
        Kind::Integer { min, max, unset_ok } => {
            let t = text.trim();
            if unset_ok && t.is_empty() {
                return Ok(Value::Unset);
            }
            let n: i64 = t.parse().map_err(|_| ValueError::BadInteger { value: text.clone() })?;
            if n < min || n > max {
                return Err(ValueError::OutOfRange { value: n, min, max });
            }
            Ok(Value::Int(n))
        }
        Kind::Bool => parse_bool(&text).map(Value::Bool).ok_or(ValueError::BadBool { value: text }),
        Kind::Bool3 => {
            if loose_eq(&text, "unset") || loose_eq(&text, "-1") {
                Ok(Value::Bool3(None))
            } else {
                parse_bool(&text)
                    .map(|b| Value::Bool3(Some(b)))
                    .ok_or(ValueError::BadBool3 { value: text })
            }
        }
        Kind::Enum(names) => {
            let t = text.trim();
            if let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(t)) {
                return Ok(Value::Text((*name).to_string()));
            }
            // Upstream also accepts a raw positive facility number.
            match t.parse::<i64>() {
                Ok(n) if n > 0 && names == super::params::SYSLOG_FACILITIES => Ok(Value::Text(n.to_string())),
                _ => Err(ValueError::BadEnum {
                    value: text,
                    allowed: names,
                }),
            }
        }
        Kind::List(style) => Ok(Value::List(split_list(&text, style))),
    }
}

fn parse_list_items(kind: Kind, items: Vec<String>) -> Result<Value, ValueError> {
    let Kind::List(style) = kind else {
        return Err(ValueError::ListNotAccepted);
    };
    let mut out = Vec::new();
    for item in items {
        match style {
            ListStyle::WhitespaceComma => out.extend(split_list(&item, style)),
            ListStyle::ConfStrtok => {
                let t = item.trim();
                if t.contains(',') {
                    return Err(ValueError::CommaInListEntry { entry: item });
                }
                if !t.is_empty() {
                    out.push(t.to_string());
                }
            }
        }
    }
    Ok(Value::List(out))
}

/// Removes trailing slashes but keeps a lone `/` (upstream `P_PATH`).
fn strip_trailing_slashes(text: &str) -> String {
    // White space that a cut slash uncovers goes too (`/x /` is `/x`), as
    // a value's trailing white space always does: otherwise the value
    // could not be written back in rsyncd.conf (found by fuzzing).
    let mut s = text;
    loop {
        let before = s.len();
        while s.len() > 1 && s.ends_with('/') {
            s = &s[..s.len() - 1];
        }
        s = s.trim_end();
        if s.len() == before {
            return s.to_string();
        }
    }
}

/// Whether `%VAR%` references in a value of this kind are expanded when the
/// file is read.  Upstream expands non-string values at parse time and keeps
/// string values raw until use (so per-connection variables such as
/// `RSYNC_USER_NAME` work); lists are strings upstream.
pub fn expands_at_parse_time(kind: Kind) -> bool {
    matches!(kind, Kind::Integer { .. } | Kind::Bool | Kind::Bool3 | Kind::Enum(_))
}
