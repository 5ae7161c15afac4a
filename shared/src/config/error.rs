//! Error types of the config module.  Every error that comes from a file
//! carries a [`Location`] (file and, where known, line) so messages read
//! like `/etc/rsyncd.conf:12: unknown parameter "raed only"`.

use std::fmt;
use std::path::PathBuf;

/// A place in a config source, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (or the origin path given to a `parse_*` function).
    pub file: PathBuf,
    /// 1-based line number, when known.
    pub line: Option<usize>,
}

impl Location {
    /// A location at a given line of `file`.
    pub fn new(file: impl Into<PathBuf>, line: usize) -> Self {
        Location {
            file: file.into(),
            line: Some(line),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file.display(), line),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Why a value is not acceptable for its parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not one of upstream's boolean spellings.
    #[error("\"{value}\" is not a boolean (use yes/no, true/false or 1/0)")]
    BadBool {
        /// The rejected text.
        value: String,
    },
    /// Not a boolean nor `unset`.
    #[error("\"{value}\" is not a boolean (use yes/no, true/false, 1/0 or unset)")]
    BadBool3 {
        /// The rejected text.
        value: String,
    },
    /// Not a decimal integer.
    #[error("\"{value}\" is not an integer")]
    BadInteger {
        /// The rejected text.
        value: String,
    },
    /// An integer outside the parameter's range.
    #[error("{value} is out of range (accepted: {min} to {max})")]
    OutOfRange {
        /// The rejected number.
        value: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Not one of the enumeration's names.
    #[error("\"{value}\" is not one of: {}", allowed.join(", "))]
    BadEnum {
        /// The rejected text.
        value: String,
        /// The accepted names.
        allowed: &'static [&'static str],
    },
    /// A list entry (from a TOML array) that cannot be written in
    /// rsyncd.conf syntax.
    #[error("list entry \"{entry}\" must not contain a comma")]
    CommaInListEntry {
        /// The rejected entry.
        entry: String,
    },
    /// A TOML array given to a parameter that is not a list.
    #[error("a list is not accepted here")]
    ListNotAccepted,
    /// A line break inside a value (a TOML string or `--dparam`):
    /// rsyncd.conf cannot hold one, and in a module's `comment` it would
    /// add lines to the module listing clients read.
    #[error("a value must not contain a line break")]
    LineBreak,
    /// A path that ends in a backslash once its trailing slashes are cut.
    #[error("a path must not end in a backslash")]
    TrailingBackslash,
}

/// Why a `name = value` setting failed, without its location (the caller
/// adds that: a file line or a `--dparam`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// No parameter has this name.
    #[error("unknown parameter \"{name}\"")]
    Unknown {
        /// The name as written.
        name: String,
    },
    /// The value does not fit the parameter.
    #[error("invalid value for \"{param}\": {source}")]
    InvalidValue {
        /// Canonical parameter name.
        param: &'static str,
        /// What is wrong with the value.
        #[source]
        source: ValueError,
    },
}

/// Why a `[section]` header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionError {
    /// `[]` or only blanks.
    #[error("empty section name")]
    Empty,
    /// Module names cannot contain `/` (upstream rule).
    #[error("invalid module name \"{name}\": it must not contain '/'")]
    Slash {
        /// The rejected name.
        name: String,
    },
    /// Module names cannot contain `]` (it would end the header).
    #[error("invalid module name \"{name}\": it must not contain ']'")]
    Bracket {
        /// The rejected name.
        name: String,
    },
    /// A TOML module table named like the global section.
    #[error("a module cannot be named \"{name}\"")]
    Reserved {
        /// The rejected name.
        name: String,
    },
}

/// Every failure of loading or parsing a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("cannot read config file \"{}\": {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bad `name = value` line (or TOML key).
    #[error("{location}: {source}")]
    Param {
        /// Where it was written.
        location: Location,
        /// What is wrong.
        #[source]
        source: ParamError,
    },
    /// A bad `[section]` header (or TOML module name).
    #[error("{location}: {source}")]
    Section {
        /// Where it was written.
        location: Location,
        /// What is wrong.
        #[source]
        source: SectionError,
    },
    /// A `[` line without its closing `]`.
    #[error("{location}: section header without closing ']': {text}")]
    UnterminatedSection {
        /// Where it was written.
        location: Location,
        /// The line as read.
        text: String,
    },
    /// A line that is neither a section header, a comment, a directive nor
    /// `name = value`.
    #[error("{location}: badly formed line (expected \"[section]\" or \"name = value\"): {text}")]
    MalformedLine {
        /// Where it was written.
        location: Location,
        /// The line as read.
        text: String,
    },
    /// `&something` other than `&include` / `&merge`.
    #[error("{location}: unknown directive \"{name}\" (expected &include or &merge)")]
    UnknownDirective {
        /// Where it was written.
        location: Location,
        /// The directive as written.
        name: String,
    },
    /// An `&include`/`&merge` target that cannot be read.
    #[error("{location}: cannot read included config \"{}\": {source}", path.display())]
    Include {
        /// The directive's location.
        location: Location,
        /// The target.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An `&include`/`&merge` of a file that is already being read.
    #[error("{location}: include loop: \"{}\" is already being read", path.display())]
    IncludeLoop {
        /// The directive's location.
        location: Location,
        /// The target.
        path: PathBuf,
    },
    /// Includes nested deeper than [`super::rsyncd_conf::MAX_INCLUDE_DEPTH`].
    #[error("{location}: includes nested more than {max} deep")]
    IncludeTooDeep {
        /// The directive's location.
        location: Location,
        /// The limit.
        max: usize,
    },
    /// A `--dparam`/`-M` argument without `=`.
    #[error("--dparam \"{dparam}\" is missing an '='")]
    DparamSyntax {
        /// The argument as given.
        dparam: String,
    },
    /// A `--dparam`/`-M` argument with a bad name or value.
    #[error("--dparam \"{dparam}\": {source}")]
    Dparam {
        /// The argument as given.
        dparam: String,
        /// What is wrong.
        #[source]
        source: ParamError,
    },
    /// TOML that does not parse, or has the wrong shape.
    #[error("{location}: {message}")]
    Toml {
        /// Where (line when the TOML parser reports a span).
        location: Location,
        /// The TOML parser's message.
        message: String,
    },
    /// A TOML value of a type no parameter takes (float, date, table...).
    #[error("{location}: \"{param}\": a TOML {found} is not accepted (use a string, boolean, integer or array of strings)")]
    TomlValueType {
        /// Where it was written.
        location: Location,
        /// The key as written.
        param: String,
        /// The TOML type found.
        found: &'static str,
    },
}
