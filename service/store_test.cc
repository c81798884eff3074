#include "service/store.h"

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace tshare::service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tshare::testing::StatusIs;
using namespace tshare::v1;  // NOLINT: protos only

Value Int(int64_t v) {
  Value value;
  value.set_int_value(v);
  return value;
}

ServerOptions SmallOptions() {
  ServerOptions options;
  options.max_key_bytes = 16;
  options.max_value_bytes = 64;
  options.max_txn_ops = 4;
  options.max_page_size = 10;
  options.history = 5;
  return options;
}

class StoreTest : public ::testing::Test {
 protected:
  absl::StatusOr<SetResponse> Set(const std::string& key, int64_t v) {
    SetRequest request;
    request.set_key(key);
    *request.mutable_value() = Int(v);
    SetResponse response;
    absl::Status s = store_.Set(request, &response);
    if (!s.ok()) return s;
    return response;
  }
  absl::StatusOr<SetResponse> SetIf(const std::string& key, int64_t v,
                                    uint64_t if_version) {
    SetRequest request;
    request.set_key(key);
    *request.mutable_value() = Int(v);
    request.set_if_version(if_version);
    SetResponse response;
    absl::Status s = store_.Set(request, &response);
    if (!s.ok()) return s;
    return response;
  }
  absl::StatusOr<GetResponse> Get(const std::string& key) {
    GetRequest request;
    request.set_key(key);
    GetResponse response;
    absl::Status s = store_.Get(request, &response);
    if (!s.ok()) return s;
    return response;
  }
  absl::StatusOr<UpdateResponse> Add(const std::string& key, int64_t v) {
    UpdateRequest request;
    request.set_key(key);
    *request.mutable_add() = Int(v);
    UpdateResponse response;
    absl::Status s = store_.Update(request, &response);
    if (!s.ok()) return s;
    return response;
  }
  absl::StatusOr<DeleteResponse> Delete(const std::string& key,
                                        const std::string& prefix) {
    DeleteRequest request;
    request.set_key(key);
    request.set_prefix(prefix);
    DeleteResponse response;
    absl::Status s = store_.Delete(request, &response);
    if (!s.ok()) return s;
    return response;
  }
  absl::StatusOr<ListResponse> List(const std::string& prefix,
                                    uint32_t page_size,
                                    const std::string& token) {
    ListRequest request;
    request.set_prefix(prefix);
    request.set_page_size(page_size);
    request.set_page_token(token);
    ListResponse response;
    absl::Status s = store_.List(request, &response);
    if (!s.ok()) return s;
    return response;
  }
  absl::StatusOr<TxnResponse> Txn(const TxnRequest& request) {
    TxnResponse response;
    absl::Status s = store_.Txn(request, &response);
    if (!s.ok()) return s;
    return response;
  }
  int64_t IntAt(const std::string& key) {
    absl::StatusOr<GetResponse> r = Get(key);
    EXPECT_OK(r);
    return r.ok() ? r->value().int_value() : -1;
  }

  ServerOptions options_ = SmallOptions();
  Store store_{options_};
};

TEST_F(StoreTest, StoreIdIs128BitHexAndDiffersPerStore) {
  Store other(options_);
  EXPECT_EQ(store_.store_id().size(), 32u);
  EXPECT_EQ(store_.store_id().find_first_not_of("0123456789abcdef"),
            std::string::npos);
  EXPECT_NE(store_.store_id(), other.store_id());
}

TEST_F(StoreTest, EveryChangeTakesTheNextRevisionAndTheKeysNextVersion) {
  EXPECT_EQ(store_.revision(), 0u);
  ASSERT_OK_AND_ASSIGN(SetResponse a1, Set("a", 1));
  EXPECT_EQ(a1.revision(), 1u);
  EXPECT_EQ(a1.version(), 1u);
  EXPECT_TRUE(a1.created());
  EXPECT_EQ(a1.store_id(), store_.store_id());
  ASSERT_OK_AND_ASSIGN(SetResponse b1, Set("b", 1));
  EXPECT_EQ(b1.revision(), 2u);
  ASSERT_OK_AND_ASSIGN(SetResponse a2, Set("a", 2));
  EXPECT_EQ(a2.revision(), 3u);
  EXPECT_EQ(a2.version(), 2u);
  EXPECT_FALSE(a2.created());

  ASSERT_OK_AND_ASSIGN(GetResponse got, Get("a"));
  EXPECT_EQ(got.value().int_value(), 2);
  EXPECT_EQ(got.version(), 2u);
  EXPECT_EQ(got.create_revision(), 1u);
  EXPECT_EQ(got.mod_revision(), 3u);
  EXPECT_EQ(got.revision(), 3u);
}

