#!/usr/bin/env bash
# Mirror scale: a big tree pulled from oxrsyncd and from stock `rsync
# --daemon` in the same run (method: throughput_lib.sh), the cases a
# mirror's downstreams make: an unchanged re-sync with and without
# incremental recursion, a `-c` re-sync, N clients re-syncing at once, and
# the first copy of a tenth of the tree. For each: wall time, the daemon's
# CPU, its peak RSS, and the client's CPU (which side set the pace).
#
# usage: [SCENARIOS=REGEX] tests/bench/scale.sh [FILES] [RUNS] [CONCURRENT...]
#   defaults: 1000000 files (10 top directories, directories of 100 files
#   of 0 to 300 bytes), 3 runs (median), 16 and 64 concurrent clients
# The tree is made once and kept in target/bench-data/ (with a pulled
# copy, the "unchanged" destination). Writes the table to stdout and to
# target/bench/scale.md. Loopback only; not part of CI (a 1,000,000-file
# run takes most of an hour on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/throughput_lib.sh
files=${1:-1000000}
runs=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
concurrency=("${@:-16 64}")
[ "${#concurrency[@]}" = 1 ] && read -r -a concurrency <<< "${concurrency[0]}"

cargo build --release -q -p oxrsyncd
bin=$PWD/target/release/oxrsyncd
data=$PWD/target/bench-data/scale-$files
# Ten top directories: the tenth the last scenario copies is t0/.
kept_tree "$data" "$files" $(( (files + 9) / 10 ))
copy=$data.copy
if [ ! -f "$copy.done" ]; then
  echo "copying it once: the unchanged destination of the re-syncs" >&2
  rm -rf "$copy"; cp -a "$data" "$copy"; touch "$copy.done"
fi

work=$(mktemp -d /tmp/oxrsyncd-scale.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
daemon_config "$data" "$work/stock.pid" > "$work/stock.conf"
daemon_config "$data" "$work/ours.pid" > "$work/ours.conf"
# N clients from one address at once: the pre-auth budget would count them.
OURS_DPARAMS="max handshakes per host = 0"
start_daemons "$work/stock.conf" "$work/ours.conf"
url() { echo "rsync://127.0.0.1:$(daemon_port "$1")/bench/$2"; }

# concurrent N WHO ARGS...: N clients re-syncing the copy at once.
concurrent() {
  local n=$1 who=$2; shift 2
  local pids=() i
  for i in $(seq "$n"); do rsync "$@" "$(url "$who" "")" "$copy/" >/dev/null & pids+=($!); done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  return $rc
}

report=target/bench/scale.md
mkdir -p target/bench
report_header "$report"
# SCENARIOS: a grep -E pattern; only rows whose label matches run.
wanted() { echo "$1" | grep -qE -- "${SCENARIOS:-.}"; }
scenario_if() { if wanted "$1"; then scenario "$@"; fi; }
cleanup() { rm -rf "$work"/first-*; }

# Re-syncs of the unchanged copy (nothing to transfer: the lists and the
# comparison are the whole cost).
prepare() { :; }
run_one() { timed_run "$(daemon_pid "$1")" rsync "${ARGS[@]}" "$(url "$1" "")" "$copy/"; }
scenario_if "unchanged re-sync (incremental)" - - -a
scenario_if "unchanged re-sync (--no-inc-recursive)" - - -a --no-inc-recursive
scenario_if "-c re-sync of the unchanged tree" - - -a -c

for n in "${concurrency[@]}"; do
  run_one() { timed_run "$(daemon_pid "$1")" concurrent "$N" "$1" -a; }
  N=$n scenario_if "$n concurrent unchanged re-syncs" - - -a
done

# The first copy of a tenth of the tree, into a fresh directory each run.
prepare() { mkdir -p "$work/first-$RUN"; }
run_one() { timed_run "$(daemon_pid "$1")" rsync -a "$(url "$1" t0/)" "$work/first-$RUN/"; }
scenario_if "first copy of a 10 % subtree" - - -a

cat "$report"
