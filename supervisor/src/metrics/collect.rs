//! The scoreboard summed into Prometheus metric families: every live
//! worker's row plus the retired row (dead workers' counters), so counters
//! never go backwards while the supervisor lives. Labels are bounded: per
//! module (at most the scoreboard's 64 names and `(other)`), direction,
//! exit code bucket, refusal reason, restart cause; never per client.
//! docs/operations.md lists every family.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oxrsyncd_shared::scoreboard::stats::{EXIT_CODES, HANDSHAKE_BOUNDS, SESSION_BOUNDS};
use oxrsyncd_shared::scoreboard::{Direction, Histogram, ModuleIndex, Refusal, RestartCause, Scoreboard, WorkerRow, MODULES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::listen_queue;

/// Reads the scoreboard at each scrape.
#[derive(Debug)]
pub struct ScoreboardCollector {
    board: Arc<Scoreboard>,
    /// A duplicate of the listening socket, for its queue depth.
    listener: Option<OwnedFd>,
}

type Labels = Vec<(&'static str, String)>;

impl ScoreboardCollector {
    pub fn new(board: Arc<Scoreboard>, listener: Option<OwnedFd>) -> Self {
        ScoreboardCollector { board, listener }
    }

    /// The whole page, in the Prometheus text format (version 0.0.4).
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("writing to a String");
        out
    }

    /// Modules with a name so far, and `(other)` when it counted anything.
    fn modules(&self, rows: &[&WorkerRow]) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = (0..MODULES)
            .map_while(|i| {
                let index = ModuleIndex(i as u16);
                self.board.module_label(index).map(|name| (index.bucket(), name))
            })
            .collect();
        let other = ModuleIndex::OTHER.bucket();
        let used = rows.iter().any(|r| {
            r.counters.modules[other].sessions.iter().any(|c| c.load(Ordering::Relaxed) != 0)
                || r.gauges.active[other].iter().any(|g| g.load(Ordering::Relaxed) != 0)
        });
        if used {
            out.push((other, "(other)".into()));
        }
        out
    }
}

fn sum<'a>(rows: &[&'a WorkerRow], field: impl Fn(&'a WorkerRow) -> &'a AtomicU64) -> u64 {
    rows.iter().map(|r| field(r).load(Ordering::Relaxed)).sum()
}

fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: Vec<(Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        let inner = metric.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value).encode(inner)?,
            _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(inner)?,
        }
    }
    Ok(())
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    bounds: &[f64],
    rows: &[&WorkerRow],
    pick: impl Fn(&WorkerRow) -> &Histogram,
) -> Result<(), std::fmt::Error> {
    let mut buckets: Vec<(f64, u64)> = bounds.iter().map(|&b| (b, 0)).collect();
    buckets.push((f64::INFINITY, 0));
    let (mut sum_micros, mut count) = (0u64, 0u64);
    for r in rows {
        let h = pick(r);
        for (i, b) in buckets.iter_mut().enumerate() {
            b.1 += h.buckets[i].load(Ordering::Relaxed);
        }
        sum_micros += h.sum_micros.load(Ordering::Relaxed);
        count += h.count.load(Ordering::Relaxed);
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum_micros as f64 / 1e6, count, &buckets, None)
}

