#!/usr/bin/env bash
# Push throughput: oxrsyncd against stock `rsync --daemon` in the same run,
# same config, same data, same stock client. Each daemon receives into its
# own module directory. Reports each scenario's median wall time for both
# daemons and the ratio (stock / ours: above 1 means we are faster), plus
# the peak RSS of each serving process tree.
#
# usage: tests/bench/push.sh [SIZE_MIB] [SMALL_FILES] [RUNS]
#   defaults: 1024 MiB, 20000 files, 3 runs (median reported)
# Writes the table to stdout and to target/bench/push.md. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
small_files=${2:-20000}
runs=${3:-3}

cargo build --release -q -p oxrsyncd
bin=$PWD/target/release/oxrsyncd
work=$(mktemp -d /tmp/oxrsyncd-pushbench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/src/small" "$work/stock" "$work/ours" target/bench

echo "preparing data: ${size_mib} MiB file, ${small_files} small files" >&2
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/src/big.bin"
python3 - "$work/src/small" "$small_files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(512 + (i * 7919) % 8192))
PY

config() { # module dir, pid file
  printf 'use chroot = no\nuid = root\ngid = root\nmax connections = 0\npid file = %s\n[bench]\n path = %s\n read only = no\n' "$2" "$1"
}
config "$work/stock" "$work/stock.pid" > "$work/stock.conf"
config "$work/ours" "$work/ours.pid" > "$work/ours.conf"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stock_port=$(free_port)
rsync --daemon --no-detach --address=127.0.0.1 --port="$stock_port" --config="$work/stock.conf" &
stock_pid=$!
ours_port=$(free_port)
"$bin" --config="$work/ours.conf" --address=127.0.0.1 --port="$ours_port" --workers=2 2>"$work/ours.log" &
ours_pid=$!
sleep 1

tree_rss() { ps -o rss= --ppid "$1" -p "$1" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
measure() { # daemon_pid port module_dir
  local dpid=$1 port=$2 dst=$3
  local times="" peak=0
  for _ in $(seq "$runs"); do
    DST=$dst eval "$SETUP"
    local start end
    start=$(date +%s.%N)
    rsync "${ARGS[@]}" "$work/src/$SRC" "rsync://127.0.0.1:$port/bench/" >/dev/null &
    local cpid=$!
    while kill -0 "$cpid" 2>/dev/null; do
      local r; r=$(tree_rss "$dpid"); [ "$r" -gt "$peak" ] && peak=$r
      sleep 0.05
    done
    wait "$cpid"
    end=$(date +%s.%N)
    times="$times $(echo "$end - $start" | bc)"
  done
  local median; median=$(echo "$times" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$median $peak"
}

report="target/bench/push.md"
{
  echo "| scenario | stock s | oxrsyncd s | ratio (stock/ours) | stock peak RSS MiB | oxrsyncd peak RSS MiB |"
  echo "|---|---|---|---|---|---|"
} > "$report"
scenario() { # label setup-shell src args...
  local label=$1; SETUP=$2; SRC=$3; shift 3
  ARGS=("$@")
  read -r s_t s_rss < <(measure "$stock_pid" "$stock_port" "$work/stock")
  read -r o_t o_rss < <(measure "$ours_pid" "$ours_port" "$work/ours")
  local ratio; ratio=$(echo "scale=2; $s_t / $o_t" | bc)
  printf '| %s | %.2f | %.2f | %s | %d | %d |\n' "$label" "$s_t" "$o_t" "$ratio" $((s_rss / 1024)) $((o_rss / 1024)) >> "$report"
}
empty='rm -rf "$DST"/* "$DST"/.[!.]* 2>/dev/null || true'
scenario "new ${size_mib} MiB file" "$empty" big.bin -a
scenario "${small_files} small files" "$empty" small -a
# Delta: the module holds a copy with a few bytes changed in the middle.
scenario "delta of ${size_mib} MiB, few bytes changed" \
  "$empty"'; cp "$work/src/big.bin" "$DST/big.bin"; printf xyz | dd of="$DST/big.bin" bs=1 seek=$((size_mib * 524288)) conv=notrunc status=none; touch -d @0 "$DST/big.bin"' \
  big.bin -a --no-whole-file
cat "$report"
