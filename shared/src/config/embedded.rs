//! The built-in configuration oxrsyncd uses when started without a config
//! file: a loopback-only, read-only `demo` module exporting the current
//! directory, so a first run is useful and exposes nothing to the network.

use std::path::PathBuf;

use super::model::{Config, ConfigOrigin, GlobalSettings, Module, ModuleSettings};

impl Config {
    /// The embedded default: listens on 127.0.0.1:8873 and exports the
    /// current working directory (at call time) read-only as `demo`.
    pub fn embedded_default() -> Config {
        let global = GlobalSettings {
            address: Some("127.0.0.1".to_string()),
            port: 8873,
            ..GlobalSettings::default()
        };
        let module_defaults = ModuleSettings::default();
        let settings = ModuleSettings {
            comment: "oxrsyncd demo module".to_string(),
            path: Some(std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))),
            read_only: true,
            list: true,
            use_chroot: Some(false),
            lock_file: std::env::temp_dir().join("oxrsyncd-demo.lock"),
            ..module_defaults.clone()
        };
        Config {
            origin: ConfigOrigin::Embedded,
            global,
            module_defaults,
            modules: vec![Module {
                name: "demo".to_string(),
                settings,
            }],
            warnings: Vec::new(),
            explicitly_set: Vec::new(),
        }
    }
}
