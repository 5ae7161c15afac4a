#!/usr/bin/env bash
# Pull throughput: oxrsyncd against stock `rsync --daemon` in the same run,
# same config, same data, same stock client. Reports each scenario's wall
# time for both daemons and the ratio (stock / ours: above 1 means we are
# faster), plus the peak RSS of the serving process tree.
#
# usage: tests/bench/pull.sh [SIZE_MIB] [SMALL_FILES] [RUNS]
#   defaults: 1024 MiB, 20000 files, 3 runs (median reported)
# Writes the table to stdout and to target/bench/pull.md. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
small_files=${2:-20000}
runs=${3:-3}

cargo build --release -q -p oxrsyncd
bin=$PWD/target/release/oxrsyncd
work=$(mktemp -d /tmp/oxrsyncd-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/src/small" target/bench

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

conf="$work/rsyncd.conf"
cat > "$conf" <<CONF
use chroot = no
uid = root
gid = root
max connections = 0
pid file = $work/stock.pid
[bench]
 path = $work/src
CONF
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stock_port=$(free_port)
rsync --daemon --no-detach --address=127.0.0.1 --port="$stock_port" --config="$conf" &
stock_pid=$!
ours_port=$(free_port)
"$bin" --config="$conf" --address=127.0.0.1 --port="$ours_port" --workers=2 -M "pid file=$work/ours.pid" 2>"$work/ours.log" &
ours_pid=$!
sleep 1

# Peak RSS (KiB) of a process tree while a command runs.
tree_rss() { ps -o rss= --ppid "$1" -p "$1" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
measure() { # daemon_pid port label args...
  local dpid=$1 port=$2; shift 2
  local best="" peak=0
  for _ in $(seq "$runs"); do
    eval "$SETUP"
    local start end
    start=$(date +%s.%N)
    rsync "$@" "rsync://127.0.0.1:$port/bench/$SRC" "$work/dst/" >/dev/null &
    local cpid=$!
    while kill -0 "$cpid" 2>/dev/null; do
      local r; r=$(tree_rss "$dpid"); [ "$r" -gt "$peak" ] && peak=$r
      sleep 0.05
    done
    wait "$cpid"
    end=$(date +%s.%N)
    best="$best $(echo "$end - $start" | bc)"
  done
  local median; median=$(echo "$best" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$median $peak"
}

report="target/bench/pull.md"
{
  echo "| scenario | stock s | oxrsyncd s | ratio (stock/ours) | stock peak RSS MiB | oxrsyncd peak RSS MiB |"
  echo "|---|---|---|---|---|---|"
} > "$report"
scenario() { # label setup-shell src args...
  local label=$1; SETUP=$2; SRC=$3; shift 3
  read -r s_t s_rss < <(measure "$stock_pid" "$stock_port" "$@")
  read -r o_t o_rss < <(measure "$ours_pid" "$ours_port" "$@")
  local ratio; ratio=$(echo "scale=2; $s_t / $o_t" | bc)
  printf '| %s | %.2f | %.2f | %s | %d | %d |\n' "$label" "$s_t" "$o_t" "$ratio" $((s_rss / 1024)) $((o_rss / 1024)) >> "$report"
}
fresh='rm -rf "$work/dst"; mkdir -p "$work/dst"'
scenario "new ${size_mib} MiB file" "$fresh" big.bin -a --no-inc-recursive
scenario "${small_files} small files" "$fresh" small/ -a --no-inc-recursive
# Delta: a copy with a few bytes changed in the middle.
scenario "delta of ${size_mib} MiB, few bytes changed" \
  'rm -rf "$work/dst"; mkdir -p "$work/dst"; cp "$work/src/big.bin" "$work/dst/big.bin"; printf xyz | dd of="$work/dst/big.bin" bs=1 seek=$((size_mib * 524288)) conv=notrunc status=none; touch -d @0 "$work/dst/big.bin"' \
  big.bin -a --no-inc-recursive --no-whole-file
scenario "-c of an unchanged tree" 'rm -rf "$work/dst"; mkdir -p "$work/dst"; cp -a "$work/src/small/." "$work/dst/"' small/ -a -c --no-inc-recursive
cat "$report"
