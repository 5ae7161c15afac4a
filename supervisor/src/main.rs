//! `oxrsyncd`: the supervisor process, and the entry point of every role.
//!
//! Order of start-up (config before anything else, as linkerd does):
//! 1. parse the command line; `--internal-worker` hands over to the worker;
//! 2. load and validate the config (a bad one exits 1 with file:line);
//!    `--check-config` prints it and exits;
//! 3. stdin is a connected socket: inetd/stdio mode, serve one client;
//! 4. logging, listener (inherited from an old supervisor on a binary
//!    upgrade, systemd's, or our own), `--detach`, pid file;
//! 5. the supervisor event loop until stopped.
//!
//! The path and command line are captured first of all, for SIGUSR2 (see
//! `handover`): after the binary file is replaced they cannot be re-read.

mod cli;
mod daemonize;
mod exit_status;
mod fd_limit;
mod handover;
mod inherited;
mod lifecycle;
mod listener;
mod metrics;
mod notify;
mod pidfile;
mod signals;
mod status;

use std::path::{Path, PathBuf};

use clap::Parser;
use oxrsyncd_shared::config::{self, Config};
use oxrsyncd_shared::logging::{self, LogTarget};
use tracing::{error, info};

use crate::cli::Cli;
use crate::handover::{ExecPlan, Reporter};
use crate::inherited::Inherited;
use crate::listener::Family;

/// Config files tried, in order, when `--config` is not given.
const DEFAULT_CONFIGS: [&str; 2] = ["/etc/oxrsyncd.conf", "/etc/rsyncd.conf"];

fn main() {
    let cli = Cli::parse();
    if let Some(identity) = cli.internal_worker {
        std::process::exit(oxrsyncd_worker::worker_main(identity));
    }
    let plan = ExecPlan::capture();
    std::process::exit(run(cli, plan));
}

/// Which config to load.
fn config_path(cli: &Cli) -> Option<PathBuf> {
    if cli.config.is_none() && cli.server && !nix::unistd::geteuid().is_root() {
        // A user's daemon over a remote shell reads ./rsyncd.conf, as upstream's.
        return Some(PathBuf::from("rsyncd.conf"));
    }
    cli.config
        .clone()
        .or_else(|| DEFAULT_CONFIGS.iter().map(PathBuf::from).find(|p| p.exists()))
}

/// Load the config the command line names, with its overrides applied.
fn load_config(cli: &Cli) -> Result<Config, String> {
    let dparams = cli.effective_dparams();
    let mut config = match config_path(cli) {
        Some(path) => config::load_file(&path, &dparams).map_err(|e| e.to_string()),
        None => {
            let text = config::Config::embedded_default().report();
            config::parse_rsyncd_conf(&text, Path::new("<embedded default>"), &dparams)
                .map(|mut c| {
                    c.origin = config::ConfigOrigin::Embedded;
                    c
                })
                .map_err(|e| e.to_string())
        }
    }?;
    // Settings the parser stores as text but a worker must be able to use.
    let g = &config.global;
    if g.proxy_protocol && g.proxy_protocol_hosts.as_deref().is_none_or(|h| h.trim().is_empty()) {
        // Fail closed, as upstream, but say so.
        config.warnings.push(
            "\"proxy protocol = true\" but \"proxy protocol hosts\" is unset: all connections will be rejected as untrusted proxy peers.  Set \"proxy protocol hosts\" to your trusted proxy's address.".into(),
        );
    }
    if let Some(list) = config.global.socket_options.clone() {
        oxrsyncd_shared::socket_options::parse(&list).map_err(|e| format!("socket options: {e}"))?;
        for name in oxrsyncd_shared::socket_options::unknown_names(&list) {
            config.warnings.push(format!("Unknown socket option {name}"));
        }
    }
    Ok(config)
}

