// Key and value shapes shared by tshare-bench and cq_server, so that a server
// preloaded by one answers the other's requests, and so that keys look like
// redis-benchmark's: with the default prefix "key:" and 16 bytes, key 1234 is
// "key:000000001234", exactly what `redis-benchmark -r N` makes of
// "key:__rand_int__".
//
// Thread-safety: pure functions.
#ifndef TSHARE_BENCH_BENCH_KEYS_H_
#define TSHARE_BENCH_BENCH_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"

namespace tshare::bench {

// prefix + index in decimal, zero-padded so that the key is `key_bytes` long
// (longer when the prefix and the digits do not fit).
inline std::string KeyName(absl::string_view prefix, uint64_t index,
                           size_t key_bytes) {
  std::string digits = std::to_string(index);
  std::string key(prefix);
  if (key_bytes > key.size() + digits.size()) {
    key.append(key_bytes - key.size() - digits.size(), '0');
  }
  key += digits;
  return key;
}

// A value of `value_bytes` bytes whose first 8 bytes (when it has room for
// them) carry `stamp` (a CLOCK_MONOTONIC time in ns) so a watcher or subscriber
// can measure delivery latency; the rest is filler.
inline std::string StampedValue(int64_t stamp, size_t value_bytes) {
  std::string value(value_bytes, 'v');
  if (value_bytes >= sizeof(stamp))
    std::memcpy(value.data(), &stamp, sizeof(stamp));
  return value;
}

// The stamp StampedValue wrote, or 0 if `value` is too short to hold one.
inline int64_t StampOf(absl::string_view value) {
  int64_t stamp = 0;
  if (value.size() >= sizeof(stamp))
    std::memcpy(&stamp, value.data(), sizeof(stamp));
  return stamp;
}

}  // namespace tshare::bench

#endif  // TSHARE_BENCH_BENCH_KEYS_H_
