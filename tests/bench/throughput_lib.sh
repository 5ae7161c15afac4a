# Shared by pull.sh and push.sh (sourced, not run): builds the release
# binary, makes the test data, starts stock `rsync --daemon` and oxrsyncd
# on loopback, and times one stock-client command against each.
#
# Fairness: the two daemons' runs alternate (stock, ours, stock, ours...)
# after one untimed warm-up run each; every run writes into a fresh
# directory ($RUN names it) and starts after `sync`, and old runs' trees are
# removed only between scenarios: on ext4, deleting thousands of files
# just before a run slowed that run by up to 5x, whichever daemon it was.
# The median of RUNS is reported, with the CPU time the daemon used for
# the run (its process tree's, from /proc) and the peak RSS of the serving
# process tree.

# bench_args [SIZE_MIB] [SMALL_FILES] [RUNS]: the scripts' arguments
# (defaults 1024 MiB, 20000 files, 3 runs) as $size_mib $small_files $runs.
bench_args() {
  size_mib=${1:-1024}
  small_files=${2:-20000}
  runs=${3:-3}
}

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
# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# kept_tree DIR FILES PER_TOP: a tree of FILES small files (0 to 300
# bytes) in directories of 100, PER_TOP files under each top directory
# (DIR/tN/dNNNNN/fNNNNNNN), made once: DIR.done marks it complete.
kept_tree() {
  [ -f "$1.done" ] && return 0
  echo "making $2 files in $1 (kept for later runs)" >&2
  rm -rf "$1"
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, n, per_top = sys.argv[1], int(sys.argv[2]), max(1, int(sys.argv[3]))
for i in range(n):
    d = os.path.join(root, "t%d" % (i // per_top), "d%05d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%07d" % i), "wb") as f:
        f.write(b"x" * ((i * 7919) % 301))
PY
  touch "$1.done"
}

# start_daemons STOCK_CONF OURS_CONF: sets $stock_pid $stock_port $ours_pid $ours_port.
# With BASELINE_BIN set, that oxrsyncd binary (an earlier build) takes
# stock's place: the "stock" columns are then the baseline build, the
# ratio baseline / this build (tests/bench/compare_builds.sh).
start_daemons() {
  stock_port=$(free_port)
  if [ -n "${BASELINE_BIN:-}" ]; then
    "$BASELINE_BIN" --config="$1" --address=127.0.0.1 --port="$stock_port" --workers=2 2>"$work/baseline.log" &
  else
    rsync --daemon --no-detach --address=127.0.0.1 --port="$stock_port" --config="$1" &
  fi
  stock_pid=$!
  ours_port=$(free_port)
  # OURS_DPARAMS: extra `-M name=value` overrides for oxrsyncd only, one per line.
  local extra=()
  while IFS= read -r m; do [ -n "$m" ] && extra+=(-M "$m"); done <<< "${OURS_DPARAMS:-}"
  "$bin" --config="$2" --address=127.0.0.1 --port="$ours_port" --workers=2 "${extra[@]}" 2>"$work/ours.log" &
  ours_pid=$!
  sleep 1
}

# The port and the pid of daemon `stock` or `ours`.
daemon_port() { if [ "$1" = stock ]; then echo "$stock_port"; else echo "$ours_port"; fi; }
daemon_pid() { if [ "$1" = stock ]; then echo "$stock_pid"; else echo "$ours_pid"; fi; }

# Peak RSS (KiB) of a process tree while a command runs.
tree_rss() { ps -o rss= --ppid "$1" -p "$1" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }

# CPU time (clock ticks) the daemon's process tree has used: its processes'
# user+system time plus that of the children they reaped (stock's
# per-connection children are reaped by the listener when they end).
tree_cpu() {
  local pids; pids=$(ps -o pid= --ppid "$1" -p "$1" 2>/dev/null)
  local p total=0
  for p in $pids; do
    # Fields 14-17 of /proc/PID/stat, counted after the ")" of the name.
    local t; t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13+$14+$15}')
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

# reaped_cpu FILE: the CPU seconds (user + system) of the children this
# shell has reaped, from the second line of bash's `times` (e.g. "0m0.150s
# 0m1.430s"), written to FILE. `times` must not run in a pipeline or a
# command substitution: those are forked shells with no children of their own.
reaped_cpu() {
  times > "$1"
  sed -n 2p "$1" | awk '{
    s = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
    printf "%.3f\n", s
  }' > "$1.cpu"
  mv "$1.cpu" "$1"
}

# timed_run DAEMON_PID COMMAND...: prints "seconds peak_rss_kib
# daemon_cpu_seconds client_cpu_seconds". The client's CPU (its processes'
# user + system time) shows which side set the pace: a client busy for
# nearly the whole wall time leaves the daemon nothing to win.
timed_run() {
  local dpid=$1; shift
  local peak=0 start end cpu0 cpu1
  local client_cpu; client_cpu=$(mktemp)
  sync
  cpu0=$(tree_cpu "$dpid")
  start=$(date +%s.%N)
  ( "$@" >/dev/null; rc=$?; reaped_cpu "$client_cpu"; exit $rc ) &
  local cpid=$!
  while kill -0 "$cpid" 2>/dev/null; do
    local r; r=$(tree_rss "$dpid"); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.05
  done
  wait "$cpid"
  end=$(date +%s.%N)
  # Let stock's listener reap the session's process first.
  sleep 0.2
  cpu1=$(tree_cpu "$dpid")
  echo "$(echo "$end - $start" | bc) $peak $(echo "scale=3; ($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc) $(cat "$client_cpu")"
  rm -f "$client_cpu"
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# report_header FILE
report_header() {
  {
    local b=${BASELINE_BIN:+baseline}; b=${b:-stock}
    echo "| scenario | $b s | oxrsyncd s | ratio ($b/ours) | $b daemon CPU s | oxrsyncd daemon CPU s | CPU ratio ($b/ours) | client CPU s ($b / oxrsyncd runs) | $b peak RSS MiB | oxrsyncd peak RSS MiB |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
  } > "$1"
}

# compare REPORT LABEL RUNS: calls `prepare stock|ours` and `run_one
# stock|ours` (defined by the caller; run_one prints "seconds rss") RUNS
# times each, alternating, and appends the table row. $RUN is a fresh
# name for each run; `cleanup` (the caller's) removes all runs' trees.
compare() {
  local report=$1 label=$2 runs=$3
  local s_times="" o_times="" s_cpus="" o_cpus="" s_clients="" o_clients="" s_peak=0 o_peak=0 t r c k
  for who in stock ours; do
    RUN=warmup-$who; prepare "$who"; run_one "$who" >/dev/null
  done
  for n in $(seq "$runs"); do
    for who in stock ours; do
      RUN=run$n-$who; prepare "$who"
      read -r t r c k < <(run_one "$who")
      if [ "$who" = stock ]; then
        s_times="$s_times $t"; s_cpus="$s_cpus $c"; s_clients="$s_clients $k"; [ "$r" -gt "$s_peak" ] && s_peak=$r
      else
        o_times="$o_times $t"; o_cpus="$o_cpus $c"; o_clients="$o_clients $k"; [ "$r" -gt "$o_peak" ] && o_peak=$r
      fi
    done
  done
  cleanup
  sync
  local s_t o_t ratio s_c o_c cpu_ratio
  s_t=$(echo "$s_times" | median)
  o_t=$(echo "$o_times" | median)
  ratio=$(echo "scale=2; $s_t / $o_t" | bc)
  s_c=$(echo "$s_cpus" | median)
  o_c=$(echo "$o_cpus" | median)
  cpu_ratio=$(if [ "$(echo "$o_c > 0" | bc)" = 1 ]; then echo "scale=2; $s_c / $o_c" | bc; else echo "-"; fi)
  local s_k o_k
  s_k=$(echo "$s_clients" | median)
  o_k=$(echo "$o_clients" | median)
  printf '| %s | %.2f | %.2f | %s | %.2f | %.2f | %s | %.2f / %.2f | %d | %d |\n' "$label" "$s_t" "$o_t" "$ratio" "$s_c" "$o_c" "$cpu_ratio" "$s_k" "$o_k" $((s_peak / 1024)) $((o_peak / 1024)) >> "$report"
}

# scenario LABEL SETUP SRC ARGS...: one row of $report, $runs runs each;
# the caller's prepare/run_one read $SETUP, $SRC and ARGS.
scenario() {
  local label=$1; SETUP=$2; SRC=$3; shift 3; ARGS=("$@")
  compare "$report" "$label" "$runs"
}