TEST_F(StoreTest, DeleteEndsVersionsAndRecreationStartsAtOne) {
  ASSERT_OK(Set("a", 1).status());
  ASSERT_OK(Set("a", 2).status());
  ASSERT_OK_AND_ASSIGN(DeleteResponse d, Delete("a", ""));
  EXPECT_EQ(d.deleted(), 1u);
  EXPECT_EQ(d.revision(), 3u);
  EXPECT_THAT(Get("a"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"a\"")));
  ASSERT_OK_AND_ASSIGN(SetResponse again, Set("a", 3));
  EXPECT_EQ(again.version(), 1u);
  EXPECT_TRUE(again.created());
  ASSERT_OK_AND_ASSIGN(GetResponse got, Get("a"));
  EXPECT_EQ(got.create_revision(), 4u);
}

TEST_F(StoreTest, DeletingNothingUsesNoRevision) {
  ASSERT_OK_AND_ASSIGN(DeleteResponse d, Delete("missing", ""));
  EXPECT_EQ(d.deleted(), 0u);
  EXPECT_EQ(d.revision(), 0u);
  EXPECT_EQ(store_.revision(), 0u);
}

TEST_F(StoreTest, IfVersionGuardsSet) {
  ASSERT_OK_AND_ASSIGN(SetResponse created, SetIf("a", 1, 0));
  EXPECT_EQ(created.version(), 1u);
  EXPECT_THAT(SetIf("a", 2, 0), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("expected to be absent")));
  EXPECT_THAT(SetIf("a", 2, 5), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("at version 1")));
  ASSERT_OK(SetIf("a", 2, 1).status());
  EXPECT_EQ(IntAt("a"), 2);
  EXPECT_EQ(store_.revision(), 2u);  // the refused sets used no revision
}

