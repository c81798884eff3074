#!/bin/bash
# Servers side by side: tshared, etcd and Redis (and cq_server, a minimal completion-queue
# gRPC server of Shares/Get) measured with the same load shapes, in one run.
#
#   bench/compare.sh            full: 3 repetitions x 2 CPU layouts, 5 s per scenario
#                               (about 35 minutes on 2 cores); writes docs/benchmarks.md
#                               ("## Servers side by side") and docs/benchmarks/*.png
#   bench/compare.sh --quick    1 repetition, pinned layout, 1.5 s per scenario (< 5 minutes);
#                               writes the same page section
#   bench/compare.sh --smoke    1 repetition, free layout, 0.2 s per scenario, tiny sizes;
#                               writes to a temporary folder only, fails if any run failed
#                               (the ctest test bench_compare_smoke)
#
# Options: --build DIR (where tshared, tshare-bench and cq_server were built; default
# build/release), --tshared BIN, --bench BIN, --cq-server BIN, --work DIR (results, logs;
# default a new temporary folder), --doc FILE (default docs/benchmarks.md; --no-doc to skip),
# --reps N, --layouts "pinned free", --servers "tshared cq etcd redis", --keep (keep --work).
#
# Each server runs on loopback with a fresh temporary data folder, restarted for every
# scenario: tshared with its defaults (free ports); etcd with its data on tmpfs (/dev/shm),
# --unsafe-no-fsync and an 8 GiB backend quota (the default 2 GiB would not hold the memory
# test's history); Redis with persistence off (--save '' --appendonly no).
# Layouts: "pinned" puts the server on CPU 0 and every client on CPU 1 (taskset); "free" lets
# both use every CPU.
#
# The shape is the same for every server: 16 clients on 16 connections, one request in
# flight each, 64-byte values, 16-byte keys, 10,000 keys. Redis's figures come from
# redis-benchmark with the same clients, value size and key space (-c 16 -d 64 -r 10000);
# `session` is set beside redis-benchmark -P 16 (16 ops per frame, one frame in flight per
# client); pub/sub on Redis uses tshare-bench's own RESP client (redis-benchmark does not
# subscribe). Memory: RSS of each server before and after loading 1,000,000 keys of 64 bytes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

mode=full
build_dir=""
tshared=""
bench=""
cq_server=""
work=""
doc="$ROOT/docs/benchmarks.md"
reps=""
layouts=""
servers="tshared cq etcd redis"
keep=0
argv_line="bench/compare.sh $*"

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --quick) mode=quick ;;
    --smoke) mode=smoke ;;
    --full) mode=full ;;
    --build) build_dir=$2; shift ;;
    --tshared) tshared=$2; shift ;;
    --bench) bench=$2; shift ;;
    --cq-server) cq_server=$2; shift ;;
    --work) work=$2; shift ;;
    --doc) doc=$2; shift ;;
    --no-doc) doc="" ;;
    --reps) reps=$2; shift ;;
    --layouts) layouts=$2; shift ;;
    --servers) servers=$2; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# ---- Settings per mode.
KEYS=10000
CLIENTS=16
VALUE=64
KEYB=16
case $mode in
  full)  : "${reps:=3}"; : "${layouts:=pinned free}"; DUR=5; WARM=1
         MEM_KEYS=1000000; IDLE=1000; WATCHERS=1000; STREAMS=20; WATCH_KEYS=100 ;;
  quick) : "${reps:=1}"; : "${layouts:=pinned}"; DUR=1.5; WARM=0.5
         MEM_KEYS=1000000; IDLE=1000; WATCHERS=1000; STREAMS=20; WATCH_KEYS=100 ;;
  smoke) : "${reps:=1}"; : "${layouts:=free}"; DUR=0.2; WARM=0.1
         MEM_KEYS=2000; IDLE=20; WATCHERS=40; STREAMS=4; WATCH_KEYS=10; KEYS=1000
         doc="" ;;
esac
WATCH_RATE=1000
# No client run may hang the comparison: each gets the scenario's time plus this much.
RUN_LIMIT=$(awk -v d="$DUR" -v w="$WARM" 'BEGIN {print d + w + 180}')
SUBSCRIBER_COUNTS="1 10 100"

