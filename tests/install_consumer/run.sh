#!/bin/bash
# Installs the build at $1 into a temporary prefix, then builds and runs the consumer project
# at $2 against it with find_package(tshare CONFIG REQUIRED), as a user's project would.
# With `all`, it also starts the installed tshared and runs the client consumer against it.
# Usage: run.sh BUILD_DIR CONSUMER_DIR CXX CXX_FLAGS LINKER_FLAGS core|all
set -euo pipefail
build_dir=$1 consumer_dir=$2 cxx=$3 cxx_flags=$4 ld_flags=$5 components=$6
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >"$work/install.log" || {
  cat "$work/install.log"; exit 1; }
test -f "$work/prefix/include/tshare/core/share.h"
cmake -S "$consumer_dir" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_EXE_LINKER_FLAGS="$ld_flags" \
  -DTSHARE_CONSUMER_COMPONENTS="$components" >"$work/configure.log" || {
  cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/build/consumer_core"
[[ $components == all ]] || exit 0

# The whole package: tshare::client must have been found and built, and the installed
# tshared serves it. tshared prints "tshared listening on HOST:PORT (...)" first.
if [[ ! -x "$work/build/consumer_client" ]]; then
  echo "run.sh: the package has no tshare::client (consumer_client was not built)" >&2
  cat "$work/configure.log"
  exit 1
fi
test -x "$work/prefix/bin/tshared" && test -x "$work/prefix/bin/tsharectl"
coproc TSHARED { exec "$work/prefix/bin/tshared" --listen=127.0.0.1:0 --metrics_listen= 2>&1; }
trap 'kill "$TSHARED_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
read -r -t 60 line <&"${TSHARED[0]}" || { echo "run.sh: tshared printed nothing" >&2; exit 1; }
[[ $line =~ listening\ on\ ([^ ]+) ]] || { echo "run.sh: unexpected: $line" >&2; exit 1; }
target=${BASH_REMATCH[1]}
"$work/build/consumer_client" "$target"
[[ $("$work/prefix/bin/tsharectl" --server="$target" get visits) == 42 ]]
