#include "service/stored_kv.h"

#include <cstring>
#include <limits>

#include "google/protobuf/io/coded_stream.h"

namespace tshare::service {

StoredKv::StoredKv(absl::string_view key, const tshare::v1::Value& value)
    : key_size_(static_cast<uint32_t>(key.size())) {
  // A protobuf message serializes to under 2 GiB, so the size fits.
  const size_t value_size = value.ByteSizeLong();
  value_size_ = static_cast<uint32_t>(value_size);
  data_.reset(new char[key.size() + value_size]);
  std::memcpy(data_.get(), key.data(), key.size());
  value.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(data_.get() + key.size()));
}

StoredKv::StoredKv(absl::string_view key)
    : data_(new char[key.size()]),
      key_size_(static_cast<uint32_t>(key.size())) {
  std::memcpy(data_.get(), key.data(), key.size());
}

void StoredKv::CopyValueTo(tshare::v1::Value* out) const {
  const absl::string_view bytes = value_bytes();
  if (out->ParsePartialFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return;
  // The bytes were serialized from a Value above, so only nesting beyond the
  // parser's default limit (a JSON value built up by updates) fails: read
  // again without the limit, on the slower stream parser.
  out->Clear();
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(bytes.size()));
  in.SetRecursionLimit(std::numeric_limits<int>::max());
  out->MergePartialFromCodedStream(&in);
}

tshare::v1::Value StoredKv::value() const {
  tshare::v1::Value v;
  CopyValueTo(&v);
  return v;
}

void StoredKv::CopyTo(tshare::v1::KeyValue* out) const {
  out->set_key(key().data(), key().size());
  if (has_value()) {
    CopyValueTo(out->mutable_value());
  } else {
    out->clear_value();
  }
  out->set_version(version_);
  out->set_create_revision(create_revision_);
  out->set_mod_revision(mod_revision_);
}

}  // namespace tshare::service
