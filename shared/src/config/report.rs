//! `Config::report()`: the text `oxrsyncd --check-config` prints.  The
//! settings part is valid rsyncd.conf (everything else is `#` comments), so
//! the report can be parsed back into an equal configuration.

use std::fmt::Write as _;

use super::model::{Config, ConfigOrigin, ModuleSettings};
use super::params::{lookup, params_in, Scope};

fn write_module_settings(out: &mut String, settings: &ModuleSettings) {
    for def in params_in(Scope::Module) {
        if let Some(value) = settings.get_param(def.name) {
            line(out, def.name, &value.to_conf_text());
        }
    }
}

fn line(out: &mut String, name: &str, value: &str) {
    if value.is_empty() {
        let _ = writeln!(out, "{name} =");
    } else {
        let _ = writeln!(out, "{name} = {value}");
    }
}

impl Config {
    /// The effective configuration in rsyncd.conf syntax, followed (as
    /// comments) by the explicitly set parameters oxrsyncd accepts but does
    /// not enforce yet, and the warnings.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let origin = match &self.origin {
            ConfigOrigin::File(p) => p.display().to_string(),
            ConfigOrigin::Embedded => "built-in default".to_string(),
        };
        let _ = writeln!(out, "# oxrsyncd effective configuration (from {origin})");
        out.push_str("[global]\n");
        for def in params_in(Scope::Global) {
            if let Some(value) = self.global.get_param(def.name) {
                line(&mut out, def.name, &value.to_conf_text());
            }
        }
        out.push_str("# module defaults\n");
        write_module_settings(&mut out, &self.module_defaults);
        for module in &self.modules {
            let _ = writeln!(out, "\n[{}]", module.name);
            write_module_settings(&mut out, &module.settings);
        }

        let unenforced: Vec<_> = self
            .explicitly_set
            .iter()
            .filter(|e| lookup(&e.param).is_some_and(|d| !d.enforced))
            .collect();
        out.push('\n');
        if unenforced.is_empty() {
            out.push_str("# No parameter is set that oxrsyncd accepts but does not enforce yet.\n");
        } else {
            out.push_str("# Set, but accepted and not yet enforced by oxrsyncd:\n");
            for e in unenforced {
                let section = e.module.as_deref().map_or("[global]".to_string(), |m| format!("[{m}]"));
                let _ = writeln!(out, "#   {section} {} (set at {})", e.param, e.source);
            }
        }
        if self.warnings.is_empty() {
            out.push_str("# No warnings.\n");
        } else {
            out.push_str("# Warnings:\n");
            for w in &self.warnings {
                let _ = writeln!(out, "#   {w}");
            }
        }
        out
    }
}
