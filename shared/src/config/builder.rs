//! The section/parameter state machine both parsers feed: which section is
//! current, where a `name = value` lands (global settings, module defaults
//! or a module), upstream's push/pop of the defaults around `&include`,
//! when `--dparam` overrides apply, warnings, and the record of what was
//! set explicitly.

use super::error::{ConfigError, Location, ParamError, SectionError};
use super::expand::expand_env_vars;
use super::model::{Config, ConfigOrigin, ExplicitSetting, GlobalSettings, Module, ModuleSettings};
use super::params::{lookup, ParamDef, Scope};
use super::values::{expands_at_parse_time, parse_value, RawValue, Value};

/// A `--dparam` override, split and pre-checked.
#[derive(Debug, Clone)]
struct Dparam {
    /// The argument as given, for messages.
    arg: String,
    name: String,
    value: String,
}

/// What a push saves: the global state an `&include` must not leak.
#[derive(Debug, Clone)]
struct Saved {
    global: GlobalSettings,
    defaults: ModuleSettings,
    global_explicit: Vec<ExplicitSetting>,
}

/// Incrementally builds a [`Config`].
#[derive(Debug)]
pub(crate) struct Builder {
    global: GlobalSettings,
    defaults: ModuleSettings,
    modules: Vec<Module>,
    /// Index of the current module; `None` = the global section.
    current: Option<usize>,
    stack: Vec<Saved>,
    dparams: Vec<Dparam>,
    dparams_applied: bool,
    warnings: Vec<String>,
    explicit: Vec<ExplicitSetting>,
}

/// Collapses whitespace runs to one space and trims, like upstream does to
/// section names.
pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Upstream's section-name equality: case-insensitive, whitespace ignored.
fn section_eq(a: &str, b: &str) -> bool {
    let fold = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect() };
    fold(a) == fold(b)
}

/// Whether a section name means the global section.
pub(crate) fn is_global_name(name: &str) -> bool {
    section_eq(name, "global")
}

/// Validates a module name; returns it with whitespace collapsed.
pub(crate) fn check_module_name(raw: &str) -> Result<String, SectionError> {
    let name = collapse_whitespace(raw);
    if name.is_empty() {
        return Err(SectionError::Empty);
    }
    if name.contains('/') {
        return Err(SectionError::Slash { name });
    }
    if name.contains(']') {
        return Err(SectionError::Bracket { name });
    }
    Ok(name)
}

/// Looks a parameter up and validates its value (expanding `%VAR%` first
/// for non-string kinds).
fn resolve(name: &str, raw: RawValue) -> Result<(&'static ParamDef, Value), ParamError> {
    let def = lookup(name).ok_or_else(|| ParamError::Unknown {
        name: name.trim().to_string(),
    })?;
    let raw = match raw {
        RawValue::Text(t) if expands_at_parse_time(def.kind) => RawValue::Text(expand_env_vars(&t)),
        other => other,
    };
    let mut value = parse_value(def.kind, raw).map_err(|source| ParamError::InvalidValue { param: def.name, source })?;
    if def.name == "port" && value == Value::Int(0) {
        // Upstream: port 0 means "the default port".
        value = Value::Int(873);
    }
    Ok((def, value))
}

impl Builder {
    /// Starts a build; checks the `--dparam` arguments' syntax and names up
    /// front (values are checked when applied), as upstream does.
    pub(crate) fn new(dparams: &[String]) -> Result<Self, ConfigError> {
        let mut parsed = Vec::new();
        for arg in dparams {
            let (name, value) = arg
                .split_once('=')
                .ok_or_else(|| ConfigError::DparamSyntax { dparam: arg.clone() })?;
            if lookup(name).is_none() {
                return Err(ConfigError::Dparam {
                    dparam: arg.clone(),
                    source: ParamError::Unknown {
                        name: name.trim().to_string(),
                    },
                });
            }
            parsed.push(Dparam {
                arg: arg.clone(),
                name: name.to_string(),
                value: value.trim_start().to_string(),
            });
        }
        Ok(Builder {
            global: GlobalSettings::default(),
            defaults: ModuleSettings::default(),
            modules: Vec::new(),
            current: None,
            stack: Vec::new(),
            dparams: parsed,
            dparams_applied: false,
            warnings: Vec::new(),
            explicit: Vec::new(),
        })
    }

