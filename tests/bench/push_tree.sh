#!/usr/bin/env bash
# A big tree pushed to oxrsyncd and to stock `rsync --daemon` in the same
# run (method: throughput_lib.sh): with incremental recursion (what a 3.x
# client does by default) and without it (--no-inc-recursive). For each:
# the time until the first file is in place in the module, the total
# time, the daemon's CPU and the peak RSS of each serving process tree.
# Incremental recursion exists for the first and the last: the receiving
# daemon starts writing after one directory's list, not the whole tree's,
# and holds the lists in flight, not the tree.
#
# usage: tests/bench/push_tree.sh [FILES] [RUNS]
#   defaults: 200000 files (in directories of 100, 0 to 300 bytes each), 3 runs
# The tree is made once and kept in target/bench-data/. Writes the table
# to stdout and to target/bench/push_tree.md. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/throughput_lib.sh
files=${1:-200000}
runs=${2:-3}

cargo build --release -q -p oxrsyncd
bin=$PWD/target/release/oxrsyncd
data=$PWD/target/bench-data/tree-$files
kept_tree "$data" "$files" 10000

work=$(mktemp -d /tmp/oxrsyncd-pushtree.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/stock" "$work/ours" target/bench
daemon_config "$work/stock" "$work/stock.pid" ' read only = no\n' > "$work/stock.conf"
daemon_config "$work/ours" "$work/ours.pid" ' read only = no\n' > "$work/ours.conf"
start_daemons "$work/stock.conf" "$work/ours.conf"

# first_file DIR OUT: writes to OUT the seconds from now until a regular
# file (not a temporary dot file) first stands anywhere under DIR.
first_file() {
  python3 - "$1" "$2" <<'PY' &
import os, sys, time
root, out = sys.argv[1], sys.argv[2]
start = time.monotonic()
def found(d):
    try:
        entries = list(os.scandir(d))
    except OSError:
        return False
    for e in entries:
        if e.is_file(follow_symlinks=False) and not e.name.startswith("."):
            return True
    return any(found(e.path) for e in entries if e.is_dir(follow_symlinks=False))
while time.monotonic() - start < 3600:
    if found(root):
        break
    time.sleep(0.005)
open(out, "w").write("%.3f\n" % (time.monotonic() - start))
PY
}

report=target/bench/push_tree.md
{
  echo "| push of $files files | stock first file s | oxrsyncd first file s | stock total s | oxrsyncd total s | ratio (stock/ours) | stock daemon CPU s | oxrsyncd daemon CPU s | stock peak RSS MiB | oxrsyncd peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$report"

for mode in incremental no-inc-recursive; do
  extra=()
  [ "$mode" = no-inc-recursive ] && extra=(--no-inc-recursive)
  declare -A times=() firsts=() cpus=() peaks=()
  for n in $(seq 0 "$runs"); do
    for who in stock ours; do
      # A fresh directory per run; trees are removed only between modes
      # (deleting 200,000 files just before a run slows that run several
      # times over, whichever daemon it is).
      dst=$work/$who/$mode-run$n
      mkdir -p "$dst"; sync
      first_file "$dst" "$work/first"
      poller=$!
      read -r t r c _ < <(timed_run "$(daemon_pid "$who")" rsync -a "${extra[@]}" "$data/" "rsync://127.0.0.1:$(daemon_port "$who")/bench/$mode-run$n/")
      wait "$poller" || true
      # Run 0 is the warm-up.
      [ "$n" = 0 ] && continue
      times[$who]="${times[$who]:-} $t"; firsts[$who]="${firsts[$who]:-} $(cat "$work/first")"
      cpus[$who]="${cpus[$who]:-} $c"; [ "$r" -gt "${peaks[$who]:-0}" ] && peaks[$who]=$r
    done
  done
  s_t=$(echo "${times[stock]}" | median); o_t=$(echo "${times[ours]}" | median)
  printf '| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %d |\n' "$mode" \
    "$(echo "${firsts[stock]}" | median)" "$(echo "${firsts[ours]}" | median)" "$s_t" "$o_t" \
    "$(echo "scale=2; $s_t / $o_t" | bc)" "$(echo "${cpus[stock]}" | median)" "$(echo "${cpus[ours]}" | median)" \
    $((peaks[stock] / 1024)) $((peaks[ours] / 1024)) >> "$report"
  unset times firsts cpus peaks
  rm -rf "$work"/stock/* "$work"/ours/*; sync; sleep 5
done
cat "$report"
