#!/usr/bin/env bash
# The cost of metrics: oxrsyncd holding W idle sessions (default 10,000)
# with `metrics address` off and on, alternating, and the latency of
# `/metrics` (100 scrapes, 50 ms apart) once everything is held. Prints a
# markdown table (docs/benchmarks.md, "Metrics").
#
# usage: tests/bench/metrics.sh [SESSIONS] [ROUNDS]
# Loopback only; every step bounded by `timeout`. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/throughput_lib.sh # free_port, wait_port
sessions=${1:-10000}
rounds=${2:-2}
cargo build --release -q -p oxrsyncd -p oxrsyncd-load
bin=$PWD/target/release/oxrsyncd
load=$PWD/target/release/oxrsyncd-load
work=$(mktemp -d /tmp/oxrsyncd-metrics.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/src"
cat > "$work/rsyncd.conf" <<CONF
use chroot = no
reverse lookup = no
listen backlog = 4096
[bench]
 path = $work/src
CONF

scrape_loop() { # PORT OUT: 100 scrapes 50 ms apart, once everything is held
  # The all-at-once arrival is over in a few seconds; scraping (or even
  # polling) during it would only compete with it for the two cores.
  sleep 12
  for _ in $(seq 100); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1/metrics" >> "$2" || echo fail >> "$2"
    sleep 0.05
  done
}

printf '| run | metrics | held | greeting p50 | greeting p99 | fresh listing | daemon PSS | /metrics p50 | /metrics p99 | /metrics max | scrapes |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for round in $(seq "$rounds"); do
  for mode in off on; do
    port=$(free_port); mport=$(free_port)
    extra=()
    [ "$mode" = on ] && extra=(-M "metrics address=127.0.0.1:$mport")
    # The hold is a few addresses holding thousands of idle handshakes:
    # exactly what the pre-auth budget refuses, so it is off here.
    "$bin" --config="$work/rsyncd.conf" --address=127.0.0.1 --port="$port" --no-detach \
      -M "handshake timeout=120" -M "max handshakes per host=0" "${extra[@]}" 2>"$work/log-$mode" &
    pid=$!; pids+=("$pid"); wait_port "$port"
    scrapes="$work/scrapes-$round-$mode"; : > "$scrapes"
    if [ "$mode" = on ]; then
      # Scraped only once everything is held (the all-at-once arrival keeps
      # both cores busy for a few seconds).
      scrape_loop "$mport" "$scrapes" & scraper=$!
    fi
    timeout 600 "$load" --addr "127.0.0.1:$port" --daemon-pid "$pid" hold "$sessions" --hold-for 20 > "$work/hold.json" || true
    [ "$mode" = on ] && { wait "$scraper" 2>/dev/null || true; }
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$work/hold.json" "$scrapes" "$round" "$mode" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
lat = sorted(float(x) * 1000 for x in open(sys.argv[2]).read().split() if x != "fail")
fails = sum(1 for x in open(sys.argv[2]).read().split() if x == "fail")
pct = lambda p: f"{lat[round(p * (len(lat) - 1))]:.2f} ms" if lat else "-"
d = h.get("daemon") or {}
fresh = h.get("fresh_listing_ms")
print(f"| {sys.argv[3]} | {sys.argv[4]} | {h['held']} | {h['time_to_greeting']['p50_ms']:.2f} ms | {h['time_to_greeting']['p99_ms']:.2f} ms | "
      f"{fresh:.1f} ms | {d.get('pss_kib', 0) / 1024:.0f} MiB | {pct(0.5)} | {pct(0.99)} | {(f'{lat[-1]:.2f} ms' if lat else '-')} | "
      f"{len(lat)}{f' ({fails} failed)' if fails else ''} |" if fresh is not None else f"| {sys.argv[3]} | {sys.argv[4]} | {h['held']} | fresh listing failed |")
PY
    sleep 2
  done
done