    /// Handles a `[name]` header.  `[global]` (any case/spacing) returns to
    /// the global section; a module name already seen re-opens that module.
    pub(crate) fn enter_section(&mut self, raw: &str, location: &Location) -> Result<(), ConfigError> {
        if is_global_name(raw) {
            self.current = None;
            return Ok(());
        }
        let name = check_module_name(raw).map_err(|source| ConfigError::Section {
            location: location.clone(),
            source,
        })?;
        if self.modules.is_empty() && !self.dparams_applied {
            self.apply_dparams()?;
        }
        if let Some(i) = self.modules.iter().position(|m| section_eq(&m.name, &name)) {
            self.current = Some(i);
        } else {
            self.modules.push(Module {
                name,
                settings: self.defaults.clone(),
            });
            self.current = Some(self.modules.len() - 1);
        }
        Ok(())
    }

    /// Handles `name = value` in the current section.
    pub(crate) fn set(&mut self, name: &str, raw: RawValue, location: &Location) -> Result<(), ConfigError> {
        let (def, value) = resolve(name, raw).map_err(|source| ConfigError::Param {
            location: location.clone(),
            source,
        })?;
        self.store(def, value, location.to_string());
        Ok(())
    }

    fn store(&mut self, def: &'static ParamDef, value: Value, source: String) {
        let stored = match (self.current, def.scope) {
            (Some(i), Scope::Global) => {
                let module = &self.modules[i].name;
                self.warnings
                    .push(format!("{source}: global parameter \"{}\" in module [{module}] ignored", def.name));
                return;
            }
            (Some(i), Scope::Module) => self.modules[i].settings.set_param(def.name, value),
            (None, Scope::Global) => self.global.set_param(def.name, value),
            (None, Scope::Module) => self.defaults.set_param(def.name, value),
        };
        debug_assert_eq!(stored, Some(true), "parameter table and settings struct disagree on {}", def.name);
        let module = self.current.map(|i| self.modules[i].name.clone());
        self.explicit.retain(|e| !(e.module == module && e.param == def.name));
        self.explicit.push(ExplicitSetting {
            module,
            param: def.name.to_string(),
            source,
        });
    }

    /// Applies the `--dparam` overrides in the global section.
    fn apply_dparams(&mut self) -> Result<(), ConfigError> {
        self.dparams_applied = true;
        let saved_current = self.current.take();
        for d in self.dparams.clone() {
            let (def, value) = resolve(&d.name, RawValue::Text(d.value.clone())).map_err(|source| ConfigError::Dparam {
                dparam: d.arg.clone(),
                source,
            })?;
            self.store(def, value, "--dparam".to_string());
        }
        self.current = saved_current;
        Ok(())
    }

    /// Saves the global state before an `&include`d file; the file starts
    /// in the global section.
    pub(crate) fn push(&mut self) {
        self.stack.push(Saved {
            global: self.global.clone(),
            defaults: self.defaults.clone(),
            global_explicit: self.explicit.iter().filter(|e| e.module.is_none()).cloned().collect(),
        });
        self.current = None;
    }

    /// Restores the state saved by the last [`Builder::push`] without
    /// dropping it (between files of an included directory).
    pub(crate) fn reset(&mut self) {
        if let Some(saved) = self.stack.last().cloned() {
            self.restore(saved);
        }
    }

    /// Restores and drops the state saved by the last [`Builder::push`];
    /// parsing continues in the global section, as upstream does.
    pub(crate) fn pop(&mut self) {
        if let Some(saved) = self.stack.pop() {
            self.restore(saved);
        }
    }

    fn restore(&mut self, saved: Saved) {
        self.global = saved.global;
        self.defaults = saved.defaults;
        self.explicit.retain(|e| e.module.is_some());
        self.explicit.extend(saved.global_explicit);
        self.current = None;
        if self.dparams_applied {
            // Applied at the first module, which was inside the included
            // file: the command line's overrides (--port, --address, -M)
            // outlive the file's own global settings. They were checked
            // when first applied, so this cannot fail.
            let _ = self.apply_dparams();
        }
    }

    /// Finishes: applies `--dparam`s if no module triggered them.
    pub(crate) fn finish(mut self, origin: ConfigOrigin) -> Result<Config, ConfigError> {
        if !self.dparams_applied {
            self.apply_dparams()?;
        }
        Ok(Config {
            origin,
            global: self.global,
            module_defaults: self.defaults,
            modules: self.modules,
            warnings: self.warnings,
            explicitly_set: self.explicit,
        })
    }
}
