#!/bin/bash
# Where tshared's time goes under one tshare-bench scenario.
#
#   bench/profile.sh [--build DIR] [--tool callgrind|perf] [--top N] [--skip SECONDS] \
#       [--pinned] SCENARIO [tshare-bench flags]
#   bench/profile.sh get --clients=16 --conns=16 --duration=10s
#   bench/profile.sh --tool perf watch --rate=1000 --duration=10s
#
# callgrind (the default) counts instructions per function (exact, about 50x slower, so the
# load is light), from --skip seconds after the load starts (default 3: start-up, symbol
# binding and preload are left out) to the end of the load; perf samples CPU time with the
# cpu-clock software event (for machines whose virtual CPU has no hardware counters: `perf
# stat -e instructions true` says <not supported>), including the kernel's share. Prints the
# cost per shared object and the top functions by self cost (callgrind: and by inclusive
# cost); leaves the raw profile in the work folder it names. tshared runs with its
# defaults; --pinned runs it on CPU 0 and the load on CPU 1, like bench/compare.sh's
# pinned layout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
build_dir="$ROOT/build/release"
tool=callgrind
top=25
skip=3
server_cpu=()
client_cpu=()
while (($#)); do
  case $1 in
    --build) build_dir=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    --pinned) server_cpu=(taskset -c 0); client_cpu=(taskset -c 1); shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
if (($# < 1)); then
  echo "profile.sh: give a SCENARIO (see --help)" >&2
  exit 2
fi
scenario=$1
shift
tshared="$build_dir/service/tshared"
bench="$build_dir/bench/tshare-bench"
for b in "$tshared" "$bench"; do
  [[ -x $b ]] || { echo "profile.sh: $b is missing; build tshared and tshare-bench" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tshare-profile.XXXXXX")
log="$work/tshared.log"
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
case $tool in
  callgrind)
    command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 2; }
    "${server_cpu[@]}" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
      "$tshared" --listen=127.0.0.1:0 --metrics_listen="127.0.0.1:$metrics_port" >"$log" 2>&1 &
    ;;
  perf)
    command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
    "${server_cpu[@]}" "$tshared" --listen=127.0.0.1:0 --metrics_listen="127.0.0.1:$metrics_port" >"$log" 2>&1 &
    ;;
  *) echo "profile.sh: --tool is callgrind or perf" >&2; exit 2 ;;
esac
spid=$!
trap 'kill -TERM $spid 2>/dev/null || true' EXIT
for ((i = 0; i < 600; i++)); do
  grep -q "listening on" "$log" 2>/dev/null && break
  kill -0 "$spid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$log" | head -1)
[[ -n $port ]] || { echo "profile.sh: tshared did not start; see $log" >&2; exit 1; }

"${client_cpu[@]}" "$bench" "$scenario" --target="127.0.0.1:$port" --server-pid="$spid" "$@" &
bench_pid=$!
sleep "$skip"
perf_pid=""
case $tool in
  callgrind) callgrind_control --instr=on "$spid" >/dev/null ;;
  perf)
    perf record -e cpu-clock -F 2000 -g -p "$spid" -o "$work/perf.data" >"$work/perf.log" 2>&1 &
    perf_pid=$!
    ;;
esac
wait "$bench_pid"
case $tool in
  callgrind) callgrind_control --instr=off "$spid" >/dev/null ;;
  perf) kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true ;;
esac
kill -TERM "$spid"
wait "$spid" 2>/dev/null || true
trap - EXIT

echo
case $tool in
  callgrind)
    callgrind_annotate --threshold=100 "$work/callgrind.out" 2>/dev/null >"$work/self.txt"
    echo "== instructions per shared object (callgrind, $work/callgrind.out)"
    awk '/^ *[0-9,]+ \( *[0-9.]+%\)/ && /\[/ {
           n = $1; gsub(",", "", n); obj = $NF; gsub(/[][]/, "", obj); sub(/.*\//, "", obj)
           sum[obj] += n; total += n }
         END { for (o in sum) printf "%6.2f%%  %s\n", 100 * sum[o] / total, o }' \
      "$work/self.txt" | sort -rn | head -n 15
    echo
    echo "== top $top functions by self instructions"
    callgrind_annotate --threshold=100 "$work/callgrind.out" 2>/dev/null |
      sed -n '/^Ir/,$p' | sed -n "1,$((top + 2))p"
    echo
    echo "== top $top functions by inclusive instructions"
    callgrind_annotate --inclusive=yes --threshold=100 "$work/callgrind.out" 2>/dev/null |
      sed -n '/^Ir/,$p' | sed -n "1,$((top + 2))p"
    ;;
  perf)
    # (head closes the pipe early; the status of perf report is not the point.)
    echo "== top $top by shared object (perf cpu-clock, $work/perf.data)"
    { perf report -i "$work/perf.data" --no-children --stdio -g none --sort dso 2>/dev/null || true; } |
      grep -E '^ +[0-9.]+%' | head -n "$top" || true
    echo
    echo "== top $top functions by self CPU time"
    { perf report -i "$work/perf.data" --no-children --stdio -g none --sort dso,symbol 2>/dev/null || true; } |
      grep -E '^ +[0-9.]+%' | cut -c1-160 | head -n "$top" || true
    ;;
esac
echo "(profile kept in $work)"
