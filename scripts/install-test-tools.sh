#!/bin/bash
# Installs what the test suite needs beyond Debian's packages: the npm packages of the
# independent reflection client (tests/e2e/reflection), exactly as its committed
# package-lock.json pins them (`npm ci`). Returns at once when they are already installed
# from the same lock file. scripts/test.sh calls it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

dir="$TSHARE_ROOT/tests/e2e/reflection"
stamp="$dir/node_modules/.tshare-lock-sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

tshare_node_install
echo "== installing the npm packages of tests/e2e/reflection"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
