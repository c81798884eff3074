// Admin over gRPC: figures that move with traffic, and the open watches and
// subscriptions.
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "service/server.h"
#include "tests/integration/test_server.h"
#include "tshare/v1/admin.grpc.pb.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"

namespace tshare {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;
using testing::TestServer;

v1::StatsResponse Stats(v1::Admin::Stub& admin) {
  v1::StatsResponse response;
  grpc::ClientContext context;
  grpc::Status status = admin.Stats(&context, {}, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

TEST(AdminTest, StatsMoveWithTraffic) {
  TestServer server;
  auto admin = v1::Admin::NewStub(server.channel());
  auto shares = v1::Shares::NewStub(server.channel());
  auto bus = v1::Bus::NewStub(server.channel());

  const v1::StatsResponse before = Stats(*admin);
  EXPECT_EQ(before.store_id(), server.server().store_id());
  EXPECT_EQ(before.version(), service::kServerVersion);
  EXPECT_GE(before.workers().total(), 1u);  // the history compactor
  EXPECT_GE(before.pool().threads(), 1u);
  EXPECT_THAT(before.pool().queued(), SizeIs(4));

  v1::SetRequest set;
  set.set_key("visits");
  set.mutable_value()->set_int_value(1);
  v1::SetResponse set_response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(shares->Set(&context, set, &set_response).ok());
  }
  v1::GetRequest get;
  get.set_key("visits");
  v1::GetResponse get_response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(shares->Get(&context, get, &get_response).ok());
  }
  v1::PublishRequest publish;
  publish.set_topic("orders.new");
  publish.mutable_value()->set_int_value(7);
  v1::PublishResponse publish_response;
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    ASSERT_TRUE(bus->Publish(&context, publish, &publish_response).ok());
  }

  const v1::StatsResponse after = Stats(*admin);
  EXPECT_EQ(after.revision(), before.revision() + 1);
  EXPECT_EQ(after.revision(), set_response.revision());
  EXPECT_EQ(after.store().keys(), before.store().keys() + 1);
  EXPECT_EQ(after.store().sets(), before.store().sets() + 1);
  EXPECT_EQ(after.store().gets(), before.store().gets() + 1);
  EXPECT_GT(after.store().bytes(), before.store().bytes());
  EXPECT_EQ(after.bus().published(), before.bus().published() + 3);
  EXPECT_EQ(after.bus().topics(), before.bus().topics() + 1);
  EXPECT_GT(after.uptime_seconds(), before.uptime_seconds());
  EXPECT_EQ(after.store_id(), before.store_id());
}

TEST(AdminTest, ListSubscriptionsShowsOpenWatchesAndSubscriptions) {
  TestServer server;
  auto admin = v1::Admin::NewStub(server.channel());
  auto shares = v1::Shares::NewStub(server.channel());
  auto bus = v1::Bus::NewStub(server.channel());

  // Each stream is registered once its first PROGRESS frame arrives.
  v1::WatchRequest watch_request;
  watch_request.set_key("visits");
  watch_request.mutable_progress_interval()->set_nanos(20'000'000);
  grpc::ClientContext watch_context;
  auto watch = shares->Watch(&watch_context, watch_request);
  v1::WatchEvent watch_event;
  ASSERT_TRUE(watch->Read(&watch_event));
  EXPECT_EQ(watch_event.kind(), v1::WatchEvent::PROGRESS);

  v1::SubscribeRequest subscribe;
  subscribe.add_patterns("orders.*");
  subscribe.set_max_queue(16);
  subscribe.set_policy(v1::CONFLATE);
  subscribe.mutable_progress_interval()->set_nanos(20'000'000);
  grpc::ClientContext subscribe_context;
  auto subscription = bus->Subscribe(&subscribe_context, subscribe);
  v1::BusMessage message;
  ASSERT_TRUE(subscription->Read(&message));
  EXPECT_EQ(message.kind(), v1::BusMessage::PROGRESS);

  v1::ListSubscriptionsResponse list;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(admin->ListSubscriptions(&context, {}, &list).ok());
  }
  EXPECT_EQ(list.store_id(), server.server().store_id());
  ASSERT_THAT(list.subscriptions(), SizeIs(2));
  const v1::SubscriptionInfo& w = list.subscriptions(0);
  EXPECT_EQ(w.kind(), v1::SubscriptionInfo::WATCH);
  EXPECT_THAT(w.targets(), ElementsAre("visits"));
  EXPECT_FALSE(w.peer().empty());
  const v1::SubscriptionInfo& s = list.subscriptions(1);
  EXPECT_EQ(s.kind(), v1::SubscriptionInfo::SUBSCRIPTION);
  EXPECT_THAT(s.targets(), ElementsAre("orders.*"));
  EXPECT_EQ(s.max_queue(), 16u);
  EXPECT_EQ(s.policy(), v1::CONFLATE);
  EXPECT_FALSE(s.peer().empty());
  EXPECT_EQ(Stats(*admin).bus().subscriptions(), 1u);
  EXPECT_EQ(Stats(*admin).watch().watches(), 1u);

  watch_context.TryCancel();
  watch->Finish();
  subscribe_context.TryCancel();
  subscription->Finish();
}

}  // namespace
}  // namespace tshare