# ---- Binaries.
if [[ -z $build_dir ]]; then build_dir="$ROOT/build/release"; fi
: "${tshared:=$build_dir/service/tshared}"
: "${bench:=$build_dir/bench/tshare-bench}"
: "${cq_server:=$build_dir/bench/cq_server}"
needed=("$bench")
[[ " $servers " == *" tshared "* ]] && needed+=("$tshared")
[[ " $servers " == *" cq "* ]] && needed+=("$cq_server")
for b in "${needed[@]}"; do
  if [[ ! -x $b ]]; then
    echo "compare.sh: $b is missing; build it first, e.g." >&2
    echo "  cmake --preset release && cmake --build --preset release --target tshared tshare-bench cq_server" >&2
    exit 2
  fi
done
for tool in etcd etcdctl redis-server redis-benchmark redis-cli python3 taskset; do
  if ! command -v "$tool" >/dev/null; then
    echo "compare.sh: '$tool' is not installed (apt-get install etcd-server etcd-client redis-server redis-tools util-linux python3)" >&2
    # The smoke test counts as skipped (ctest SKIP_RETURN_CODE) on a machine without peers.
    [[ $mode == smoke ]] && exit 77
    exit 2
  fi
done

if [[ -z $work ]]; then work=$(mktemp -d "${TMPDIR:-/tmp}/tshare-compare.XXXXXX"); fi
mkdir -p "$work/logs"
results="$work/results.jsonl"
: >"$results"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
ncpu=$(nproc)

SPID=""
SNAME=""
SID=""
SLOG=""
SERVER_DIR=""
IDLE_PID=""
failures=0

cleanup() {
  [[ -n $IDLE_PID ]] && kill "$IDLE_PID" 2>/dev/null || true
  stop_server
  if ((keep == 0)) && [[ $mode == smoke ]] && ((failures == 0)); then rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# server_prefix / client_prefix: the taskset of the current layout (empty for "free").
server_prefix=()
client_prefix=()
set_layout() {
  case $1 in
    pinned) server_prefix=(taskset -c 0); client_prefix=(taskset -c 1) ;;
    free) server_prefix=(); client_prefix=() ;;
  esac
}

# wait_for_line FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_for_line() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if grep -qE "$2" "$1" 2>/dev/null; then return 0; fi
    if [[ -n $SPID ]] && ! kill -0 "$SPID" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# start_server NAME LOGNAME: starts it and sets SPID, PORT and TARGET.
start_server() {
  local name=$1 log="$work/logs/$2.server.log"
  SNAME=$1
  SID=$2
  SLOG=$log
  case $name in
    tshared)
      "${server_prefix[@]}" "$tshared" --listen=127.0.0.1:0 \
        --metrics_listen="127.0.0.1:$(free_port)" >"$log" 2>&1 &
      SPID=$!
      wait_for_line "$log" "listening on" 60 || { echo "tshared did not start; see $log" >&2; return 1; }
      PORT=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$log" | head -1)
      TARGET="127.0.0.1:$PORT"
      ;;
    cq)
      "${server_prefix[@]}" "$cq_server" --listen=127.0.0.1:0 --threads="$ncpu" --keys="$KEYS" \
        --key_bytes="$KEYB" --value_bytes="$VALUE" >"$log" 2>&1 &
      SPID=$!
      wait_for_line "$log" "listening on" 60 || { echo "cq_server did not start; see $log" >&2; return 1; }
      PORT=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$log" | head -1)
      TARGET="127.0.0.1:$PORT"
      ;;
    etcd)
      SERVER_DIR=$(mktemp -d /dev/shm/tshare-compare-etcd.XXXXXX)
      PORT=$(free_port)
      local peer
      peer=$(free_port)
      "${server_prefix[@]}" etcd --name bench --data-dir "$SERVER_DIR" --unsafe-no-fsync \
        --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "bench=http://127.0.0.1:$peer" --quota-backend-bytes=8589934592 \
        --logger=zap --log-level=error >"$log" 2>&1 &
      SPID=$!
      local i ok=0
      for ((i = 0; i < 300; i++)); do
        if ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$PORT" --command-timeout=1s \
             endpoint health >/dev/null 2>&1; then ok=1; break; fi
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
      done
      ((ok)) || { echo "etcd did not start; see $log" >&2; return 1; }
      TARGET="etcd://127.0.0.1:$PORT"
      ;;
    redis)
      PORT=$(free_port)
      "${server_prefix[@]}" redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --maxclients 10000 >"$log" 2>&1 &
      SPID=$!
      local i ok=0
      for ((i = 0; i < 300; i++)); do
        if redis-cli -p "$PORT" ping >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
      done
      ((ok)) || { echo "redis-server did not start; see $log" >&2; return 1; }
      TARGET="redis://127.0.0.1:$PORT"
      ;;
  esac
}

