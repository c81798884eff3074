#ifndef TSHARE_SERVICE_STORED_KV_H_
#define TSHARE_SERVICE_STORED_KV_H_

#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "tshare/v1/types.pb.h"

namespace tshare::service {

// One key's state at one revision, as the store keeps it: the key and the
// serialized Value in one heap buffer, beside the version and revisions. A
// KeyValue message would hold the key, the Value message and the value's
// string as four allocations of their own; this is one, so a million keys of
// 64-byte values cost about 200 bytes each rather than about 480.
//
// The value is parsed back on every read (Get, watch events, Update's
// operand). That costs about what copying a stored Value message into the
// response cost before.
class StoredKv {
 public:
  // A PUT state of `key` holding `value`.
  StoredKv(absl::string_view key, const tshare::v1::Value& value);
  // A deletion of `key` (a DELETE event's kv): no value.
  explicit StoredKv(absl::string_view key);

  StoredKv(const StoredKv&) = delete;
  StoredKv& operator=(const StoredKv&) = delete;

  absl::string_view key() const { return {data_.get(), key_size_}; }
  bool has_value() const { return value_size_ != kNoValue; }
  // The value (an empty Value for a deletion).
  tshare::v1::Value value() const;
  // Replaces *out with the value.
  void CopyValueTo(tshare::v1::Value* out) const;
  // Replaces *out with the whole state, as the wire carries it.
  void CopyTo(tshare::v1::KeyValue* out) const;
  // Bytes of the key and the serialized value.
  size_t encoded_bytes() const {
    return key_size_ + (has_value() ? value_size_ : 0);
  }

  uint64_t version() const { return version_; }
  uint64_t create_revision() const { return create_revision_; }
  uint64_t mod_revision() const { return mod_revision_; }
  // Set once, before the state is shared (it is shared as const).
  void set_version(uint64_t v) { version_ = v; }
  void set_create_revision(uint64_t r) { create_revision_ = r; }
  void set_mod_revision(uint64_t r) { mod_revision_ = r; }

 private:
  static constexpr uint32_t kNoValue = UINT32_MAX;

  absl::string_view value_bytes() const {
    return {data_.get() + key_size_, has_value() ? value_size_ : 0};
  }

  std::unique_ptr<char[]> data_;  // key, then the serialized value
  uint32_t key_size_ = 0;
  uint32_t value_size_ = kNoValue;
  uint64_t version_ = 0;
  uint64_t create_revision_ = 0;
  uint64_t mod_revision_ = 0;
};

// Immutable once published: the key map, the history and watch queues share
// it.
using KvPtr = std::shared_ptr<const StoredKv>;

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_STORED_KV_H_
