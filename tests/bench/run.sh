#!/usr/bin/env bash
# The whole benchmark in one command: oxrsyncd (async listener, and
# blocking listener) against stock `rsync --daemon`, same config, same data,
# same loopback, same run. Writes docs/benchmarks.md: the machine, the
# commands, a table per scenario, and the verdict on each trigger of the
# accept-path design (which decides `use async listener`'s default).
#
# usage: tests/bench/run.sh            # W100, W1k, W10k hold; W100, W1k pull
#        FULL=1 tests/bench/run.sh     # also W10k pulls and 1 GiB throughput
#        QUICK=1 tests/bench/run.sh    # W100/W1k only, small throughput run
# Every run is bounded (timeout per step); loopback only. Needs root for
# the stock daemon to read the data as configured, like the test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/throughput_lib.sh # free_port, wait_port

full=${FULL:-0}
quick=${QUICK:-0}
cargo build --release -q -p oxrsyncd -p oxrsyncd-load
bin=$PWD/target/release/oxrsyncd
load=$PWD/target/release/oxrsyncd-load
work=$(mktemp -d /tmp/oxrsyncd-bench.XXXXXX)
out=$PWD/target/bench
mkdir -p "$out" "$work/src"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

head -c 1048576 /dev/urandom > "$work/src/1mib.bin"
conf="$work/rsyncd.conf"
# One config for all three: reverse lookups off (several 127.0.0.x sources
# would otherwise measure the resolver) and a listen backlog big enough for
# an all-at-once arrival (upstream's default of 5 is not).
cat > "$conf" <<CONF
use chroot = no
uid = root
gid = root
reverse lookup = no
listen backlog = 4096
max connections = 0
[bench]
 path = $work/src
CONF

# start_stock / start_ours set $pid and $port.
start_stock() {
  port=$(free_port)
  rsync --daemon --no-detach --address=127.0.0.1 --port="$port" --config="$conf" -M "pid file=$work/stock.pid" &
  pid=$!; pids+=("$pid"); wait_port "$port"
}
start_ours() { # async yes|no
  port=$(free_port)
  # Idle held sessions must outlive the ramp to W10k: a longer handshake
  # timeout. The hold is 8 addresses holding thousands of idle handshakes,
  # exactly what the pre-auth budget refuses: it is off here, as stock has none.
  "$bin" --config="$conf" --address=127.0.0.1 --port="$port" --no-detach \
    -M "use async listener=$1" -M "handshake timeout=120" -M "max handshakes per host=0" \
    -M "pid file=$work/ours-$1.pid" 2>"$work/ours-$1.log" &
  pid=$!; pids+=("$pid"); wait_port "$port"
}

# run_load NAME PID PORT ARGS...: one bounded load-tool run, JSON to $out/NAME.json.
run_load() {
  local name=$1 pid=$2 port=$3; shift 3
  echo "  $name" >&2
  timeout 600 "$load" --addr "127.0.0.1:$port" --daemon-pid "$pid" "$@" > "$out/$name.json" || true
  sleep 2 # let held sessions close before the next step
}

sizes="100 1000 10000"; pulls="100 1000"
[ "$quick" = 1 ] && sizes="100 1000" && pulls="100"
[ "$full" = 1 ] && pulls="100 1000 10000"

echo "thread spawn cost" >&2
"$load" spawn-cost 5000 > "$out/spawn.json"

for daemon in stock async blocking; do
  echo "daemon: $daemon" >&2
  case $daemon in
    stock) start_stock ;;
    async) start_ours yes ;;
    blocking) start_ours no ;;
  esac
  for n in $sizes; do
    run_load "$daemon-hold-$n-ramp" "$pid" "$port" hold "$n" --rate 1000 --hold-for 1
  done
  big=${sizes##* }
  run_load "$daemon-hold-$big-once" "$pid" "$port" hold "$big" --hold-for 1
  for n in $pulls; do
    run_load "$daemon-pull-$n" "$pid" "$port" pull "$n" --module bench --path 1mib.bin --verify-file "$work/src/1mib.bin"
  done
  if [ "$daemon" = stock ]; then
    run_load "$daemon-churn" "$pid" "$port" churn 500 10
  else
    run_load "$daemon-churn-reload" "$pid" "$port" churn 500 10 --reload-every 0.5
    run_load "$daemon-churn-kill" "$pid" "$port" churn 500 10 --kill-every 2
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo "throughput (pull)" >&2
if [ "$full" = 1 ]; then tests/bench/pull.sh 1024 20000 3 >&2; elif [ "$quick" = 1 ]; then tests/bench/pull.sh 64 2000 1 >&2; else tests/bench/pull.sh 256 5000 3 >&2; fi
if [ -x tests/bench/push.sh ]; then
  echo "throughput (push)" >&2
  if [ "$full" = 1 ]; then tests/bench/push.sh 1024 20000 3 >&2; else tests/bench/push.sh 256 5000 3 >&2; fi
fi

# Written aside first: the report keeps sections of the page it replaces.
python3 tests/bench/report.py "$out" "$sizes" "$pulls" > "$out/benchmarks.md"
mv "$out/benchmarks.md" docs/benchmarks.md
echo "wrote docs/benchmarks.md" >&2
