//! The module as a transfer needs it, prepared once per session: the
//! session's identity and privileges taken, the module's filter and chmod
//! rules read, its directory opened, the daemon's own filter options
//! expanded, and the [`ModuleContext`] both directions share.

use std::path::PathBuf;

use oxrsyncd_protocol::setup::Negotiated;
use oxrsyncd_protocol::ExitCode;
use oxrsyncd_shared::config::ModuleSettings;
use tracing::info;

use crate::handshake::SessionRequest;
use crate::session::stream::SessionStream;
use crate::transfer::context::ModuleContext;
use crate::transfer::filter::rules::FilterList;
use crate::transfer::fs::module_root::ModuleRoot;
use crate::transfer::limits::io_timeout::{self, IdlePolicy, KeepaliveGate};
use crate::transfer::options::chmod::ChmodRules;
use crate::transfer::options::client::TransferOptions;

/// What both directions take from the module before a transfer, checked
/// once: the session's identity, the module's filter rules and its chmod
/// rules for this direction, and its path. `Err` is the refusal.
pub(crate) struct PreparedModule {
    /// The module's own filter rules.
    pub(crate) daemon_filters: FilterList,
    /// Its `outgoing chmod` (a pull) or `incoming chmod` (a push).
    pub(crate) chmod: Option<ChmodRules>,
    /// Its path, `%` variables expanded.
    pub(crate) root_text: String,
    /// The module directory, opened before the session took the module's
    /// identity (as upstream changes into it while still root), so a
    /// module below a directory its uid may not enter is still served.
    /// None if it could not be opened: the transfer reports why.
    pub(crate) opened_root: Option<ModuleRoot>,
    /// The module's `name converter`, running for this session.
    pub(crate) name_converter: Option<std::sync::Arc<crate::name_converter::NameConverter>>,
}

/// Take the module's identity and privileges, and read its filter and
/// chmod rules for this direction; `Err` is the refusal.
pub(crate) fn prepare_module(request: &SessionRequest, options: &TransferOptions) -> Result<PreparedModule, (String, ExitCode)> {
    let incoming = !options.we_send;
    let root_text = request
        .module()
        .settings
        .path
        .as_deref()
        .map(|p| request.expand(&p.to_string_lossy()))
        .unwrap_or_default();
    let insecure_links = follows_any_link(&request.module().settings, &root_text);
    let opened_root = ModuleRoot::open(std::path::Path::new(&root_text))
        .ok()
        .map(|root| root.with_insecure_links(insecure_links));
    let name_converter = start_name_converter(request, &root_text)?;
    if let Some(identity) = &request.identity {
        if let Err(e) = crate::identity::assume_on_this_thread(identity) {
            let message = format!("ERROR: cannot take the module's identity (uid {}): {e}\n", identity.uid);
            return Err((message, ExitCode::Syntax));
        }
    }
    // Only the capabilities the module needs, from here on (this thread,
    // what it starts and what it execs); see least_privilege.rs.
    // `-X` either way: a pull reads `trusted.` attributes, a push into a
    // root module writes them, as upstream's root daemon does.
    let reads_xattrs = options.preserve_xattrs > 0;
    let keep = crate::least_privilege::kept(request.identity.as_ref(), reads_xattrs);
    if let Err(e) = crate::least_privilege::confine_this_thread(&keep) {
        info!("module {}: {}", request.module().name, e);
        return Err(("ERROR: cannot drop the session's privileges\n".to_string(), ExitCode::Syntax));
    }
    let module = request.module();
    let m = &module.settings;
    let daemon_filters = FilterList::from_module(
        m.filter.as_deref(),
        m.include_from.as_deref(),
        m.include.as_deref(),
        m.exclude_from.as_deref(),
        m.exclude.as_deref(),
    )
    .map_err(|e| {
        info!("module {} filter rules: {}", module.name, e);
        ("ERROR: the module's filter rules are invalid\n".to_string(), ExitCode::Syntax)
    })?;
    let (param, spec) = if incoming {
        ("incoming chmod", m.incoming_chmod.as_deref())
    } else {
        ("outgoing chmod", m.outgoing_chmod.as_deref())
    };
    let chmod = spec
        .map(|spec| ChmodRules::parse(spec, crate::transfer::options::chmod::current_umask()))
        .transpose()
        .map_err(|e| {
            info!("Invalid \"{}\" directive: {}", param, e);
            (format!("ERROR: the module's {param} is invalid\n"), ExitCode::Syntax)
        })?;
    Ok(PreparedModule {
        daemon_filters,
        chmod,
        root_text,
        opened_root,
        name_converter,
    })
}

