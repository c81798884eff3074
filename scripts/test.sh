#!/bin/bash
# The README's test command. On a fresh Debian bookworm machine (as root, or a user with
# sudo) it installs what is missing, then builds and runs the whole suite:
#   release      everything, optimized, ctest
#   tsan         tshare::core and its tests under ThreadSanitizer (Abseil built from source,
#                so absl::Mutex is visible to TSan)
#   asan         everything under AddressSanitizer + UndefinedBehaviorSanitizer, compiled by
#                clang with -Wthread-safety (its findings are errors), ctest
#   thread-safety  (not in the default run: asan covers it) clang -Wthread-safety -Werror
#                compile of tshare::core alone
# Usage: scripts/test.sh [STAGE ...]   (default: release tsan asan, in that order)
# Exits non-zero on the first failing stage.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$TSHARE_ROOT"

stages=("$@")
((${#stages[@]})) || stages=(release tsan asan)

tshare_apt_install "${TSHARE_BUILD_PACKAGES[@]}" "${TSHARE_TEST_PACKAGES[@]}"
tshare_node_install
# The independent reflection client's npm packages come from the npm registry. Where it
# cannot be reached, that one test reports itself skipped instead of failing the suite.
if ! scripts/install-test-tools.sh; then
  echo "== warning: the npm packages of tests/e2e/reflection could not be installed (is" \
       "https://registry.npmjs.org reachable, with its certificate trusted?);" \
       "e2e_reflection_node will be skipped" >&2
fi

jobs=$(nproc)
run_stage() {
  local stage=$1
  echo "== stage $stage"
  SECONDS=0
  case $stage in
    release)
      cmake --preset release >/dev/null
      cmake --build --preset release -j "$jobs"
      ctest --preset release -j "$jobs"
      ;;
    thread-safety)
      cmake --preset thread-safety >/dev/null
      cmake --build --preset thread-safety -j "$jobs"
      echo "thread-safety: tshare::core compiles cleanly with clang -Wthread-safety -Werror"
      ;;
    tsan)
      TSHARE_ABSL_SRC=$(tshare_absl_source) cmake --preset tsan >/dev/null
      cmake --build --preset tsan -j "$jobs"
      ctest --preset tsan -j "$jobs" -L core
      ;;
    asan)
      cmake --preset asan >/dev/null
      cmake --build --preset asan -j "$jobs"
      ctest --preset asan -j "$jobs"
      ;;
    *) echo "unknown stage '$stage' (release, thread-safety, tsan, asan)" >&2; return 2 ;;
  esac
  echo "== stage $stage passed in ${SECONDS}s"
}

for stage in "${stages[@]}"; do run_stage "$stage"; done
echo "== all stages passed: ${stages[*]}"
