#include "service/stored_kv.h"

#include <string>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace tshare::service {
namespace {

using google::protobuf::util::MessageDifferencer;
using tshare::v1::KeyValue;
using tshare::v1::Value;

Value JsonList(int depth) {
  Value value;
  google::protobuf::Value* v = value.mutable_json_value();
  for (int i = 0; i < depth; ++i) v = v->mutable_list_value()->add_values();
  v->set_string_value("bottom");
  return value;
}

TEST(StoredKvTest, EveryValueKindReadsBackAsStored) {
  std::vector<Value> values(7);
  values[0].set_int_value(-42);
  values[1].set_double_value(2.5);
  values[2].set_string_value(std::string(64, 'x'));
  values[3].set_bool_value(false);  // the default: only the oneof case says so
  values[4].set_bytes_value(std::string("\0\1\2", 3));
  (*values[5]
        .mutable_json_value()
        ->mutable_struct_value()
        ->mutable_fields())["a"]
      .set_number_value(1);
  values[6].set_string_value("");
  for (const Value& value : values) {
    StoredKv kv("k", value);
    EXPECT_EQ(kv.key(), "k");
    EXPECT_TRUE(kv.has_value());
    EXPECT_TRUE(MessageDifferencer::Equals(kv.value(), value))
        << value.DebugString() << " read back as " << kv.value().DebugString();
    EXPECT_EQ(kv.value().kind_case(), value.kind_case());
    EXPECT_EQ(kv.encoded_bytes(), 1 + value.ByteSizeLong());
  }
}

TEST(StoredKvTest, CopyToFillsEveryField) {
  Value value;
  value.set_string_value("hello");
  StoredKv kv("some/key", value);
  kv.set_version(3);
  kv.set_create_revision(7);
  kv.set_mod_revision(9);

  KeyValue out;
  out.set_key("stale");
  out.mutable_value()->set_int_value(1);
  kv.CopyTo(&out);
  EXPECT_EQ(out.key(), "some/key");
  EXPECT_EQ(out.value().string_value(), "hello");
  EXPECT_EQ(out.version(), 3u);
  EXPECT_EQ(out.create_revision(), 7u);
  EXPECT_EQ(out.mod_revision(), 9u);
}

TEST(StoredKvTest, DeletionHasNoValue) {
  StoredKv kv("gone");
  kv.set_mod_revision(12);
  EXPECT_EQ(kv.key(), "gone");
  EXPECT_FALSE(kv.has_value());
  EXPECT_EQ(kv.value().kind_case(), Value::KIND_NOT_SET);
  EXPECT_EQ(kv.encoded_bytes(), 4u);

  KeyValue out;
  out.mutable_value()->set_int_value(1);  // cleared by CopyTo
  kv.CopyTo(&out);
  EXPECT_EQ(out.key(), "gone");
  EXPECT_FALSE(out.has_value());
  EXPECT_EQ(out.version(), 0u);
  EXPECT_EQ(out.mod_revision(), 12u);
}

TEST(StoredKvTest, StoredValueWithEmptyKindStillHasAValue) {
  StoredKv kv("k", Value());
  EXPECT_TRUE(kv.has_value());
  KeyValue out;
  kv.CopyTo(&out);
  EXPECT_TRUE(out.has_value());
}

TEST(StoredKvTest, NestingBeyondTheParsersDefaultLimitReadsBack) {
  const Value deep = JsonList(80);  // 160 message levels
  Value plain;
  ASSERT_FALSE(plain.ParseFromString(deep.SerializeAsString()))
      << "the default recursion limit no longer refuses this depth";
  StoredKv kv("k", deep);
  EXPECT_TRUE(MessageDifferencer::Equals(kv.value(), deep));
}

TEST(StoredKvTest, CopyValueToReplacesWhatWasThere) {
  Value value;
  value.set_int_value(5);
  StoredKv kv("k", value);
  Value out;
  out.set_string_value("old");
  kv.CopyValueTo(&out);
  EXPECT_EQ(out.kind_case(), Value::kIntValue);
  EXPECT_EQ(out.int_value(), 5);
}

}  // namespace
}  // namespace tshare::service
