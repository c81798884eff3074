#!/bin/bash
# Installs the build at $1 into a temporary prefix, then builds and runs the consumer project
# at $2 against it with find_package(tshare CONFIG REQUIRED), as a user's project would.
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
if [[ -x "$work/build/consumer_client" ]]; then "$work/build/consumer_client"; fi