stop_server() {
  if [[ -n $SPID ]]; then
    kill -TERM "$SPID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
    # A sanitized build reports what it found on stderr: that is a failed run too.
    if [[ -n $SLOG ]] && grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SLOG" 2>/dev/null; then
      record_failure "$SNAME" "$SID" "sanitizer report in $(basename "$SLOG")" ""
    fi
  fi
  SLOG=""
  if [[ -n $SERVER_DIR ]]; then rm -rf "$SERVER_DIR"; SERVER_DIR=""; fi
}

json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# record SERVER ID CMD RESULT_JSON
record() {
  printf '{"server":"%s","layout":"%s","rep":%d,"id":"%s","cmd":%s,"result":%s}\n' \
    "$1" "$layout" "$rep" "$2" "$(json_str "$3")" "$4" >>"$results"
}

record_failure() {
  failures=$((failures + 1))
  echo "compare.sh: FAILED $1 $2 ($layout, rep $rep): $3" >&2
  record "$1" "$2" "$4" "{\"error\":$(json_str "$3")}"
}

cpu_seconds() {
  python3 - "$1" <<'EOF'
import os, sys
with open(f"/proc/{sys.argv[1]}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
print((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
EOF
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# tb SERVER ID ARGS...: one tshare-bench run against the current server.
tb() {
  local server=$1 id=$2
  shift 2
  local cmd=(timeout -k 10 "$RUN_LIMIT" "${client_prefix[@]}" "$bench" "$@" --target="$TARGET"
             --server-pid="$SPID" --json)
  local shown="${client_prefix[*]:+${client_prefix[*]} }tshare-bench $* --target=$TARGET"
  local out
  echo "== $layout rep $rep: $server $id" >&2
  if out=$("${cmd[@]}" 2>>"$work/logs/$server.$id.client.log"); then
    record "$server" "$id" "$shown" "$out"
  else
    record_failure "$server" "$id" "tshare-bench exited $? (see logs/$server.$id.client.log)" "$shown"
  fi
}

# rb ID CLIENTS REQUESTS_PER_SEC_GUESS ARGS...: redis-benchmark, sized to last about $DUR
# seconds (a short calibration run first), with Redis's CPU time read around it.
rb() {
  local id=$1
  shift
  # -n goes before the other arguments: after a custom command it would be the command's.
  local base=(timeout -k 10 "$RUN_LIMIT" "${client_prefix[@]}" redis-benchmark -h 127.0.0.1
              -p "$PORT" --csv)
  echo "== $layout rep $rep: redis $id" >&2
  local calib n rps
  calib=$("${base[@]}" -n 20000 "$@" 2>>"$work/logs/redis.$id.client.log" | tail -1) || true
  rps=$(echo "$calib" | awk -F'","' '{print $2}' | tr -d '"')
  n=$(python3 -c '
import sys
try:
    r = float(sys.argv[1])
except ValueError:
    r = 0
print(max(2000, int(r * float(sys.argv[2]))))' "${rps:-0}" "$DUR")
  local cpu0 cpu1 line
  cpu0=$(cpu_seconds "$SPID")
  line=$("${base[@]}" -n "$n" "$@" 2>>"$work/logs/redis.$id.client.log" | tail -1) || true
  cpu1=$(cpu_seconds "$SPID")
  local shown="${client_prefix[*]:+${client_prefix[*]} }redis-benchmark -h 127.0.0.1 -p $PORT --csv -n $n $*"
  if [[ $line != \"* ]] || [[ $line == \"test\"* ]]; then
    record_failure redis "$id" "redis-benchmark printed no result" "$shown"
    return
  fi
  local json
  json=$(python3 - "$line" "$cpu0" "$cpu1" "$n" <<'EOF'
import csv, json, sys
row = next(csv.reader([sys.argv[1]]))
rps = float(row[1])
cpu = float(sys.argv[3]) - float(sys.argv[2])
n = int(sys.argv[4])
print(json.dumps({
    "backend": "redis", "test": row[0], "ops": n, "ops_per_sec": rps, "errors": 0,
    "mean_us": float(row[2]) * 1000, "p50_us": float(row[4]) * 1000,
    "p95_us": float(row[5]) * 1000, "p99_us": float(row[6]) * 1000,
    "max_us": float(row[7]) * 1000, "server_cpu_s": cpu,
    "ops_per_server_cpu_s": (n / cpu) if cpu > 0 else 0}))
EOF
)
  record redis "$id" "$shown" "$json"
}

# redis_load N: SET key:%012d (16-byte keys) to 64-byte values for keys 0..N-1 through
# redis-cli --pipe.
redis_load() {
  awk -v n="$1" -v vb="$VALUE" 'BEGIN {
      v = sprintf("%" vb "s", ""); gsub(/ /, "v", v)
      for (i = 0; i < n; i++) {
        k = sprintf("key:%012d", i)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, vb, v
      }
    }' | "${client_prefix[@]}" redis-cli -p "$PORT" --pipe >>"$work/logs/redis.load.log" 2>&1
}

# ---- The scenarios. Every entry: the same shape for every server that has it.
C=(--clients=$CLIENTS --conns=$CLIENTS --inflight=1 --keys=$KEYS --key-bytes=$KEYB
   --value-bytes=$VALUE --duration=${DUR}s --warmup=${WARM}s)
C1=(--clients=1 --conns=1 --inflight=1 --keys=$KEYS --key-bytes=$KEYB --value-bytes=$VALUE
    --duration=${DUR}s --warmup=${WARM}s)
W=(--writers=4 --watchers=$WATCHERS --streams=$STREAMS --watch-keys=$WATCH_KEYS
   --value-bytes=$VALUE --key-bytes=$KEYB --duration=${DUR}s --warmup=${WARM}s)
RB=(-c $CLIENTS -d $VALUE -r $KEYS)

# Ids in report order; which servers run each.
run_grpc_scenario() {  # SERVER ID (tshared or etcd)
  local s=$1 id=$2
  case $id in
    put) tb "$s" put put "${C[@]}" ;;
    get) tb "$s" get get "${C[@]}" ;;
    get-linearizable) tb "$s" get-linearizable get "${C[@]}" --linearizable ;;
    get-serial) tb "$s" get-serial get "${C1[@]}" ;;
    add) tb "$s" add add "${C[@]}" ;;
    add-hot) tb "$s" add-hot add "${C[@]}" --hot ;;
    cas) tb "$s" cas cas "${C[@]}" ;;
    mixed) tb "$s" mixed mixed "${C[@]}" --get-fraction=0.9 ;;
    session-put) tb "$s" session-put session "${C[@]}" --batch=16 --session-op=put ;;
    session-get) tb "$s" session-get session "${C[@]}" --batch=16 --session-op=get ;;
    watch) tb "$s" watch watch "${W[@]}" ;;
    watch-1k) tb "$s" watch-1k watch "${W[@]}" --rate=$WATCH_RATE ;;
    pubsub-*) tb "$s" "$id" pubsub --subscribers="${id#pubsub-}" --inflight=16 --conns=1 \
                --publish-via=session --max-batch=64 \
                --value-bytes=$VALUE --duration=${DUR}s --warmup=${WARM}s ;;
    idle-conns) tb "$s" idle-conns idle-conns "${C[@]}" --idle-conns=$IDLE ;;
  esac
}

