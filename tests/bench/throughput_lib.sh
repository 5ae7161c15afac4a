# Shared by pull.sh and push.sh (sourced, not run): builds the release
# binary, makes the test data, starts stock `rsync --daemon` and oxrsyncd
# on loopback, and times one stock-client command against each.
#
# Fairness: the two daemons' runs alternate (stock, ours, stock, ours...)
# after one untimed warm-up run each; every run writes into a fresh
# directory ($RUN names it) and starts after `sync`, and old runs' trees are
# removed only between scenarios: on ext4, deleting thousands of files
# just before a run slowed that run by up to 5x, whichever daemon it was.
# The median of RUNS is reported, with the peak RSS of the serving
# process tree.

# bench_init NAME SIZE_MIB SMALL_FILES: sets $bin, $work and the data in
# $work/src (big.bin and small/).
bench_init() {
  local name=$1 size_mib=$2 small_files=$3
  cargo build --release -q -p oxrsyncd
  bin=$PWD/target/release/oxrsyncd
  work=$(mktemp -d "/tmp/oxrsyncd-$name.XXXXXX")
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
}

# daemon_config MODULE_DIR PID_FILE [EXTRA_MODULE_LINES]
daemon_config() {
  printf 'use chroot = no\nuid = root\ngid = root\nmax connections = 0\npid file = %s\n[bench]\n path = %s\n%b' "$2" "$1" "${3:-}"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_daemons STOCK_CONF OURS_CONF: sets $stock_pid $stock_port $ours_pid $ours_port.
start_daemons() {
  stock_port=$(free_port)
  rsync --daemon --no-detach --address=127.0.0.1 --port="$stock_port" --config="$1" &
  stock_pid=$!
  ours_port=$(free_port)
  "$bin" --config="$2" --address=127.0.0.1 --port="$ours_port" --workers=2 2>"$work/ours.log" &
  ours_pid=$!
  sleep 1
}

# Peak RSS (KiB) of a process tree while a command runs.
tree_rss() { ps -o rss= --ppid "$1" -p "$1" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }

# timed_run DAEMON_PID COMMAND...: prints "seconds peak_rss_kib".
timed_run() {
  local dpid=$1; shift
  local peak=0 start end
  sync
  start=$(date +%s.%N)
  "$@" >/dev/null &
  local cpid=$!
  while kill -0 "$cpid" 2>/dev/null; do
    local r; r=$(tree_rss "$dpid"); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.05
  done
  wait "$cpid"
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) $peak"
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# report_header FILE
report_header() {
  {
    echo "| scenario | stock s | oxrsyncd s | ratio (stock/ours) | stock peak RSS MiB | oxrsyncd peak RSS MiB |"
    echo "|---|---|---|---|---|---|"
  } > "$1"
}

# compare REPORT LABEL RUNS: calls `prepare stock|ours` and `run_one
# stock|ours` (defined by the caller; run_one prints "seconds rss") RUNS
# times each, alternating, and appends the table row. $RUN is a fresh
# name for each run; `cleanup` (the caller's) removes all runs' trees.
compare() {
  local report=$1 label=$2 runs=$3
  local s_times="" o_times="" s_peak=0 o_peak=0 t r
  for who in stock ours; do
    RUN=warmup-$who; prepare "$who"; run_one "$who" >/dev/null
  done
  for n in $(seq "$runs"); do
    for who in stock ours; do
      RUN=run$n-$who; prepare "$who"
      read -r t r < <(run_one "$who")
      if [ "$who" = stock ]; then
        s_times="$s_times $t"; [ "$r" -gt "$s_peak" ] && s_peak=$r
      else
        o_times="$o_times $t"; [ "$r" -gt "$o_peak" ] && o_peak=$r
      fi
    done
  done
  cleanup
  sync
  local s_t o_t ratio
  s_t=$(echo "$s_times" | median)
  o_t=$(echo "$o_times" | median)
  ratio=$(echo "scale=2; $s_t / $o_t" | bc)
  printf '| %s | %.2f | %.2f | %s | %d | %d |\n' "$label" "$s_t" "$o_t" "$ratio" $((s_peak / 1024)) $((o_peak / 1024)) >> "$report"
}
