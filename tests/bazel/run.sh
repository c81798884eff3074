#!/bin/bash
# Builds tshare::core and tshare::client with Bazel (the WORKSPACE alternative to CMake, see
# docs/bazel.md) and runs a core unit test and the client smoke test, offline, against the
# system's libraries. Everything Bazel writes goes to a temporary output root that is removed
# at the end; nothing is written into the source tree (no bazel-* symlinks).
# Usage: run.sh SOURCE_DIR
# Exits 77 (ctest: skipped) when Bazel or Debian's rules_java is not installed.
set -euo pipefail
src=$1

if ! command -v bazel >/dev/null || [[ ! -f /usr/share/bazel/rules/java/WORKSPACE ]]; then
  echo "bazel test skipped: install bazel-bootstrap and bazel-rules-java" \
    "(./scripts/test.sh does)" >&2
  exit 77
fi

work=$(mktemp -d)
bazel_cmd=(bazel --output_user_root="$work/root" --nohome_rc)
cleanup() {
  (cd "$src" && "${bazel_cmd[@]}" shutdown) >/dev/null 2>&1 || true
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cd "$src"
flags=(--symlink_prefix=/ --color=no --curses=no --show_progress_rate_limit=30)
start=$SECONDS
# One invocation: `bazel test` also builds the two libraries named, and the scheduler keeps
# both cores busy across all of them.
"${bazel_cmd[@]}" test "${flags[@]}" //core:core //client:client \
  //core:share_test //tests/bazel:client_smoke_test
echo "bazel build and test: $((SECONDS - start)) s"