run_redis_scenario() {
  local id=$1
  case $id in
    put) rb put "${RB[@]}" -t set ;;
    get) redis_load "$KEYS"; rb get "${RB[@]}" -t get ;;
    get-serial) redis_load "$KEYS"; rb get-serial -c 1 -d $VALUE -r $KEYS -t get ;;
    add) rb add "${RB[@]}" -t incr ;;
    add-hot) rb add-hot -c $CLIENTS INCR counter:hot ;;
    session-put) rb session-put "${RB[@]}" -P 16 -t set ;;
    session-get) redis_load "$KEYS"; rb session-get "${RB[@]}" -P 16 -t get ;;
    pubsub-*) tb redis "$id" pubsub --subscribers="${id#pubsub-}" --inflight=16 --conns=1 \
                --value-bytes=$VALUE --duration=${DUR}s --warmup=${WARM}s ;;
    idle-conns)
      redis_load "$KEYS"
      "${client_prefix[@]}" redis-benchmark -h 127.0.0.1 -p "$PORT" -I -c "$IDLE" \
        >>"$work/logs/redis.idle.log" 2>&1 &
      IDLE_PID=$!
      local i
      for ((i = 0; i < 300; i++)); do
        local n
        n=$(redis-cli -p "$PORT" info clients | awk -F: '/^connected_clients/ {print $2+0}')
        ((n >= IDLE)) && break
        sleep 0.1
      done
      rb idle-conns "${RB[@]}" -t get
      kill "$IDLE_PID" 2>/dev/null || true
      wait "$IDLE_PID" 2>/dev/null || true
      IDLE_PID=""
      ;;
  esac
}

