# Shared by scripts/serve.sh and scripts/test.sh: package installation and paths.
# Works as root (CI, a fresh Debian bookworm machine) and as a user with sudo.

TSHARE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TSHARE_CACHE=${TSHARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tshare}
if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive

# What building and running tshared needs.
TSHARE_BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  libcli11-dev libcpp-httplib-dev
)
# What the whole test suite needs on top: clang for the sanitizers and -Wthread-safety,
# dpkg-dev to unpack Abseil's Debian source for the ThreadSanitizer build, the real Prometheus
# for the end-to-end metrics test, Node.js for the independent reflection client, python3 for
# JSON/YAML checks of deploy/, the peers for bench/compare.sh --quick, and Debian's Bazel 4
# with its rules_java for the offline Bazel build's test (tests/bazel/run.sh). python3-grpcio
# runs deploy/docker/health_check.py (the image's gRPC health probe) in the deploy test, and
# systemd's systemd-analyze checks deploy/systemd/tshared.service.
TSHARE_TEST_PACKAGES=(
  clang libclang-rt-14-dev llvm-14 dpkg-dev ca-certificates
  prometheus python3 python3-yaml python3-grpcio systemd
  etcd-server etcd-client redis-server redis-tools gnuplot-nox
  bazel-bootstrap bazel-rules-java
)

# tshare_apt_install PKG...: installs the packages that are not installed yet (one dpkg
# query when everything is present).
tshare_apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# tshare_node_install: Node.js and npm for the independent gRPC reflection client. A machine
# that already has a node with npm (from any source) keeps it; otherwise Debian's packages.
tshare_node_install() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    tshare_apt_install nodejs npm
  fi
}

# tshare_absl_source: prints the path of Abseil's Debian source tree (the same version as
# libabsl-dev, with Debian's patches), downloading it once into the cache. The system's apt
# configuration is left alone: a private deb-src list is used.
tshare_absl_source() {
  local version dir apt_dir
  version=$(dpkg-query -W -f='${source:Version}' libabsl-dev)
  dir="$TSHARE_CACHE/abseil-$version"
  if [[ ! -f "$dir/.ok" ]]; then
    apt_dir="$TSHARE_CACHE/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/src"
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        >"$apt_dir/sources.list.d.sources"
      local list_opt=(-o "Dir::Etc::SourceList=/dev/null"
                      -o "Dir::Etc::SourceParts=$apt_dir/parts")
      mkdir -p "$apt_dir/parts"
      mv "$apt_dir/sources.list.d.sources" "$apt_dir/parts/debian-src.sources"
    else
      mkdir -p "$apt_dir/parts"
      sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt_dir/parts/debian-src.list"
      local list_opt=(-o "Dir::Etc::SourceList=/dev/null"
                      -o "Dir::Etc::SourceParts=$apt_dir/parts")
    fi
    local opts=("${list_opt[@]}" -o "Dir::State::Lists=$apt_dir/lists"
                -o "Dir::Cache::Archives=$apt_dir/archives" -o "APT::Sandbox::User=root")
    apt-get "${opts[@]}" update -qq >&2
    (cd "$apt_dir/src" && apt-get "${opts[@]}" source -qq --download-only "abseil=$version" >&2)
    rm -rf "$dir"
    dpkg-source -x "$apt_dir/src/abseil_${version}.dsc" "$dir" >&2
    touch "$dir/.ok"
  fi
  echo "$dir"
}

# Use ccache when present: a second build of the same sources is then mostly cache hits,
# also from another checkout of the same tree (paths are hashed relative to the checkout and
# the working directory is left out of the hash).
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR="$TSHARE_ROOT" CCACHE_NOHASHDIR=1
fi
