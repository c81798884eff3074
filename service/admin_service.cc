#include "service/admin_service.h"

#include <utility>

#include "absl/time/clock.h"
#include "proto/grpc_status.h"
#include "service/errors.h"
#include "service/server.h"

namespace tshare::service {

AdminService::AdminService(AdminSources sources)
    : sources_(std::move(sources)) {}

v1::StatsResponse AdminService::CollectStats() const {
  v1::StatsResponse response;
  *response.mutable_store() = sources_.store->Stats();
  *response.mutable_watch() = sources_.hub->Stats();

  const BusServiceStats bus = sources_.bus->Stats();
  v1::BusStats* bus_out = response.mutable_bus();
  bus_out->set_subscriptions(bus.subscriptions);
  bus_out->set_published(bus.published);
  bus_out->set_delivered(bus.delivered);
  bus_out->set_dropped(bus.dropped);
  bus_out->set_topics(bus.topics);

  const core::ThreadPoolStats pool = sources_.pool->Stats();
  v1::PoolStats* pool_out = response.mutable_pool();
  pool_out->set_threads(static_cast<uint32_t>(pool.threads));
  pool_out->set_active(static_cast<uint32_t>(pool.active));
  for (size_t queued : pool.queued) pool_out->add_queued(queued);
  pool_out->set_completed(pool.completed);
  pool_out->set_rejected(pool.rejected);
  pool_out->set_mean_wait_seconds(absl::ToDoubleSeconds(pool.mean_wait));
  pool_out->set_max_wait_seconds(absl::ToDoubleSeconds(pool.max_wait));
  pool_out->set_mean_run_seconds(absl::ToDoubleSeconds(pool.mean_run));
  pool_out->set_max_run_seconds(absl::ToDoubleSeconds(pool.max_run));

  *response.mutable_workers() = sources_.workers->Stats();
  response.set_revision(sources_.store->revision());
  response.set_store_id(sources_.store->store_id());
  response.set_uptime_seconds(
      absl::ToDoubleSeconds(absl::Now() - sources_.started_at));
  response.set_version(kServerVersion);
  return response;
}

v1::ListSubscriptionsResponse AdminService::CollectSubscriptions() const {
  v1::ListSubscriptionsResponse response;
  for (v1::SubscriptionInfo& info : sources_.hub->ListWatches()) {
    *response.add_subscriptions() = std::move(info);
  }
  for (v1::SubscriptionInfo& info : sources_.bus->ListSubscriptions()) {
    *response.add_subscriptions() = std::move(info);
  }
  response.set_revision(sources_.store->revision());
  response.set_store_id(sources_.store->store_id());
  return response;
}

grpc::ServerUnaryReactor* AdminService::Stats(
    grpc::CallbackServerContext* context, const v1::StatsRequest* /*request*/,
    v1::StatsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (shutting_down_.load(std::memory_order_acquire)) {
    reactor->Finish(ToGrpcStatus(ShuttingDown()));
    return reactor;
  }
  *response = CollectStats();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ListSubscriptions(
    grpc::CallbackServerContext* context,
    const v1::ListSubscriptionsRequest* /*request*/,
    v1::ListSubscriptionsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (shutting_down_.load(std::memory_order_acquire)) {
    reactor->Finish(ToGrpcStatus(ShuttingDown()));
    return reactor;
  }
  *response = CollectSubscriptions();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace tshare::service
