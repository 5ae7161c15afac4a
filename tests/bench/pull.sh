#!/usr/bin/env bash
# Pull throughput: oxrsyncd against stock `rsync --daemon` in the same run,
# same config, same data, same stock client (method: throughput_lib.sh).
# Reports each scenario's median wall time for both daemons and the ratio
# (stock / ours: above 1 means we are faster), plus the peak RSS of the
# serving process tree.
#
# usage: tests/bench/pull.sh [SIZE_MIB] [SMALL_FILES] [RUNS]
#   defaults: 1024 MiB, 20000 files, 3 runs (median reported)
# Writes the table to stdout and to target/bench/pull.md. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/throughput_lib.sh
bench_args "$@"

bench_init pullbench "$size_mib" "$small_files"
daemon_config "$work/src" "$work/stock.pid" > "$work/rsyncd.conf"
daemon_config "$work/src" "$work/ours.pid" > "$work/ours.conf"
start_daemons "$work/rsyncd.conf" "$work/ours.conf"

report=target/bench/pull.md
report_header "$report"
# Moves the ctime of every file under $1, keeping content and times.
touch_ctimes() {
  python3 - "$1" <<'PY'
import os, sys
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(d, f)
        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
}
# Each run pulls into a fresh $DST, made ready by SETUP.
prepare() { DST=$work/dst/$RUN; mkdir -p "$DST"; eval "$SETUP"; }
cleanup() { rm -rf "$work/dst"; }
# $SESSIONS (default 1) back-to-back pulls make one timed run.
pull_sessions() {
  local i
  for i in $(seq "${SESSIONS:-1}"); do rsync "$@" || return; done
}
run_one() {
  timed_run "$(daemon_pid "$1")" pull_sessions "${ARGS[@]}" "rsync://127.0.0.1:$(daemon_port "$1")/bench/$SRC" "$DST/"
}
scenario "new ${size_mib} MiB file" : big.bin -a --no-inc-recursive
scenario "${small_files} small files" : small/ -a --no-inc-recursive
# Delta: a copy with a few bytes changed in the middle.
scenario "delta of ${size_mib} MiB, few bytes changed" \
  'cp "$work/src/big.bin" "$DST/big.bin"; printf xyz | dd of="$DST/big.bin" bs=1 seek=$((size_mib * 524288)) conv=notrunc status=none; touch -d @0 "$DST/big.bin"' \
  big.bin -a --no-inc-recursive --no-whole-file
# -c twice: as a mirror sees it (the tree was pulled with -c before, so
# oxrsyncd's checksum cache has its digests; each worker's first -c pull
# reads the files), then with every file's ctime moved just before each
# run (content and mtime kept), so no cache can answer and the files are
# read and hashed as stock always does.
# A mirror's routine re-sync: nothing changed, so the daemon's file list
# and the two sides' round trips are the whole cost.
scenario "${small_files} small files, unchanged" 'cp -a "$work/src/small/." "$DST/"' small/ -a
# Many short sessions, as a fleet of cron jobs makes them: the handshake's
# round trips dominate.
SESSIONS=50 scenario "50 one-file sessions in a row" : small/d000/f000000 -a
scenario "-c of an unchanged tree, pulled before" 'cp -a "$work/src/small/." "$DST/"' small/ -a -c --no-inc-recursive
scenario "-c of an unchanged tree, just touched" \
  'cp -a "$work/src/small/." "$DST/"; touch_ctimes "$work/src/small"' small/ -a -c --no-inc-recursive
cat "$report"
