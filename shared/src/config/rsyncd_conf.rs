//! The classic `rsyncd.conf` reader: lines, comments, continuation,
//! `[section]` headers, `name = value`, and the `&include` / `&merge`
//! directives, with upstream's semantics:
//!
//! - a comment is a line whose first non-blank character is `#` or `;`;
//! - a line whose last non-blank character is `\` continues on the next
//!   line (the backslash is removed, the rest kept verbatim);
//! - in `name = value`, the value runs from the first non-blank character
//!   after the first `=` to the last non-blank character of the line;
//! - `&include PATH` reads a file (or every `*.conf` file of a directory,
//!   in sorted order) as a self-contained unit: it starts in the global
//!   section with the current defaults, and the global settings and module
//!   defaults are restored afterwards; modules it defines remain;
//! - `&merge PATH` reads a file (or every `*.inc` file of a directory) as if
//!   its text stood in place of the directive.
//!
//! Relative include paths are resolved against the current directory, as
//! upstream does.  Stricter than upstream: unknown parameters, bad values
//! and malformed lines are errors (upstream logs and ignores them), and
//! include loops are detected.

use std::fs;
use std::path::{Path, PathBuf};

use super::builder::{collapse_whitespace, Builder};
use super::error::{ConfigError, Location};
use super::values::RawValue;

/// How deeply `&include`/`&merge` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Files being read, outermost first, for loop detection.
#[derive(Debug, Default)]
pub(crate) struct IncludeStack {
    files: Vec<PathBuf>,
}

impl IncludeStack {
    fn key(path: &Path) -> PathBuf {
        fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    /// Starts with the top-level file.
    pub(crate) fn new(top: &Path) -> Self {
        IncludeStack {
            files: vec![Self::key(top)],
        }
    }
}

/// One logical line: text with continuations joined, and the physical line
/// it started on.
struct LogicalLine {
    number: usize,
    text: String,
}

/// Splits `text` into logical lines, dropping blank lines and comments.
fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let physical: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < physical.len() {
        let number = i + 1;
        let first = physical[i].trim_end_matches('\r');
        i += 1;
        let start = first.trim_start();
        if start.is_empty() || start.starts_with('#') || start.starts_with(';') {
            continue;
        }
        let mut line = first.to_string();
        loop {
            let trimmed = line.trim_end();
            match trimmed.strip_suffix('\\') {
                Some(head) if i < physical.len() => {
                    let head_len = head.len();
                    line.truncate(head_len);
                    line.push_str(physical[i].trim_end_matches('\r'));
                    i += 1;
                }
                Some(head) => {
                    // Continuation at end of file: drop the backslash.
                    let head_len = head.len();
                    line.truncate(head_len);
                    break;
                }
                None => break,
            }
        }
        out.push(LogicalLine { number, text: line });
    }
    out
}

/// Parses `text` (the contents of `file`) into `builder`.
pub(crate) fn parse_into(builder: &mut Builder, text: &str, file: &Path, stack: &mut IncludeStack) -> Result<(), ConfigError> {
    for line in logical_lines(text) {
        let location = Location::new(file, line.number);
        // Upstream skips a stray leading backslash.
        let mut body = line.text.trim_start();
        while let Some(rest) = body.strip_prefix('\\') {
            body = rest.trim_start();
        }
        if body.is_empty() {
            continue;
        }
        if let Some(rest) = body.strip_prefix('[') {
            let Some((name, _ignored)) = rest.split_once(']') else {
                return Err(ConfigError::UnterminatedSection {
                    location,
                    text: body.to_string(),
                });
            };
            builder.enter_section(name, &location)?;
        } else if body.starts_with('&') {
            directive(builder, body, &location, stack)?;
        } else {
            let Some((name, value)) = body.split_once('=') else {
                return Err(ConfigError::MalformedLine {
                    location,
                    text: body.trim_end().to_string(),
                });
            };
            let name = collapse_whitespace(name);
            if name.is_empty() {
                return Err(ConfigError::MalformedLine {
                    location,
                    text: body.trim_end().to_string(),
                });
            }
            let value: String = value.trim().chars().filter(|c| *c != '\r').collect();
            builder.set(&name, RawValue::Text(value), &location)?;
        }
    }
    Ok(())
}

/// Handles `&include PATH` / `&merge PATH` (an optional `=` after the
/// directive name is accepted, as upstream).
fn directive(builder: &mut Builder, body: &str, location: &Location, stack: &mut IncludeStack) -> Result<(), ConfigError> {
    let end = body.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(body.len());
    let (name, rest) = body.split_at(end);
    let rest = rest.trim_start();
    let target = rest.strip_prefix('=').unwrap_or(rest).trim();
    let isolate = if name.eq_ignore_ascii_case("&include") {
        true
    } else if name.eq_ignore_ascii_case("&merge") {
        false
    } else {
        return Err(ConfigError::UnknownDirective {
            location: location.clone(),
            name: name.to_string(),
        });
    };
    include(builder, Path::new(target), isolate, location, stack)
}

fn include(builder: &mut Builder, target: &Path, isolate: bool, location: &Location, stack: &mut IncludeStack) -> Result<(), ConfigError> {
    let io_err = |source| ConfigError::Include {
        location: location.clone(),
        path: target.to_path_buf(),
        source,
    };
    let meta = fs::metadata(target).map_err(io_err)?;
    if meta.is_dir() {
        let suffix = if isolate { ".conf" } else { ".inc" };
        let mut files: Vec<PathBuf> = fs::read_dir(target)
            .map_err(io_err)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
            .map(|e| e.path())
            .collect();
        files.sort();
        for (i, file) in files.iter().enumerate() {
            if isolate {
                if i == 0 {
                    builder.push();
                } else {
                    builder.reset();
                }
            }
            read_one(builder, file, location, stack)?;
        }
        if isolate && !files.is_empty() {
            builder.pop();
        }
        Ok(())
    } else {
        if isolate {
            builder.push();
        }
        read_one(builder, target, location, stack)?;
        if isolate {
            builder.pop();
        }
        Ok(())
    }
}

/// Reads and parses one included file, guarding against loops and depth.
fn read_one(builder: &mut Builder, file: &Path, location: &Location, stack: &mut IncludeStack) -> Result<(), ConfigError> {
    if stack.files.len() > MAX_INCLUDE_DEPTH {
        return Err(ConfigError::IncludeTooDeep {
            location: location.clone(),
            max: MAX_INCLUDE_DEPTH,
        });
    }
    let key = IncludeStack::key(file);
    if stack.files.contains(&key) {
        return Err(ConfigError::IncludeLoop {
            location: location.clone(),
            path: file.to_path_buf(),
        });
    }
    let bytes = fs::read(file).map_err(|source| ConfigError::Include {
        location: location.clone(),
        path: file.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    stack.files.push(key);
    let result = parse_into(builder, &text, file, stack);
    stack.files.pop();
    result
}
