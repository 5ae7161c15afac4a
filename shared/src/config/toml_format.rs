//! The TOML config format: a `[global]` table and `[modules.NAME]` tables
//! whose keys are any spelling of a parameter name.  Values may be strings,
//! booleans, integers, or (for list parameters) arrays of strings.  Every key
//! goes through the same parameter table, validators and [`Builder`] as the
//! classic format, so the two cannot drift: the global table is applied
//! first, then `--dparam`s, then the modules in file order.
//!
//! ```toml
//! [global]
//! port = 8873
//! "read only" = false      # a module default
//!
//! [modules.pub]
//! path = "/srv/pub"
//! hosts_allow = ["10.0.0.0/8", "192.168.1.1"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::builder::{check_module_name, is_global_name, Builder};
use super::error::{ConfigError, Location, SectionError};
use super::model::{Config, ConfigOrigin};
use super::values::RawValue;

type Table = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The document shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    global: Table,
    #[serde(default)]
    modules: BTreeMap<Spanned<String>, Table>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

/// Table entries in the order they were written.
fn in_file_order(table: Table) -> Vec<(Spanned<String>, Spanned<toml::Value>)> {
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// Converts a TOML value to the text/list the validators take.
fn raw_value(value: toml::Value, key: &str, location: &Location) -> Result<RawValue, ConfigError> {
    let type_err = |found: &'static str| ConfigError::TomlValueType {
        location: location.clone(),
        param: key.to_string(),
        found,
    };
    Ok(match value {
        // Trimmed like a classic value, so both formats agree.
        toml::Value::String(s) => RawValue::Text(s.trim().to_string()),
        toml::Value::Boolean(b) => RawValue::Text(if b { "yes" } else { "no" }.to_string()),
        toml::Value::Integer(n) => RawValue::Text(n.to_string()),
        toml::Value::Array(items) => RawValue::List(
            items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(type_err(other.type_str())),
                })
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Float(_) => return Err(type_err("float")),
        toml::Value::Datetime(_) => return Err(type_err("datetime")),
        toml::Value::Table(_) => return Err(type_err("table")),
    })
}

fn apply_table(builder: &mut Builder, table: Table, text: &str, origin: &Path) -> Result<(), ConfigError> {
    for (key, value) in in_file_order(table) {
        let location = Location::new(origin, line_of(text, key.span().start));
        let raw = raw_value(value.into_inner(), key.get_ref(), &location)?;
        builder.set(key.get_ref(), raw, &location)?;
    }
    Ok(())
}

/// Parses TOML config text; `origin` names it in messages.
pub(crate) fn parse(text: &str, origin: &Path, dparams: &[String]) -> Result<Config, ConfigError> {
    let doc: Document = toml::from_str(text).map_err(|e| ConfigError::Toml {
        location: Location {
            file: origin.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)),
        },
        message: e.message().trim().to_string(),
    })?;
    let mut builder = Builder::new(dparams)?;
    apply_table(&mut builder, doc.global, text, origin)?;
    let mut modules: Vec<_> = doc.modules.into_iter().collect();
    modules.sort_by_key(|(k, _)| k.span().start);
    for (name, table) in modules {
        let location = Location::new(origin, line_of(text, name.span().start));
        if is_global_name(name.get_ref()) {
            return Err(ConfigError::Section {
                location,
                source: SectionError::Reserved { name: name.into_inner() },
            });
        }
        check_module_name(name.get_ref()).map_err(|source| ConfigError::Section {
            location: location.clone(),
            source,
        })?;
        builder.enter_section(name.get_ref(), &location)?;
        apply_table(&mut builder, table, text, origin)?;
    }
    builder.finish(ConfigOrigin::File(origin.to_path_buf()))
}