/// The module's `name converter`, started as upstream starts it: after
/// authentication, as the daemon's user with the module's capability set
/// and the `pre-xfer exec` environment.
fn start_name_converter(
    request: &SessionRequest,
    module_path: &str,
) -> Result<Option<std::sync::Arc<crate::name_converter::NameConverter>>, (String, ExitCode)> {
    let Some(cmd) = request.module().settings.name_converter.as_deref() else {
        return Ok(None);
    };
    let env = super::hook_env::pre_xfer(request, module_path);
    let keep = crate::least_privilege::mask(&crate::least_privilege::kept(request.identity.as_ref(), false));
    match crate::name_converter::NameConverter::start(cmd, &env, keep) {
        Ok(c) => Ok(Some(std::sync::Arc::new(c))),
        Err(e) => {
            info!("name-converter exec preparation failed: {e}");
            Err(("@ERROR: name-converter exec preparation failed\n".to_string(), ExitCode::Syntax))
        }
    }
}

impl PreparedModule {
    /// The context both directions' engines get.
    pub(crate) fn context<'a>(
        &'a self,
        request: &'a SessionRequest,
        negotiated: &'a Negotiated,
        options: &'a TransferOptions,
        server_rules: &'a [String],
    ) -> ModuleContext<'a> {
        let module = request.module();
        let m = &module.settings;
        ModuleContext {
            protocol: request.protocol,
            negotiated,
            options,
            module_name: &module.name,
            module_root: PathBuf::from(&self.root_text),
            daemon_filters: &self.daemon_filters,
            server_rules,
            munge_symlinks: munge_symlinks(m, &self.root_text),
            sanitize_paths: !m.use_chroot.unwrap_or(!self.root_text.contains("/./")) || self.root_text.contains("/./"),
            fake_super: m.fake_super,
            insecure_links: follows_any_link(m, &self.root_text),
            name_converter: self.name_converter.as_ref(),
            opened_root: self.opened_root.as_ref(),
            module_numeric_ids: daemon_numeric_ids(m, &self.root_text),
            open_noatime: m.open_noatime.unwrap_or(options.open_noatime),
            max_verbosity: m.max_verbosity,
            paths: &request.paths,
        }
    }
}

/// Upstream's default for `munge symlinks`: munge unless the module is
/// chrooted to its path.
fn munge_symlinks(settings: &ModuleSettings, path: &str) -> bool {
    settings
        .munge_symlinks
        .unwrap_or(!settings.use_chroot.unwrap_or(!path.contains("/./")) || path.contains("/./"))
}

/// `insecure links = yes` in a module that is not chrooted: links are
/// followed wherever they lead. A chrooted module's links resolve inside
/// the chroot whatever the setting says, as upstream's do.
fn follows_any_link(settings: &ModuleSettings, path: &str) -> bool {
    settings.insecure_links && settings.use_chroot == Some(false) && !path.contains("/./")
}

/// Whether the daemon sends ids without names, as upstream decides it:
/// a chrooted module (the default, `use chroot` unset) cannot look names
/// up, so it defaults to numeric ids unless `numeric ids = no` or a name
/// converter is set; an unchrooted one only with `numeric ids = yes`.
fn daemon_numeric_ids(settings: &ModuleSettings, path: &str) -> bool {
    let use_chroot = settings.use_chroot.unwrap_or(!path.contains("/./"));
    if use_chroot {
        settings.numeric_ids != Some(false) && settings.name_converter.as_deref().unwrap_or("").is_empty()
    } else {
        settings.numeric_ids == Some(true)
    }
}

/// The filter options given to the daemon itself, as rules, with the
/// files they name read inside the module; else upstream's refusal
/// (`failed to open exclude file ...`, exit 11) and its exit code.
pub(crate) fn server_filter_rules(
    transfer_options: &TransferOptions,
    prepared: &PreparedModule,
    role: &str,
) -> Result<Vec<String>, (String, ExitCode)> {
    use crate::transfer::filter::server::{expand, Refusal};
    let (opened_root, root_text, daemon_filters) = (prepared.opened_root.as_ref(), &prepared.root_text, &prepared.daemon_filters);
    if transfer_options.server_filters.is_empty() {
        return Ok(Vec::new());
    }
    let opened;
    let root = match opened_root {
        Some(root) => root,
        None => {
            opened = ModuleRoot::open(std::path::Path::new(root_text)).map_err(|e| (format!("ERROR: {e}\n"), ExitCode::FileIo))?;
            &opened
        }
    };
    expand(&transfer_options.server_filters, root, daemon_filters, role)
        .map_err(|Refusal { message, file_error }| (message, if file_error { ExitCode::FileIo } else { ExitCode::Unsupported }))
}

/// The transfer's idle policy: the socket wakes reads every keep-alive
/// interval and the reader decides between a keep-alive and giving up.
pub(crate) fn transfer_timeout(options: &TransferOptions, module_timeout: u32, stream: &dyn SessionStream) -> Option<IdlePolicy> {
    let timeout = io_timeout::effective_timeout(options.timeout, module_timeout)?;
    stream.set_read_timeout(Some(io_timeout::keepalive_interval(timeout))).ok()?;
    Some(IdlePolicy {
        timeout,
        keepalive: stream.keepalive_writer(),
        gate: KeepaliveGate::default(),
    })
}
