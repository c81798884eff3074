// BusService: tshare.v1.Bus over the core MessageBus: Publish, and Subscribe
// streams with a bounded queue and an overflow policy per subscriber.
//
// Thread-safety: thread-safe; gRPC calls the handlers from its own threads, bus
// delivery runs on the bus's pool, and PROGRESS frames come from one ticker
// thread of the service. A stalled subscriber never slows a publisher or
// another subscriber: its messages wait in its own queue, where its policy
// applies once max_queue are waiting.
#ifndef TSHARE_SERVICE_BUS_SERVICE_H_
#define TSHARE_SERVICE_BUS_SERVICE_H_

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/message_bus.h"
#include "service/options.h"
#include "tshare/v1/admin.pb.h"
#include "tshare/v1/bus.grpc.pb.h"

namespace tshare::service {

namespace bus_internal {
class SubscribeReactor;
class SubscriberStream;
}  // namespace bus_internal

// Figures of the Bus service for Admin.Stats and the metrics.
struct BusServiceStats {
  // Open Subscribe streams.
  uint64_t subscriptions = 0;
  // Messages published (Publish calls that succeeded).
  uint64_t published = 0;
  // Messages written to subscribers' streams.
  uint64_t delivered = 0;
  // Messages a subscriber never got: discarded or conflated by its policy (or,
  // when the pool cannot keep up, by the core bus).
  uint64_t dropped = 0;
  // Of those, replaced by a newer message of the same topic (CONFLATE).
  uint64_t conflated = 0;
  // Distinct topics published since the start.
  uint64_t topics = 0;
};

// Example (what Server does):
//   BusService bus_service(&bus, options);
//   builder.RegisterService(&bus_service);
//   ...
//   bus_service.BeginShutdown();   // open streams end with UNAVAILABLE
//   grpc_server->Shutdown(deadline);
class BusService final : public v1::Bus::CallbackService {
 public:
  // `bus` is borrowed and must outlive the service.
  BusService(core::MessageBus* bus, const ServerOptions& options);
  // BeginShutdown() if not done yet. REQUIRES: the gRPC server is shut down (no
  // stream open).
  ~BusService() override;

  BusService(const BusService&) = delete;
  BusService& operator=(const BusService&) = delete;

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override;
  grpc::ServerWriteReactor<v1::BusMessage>* Subscribe(
      grpc::CallbackServerContext* context,
      const v1::SubscribeRequest* request) override;

  // Refuses new calls with UNAVAILABLE and ends every open Subscribe stream
  // with UNAVAILABLE (after the frame being written, if any). Idempotent.
  void BeginShutdown() ABSL_LOCKS_EXCLUDED(mu_);

  BusServiceStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // One SUBSCRIPTION entry per open Subscribe stream, by id.
  std::vector<v1::SubscriptionInfo> ListSubscriptions() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Publishes one message as Bus.Publish does (also a Session's publish op):
  // UNAVAILABLE once shutting down, INVALID_ARGUMENT for a bad topic or value.
  absl::Status PublishMessage(const v1::PublishRequest& request,
                              v1::PublishResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Checks a Publish topic: not empty, at most --max_topic_bytes, no wildcard,
  // well formed.
  absl::Status ValidateTopic(absl::string_view topic) const;
  // Checks a SubscribeRequest; on success fills the effective queue size,
  // policy and progress interval.
  struct SubscribeParams {
    size_t max_queue = 0;
    v1::OverflowPolicy policy = v1::DROP_OLDEST;
    absl::Duration progress_interval;
    // Messages per frame; above 1, waiting messages leave in BATCH frames.
    size_t max_batch = 1;
  };
  absl::StatusOr<SubscribeParams> ValidateSubscribe(
      const v1::SubscribeRequest& request) const;

 private:
  friend class bus_internal::SubscribeReactor;

  void Register(std::shared_ptr<bus_internal::SubscriberStream> stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends PROGRESS frames to idle streams; runs on ticker_.
  void TickerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  bool TickerShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ticker_stop_ || generation_ != ticker_generation_;
  }

  core::MessageBus* const bus_;
  const ServerOptions options_;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool ticker_stop_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped whenever the ticker should look again (a stream came or went).
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, std::shared_ptr<bus_internal::SubscriberStream>>
      streams_ ABSL_GUARDED_BY(mu_);

  // Totals of streams that have ended (open ones are added in Stats()).
  uint64_t closed_delivered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t closed_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t closed_conflated_ ABSL_GUARDED_BY(mu_) = 0;
  // The generation the ticker last looked at.
  uint64_t ticker_generation_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread ticker_;
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_BUS_SERVICE_H_
