//! The module list a client gets for `rsync rsync://host/`.

use oxrsyncd_shared::config::Config;

/// One `name<TAB>comment` line per listed module (name padded to 15, like
/// upstream), then `@RSYNCD: EXIT` from protocol 25 on.
pub(crate) fn module_listing(config: &Config, protocol: u32) -> String {
    let mut out = String::new();
    for module in config.modules.iter().filter(|m| m.settings.list) {
        out.push_str(&format!("{:<15}\t{}\n", module.name, module.settings.comment));
    }
    if protocol >= 25 {
        out.push_str("@RSYNCD: EXIT\n");
    }
    out
}