impl Collector for ScoreboardCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        let board = &self.board;
        let live: Vec<&WorkerRow> = board.live_rows().collect();
        let mut all = live.clone();
        all.push(board.retired());
        let modules = self.modules(&all);
        let header = board.header();

        let version = vec![("version", env!("CARGO_PKG_VERSION").to_string())];
        family(
            &mut e,
            "oxrsyncd_build_info",
            "The running build (value 1).",
            Gauge,
            vec![(version, 1)],
        )?;
        let started = header.started_unix.load(Ordering::Relaxed);
        family(
            &mut e,
            "oxrsyncd_start_time_seconds",
            "When the supervisor started (Unix time).",
            Gauge,
            vec![(vec![], started)],
        )?;
        family(
            &mut e,
            "oxrsyncd_generation",
            "The config generation serving new connections.",
            Gauge,
            vec![(vec![], header.generation.load(Ordering::Relaxed))],
        )?;
        let reloads = vec![
            (vec![("result", "ok".to_string())], header.reloads_ok.load(Ordering::Relaxed)),
            (
                vec![("result", "failed".to_string())],
                header.reloads_failed.load(Ordering::Relaxed),
            ),
        ];
        family(
            &mut e,
            "oxrsyncd_reloads",
            "Reloads (SIGHUP): a new generation serving, or refused/abandoned.",
            Counter,
            reloads,
        )?;
        family(
            &mut e,
            "oxrsyncd_workers",
            "Live worker processes, draining generations included.",
            Gauge,
            vec![(vec![], live.len() as u64)],
        )?;
        let restarts = RestartCause::ALL
            .iter()
            .map(|c| {
                (
                    vec![("cause", c.label().to_string())],
                    header.worker_restarts[*c as usize].load(Ordering::Relaxed),
                )
            })
            .collect();
        family(
            &mut e,
            "oxrsyncd_worker_restarts",
            "Workers of the serving generation that died and were replaced.",
            Counter,
            restarts,
        )?;

        family(
            &mut e,
            "oxrsyncd_connections_accepted",
            "Connections taken off the listening socket.",
            Counter,
            vec![(vec![], sum(&all, |r| &r.counters.accepted))],
        )?;
        let refused = Refusal::ALL
            .iter()
            .map(|why| {
                (
                    vec![("reason", why.label().to_string())],
                    sum(&all, |r| &r.counters.refused[*why as usize]),
                )
            })
            .collect();
        family(
            &mut e,
            "oxrsyncd_connections_refused",
            "Connections turned away, by reason.",
            Counter,
            refused,
        )?;
        family(
            &mut e,
            "oxrsyncd_handshakes_in_progress",
            "Connections still in their handshake.",
            Gauge,
            vec![(vec![], sum(&live, |r| &r.gauges.handshakes))],
        )?;

        let mut active = Vec::new();
        let mut sessions = Vec::new();
        let (mut sent, mut received, mut files, mut exits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (bucket, name) in &modules {
            let b = *bucket;
            for d in Direction::ALL {
                let labels = vec![("module", name.clone()), ("direction", d.label().to_string())];
                active.push((labels.clone(), sum(&live, |r| &r.gauges.active[b][d.index()])));
                sessions.push((labels, sum(&all, |r| &r.counters.modules[b].sessions[d.index()])));
            }
            let m = vec![("module", name.clone())];
            sent.push((m.clone(), sum(&all, |r| &r.counters.modules[b].bytes_sent)));
            received.push((m.clone(), sum(&all, |r| &r.counters.modules[b].bytes_received)));
            files.push((m, sum(&all, |r| &r.counters.modules[b].files)));
            for i in 0..=EXIT_CODES.len() {
                let n = sum(&all, |r| &r.counters.modules[b].exit_codes[i]);
                if n != 0 {
                    let code = EXIT_CODES.get(i).map_or("other".to_string(), |c| c.to_string());
                    exits.push((vec![("module", name.clone()), ("code", code)], n));
                }
            }
        }
        family(
            &mut e,
            "oxrsyncd_sessions_active",
            "Sessions transferring now, by module and direction.",
            Gauge,
            active,
        )?;
        family(
            &mut e,
            "oxrsyncd_sessions",
            "Sessions admitted, by module and direction.",
            Counter,
            sessions,
        )?;
        family(&mut e, "oxrsyncd_sent_bytes", "Bytes written to clients, by module.", Counter, sent)?;
        family(
            &mut e,
            "oxrsyncd_received_bytes",
            "Bytes read from clients, by module.",
            Counter,
            received,
        )?;
        family(
            &mut e,
            "oxrsyncd_files_transferred",
            "Files whose data travelled (either way), by module.",
            Counter,
            files,
        )?;
        family(
            &mut e,
            "oxrsyncd_session_exits",
            "Sessions ended, by module and exit code.",
            Counter,
            exits,
        )?;
        histogram(
            &mut e,
            "oxrsyncd_handshake_duration_seconds",
            "From accept to admission.",
            &HANDSHAKE_BOUNDS,
            &all,
            |r| &r.counters.handshake,
        )?;
        histogram(
            &mut e,
            "oxrsyncd_session_duration_seconds",
            "From admission to the session's end.",
            &SESSION_BOUNDS,
            &all,
            |r| &r.counters.session,
        )?;

        if let Some(q) = self.listener.as_ref().and_then(|l| listen_queue::depth(l.as_fd())) {
            family(
                &mut e,
                "oxrsyncd_listen_queue_length",
                "Connections waiting in the listening socket's accept queue.",
                Gauge,
                vec![(vec![], u64::from(q.waiting))],
            )?;
            family(
                &mut e,
                "oxrsyncd_listen_queue_limit",
                "The accept queue's limit (effective listen backlog).",
                Gauge,
                vec![(vec![], u64::from(q.limit))],
            )?;
        }
        if let Some((overflows, drops)) = listen_queue::host_drops() {
            family(
                &mut e,
                "oxrsyncd_host_listen_overflows",
                "Host-wide: connections dropped because an accept queue was full (TcpExt ListenOverflows).",
                Counter,
                vec![(vec![], overflows)],
            )?;
            family(
                &mut e,
                "oxrsyncd_host_listen_drops",
                "Host-wide: connections dropped at a listening socket for any reason (TcpExt ListenDrops).",
                Counter,
                vec![(vec![], drops)],
            )?;
        }
        Ok(())
    }
}