GRPC_IDS="put get get-linearizable get-serial add add-hot cas mixed session-put session-get watch watch-1k"
for n in $SUBSCRIBER_COUNTS; do GRPC_IDS="$GRPC_IDS pubsub-$n"; done
GRPC_IDS="$GRPC_IDS idle-conns"

ids_for() {
  case $1 in
    tshared) echo "$GRPC_IDS" | sed 's/ get-linearizable//' ;;
    etcd) echo "$GRPC_IDS" | sed -E 's/ pubsub-[0-9]+//g' ;;
    redis)
      local ids="put get get-serial add add-hot session-put session-get"
      for n in $SUBSCRIBER_COUNTS; do ids="$ids pubsub-$n"; done
      echo "$ids idle-conns" ;;
    cq) echo "get get-serial" ;;
  esac
}

run_one() {  # SERVER ID
  local s=$1 id=$2
  if ! start_server "$s" "$s.$id.$layout.$rep"; then
    record_failure "$s" "$id" "server did not start" ""
    stop_server
    return
  fi
  case $s in
    tshared|etcd) run_grpc_scenario "$s" "$id" ;;
    cq)
      case $id in
        get) tb cq get get "${C[@]}" --preload=false ;;
        get-serial) tb cq get-serial get "${C1[@]}" --preload=false ;;
      esac ;;
    redis) run_redis_scenario "$id" ;;
  esac
  stop_server
}

