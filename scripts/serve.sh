#!/bin/bash
# The README's serve command. On a fresh Debian bookworm machine (as root, or a user with
# sudo) it installs what is missing, builds tshared and tsharectl (release preset) and runs
# tshared in the foreground on its embedded in-memory store. Extra arguments go to tshared:
#   ./scripts/serve.sh                          # gRPC on 127.0.0.1:7420
#   ./scripts/serve.sh --listen=0.0.0.0:7420 --history=1000000
#   ./scripts/serve.sh --help                   # every flag with its default
# Stop it with Ctrl-C (or SIGTERM): it ends open streams and exits 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$TSHARE_ROOT"

tshare_apt_install "${TSHARE_BUILD_PACKAGES[@]}"

echo "== building tshared and tsharectl (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release --target tshared tsharectl -j "$(nproc)"

# The address tshared will listen on: the last --listen=... argument, else its default.
listen=127.0.0.1:7420
for arg in "$@"; do
  case $arg in --listen=*) listen=${arg#--listen=} ;; esac
done
cat <<MSG
== starting tshared on $listen (Ctrl-C stops it). Try, from another shell:
   grpcurl -plaintext -d '{"key":"visits","value":{"int_value":"1"}}' $listen tshare.v1.Shares/Set
   grpcurl -plaintext -d '{"key":"visits"}' $listen tshare.v1.Shares/Get
   build/release/client/tsharectl/tsharectl --server=$listen get visits
MSG
exec build/release/service/tshared "$@"
