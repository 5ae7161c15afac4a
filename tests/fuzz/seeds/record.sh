#!/usr/bin/env bash
# Record real sessions of the stock rsync client with a stock rsync daemon
# (both on 127.0.0.1, ephemeral ports) through rsync-tap, for seeds.
# Usage: record.sh OUTDIR [TAP]   (TAP defaults to /work/shared/tools/rsync-tap)
# Writes OUTDIR/tap/N.{c2s,s2c,log} and OUTDIR/sessions.txt, one line per
# connection: "N LABEL KIND PROTOCOL LETTERS" (see cut.py).
set -euo pipefail
out=$(realpath -m "${1:?usage: record.sh OUTDIR [TAP]}")
tap=${2:-/work/shared/tools/rsync-tap}
rm -rf "$out" && mkdir -p "$out"/{mod,src/sub,dst}
cd "$out"
pattern() { python3 -c "import sys; sys.stdout.buffer.write(bytes(((i*31+i//256)&0xff) for i in range($1)))"; }

# The server's basis for pushes is the token target's basis (delta.rs basis_byte).
reset_mod() { rm -rf mod && mkdir mod && pattern 5000 > mod/basis && cp src/basis mod/basis2 && mkdir mod/dir && echo o > mod/dir/x.o && echo k > mod/dir/keep; }
pattern 5000 > src/basis
python3 - <<'PY'
d = bytearray(open("src/basis", "rb").read()); d[1000:1010] = b"CHANGED!!!"; d += b"tail" * 50
open("src/basis", "wb").write(d)
PY
echo hello > src/a.txt; echo x > src/sub/b; ln -s a.txt src/link; mkfifo src/fifo
echo same > src/hl1; ln src/hl1 src/hl2; touch -d '2001-02-03 04:05:06.789' src/a.txt
reset_mod

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dport=$(port); tport=$(port)
cat > rsyncd.conf <<CONF
use chroot = no
pid file = $out/pid
lock file = $out/lock
[mod]
 path = $out/mod
 read only = no
# As whoever runs this (the tap records, nothing else is served).
 uid = $(id -u)
 gid = $(id -g)
CONF
rsync --daemon --no-detach --address=127.0.0.1 --port="$dport" --config="$out/rsyncd.conf" &
daemon=$!
python3 "$tap" --listen "$tport" --to "127.0.0.1:$dport" --out "$out/tap" --max 100 --seconds 300 &
tapper=$!
trap 'kill $daemon $tapper 2>/dev/null || true' EXIT
sleep 0.7
url=rsync://127.0.0.1:$tport/mod
n=0
# session LABEL KIND PROTOCOL LETTERS -- rsync arguments
session() {
    local label=$1 kind=$2 proto=$3 letters=$4; shift 5
    n=$((n + 1))
    [ "$kind" = push ] && reset_mod
    rm -rf dst && mkdir dst && pattern 5000 > dst/basis2
    rsync "$@" >/dev/null 2>&1 || echo "record.sh: $label exited $?" >&2
    echo "$n $label $kind $proto $letters" >> sessions.txt
    sleep 0.2
}
session push32 push 32 ogDl -- -a --no-inc-recursive src/ "$url/"
session push32inc push 32 ogDlI -- -a src/ "$url/"
session push32zstd push 32 ogDl:zstd -- -az --compress-choice=zstd --no-inc-recursive src/basis "$url/"
session push32zlib push 32 ogDl:zlib -- -az --compress-choice=zlib --no-inc-recursive src/basis "$url/"
session push32zlibx push 32 ogDl:zlibx -- -az --compress-choice=zlibx --no-inc-recursive src/basis "$url/"
session push32lz4 push 32 ogDl:lz4 -- -az --compress-choice=lz4 --no-inc-recursive src/basis "$url/"
session push32Hc push 32 ogDlHc -- -aHc --no-inc-recursive src/ "$url/"
session push32U push 32 ogDlU -- -aU --no-inc-recursive src/ "$url/"
session push32R push 32 ogDlR -- -aR --no-inc-recursive src/./sub "$url/"
session push32del push 32 ogDlF -- -a --no-inc-recursive --delete --exclude='*.o' --filter='P keep' --filter='dir-merge .rules' src/ "$url/"
session push31 push 31 ogDl -- -a --protocol=31 --no-inc-recursive src/ "$url/"
session push30 push 30 ogDl -- -a --protocol=30 --no-inc-recursive src/ "$url/"
session push30md5 push 30 ogDl -- -a --protocol=30 --checksum-choice=md5 --no-inc-recursive src/ "$url/"
session push29 push 29 ogDlH -- -aH --protocol=29 src/ "$url/"
session push29z push 29 ogDl:zlib -- -az --protocol=29 src/basis "$url/"
session push28 push 28 ogDl -- -a --protocol=28 src/ "$url/"
session push27 push 27 ogDlH -- -aH --protocol=27 src/ "$url/"
session pull32 pull 32 ogDl -- -a --no-inc-recursive "$url/basis2" dst/
session pull32inc pull 32 ogDlI -- -a "$url/" dst/
session pull32filter pull 32 ogDlF -- -a --no-inc-recursive --delete --exclude='*.o' --filter='- /x' --include='*/' --filter=': .rsync-filter' "$url/dir" dst/
session pull32z pull 32 ogDl:zstd -- -az --no-inc-recursive "$url/basis2" dst/
session pull31 pull 31 ogDl -- -a --protocol=31 "$url/basis2" dst/
session pull29 pull 29 ogDl -- -a --protocol=29 "$url/basis2" dst/
session pull27 pull 27 ogDl -- -a --protocol=27 "$url/basis2" dst/
printf 'basis2\ndir/keep\na.txt\n' > list
session pull32ff pull 32 ogDlT -- -a --no-inc-recursive --files-from=list "$url/" dst/
session pull30ff pull 30 ogDlT -- -a --protocol=30 --files-from=list "$url/" dst/
session listing list 32 - -- "rsync://127.0.0.1:$tport/"
session listing30 list 30 - -- --protocol=30 "rsync://127.0.0.1:$tport/"
sleep 0.5
