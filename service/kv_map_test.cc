#include "service/kv_map.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tshare::service {
namespace {

KvPtr State(const std::string& key, int64_t n) {
  tshare::v1::Value value;
  value.set_int_value(n);
  return std::make_shared<StoredKv>(key, value);
}

std::vector<std::string> Keys(const KvMap& map) {
  std::vector<std::string> keys;
  for (const KvSlot* slot : map) keys.emplace_back(slot->kv->key());
  return keys;
}

TEST(KvMapTest, FindsWhatWasPutAndNothingElse) {
  KvMap map;
  EXPECT_EQ(map.Find("a"), nullptr);
  const KvSlot* a = map.Put(State("a", 1), 10);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(map.Find("a"), a);
  EXPECT_EQ(a->kv->value().int_value(), 1);
  EXPECT_EQ(a->bytes, 10u);
  EXPECT_EQ(map.Find("b"), nullptr);
  EXPECT_EQ(map.Find(""), nullptr);
  EXPECT_EQ(map.size(), 1u);
}

TEST(KvMapTest, PutOfAKnownKeyReplacesItsStateInTheSameSlot) {
  KvMap map;
  const KvSlot* first = map.Put(State("k", 1), 10);
  map.Put(State("j", 0), 1);
  const KvSlot* second = map.Put(State("k", 2), 20);
  EXPECT_EQ(second, first);
  EXPECT_EQ(map.Find("k")->kv->value().int_value(), 2);
  EXPECT_EQ(map.Find("k")->bytes, 20u);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(Keys(map), (std::vector<std::string>{"j", "k"}));
}

TEST(KvMapTest, SlotsStayPutWhileTheMapGrows) {
  KvMap map;
  const KvSlot* first = map.Put(State("key0", 0), 1);
  for (int i = 1; i < 10000; ++i) map.Put(State(absl::StrCat("key", i), i), 1);
  EXPECT_EQ(map.Find("key0"), first);
  EXPECT_EQ(first->kv->key(), "key0");
  EXPECT_EQ(map.Find("key9999")->kv->value().int_value(), 9999);
  EXPECT_EQ(map.size(), 10000u);
}

TEST(KvMapTest, WalksInKeyOrderFromABound) {
  KvMap map;
  for (const char* key : {"b/2", "a", "b/1", "c", "b/10", "b"}) {
    map.Put(State(key, 0), 1);
  }
  EXPECT_EQ(Keys(map),
            (std::vector<std::string>{"a", "b", "b/1", "b/10", "b/2", "c"}));
  auto it = map.lower_bound("b/");
  ASSERT_NE(it, map.end());
  EXPECT_EQ((*it)->kv->key(), "b/1");
  it = map.upper_bound("b/10");
  ASSERT_NE(it, map.end());
  EXPECT_EQ((*it)->kv->key(), "b/2");
  EXPECT_EQ(map.lower_bound("d"), map.end());
  // The ordered walk and Find see the same slots.
  for (const KvSlot* slot : map) EXPECT_EQ(map.Find(slot->kv->key()), slot);
}

TEST(KvMapTest, EraseRemovesTheKeyFromBothLookups) {
  KvMap map;
  for (const char* key : {"a", "b", "c"}) map.Put(State(key, 0), 1);
  map.Erase(map.Find("b"));
  EXPECT_EQ(map.Find("b"), nullptr);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(Keys(map), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ((*map.lower_bound("b"))->kv->key(), "c");
  // Put after Erase makes a new key again.
  map.Put(State("b", 7), 1);
  EXPECT_EQ(map.Find("b")->kv->value().int_value(), 7);
  EXPECT_EQ(Keys(map), (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace tshare::service