/// Whether to go to the background: with `--detach`, or, as upstream's
/// `rsync --daemon` does, with `--daemon` unless `--no-detach` is given or
/// systemd runs us (it expects its service in the foreground). Never when
/// started by a binary upgrade: the old supervisor already detached, and
/// waits for *this* process to report.
fn should_detach(cli: &Cli, upgrade: bool) -> bool {
    let under_systemd = std::env::var_os("NOTIFY_SOCKET").is_some() || std::env::var_os("LISTEN_FDS").is_some();
    !upgrade && (cli.detach || (cli.daemon && !cli.no_detach && !under_systemd))
}

/// A start-up failure of a supervisor started by a binary upgrade: tell the
/// old one why (it logs it), then exit with `status`.
fn fail_upgrade(reporter: &mut Option<Reporter>, why: &str, status: i32) -> i32 {
    if let Some(r) = reporter.take() {
        r.failed(why);
    }
    status
}

fn run(cli: Cli, plan: ExecPlan) -> i32 {
    let mut inherited = match Inherited::take_from_env() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("oxrsyncd: {e}");
            return exit_status::CONFIG_OR_STARTUP;
        }
    };
    let upgrade = inherited.is_upgrade();
    let mut reporter = inherited.status_pipe.take().map(Reporter::new);
    if upgrade {
        // Until we take over, the old supervisor speaks for the service.
        notify::mute();
    }
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oxrsyncd: {e}");
            return fail_upgrade(&mut reporter, &e, exit_status::CONFIG_OR_STARTUP);
        }
    };
    if cli.check_config {
        print!("{}", config.report());
        return exit_status::OK;
    }
    if cli.status {
        return status::print(&config, cli.pid, cli.json);
    }

    let style = logging::LogStyle::from_name(&config.module_defaults.log_style);
    if cli.server && cli.daemon {
        // Standard error is the client's: log to the config's file only.
        if let Some(file) = config.module_defaults.log_file.as_deref() {
            let _ = logging::init(&LogTarget::File(file.to_path_buf()), style);
        }
        return oxrsyncd_worker::serve_remote_shell(config);
    }
    if oxrsyncd_worker::stdin_is_connected_socket() {
        let target = logging::choose_target(config.module_defaults.log_file.as_deref());
        if target != LogTarget::Stderr {
            let _ = logging::init(&target, style);
        }
        return oxrsyncd_worker::serve_stdio(config);
    }

    let log = match logging::init(&logging::choose_target(config.module_defaults.log_file.as_deref()), style) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("oxrsyncd: {e}");
            return fail_upgrade(&mut reporter, &e.to_string(), exit_status::CONFIG_OR_STARTUP);
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{}", warning);
    }
    let workers = config
        .global
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    fd_limit::raise_for(workers, config.global.max_sessions_per_worker);

    let inherited_listener = inherited.take_listener(inherited::RSYNC_LISTENER);
    let inherited_metrics = inherited.take_listener(inherited::METRICS_LISTENER);
    for name in inherited.close_unclaimed() {
        tracing::warn!("closing inherited socket {:?}: this binary has no use for it", name);
    }
    let listener = match inherited_listener {
        Some(adopted) => {
            listener::forget_systemd();
            adopted.map_err(|e| e.to_string())
        }
        None => match listener::from_systemd() {
            Some(adopted) => adopted.map_err(|e| e.to_string()),
            None => {
                let family = if cli.ipv4 {
                    Family::V4
                } else if cli.ipv6 {
                    Family::V6
                } else {
                    Family::Dual
                };
                let g = &config.global;
                listener::bind(g.address.as_deref(), g.port, family, g.listen_backlog).map_err(|e| e.to_string())
            }
        },
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            error!("{}", e);
            eprintln!("oxrsyncd: {e}");
            return fail_upgrade(&mut reporter, &e, exit_status::CONFIG_OR_STARTUP);
        }
    };
    // Upstream's line, word for word but the name (log watchers match it);
    // the address follows on the "ready" line.
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(config.global.port);
    if upgrade {
        info!(
            "binary upgrade: new supervisor (pid {}) inherited the listening socket on port {}",
            std::process::id(),
            port
        );
    }
    info!(
        "oxrsyncd version {} starting, listening on port {}",
        env!("CARGO_PKG_VERSION"),
        port
    );
    if matches!(config.origin, config::ConfigOrigin::Embedded) {
        eprintln!("oxrsyncd: no config file found; serving the built-in demo config.");
        eprintln!(
            "oxrsyncd: module 'demo' (read-only) = {}",
            config
                .modules
                .first()
                .and_then(|m| m.settings.path.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        eprintln!("oxrsyncd: try: rsync rsync://127.0.0.1:{port}/   or   rsync -av rsync://127.0.0.1:{port}/demo/ ./copy/");
    }

    // Bound now, so a wrong address stops the start with a message on the
    // terminal; served from its thread once the process has its final pid.
    let metrics = match (config.global.metrics_address.as_deref(), inherited_metrics) {
        (Some(_), Some(Ok(adopted))) => Ok(Some(metrics::MetricsServer::from_listener(adopted))),
        (Some(address), _) => metrics::MetricsServer::bind(address).map(Some),
        (None, _) => Ok(None),
    };
    let metrics = match metrics {
        Ok(m) => m,
        Err(e) => {
            error!("{}", e);
            eprintln!("oxrsyncd: {e}");
            return exit_status::CONFIG_OR_STARTUP;
        }
    };

    if should_detach(&cli, upgrade) {
        if let Err(e) = daemonize::detach() {
            error!("{}", e);
            return exit_status::CONFIG_OR_STARTUP;
        }
    }
    // On an upgrade the old supervisor moved its file to `.oldbin`: this
    // writes ours at the configured path.
    let pid_file = match config.global.pid_file.as_deref().map(pidfile::PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            error!("{}", e);
            eprintln!("oxrsyncd: {e}");
            return fail_upgrade(&mut reporter, &e.to_string(), exit_status::CONFIG_OR_STARTUP);
        }
    };

    let board = match oxrsyncd_shared::scoreboard::Scoreboard::create() {
        Ok(b) => std::sync::Arc::new(b),
        Err(e) => {
            error!("cannot create the scoreboard: {}", e);
            return exit_status::CONFIG_OR_STARTUP;
        }
    };
    let metrics_fd = metrics
        .as_ref()
        .and_then(|m| m.listener().try_clone().ok())
        .map(std::os::fd::OwnedFd::from);
    let mut metrics_thread = None;
    if let Some(server) = metrics {
        let queue = listener.try_clone().ok().map(std::os::fd::OwnedFd::from);
        let collector = std::sync::Arc::new(metrics::collect::ScoreboardCollector::new(board.clone(), queue));
        // Started by a binary upgrade: the old supervisor answers until
        // this one is ready and takes over.
        match server.spawn(collector, upgrade) {
            Ok(handle) => metrics_thread = Some(handle),
            Err(e) => {
                error!("{}", e);
                return exit_status::CONFIG_OR_STARTUP;
            }
        }
    }

    let reload_cli = cli;
    let loader: lifecycle::ConfigLoader = Box::new(move || load_config(&reload_cli));
    let metrics_flags = metrics_thread.as_ref().map(|t| (t.stop_flag(), t.pause_flag()));
    let upgrades = lifecycle::Upgrades::new(plan, pid_file, reporter).with_metrics(metrics_fd, metrics_flags);
    let status = match lifecycle::Supervisor::new(listener, config, loader, log, board, upgrades) {
        Ok(supervisor) => supervisor.run(),
        Err(e) => {
            error!("cannot start the supervisor: {}", e);
            // The reporter went down with the supervisor: the old one sees
            // end of file and our exit status.
            exit_status::CONFIG_OR_STARTUP
        }
    };
    // Finish the scrape in progress, and take no other: after a binary
    // upgrade the next supervisor serves the same socket.
    if let Some(thread) = metrics_thread {
        thread.stop();
    }
    status
}
