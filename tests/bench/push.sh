#!/usr/bin/env bash
# Push throughput: oxrsyncd against stock `rsync --daemon` in the same run,
# same config, same data, same stock client (method: throughput_lib.sh).
# Each daemon receives into its own module directory. Reports each
# scenario's median wall time for both daemons and the ratio (stock /
# ours: above 1 means we are faster), plus the peak RSS of each serving
# process tree.
#
# usage: tests/bench/push.sh [SIZE_MIB] [SMALL_FILES] [RUNS]
#   defaults: 1024 MiB, 20000 files, 3 runs (median reported)
# Writes the table to stdout and to target/bench/push.md. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/throughput_lib.sh
bench_args "$@"

bench_init pushbench "$size_mib" "$small_files"
mkdir -p "$work/stock" "$work/ours"
daemon_config "$work/stock" "$work/stock.pid" ' read only = no\n' > "$work/stock.conf"
daemon_config "$work/ours" "$work/ours.pid" ' read only = no\n' > "$work/ours.conf"
start_daemons "$work/stock.conf" "$work/ours.conf"

report=target/bench/push.md
report_header "$report"
# Each run pushes into a fresh directory $DST of the module, made ready
# by SETUP.
prepare() { DST=$work/$1/$RUN; mkdir -p "$DST"; eval "$SETUP"; }
cleanup() { rm -rf "$work"/stock/* "$work"/ours/*; }
run_one() {
  timed_run "$(daemon_pid "$1")" rsync "${ARGS[@]}" "$work/src/$SRC" "rsync://127.0.0.1:$(daemon_port "$1")/bench/$RUN/"
}
scenario "new ${size_mib} MiB file" : big.bin -a
scenario "${small_files} small files" : small -a
# Delta: the module holds a copy with a few bytes changed in the middle.
scenario "delta of ${size_mib} MiB, few bytes changed" \
  'cp "$work/src/big.bin" "$DST/big.bin"; printf xyz | dd of="$DST/big.bin" bs=1 seek=$((size_mib * 524288)) conv=notrunc status=none; touch -d @0 "$DST/big.bin"' \
  big.bin -a --no-whole-file
cat "$report"
