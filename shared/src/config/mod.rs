//! oxrsyncd's configuration: the model ([`Config`]), the parameter table
//! ([`params`]), and the two file formats -- classic `rsyncd.conf`
//! ([`parse_rsyncd_conf`]) and TOML ([`parse_toml`]) -- plus `--dparam`
//! overrides, the built-in default, and the `--check-config` report.
//!
//! Layout: `params` (what exists) → `values` (what a valid value is) →
//! `builder` (where a setting lands) ← `rsyncd_conf` / `toml_format`
//! (syntax); `model` + `fields` (typed result); `expand` (`%VAR%`);
//! `report`; `embedded`; `error`.

use std::path::Path;

mod builder;
mod embedded;
pub mod error;
pub mod expand;
pub(crate) mod fields;
pub mod model;
pub mod params;
mod report;
pub mod rsyncd_conf;
mod toml_format;
pub mod values;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, Location, ParamError, SectionError, ValueError};
pub use expand::{expand_env_vars, expand_session_vars, expand_vars, SessionVars};
pub use model::{Config, ConfigOrigin, ExplicitSetting, GlobalSettings, Module, ModuleSettings};
pub use params::{lookup, normalize_name, Kind, ListStyle, ParamDef, Scope, PARAMS};

/// Loads a config file: TOML if its name ends in `.toml`, else classic
/// rsyncd.conf.  `dparams` are `--dparam`/`-M` overrides (`name=value`),
/// applied as if written at the end of the global section.
pub fn load_file(path: &Path, dparams: &[String]) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if is_toml {
        parse_toml(&text, path, dparams)
    } else {
        parse_rsyncd_conf(&text, path, dparams)
    }
}

/// Parses classic rsyncd.conf text.  `origin` names the text in messages
/// and is the file whose includes would loop back to it.
pub fn parse_rsyncd_conf(text: &str, origin: &Path, dparams: &[String]) -> Result<Config, ConfigError> {
    let mut builder = builder::Builder::new(dparams)?;
    let mut stack = rsyncd_conf::IncludeStack::new(origin);
    rsyncd_conf::parse_into(&mut builder, text, origin, &mut stack)?;
    builder.finish(ConfigOrigin::File(origin.to_path_buf()))
}

/// Parses TOML config text (see the `toml_format` module for the shape).
pub fn parse_toml(text: &str, origin: &Path, dparams: &[String]) -> Result<Config, ConfigError> {
    toml_format::parse(text, origin, dparams)
}
