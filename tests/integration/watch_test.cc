// Shares.Watch against a real server on 127.0.0.1:0: replay, RESYNC, FAIL, flow
// control policies with a stalled reader, progress frames, limits and shutdown.
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "service/server.h"
#include "service/shares_service.h"
#include "service/store.h"
#include "tests/integration/test_server.h"
#include "tshare/v1/shares.grpc.pb.h"

namespace tshare {
namespace {

using ::testing::HasSubstr;
using namespace tshare::v1;  // NOLINT: protos only

constexpr int kStallSets = 10000;

std::unique_ptr<grpc::ClientContext> Context(
    absl::Duration timeout = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

std::string TrailingMetadata(const grpc::ClientContext& context,
                             const std::string& key) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(key);
  if (it == trailers.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Sets `key` to the values first..last (string "<i>:" padded to `bytes`),
// through one Session stream, 1,000 ops per request. Returns the revision of
// the last set.
uint64_t SetMany(Shares::Stub* stub, const std::string& key, int first,
                 int last, size_t bytes = 0) {
  auto context = Context();
  auto stream = stub->Session(context.get());
  int sent = 0;
  for (int i = first; i <= last;) {
    SessionRequest request;
    for (int n = 0; n < 1000 && i <= last; ++n, ++i) {
      SessionOp* op = request.add_ops();
      op->set_id(static_cast<uint64_t>(i));
      op->mutable_set()->set_key(key);
      std::string value = absl::StrCat(i, ":");
      if (value.size() < bytes) value.resize(bytes, '.');
      op->mutable_set()->mutable_value()->set_string_value(value);
      ++sent;
    }
    EXPECT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  SessionResponse response;
  uint64_t revision = 0;
  int answered = 0;
  while (stream->Read(&response)) {
    for (const SessionResult& r : response.results()) {
      EXPECT_EQ(r.code(), 0) << r.message();
      revision = r.set().revision();
      ++answered;
    }
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, sent);
  return revision;
}

int64_t Counter(const KeyValue& kv) {
  const std::string& s = kv.value().string_value();
  int64_t n = 0;
  EXPECT_TRUE(absl::SimpleAtoi(s.substr(0, s.find(':')), &n)) << s;
  return n;
}

class WatchTest : public ::testing::Test {
 protected:
  void StartServer(
      service::ServerOptions options = testing::TestServer::DefaultOptions()) {
    server_ = std::make_unique<testing::TestServer>(options);
    stub_ = Shares::NewStub(server_->channel());
  }
  service::Store& store() { return server_->server().store(); }

  SetResponse SetInt(const std::string& key, int64_t v) {
    SetRequest request;
    request.set_key(key);
    request.mutable_value()->set_int_value(v);
    SetResponse response;
    EXPECT_TRUE(stub_->Set(Context().get(), request, &response).ok());
    return response;
  }

  // A started watch whose registration the server has confirmed (initial
  // metadata).
  struct Stream {
    std::unique_ptr<grpc::ClientContext> context = Context();
    std::unique_ptr<grpc::ClientReader<WatchEvent>> reader;
  };
  Stream Watch(const WatchRequest& request, Shares::Stub* stub = nullptr) {
    Stream s;
    s.reader =
        (stub != nullptr ? stub : stub_.get())->Watch(s.context.get(), request);
    s.reader->WaitForInitialMetadata();
    return s;
  }

  std::unique_ptr<testing::TestServer> server_;
  std::unique_ptr<Shares::Stub> stub_;
};

TEST_F(WatchTest, StartAtAnOldRevisionReplaysExactlyTheChangesSince) {
  StartServer();
  SetInt("k", 1);                                   // 1
  SetInt("other", 1);                               // 2
  const uint64_t from = SetInt("k", 2).revision();  // 3
  SetInt("k", 3);                                   // 4
  SetInt("other", 2);                               // 5
  WatchRequest request;
  request.set_key("k");
  request.set_start_revision(from);
  Stream s = Watch(request);
  SetInt("k", 4);  // 6, live

  std::vector<std::pair<int64_t, uint64_t>> seen;
  WatchEvent frame;
  while (seen.size() < 3 && s.reader->Read(&frame)) {
    ASSERT_EQ(frame.kind(), WatchEvent::CHANGES);
    EXPECT_EQ(frame.store_id(), server_->server().store_id());
    for (const Event& e : frame.events()) {
      seen.emplace_back(e.kv().value().int_value(), e.kv().mod_revision());
    }
  }
  EXPECT_THAT(seen, ::testing::ElementsAre(std::pair<int64_t, uint64_t>{2, 3},
                                           std::pair<int64_t, uint64_t>{3, 4},
                                           std::pair<int64_t, uint64_t>{4, 6}));
  s.context->TryCancel();
}

TEST_F(WatchTest, StartBeforeHistoryResyncsThenSendsLiveChanges) {
  service::ServerOptions options = testing::TestServer::DefaultOptions();
  options.history = 3;
  options.compact_interval = absl::Hours(1);
  StartServer(options);
  SetInt("p/a", 1);   // 1
  SetInt("p/b", 1);   // 2
  SetInt("p/a", 2);   // 3
  SetInt("q", 1);     // 4
  SetInt("p/c", 1);   // 5
  store().Compact();  // keeps 3..5
  ASSERT_EQ(store().OldestRevision(), 3u);

  WatchRequest request;
  request.set_prefix("p/");
  request.set_start_revision(1);
  Stream s = Watch(request);
  SetInt("p/b", 2);  // 6, live

  WatchEvent frame;
  ASSERT_TRUE(s.reader->Read(&frame));
  EXPECT_EQ(frame.kind(), WatchEvent::RESYNC_BEGIN);
  EXPECT_EQ(frame.revision(), 5u);
  std::vector<std::pair<std::string, int64_t>> snapshot;
  while (s.reader->Read(&frame) && frame.kind() == WatchEvent::SNAPSHOT) {
    for (const Event& e : frame.events()) {
      snapshot.emplace_back(e.kv().key(), e.kv().value().int_value());
    }
  }
  EXPECT_THAT(snapshot, ::testing::ElementsAre(
                            std::pair<std::string, int64_t>{"p/a", 2},
                            std::pair<std::string, int64_t>{"p/b", 1},
                            std::pair<std::string, int64_t>{"p/c", 1}));
  EXPECT_EQ(frame.kind(), WatchEvent::RESYNC_END);
  EXPECT_EQ(frame.revision(), 5u);
  ASSERT_TRUE(s.reader->Read(&frame));
  EXPECT_EQ(frame.kind(), WatchEvent::CHANGES);
  ASSERT_EQ(frame.events_size(), 1);
  EXPECT_EQ(frame.events(0).kv().key(), "p/b");
  EXPECT_EQ(frame.events(0).kv().mod_revision(), 6u);
  s.context->TryCancel();
}

TEST_F(WatchTest, OnCompactedFailEndsOutOfRangeWithTheOldestRevision) {
  service::ServerOptions options = testing::TestServer::DefaultOptions();
  options.history = 2;
  options.compact_interval = absl::Hours(1);
  StartServer(options);
  for (int i = 1; i <= 5; ++i) SetInt("k", i);
  store().Compact();  // keeps 4..5
  WatchRequest request;
  request.set_key("k");
  request.set_start_revision(2);
  request.set_on_compacted(FAIL);
  Stream s = Watch(request);
  WatchEvent frame;
  EXPECT_FALSE(s.reader->Read(&frame));
  grpc::Status status = s.reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(status.error_message(), HasSubstr("oldest revision kept is 4"));
  EXPECT_EQ(TrailingMetadata(*s.context, "tshare-oldest-revision"), "4");
}

TEST_F(WatchTest, EveryChangeExactlyOnceWhileWritersRun) {
  StartServer();
  constexpr int kSets = 3000;
  absl::Notification half;
  std::thread writer([&] {
    auto stub = Shares::NewStub(server_->NewChannel());
    SetMany(stub.get(), "k", 1, kSets / 2);
    half.Notify();
    SetMany(stub.get(), "k", kSets / 2 + 1, kSets);
  });
  // Joined on every way out, failed assertions included.
  absl::Cleanup join_writer = [&writer] { writer.join(); };
  half.WaitForNotification();
  // Replay from revision 1 is handed over to the live stream while the writer
  // runs. The queue holds every change, so however far the reader falls behind
  // (a loaded machine, a sanitizer build) nothing may be lost.
  WatchRequest request;
  request.set_key("k");
  request.set_start_revision(1);
  request.set_max_queue(kSets);
  Stream s = Watch(request);
  int64_t expected = 1;
  WatchEvent frame;
  while (expected <= kSets && s.reader->Read(&frame)) {
    ASSERT_EQ(frame.kind(), WatchEvent::CHANGES);
    ASSERT_FALSE(frame.has_loss());
    for (const Event& e : frame.events()) {
      ASSERT_EQ(Counter(e.kv()), expected);
      ASSERT_EQ(e.kv().mod_revision(), static_cast<uint64_t>(expected));
      ++expected;
    }
  }
  EXPECT_EQ(expected, kSets + 1);
  s.context->TryCancel();
}

// A reader that never reads while 10,000 sets of ~1 KiB go through: the writers
// finish, and the watch's policy shows in the frames it gets once it reads
// again.
class StalledWatchTest : public WatchTest,
                         public ::testing::WithParamInterface<OverflowPolicy> {
 protected:
  // A connection that does not grow its flow-control window, so a reader that
  // stops reading stops the server's writes after a few dozen KiB.
  std::unique_ptr<Shares::Stub> SmallWindowStub() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
    return Shares::NewStub(grpc::CreateCustomChannel(
        server_->address(), grpc::InsecureChannelCredentials(), args));
  }
};

TEST_P(StalledWatchTest, WritersFinishAndThePolicyAccountsForEveryChange) {
  StartServer();
  auto stalled_stub = SmallWindowStub();
  WatchRequest request;
  request.set_key("hot");
  request.set_max_queue(16);
  request.set_policy(GetParam());
  request.mutable_progress_interval()->set_nanos(20 * 1000 * 1000);
  Stream s = Watch(request, stalled_stub.get());

  // A second watcher of the same key, on its own connection, reads as the
  // changes come: the stalled one must cost it nothing (every change, in
  // order, no loss frame, while the writers run).
  WatchRequest healthy_request;
  healthy_request.set_key("hot");
  healthy_request.set_policy(GetParam());
  // Room for every change: whatever the scheduling, this one never has to
  // drop, so any loss would come from the stalled watcher.
  healthy_request.set_max_queue(kStallSets);
  auto healthy_stub = Shares::NewStub(server_->NewChannel());
  Stream healthy = Watch(healthy_request, healthy_stub.get());
  int64_t healthy_events = 0;
  bool healthy_in_order = true;
  bool healthy_lost = false;
  std::thread healthy_reader([&] {
    WatchEvent frame;
    while (healthy_events < kStallSets && healthy.reader->Read(&frame)) {
      healthy_lost = healthy_lost || frame.has_loss();
      for (const Event& e : frame.events()) {
        healthy_in_order =
            healthy_in_order && Counter(e.kv()) == ++healthy_events;
      }
    }
  });

  // Not reading: the writers must still finish.
  const uint64_t last = SetMany(stub_.get(), "hot", 1, kStallSets, 1024);
  ASSERT_EQ(last, static_cast<uint64_t>(kStallSets));
  healthy_reader.join();
  EXPECT_EQ(healthy_events, kStallSets);
  EXPECT_TRUE(healthy_in_order);
  EXPECT_FALSE(healthy_lost);
  healthy.context->TryCancel();

  uint64_t events = 0;
  uint64_t frames_with_loss = 0;
  Loss totals;
  int64_t previous = 0;
  int64_t last_value = 0;
  WatchEvent frame;
  bool caught_up = false;
  while (!caught_up && s.reader->Read(&frame)) {
    if (frame.has_loss()) {
      ++frames_with_loss;
      totals = frame.loss();
    }
    if (frame.kind() == WatchEvent::PROGRESS) {
      caught_up = frame.revision() >= last;
      continue;
    }
    ASSERT_EQ(frame.kind(), WatchEvent::CHANGES);
    for (const Event& e : frame.events()) {
      const int64_t v = Counter(e.kv());
      ASSERT_GT(v, previous);  // revision order, no duplicates
      previous = v;
      last_value = v;
      ++events;
    }
  }
  ASSERT_TRUE(caught_up);
  EXPECT_GT(frames_with_loss, 0u);
  switch (GetParam()) {
    case DROP_OLDEST:
      EXPECT_GT(totals.total_dropped(), 0u);
      EXPECT_EQ(totals.total_conflated(), 0u);
      EXPECT_EQ(events + totals.total_dropped(),
                static_cast<uint64_t>(kStallSets));
      EXPECT_EQ(last_value, kStallSets);  // the newest survives
      break;
    case DROP_NEWEST:
      EXPECT_GT(totals.total_dropped(), 0u);
      EXPECT_EQ(events + totals.total_dropped(),
                static_cast<uint64_t>(kStallSets));
      EXPECT_LT(last_value, kStallSets);  // what came while full was dropped
      break;
    default:  // CONFLATE
      EXPECT_GT(totals.total_conflated(), 0u);
      EXPECT_EQ(totals.total_dropped(), 0u);
      EXPECT_EQ(events + totals.total_conflated(),
                static_cast<uint64_t>(kStallSets));
      EXPECT_EQ(last_value, kStallSets);  // every key's latest value arrives
      break;
  }
  s.context->TryCancel();
}

INSTANTIATE_TEST_SUITE_P(
    Policies, StalledWatchTest,
    ::testing::Values(CONFLATE, DROP_OLDEST, DROP_NEWEST),
    [](const ::testing::TestParamInfo<OverflowPolicy>& info) {
      return OverflowPolicy_Name(info.param);
    });

TEST_F(StalledWatchTest, CloseEndsWithResourceExhaustedAndTheResumeRevision) {
  StartServer();
  auto stalled_stub = SmallWindowStub();
  WatchRequest request;
  request.set_key("hot");
  request.set_max_queue(16);
  request.set_policy(CLOSE);
  Stream s = Watch(request, stalled_stub.get());
  ASSERT_EQ(SetMany(stub_.get(), "hot", 1, kStallSets, 1024),
            static_cast<uint64_t>(kStallSets));

  uint64_t last_revision = 0;
  WatchEvent frame;
  while (s.reader->Read(&frame)) {
    ASSERT_EQ(frame.kind(), WatchEvent::CHANGES);
    for (const Event& e : frame.events()) {
      ASSERT_EQ(e.kv().mod_revision(),
                last_revision + 1);  // nothing lost before the end
      last_revision = e.kv().mod_revision();
    }
  }
  grpc::Status status = s.reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const std::string resume =
      TrailingMetadata(*s.context, "tshare-resume-revision");
  EXPECT_EQ(resume, absl::StrCat(last_revision + 1));
  EXPECT_THAT(status.error_message(),
              HasSubstr(absl::StrCat("start_revision=", resume)));

  // Resuming there continues without a gap.
  WatchRequest again;
  again.set_key("hot");
  again.set_start_revision(last_revision + 1);
  Stream r = Watch(again);
  ASSERT_TRUE(r.reader->Read(&frame));
  ASSERT_EQ(frame.kind(), WatchEvent::CHANGES);
  EXPECT_EQ(frame.events(0).kv().mod_revision(), last_revision + 1);
  r.context->TryCancel();
}

TEST_F(WatchTest, ProgressFramesArriveWhenIdle) {
  StartServer();
  SetInt("other", 1);
  WatchRequest request;
  request.set_key("quiet");
  request.mutable_progress_interval()->set_nanos(20 * 1000 * 1000);
  Stream s = Watch(request);
  for (int i = 0; i < 2; ++i) {
    WatchEvent frame;
    ASSERT_TRUE(s.reader->Read(&frame));
    EXPECT_EQ(frame.kind(), WatchEvent::PROGRESS);
    EXPECT_EQ(frame.revision(), 1u);
    EXPECT_EQ(frame.store_id(), server_->server().store_id());
  }
  s.context->TryCancel();
}

TEST_F(WatchTest, BadRequestsGetInvalidArgument) {
  service::ServerOptions options = testing::TestServer::DefaultOptions();
  options.max_watches_per_stream = 3;
  options.watch_queue = 10;
  options.max_watch_queue = 100;
  StartServer(options);
  auto expect_invalid = [&](const WatchRequest& request,
                            const std::string& message) {
    Stream s = Watch(request);
    WatchEvent frame;
    EXPECT_FALSE(s.reader->Read(&frame));
    grpc::Status status = s.reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << message;
    EXPECT_THAT(status.error_message(), HasSubstr(message));
  };
  WatchRequest many;
  many.set_prefix("a");
  many.add_keys("b");
  many.add_prefixes("c");
  many.add_keys("d");
  expect_invalid(many, "--max_watches_per_stream=3");
  WatchRequest nothing;
  expect_invalid(nothing, "no target");
  WatchRequest queue;
  queue.set_key("k");
  queue.set_max_queue(101);
  expect_invalid(queue, "--max_watch_queue=100");
  WatchRequest fast;
  fast.set_key("k");
  fast.mutable_progress_interval()->set_nanos(5 * 1000 * 1000);
  expect_invalid(fast, "progress_interval");
  WatchRequest snapshot;
  snapshot.set_key("k");
  snapshot.set_snapshot(true);
  snapshot.set_start_revision(3);
  expect_invalid(snapshot, "start_revision");
  WatchRequest long_key;
  long_key.set_key(std::string(5000, 'k'));
  expect_invalid(long_key, "--max_key_bytes=4096");
}

TEST_F(WatchTest, ShutdownEndsOpenWatchesWithUnavailable) {
  StartServer();
  WatchRequest request;
  request.set_prefix("");
  Stream s = Watch(request);
  server_->server().shares_service().BeginShutdown();
  WatchEvent frame;
  EXPECT_FALSE(s.reader->Read(&frame));
  grpc::Status status = s.reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "server is shutting down");
  Stream late = Watch(request);
  EXPECT_FALSE(late.reader->Read(&frame));
  EXPECT_EQ(late.reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace tshare