# memory SERVER: RSS before and after loading MEM_KEYS keys of VALUE bytes.
run_memory() {
  local s=$1
  if ! start_server "$s" "$s.memory"; then
    record_failure "$s" memory "server did not start" ""
    stop_server
    return
  fi
  sleep 0.5
  local rss0 rss1 t0 t1 shown
  rss0=$(rss_kb "$SPID")
  t0=$(date +%s.%N)
  echo "== memory: $s ($MEM_KEYS keys)" >&2
  case $s in
    tshared)
      shown="tshare-bench load --keys=$MEM_KEYS --clients=4 --inflight=4 --batch=100 --key-bytes=$KEYB --value-bytes=$VALUE --target=$TARGET"
      timeout -k 10 1800 "${client_prefix[@]}" "$bench" load --keys="$MEM_KEYS" --clients=4 --inflight=4 --batch=100 \
        --key-bytes=$KEYB --value-bytes=$VALUE --target="$TARGET" --json \
        >"$work/logs/tshared.memory.json" 2>>"$work/logs/tshared.memory.client.log" || {
          record_failure "$s" memory "load failed" "$shown"; stop_server; return; } ;;
    etcd)
      shown="tshare-bench load --keys=$MEM_KEYS --clients=16 --inflight=16 --key-bytes=$KEYB --value-bytes=$VALUE --target=$TARGET"
      timeout -k 10 1800 "${client_prefix[@]}" "$bench" load --keys="$MEM_KEYS" --clients=16 --inflight=16 \
        --key-bytes=$KEYB --value-bytes=$VALUE --target="$TARGET" --json \
        >"$work/logs/etcd.memory.json" 2>>"$work/logs/etcd.memory.client.log" || {
          record_failure "$s" memory "load failed" "$shown"; stop_server; return; } ;;
    redis)
      shown="awk (SET key:%012d, $VALUE-byte values, keys 0..$((MEM_KEYS - 1))) | redis-cli -p $PORT --pipe"
      redis_load "$MEM_KEYS" ;;
  esac
  t1=$(date +%s.%N)
  sleep 1
  rss1=$(rss_kb "$SPID")
  record "$s" memory "$shown" "$(python3 -c '
import json, sys
rss0, rss1, keys, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print(json.dumps({"rss_before_kb": rss0, "rss_after_kb": rss1, "keys": keys,
                  "bytes_per_key": (rss1 - rss0) * 1024 / keys, "load_seconds": t1 - t0,
                  "ops_per_sec": keys / (t1 - t0), "errors": 0}))' "$rss0" "$rss1" "$MEM_KEYS" "$t0" "$t1")"
  stop_server
}

# ---- Run.
started=$(date +%s)
echo "compare.sh: mode $mode, layouts '$layouts', $reps repetition(s), ${DUR}s per scenario; work folder $work" >&2
for layout in $layouts; do
  if [[ $layout == pinned ]] && ((ncpu < 2)); then
    echo "compare.sh: skipping the pinned layout: it needs 2 CPUs, this machine has $ncpu" >&2
    continue
  fi
  set_layout "$layout"
  for ((rep = 1; rep <= reps; rep++)); do
    for s in $servers; do
      for id in $(ids_for "$s"); do run_one "$s" "$id"; done
    done
  done
done
# Memory once, in the first layout.
layout=${layouts%% *}
rep=1
set_layout "$layout"
for s in $servers; do
  [[ $s == cq ]] && continue
  run_memory "$s"
done
elapsed=$(($(date +%s) - started))

# ---- Machine, versions, report.
python3 - "$work/machine.json" "$elapsed" "$mode" "$argv_line" <<'EOF'
import json, os, platform, subprocess, sys
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
model = ""
for line in sh("lscpu").splitlines():
    if line.startswith("Model name:"):
        model = line.split(":", 1)[1].strip()
json.dump({
    "cpu_model": model, "cpus": os.cpu_count(), "kernel": platform.release(),
    "memory": sh("free -h | awk '/^Mem:/ {print $2}'"),
    "etcd": sh("etcd --version | head -1"), "redis": sh("redis-server --version"),
    "grpc": sh("pkg-config --modversion grpc++"), "elapsed_s": int(sys.argv[2]),
    "mode": sys.argv[3], "command": sys.argv[4],
    "date": sh("date -u +%Y-%m-%dT%H:%MZ"),
}, open(sys.argv[1], "w"), indent=1)
EOF

report_args=("$HERE/compare_report.py" --results "$results" --machine "$work/machine.json"
             --mode "$mode" --fragment "$work/servers_side_by_side.md")
if [[ -n $doc ]]; then
  report_args+=(--doc "$doc" --charts "$(dirname "$doc")/benchmarks")
else
  report_args+=(--charts "$work/charts")
fi
if [[ $mode == smoke ]]; then report_args+=(--check); fi
if ! python3 "${report_args[@]}"; then
  failures=$((failures + 1))
fi
echo "compare.sh: done in ${elapsed}s; results in $results; section in $work/servers_side_by_side.md" >&2
if ((failures > 0)); then
  echo "compare.sh: $failures failure(s); logs in $work/logs" >&2
  exit 1
fi
