#!/usr/bin/env bash
# Before and after: this build against an earlier commit's, in the same
# run, on the same data, with runs interleaved (for a refactor that must
# not cost speed or memory).
#
# usage: tests/bench/compare_builds.sh BASELINE_COMMIT [SIZE_MIB] [SMALL_FILES] [RUNS] [HOLD]
#   defaults: 256 MiB, 5000 files, 3 runs (median), a hold of 10000 sessions
#
# 1. builds BASELINE_COMMIT in a scratch worktree (its own target dir,
#    seeded from ours so only the workspace crates rebuild);
# 2. runs pull.sh and push.sh with that build in stock's place
#    (BASELINE_BIN): ratio = baseline / this build, above 1 is faster now;
# 3. holds HOLD idle sessions against each build in turn (the load tool's
#    `hold`: time to greeting, the daemon tree's memory, a fresh listing
#    while all are held).
# Writes target/bench/compare.md. Loopback only; every step is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
commit=${1:?usage: compare_builds.sh BASELINE_COMMIT [SIZE_MIB] [SMALL_FILES] [RUNS] [HOLD]}
size=${2:-256}; files=${3:-5000}; runs=${4:-3}; hold=${5:-10000}

out=target/bench
mkdir -p "$out"
base_target=$PWD/$out/baseline-target
if [ ! -d "$base_target/release" ]; then
  mkdir -p "$base_target"
  cp -a target/release "$base_target/" 2>/dev/null || true
fi
tree=$(mktemp -d /tmp/oxrsyncd-baseline.XXXXXX)
trap 'git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"' EXIT
git worktree add --detach -q "$tree" "$commit"
echo "building the baseline ($(git rev-parse --short "$commit"))" >&2
(cd "$tree" && CARGO_TARGET_DIR=$base_target cargo build --release -q -p oxrsyncd)
baseline=$base_target/release/oxrsyncd
cargo build --release -q -p oxrsyncd -p oxrsyncd-load
current=$PWD/target/release/oxrsyncd
load=$PWD/target/release/oxrsyncd-load

report=$out/compare.md
{
  echo "Baseline: \`$(git rev-parse --short "$commit")\`; this build: \`$(git rev-parse --short HEAD)\`$(git diff --quiet || echo ' (with uncommitted changes)')."
  echo
  echo "Ratio = baseline time / this build's time: above 1 means this build is faster."
  echo
  echo "### Pull ($size MiB file, $files small files, median of $runs)"
  echo
} > "$report"
BASELINE_BIN=$baseline tests/bench/pull.sh "$size" "$files" "$runs" >&2
cat "$out/pull.md" >> "$report"
{ echo; echo "### Push ($size MiB file, $files small files, median of $runs)"; echo; } >> "$report"
BASELINE_BIN=$baseline tests/bench/push.sh "$size" "$files" "$runs" >&2
cat "$out/push.md" >> "$report"

# The hold: each build alone on the machine, the same config.
work=$(mktemp -d /tmp/oxrsyncd-compare.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"' EXIT
mkdir -p "$work/src"
printf 'use chroot = no\nreverse lookup = no\nlisten backlog = 4096\nmax connections = 0\n[bench]\n path = %s\n' "$work/src" > "$work/rsyncd.conf"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
{
  echo
  echo "### Hold: $hold idle sessions (1000 new a second)"
  echo
  echo "| build | held | greeting p50 ms | greeting p99 ms | daemon RSS MiB | daemon PSS MiB | fresh listing ms |"
  echo "|---|---|---|---|---|---|---|"
} >> "$report"
for who in baseline current; do
  bin=$baseline; [ "$who" = current ] && bin=$current
  port=$(free_port)
  # A build with the pre-auth budget would refuse most of the hold (a few
  # addresses, thousands of idle handshakes): off, where the build has it.
  budget=()
  if "$bin" --config="$work/rsyncd.conf" -M "max handshakes per host=0" --check-config >/dev/null 2>&1; then
    budget=(-M "max handshakes per host=0")
  fi
  "$bin" --config="$work/rsyncd.conf" --address=127.0.0.1 --port="$port" --no-detach \
    -M "handshake timeout=120" "${budget[@]}" -M "pid file=$work/$who.pid" 2>"$work/$who.log" &
  pid=$!
  wait_port "$port"
  timeout 600 "$load" --addr "127.0.0.1:$port" --daemon-pid "$pid" hold "$hold" --rate 1000 --hold-for 1 > "$work/$who.json" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  sleep 2
  python3 - "$work/$who.json" "$who" >> "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g = r.get("time_to_greeting") or {}
d = r.get("daemon") or {}
def ms(v):
    return "-" if v is None else f"{v:.1f}"
rss, pss = d.get("rss_kib", 0) / 1024, d.get("pss_kib", 0) / 1024
print(f"| {sys.argv[2]} | {r.get('held')} / {r.get('requested')} | {ms(g.get('p50_ms'))} | {ms(g.get('p99_ms'))} | {rss:.0f} | {pss:.0f} | {ms(r.get('fresh_listing_ms'))} |")
PY
done
cat "$report"
