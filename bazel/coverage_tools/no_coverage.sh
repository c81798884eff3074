#!/bin/sh
echo "bazel coverage is not available in the offline Bazel build of tshare;" \
  "use the CMake build for coverage (docs/bazel.md)" >&2
exit 1