TEST_F(StoreTest, IfVersionGuardsUpdateAndDelete) {
  ASSERT_OK(Set("a", 1).status());
  UpdateRequest update;
  update.set_key("a");
  *update.mutable_add() = Int(1);
  update.set_if_version(7);
  UpdateResponse ur;
  EXPECT_THAT(store_.Update(update, &ur),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  DeleteRequest del;
  del.set_key("a");
  del.set_if_version(2);
  DeleteResponse dr;
  EXPECT_THAT(store_.Delete(del, &dr),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  del.set_if_version(1);
  ASSERT_OK(store_.Delete(del, &dr));
  EXPECT_EQ(dr.deleted(), 1u);
}

TEST_F(StoreTest, UpdateReturnsNewValueAndUnchangedUsesNoRevision) {
  ASSERT_OK_AND_ASSIGN(UpdateResponse first, Add("n", 5));
  EXPECT_EQ(first.value().int_value(), 5);
  EXPECT_EQ(first.version(), 1u);
  EXPECT_TRUE(first.changed());
  ASSERT_OK_AND_ASSIGN(UpdateResponse same, Add("n", 0));
  EXPECT_FALSE(same.changed());
  EXPECT_EQ(same.version(), 1u);
  EXPECT_EQ(same.revision(), 1u);
  EXPECT_EQ(store_.revision(), 1u);

  UpdateRequest request;
  request.set_key("n");
  *request.mutable_max() = Int(3);
  UpdateResponse r;
  ASSERT_OK(store_.Update(request, &r));
  EXPECT_FALSE(r.changed());
  EXPECT_EQ(r.value().int_value(), 5);
}

TEST_F(StoreTest, UpdateErrorsChangeNothing) {
  ASSERT_OK(Set("n", INT64_MAX).status());
  EXPECT_THAT(Add("n", 1), StatusIs(absl::StatusCode::kOutOfRange));
  UpdateRequest request;
  request.set_key("n");
  request.mutable_append()->set_string_value("x");
  UpdateResponse r;
  EXPECT_THAT(store_.Update(request, &r),
              StatusIs(absl::StatusCode::kInvalidArgument));
  request.set_key("n");
  request.mutable_compare_and_set()->mutable_expected()->set_int_value(1);
  request.mutable_compare_and_set()->mutable_new_value()->set_int_value(2);
  EXPECT_THAT(store_.Update(request, &r),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  request.set_key("absent");
  EXPECT_THAT(store_.Update(request, &r),
              StatusIs(absl::StatusCode::kNotFound));
  request.clear_compare_and_set();
  EXPECT_THAT(store_.Update(request, &r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("set one of add")));
  EXPECT_EQ(IntAt("n"), INT64_MAX);
  EXPECT_EQ(store_.revision(), 1u);
}

TEST_F(StoreTest, UpdateResultOverValueLimitIsRefused) {
  UpdateRequest request;
  request.set_key("s");
  request.mutable_append()->set_string_value(std::string(40, 'x'));
  UpdateResponse r;
  ASSERT_OK(store_.Update(request, &r));
  EXPECT_THAT(store_.Update(request, &r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--max_value_bytes=64")));
  EXPECT_EQ(store_.revision(), 1u);
}

TEST_F(StoreTest, ConcurrentAddsLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kAdds = 500;
  absl::BlockingCounter done(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAdds; ++i) EXPECT_OK(Add("n", 1).status());
      done.DecrementCount();
    });
  }
  done.Wait();
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(IntAt("n"), kThreads * kAdds);
  EXPECT_EQ(store_.revision(), static_cast<uint64_t>(kThreads * kAdds));
}

TEST_F(StoreTest, LimitsAreCheckedBeforeAnyChange) {
  EXPECT_THAT(
      Set(std::string(17, 'k'), 1),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("key of 17 bytes exceeds --max_key_bytes=16")));
  EXPECT_THAT(Set("", 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  SetRequest big;
  big.set_key("k");
  big.mutable_value()->set_string_value(std::string(100, 'v'));
  SetResponse sr;
  EXPECT_THAT(
      store_.Set(big, &sr),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr("value of 102 bytes exceeds --max_value_bytes=64 bytes")));
  SetRequest unset;
  unset.set_key("k");
  EXPECT_THAT(store_.Set(unset, &sr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("set one of int_value")));
  EXPECT_THAT(Get(std::string(17, 'k')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(store_.revision(), 0u);
  EXPECT_EQ(store_.Stats().keys(), 0u);
}

TEST_F(StoreTest, DeleteNeedsExactlyOneTarget) {
  EXPECT_THAT(Delete("", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Delete("a", "b"), StatusIs(absl::StatusCode::kInvalidArgument));
  DeleteRequest request;
  request.set_prefix("a");
  request.set_if_version(1);
  DeleteResponse r;
  EXPECT_THAT(store_.Delete(request, &r),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StoreTest, DeletePrefixRemovesAllAtOneRevision) {
  ASSERT_OK(Set("a/1", 1).status());
  ASSERT_OK(Set("a/2", 1).status());
  ASSERT_OK(Set("b", 1).status());
  ASSERT_OK_AND_ASSIGN(DeleteResponse d, Delete("", "a/"));
  EXPECT_EQ(d.deleted(), 2u);
  EXPECT_EQ(d.revision(), 4u);
  EXPECT_EQ(store_.revision(), 4u);
  EXPECT_EQ(store_.Stats().keys(), 1u);
}

TEST_F(StoreTest, ListPagesInKeyOrderWithTokens) {
  for (int i = 0; i < 7; ++i) ASSERT_OK(Set(absl::StrCat("p/", i), i).status());
  ASSERT_OK(Set("q", 0).status());
  std::vector<std::string> keys;
  std::string token;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(ListResponse page, List("p/", 3, token));
    for (const KeyValue& kv : page.kvs()) keys.push_back(kv.key());
    EXPECT_EQ(page.revision(), 8u);
    token = page.next_page_token();
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(keys,
              ElementsAre("p/0", "p/1", "p/2", "p/3", "p/4", "p/5", "p/6"));

  ASSERT_OK_AND_ASSIGN(ListResponse all, List("", 0, ""));
  EXPECT_EQ(all.kvs_size(), 8);
  EXPECT_TRUE(all.next_page_token().empty());
}

TEST_F(StoreTest, ListKeysOnlyLeavesValuesOut) {
  ASSERT_OK(Set("a", 5).status());
  ListRequest request;
  request.set_keys_only(true);
  ListResponse response;
  ASSERT_OK(store_.List(request, &response));
  ASSERT_EQ(response.kvs_size(), 1);
  EXPECT_FALSE(response.kvs(0).has_value());
  EXPECT_EQ(response.kvs(0).version(), 1u);
}

TEST_F(StoreTest, ListRefusesBadPageSizeAndTokens) {
  EXPECT_THAT(List("", 11, ""), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("--max_page_size=10")));
  EXPECT_THAT(List("", 1, "%%%"), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("page_token")));
  EXPECT_THAT(
      List("", 1, absl::WebSafeBase64Escape("garbage")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  ASSERT_OK(Set("a/1", 1).status());
  ASSERT_OK(Set("a/2", 1).status());
  ASSERT_OK_AND_ASSIGN(ListResponse page, List("a/", 1, ""));
  ASSERT_FALSE(page.next_page_token().empty());
  EXPECT_THAT(List("b/", 1, page.next_page_token()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("another prefix")));
}

TxnOp SetOp(const std::string& key, int64_t v) {
  TxnOp op;
  op.mutable_set()->set_key(key);
  *op.mutable_set()->mutable_value() = Int(v);
  return op;
}
TxnOp GetOp(const std::string& key) {
  TxnOp op;
  op.mutable_get()->set_key(key);
  return op;
}
TxnOp AddOp(const std::string& key, int64_t v) {
  TxnOp op;
  op.mutable_update()->set_key(key);
  *op.mutable_update()->mutable_add() = Int(v);
  return op;
}

TEST_F(StoreTest, TxnRunsSuccessOpsAtOneRevision) {
  ASSERT_OK(Set("a", 10).status());
  TxnRequest txn;
  Compare* c = txn.add_compares();
  c->set_key("a");
  c->set_operator_(Compare::GREATER);
  *c->mutable_value() = Int(5);
  *txn.add_success() = AddOp("a", -5);
  *txn.add_success() = AddOp("b", 5);
  *txn.add_success() = GetOp("b");
  *txn.add_failure() = GetOp("a");
  ASSERT_OK_AND_ASSIGN(TxnResponse r, Txn(txn));
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.revision(), 2u);
  ASSERT_EQ(r.results_size(), 3);
  EXPECT_EQ(r.results(0).update().value().int_value(), 5);
  EXPECT_EQ(r.results(0).update().revision(), 2u);
  EXPECT_EQ(r.results(2).get().value().int_value(),
            5);  // sees the txn's own change
  EXPECT_EQ(IntAt("a"), 5);
  EXPECT_EQ(IntAt("b"), 5);
  ASSERT_OK_AND_ASSIGN(GetResponse a, Get("a"));
  ASSERT_OK_AND_ASSIGN(GetResponse b, Get("b"));
  EXPECT_EQ(a.mod_revision(), 2u);
  EXPECT_EQ(b.mod_revision(), 2u);
  EXPECT_EQ(store_.revision(), 2u);
}

TEST_F(StoreTest, TxnRunsFailureOpsWhenACompareFails) {
  ASSERT_OK(Set("a", 1).status());
  TxnRequest txn;
  Compare* c = txn.add_compares();
  c->set_key("a");
  c->set_version(2);  // EQUAL
  *txn.add_success() = SetOp("a", 100);
  *txn.add_failure() = GetOp("a");
  ASSERT_OK_AND_ASSIGN(TxnResponse r, Txn(txn));
  EXPECT_FALSE(r.succeeded());
  ASSERT_EQ(r.results_size(), 1);
  EXPECT_EQ(r.results(0).get().value().int_value(), 1);
  EXPECT_EQ(r.revision(), 1u);  // nothing changed
  EXPECT_EQ(store_.revision(), 1u);
}

TEST_F(StoreTest, TxnComparesVersionExistsAndModRevision) {
  ASSERT_OK(Set("a", 1).status());
  auto run = [&](Compare compare) {
    TxnRequest txn;
    *txn.add_compares() = std::move(compare);
    absl::StatusOr<TxnResponse> r = Txn(txn);
    EXPECT_OK(r);
    return r.ok() && r->succeeded();
  };
  Compare c;
  c.set_key("a");
  c.set_exists(true);
  EXPECT_TRUE(run(c));
  c.set_key("zz");
  EXPECT_FALSE(run(c));
  c.set_operator_(Compare::NOT_EQUAL);
  EXPECT_TRUE(run(c));
  c.set_key("a");
  c.set_operator_(Compare::LESS);
  c.set_mod_revision(2);
  EXPECT_TRUE(run(c));
  c.set_operator_(Compare::GREATER);
  c.set_version(0);
  EXPECT_TRUE(run(c));
  c.set_key("zz");
  c.set_operator_(Compare::EQUAL);
  c.set_version(0);
  EXPECT_TRUE(run(c));
  *c.mutable_value() = Int(1);  // an absent key's value compares false
  EXPECT_FALSE(run(c));
}

TEST_F(StoreTest, TxnOpErrorAbortsEverything) {
  ASSERT_OK(Set("a", 1).status());
  TxnRequest txn;
  *txn.add_success() = SetOp("b", 2);
  TxnOp guarded = SetOp("a", 3);
  guarded.mutable_set()->set_if_version(9);
  *txn.add_success() = guarded;
  EXPECT_THAT(Txn(txn), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Get("b"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(IntAt("a"), 1);
  EXPECT_EQ(store_.revision(), 1u);

  TxnRequest missing;
  *missing.add_success() = SetOp("c", 1);
  *missing.add_success() = GetOp("nope");
  EXPECT_THAT(Txn(missing), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Get("c"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, TxnRefusesDuplicateAndOverlappingKeys) {
  TxnRequest dup;
  *dup.add_success() = SetOp("a", 1);
  *dup.add_success() = AddOp("a", 1);
  EXPECT_THAT(Txn(dup), StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr("more than once")));
  TxnRequest overlap;
  *overlap.add_success() = SetOp("p/x", 1);
  overlap.add_success()->mutable_delete_()->set_prefix("p/");
  EXPECT_THAT(Txn(overlap), StatusIs(absl::StatusCode::kInvalidArgument));
  TxnRequest reads;  // reading a key twice is fine
  *reads.add_success() = SetOp("a", 1);
  *reads.add_success() = GetOp("a");
  *reads.add_success() = GetOp("a");
  EXPECT_OK(Txn(reads).status());
}

TEST_F(StoreTest, TxnLimitsAndBadInput) {
  TxnRequest big;
  for (int i = 0; i < 3; ++i) {
    Compare* c = big.add_compares();
    c->set_key("a");
    c->set_exists(false);
  }
  *big.add_success() = SetOp("x", 1);
  *big.add_success() = SetOp("y", 1);
  EXPECT_THAT(Txn(big), StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr("--max_txn_ops=4")));
  EXPECT_EQ(store_.revision(), 0u);

  TxnRequest empty_op;
  empty_op.add_success();
  EXPECT_THAT(Txn(empty_op), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("set one of get, set")));
  TxnRequest no_target;
  no_target.add_compares()->set_key("a");
  EXPECT_THAT(Txn(no_target), StatusIs(absl::StatusCode::kInvalidArgument));
  TxnRequest exists_greater;
  Compare* c = exists_greater.add_compares();
  c->set_key("a");
  c->set_exists(true);
  c->set_operator_(Compare::GREATER);
  EXPECT_THAT(Txn(exists_greater),
              StatusIs(absl::StatusCode::kInvalidArgument));
  TxnRequest bad_enum;
  c = bad_enum.add_compares();
  c->set_key("a");
  c->set_version(1);
  c->set_operator_(static_cast<Compare::Operator>(17));
  EXPECT_THAT(Txn(bad_enum), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(Set("s", 1).status());
  TxnRequest kinds;  // GREATER on an int key with a double operand
  c = kinds.add_compares();
  c->set_key("s");
  c->set_operator_(Compare::GREATER);
  c->mutable_value()->set_double_value(1);
  EXPECT_THAT(Txn(kinds), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("double")));
}

TEST_F(StoreTest, HistoryIsCompactedToTheLimit) {
  EXPECT_EQ(store_.OldestRevision(), 0u);
  for (int i = 0; i < 8; ++i) ASSERT_OK(Set("k", i).status());
  EXPECT_EQ(store_.history_size(), 8u);
  EXPECT_EQ(store_.OldestRevision(), 1u);
  store_.Compact();
  EXPECT_EQ(store_.history_size(), 5u);
  EXPECT_EQ(store_.OldestRevision(), 4u);
  EXPECT_EQ(store_.CompactedRevision(), 3u);
  StoreStats stats = store_.Stats();
  EXPECT_EQ(stats.oldest_revision(), 4u);
  EXPECT_EQ(stats.history_limit(), 5u);
  EXPECT_EQ(stats.revision(), 8u);
  EXPECT_EQ(stats.sets(), 8u);
}

TEST_F(StoreTest, ReadForWatchReplaysOrResyncsOrReportsCompaction) {
  for (int i = 1; i <= 8; ++i) ASSERT_OK(Set(i % 2 ? "a" : "b", i).status());
  store_.Compact();  // keeps revisions 4..8
  KeyTargets targets;
  targets.keys = {"a"};
  WatchStartRead replay = store_.ReadForWatch(6, false, true, targets);
  EXPECT_FALSE(replay.compacted);
  EXPECT_EQ(replay.revision, 8u);
  ASSERT_EQ(replay.changes.size(), 3u);
  EXPECT_EQ(replay.changes.front()->revision, 6u);

  WatchStartRead failed = store_.ReadForWatch(2, false, false, targets);
  EXPECT_TRUE(failed.compacted);
  EXPECT_EQ(failed.compacted_revision, 3u);

  WatchStartRead resync = store_.ReadForWatch(2, false, true, targets);
  EXPECT_TRUE(resync.has_snapshot);
  ASSERT_EQ(resync.snapshot.size(), 1u);
  EXPECT_EQ(resync.snapshot[0]->key(), "a");
  EXPECT_EQ(resync.snapshot[0]->value().int_value(), 7);
}

TEST_F(StoreTest, StatsCountKeysAndBytes) {
  ASSERT_OK(Set("a", 1).status());
  ASSERT_OK(Set("bb", 1).status());
  StoreStats stats = store_.Stats();
  EXPECT_EQ(stats.keys(), 2u);
  EXPECT_GT(stats.bytes(), 3u);
  ASSERT_OK(Delete("", "a").status());
  ASSERT_OK(Delete("bb", "").status());
  EXPECT_EQ(store_.Stats().bytes(), 0u);
}

TEST_F(StoreTest, WaitForFiresOnlyForItsKeyAndVersion) {
  ASSERT_OK(Set("k", 1).status());
  GetResponse ready;
  ASSERT_OK_AND_ASSIGN(uint64_t now, store_.WaitFor("k", 0, nullptr, &ready));
  EXPECT_EQ(now, 0u);  // already past version 0
  EXPECT_EQ(ready.value().int_value(), 1);

  absl::Notification fired;
  GetResponse seen;
  ASSERT_OK_AND_ASSIGN(uint64_t id, store_.WaitFor(
                                        "k", 2,
                                        [&](const GetResponse& r) {
                                          seen = r;
                                          fired.Notify();
                                        },
                                        &ready));
  EXPECT_NE(id, 0u);
  ASSERT_OK(Set("other", 1).status());
  ASSERT_OK(Set("k", 2).status());  // version 2: not past 2 yet
  EXPECT_FALSE(fired.HasBeenNotified());
  EXPECT_EQ(store_.waiter_count(), 1u);
  ASSERT_OK(Set("k", 3).status());
  EXPECT_TRUE(fired.HasBeenNotified());
  EXPECT_EQ(seen.version(), 3u);
  EXPECT_EQ(seen.value().int_value(), 3);
  EXPECT_EQ(store_.waiter_count(), 0u);
  EXPECT_FALSE(store_.CancelWait("k", id));
}

TEST_F(StoreTest, CancelWaitRemovesTheWaiter) {
  GetResponse ready;
  bool fired = false;
  ASSERT_OK_AND_ASSIGN(
      uint64_t id,
      store_.WaitFor(
          "k", 0, [&](const GetResponse&) { fired = true; }, &ready));
  EXPECT_TRUE(store_.CancelWait("k", id));
  ASSERT_OK(Set("k", 1).status());
  EXPECT_FALSE(fired);
  EXPECT_THAT(store_.WaitFor("", 0, nullptr, &ready),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class RecordingListener final : public ChangeListener {
 public:
  void OnChange(const ChangePtr& change) override {
    revisions.push_back(change->revision);
  }
  std::vector<uint64_t> revisions;
};

TEST_F(StoreTest, ListenerSeesEveryChangeInRevisionOrder) {
  RecordingListener listener;
  store_.SetChangeListener(&listener);
  constexpr int kThreads = 4;
  constexpr int kSets = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kSets; ++i)
        EXPECT_OK(Set(absl::StrCat("k", t), i).status());
    });
  }
  for (std::thread& t : threads) t.join();
  store_.SetChangeListener(nullptr);
  ASSERT_EQ(listener.revisions.size(), static_cast<size_t>(kThreads * kSets));
  for (size_t i = 0; i < listener.revisions.size(); ++i) {
    ASSERT_EQ(listener.revisions[i], i + 1);
  }
}

}  // namespace
}  // namespace tshare::service
