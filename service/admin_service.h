// AdminService: tshare.v1.Admin: the server's figures (store, watches, bus,
// pool, workers) and the open watches and subscriptions, as the metrics show
// them.
//
// Thread-safety: thread-safe; every handler only reads the parts' own
// thread-safe Stats().
#ifndef TSHARE_SERVICE_ADMIN_SERVICE_H_
#define TSHARE_SERVICE_ADMIN_SERVICE_H_

#include <atomic>

#include "absl/time/time.h"
#include "core/thread_pool.h"
#include "service/bus_service.h"
#include "service/store.h"
#include "service/watch_hub.h"
#include "service/workers_service.h"
#include "tshare/v1/admin.grpc.pb.h"

namespace tshare::service {

// The parts the figures come from; all borrowed, and they must outlive the
// service.
struct AdminSources {
  Store* store = nullptr;
  WatchHub* hub = nullptr;
  BusService* bus = nullptr;
  core::ThreadPool* pool = nullptr;
  WorkersService* workers = nullptr;
  // When the server started (for uptime_seconds).
  absl::Time started_at;
};

// Example (what Server does):
//   AdminService admin(AdminSources{&store, &hub, &bus_service, &pool,
//   &workers_service,
//                                   absl::Now()});
//   builder.RegisterService(&admin);
//   v1::StatsResponse figures = admin.CollectStats();   // what Admin/Stats
//   answers
class AdminService final : public v1::Admin::CallbackService {
 public:
  explicit AdminService(AdminSources sources);

  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                  const v1::StatsRequest* request,
                                  v1::StatsResponse* response) override;
  grpc::ServerUnaryReactor* ListSubscriptions(
      grpc::CallbackServerContext* context,
      const v1::ListSubscriptionsRequest* request,
      v1::ListSubscriptionsResponse* response) override;

  // New calls get UNAVAILABLE. Idempotent.
  void BeginShutdown() {
    shutting_down_.store(true, std::memory_order_release);
  }

  // What Stats answers.
  v1::StatsResponse CollectStats() const;
  // What ListSubscriptions answers: watches, then bus subscriptions, each by
  // id.
  v1::ListSubscriptionsResponse CollectSubscriptions() const;

 private:
  const AdminSources sources_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_ADMIN_SERVICE_H_
