// tshared's Prometheus metrics: the gRPC server family that peers use
// (go-grpc-prometheus names and labels), the server's own tshare_* figures,
// process_* figures, all served on --metrics_listen at /metrics.
//
// What is counted where:
//   - grpc_server_* are counted as calls happen, by a server interceptor (see
//     NewInterceptorFactory). Every method of the served services has its
//     series from the start, at 0.
//   - tshare_pool_task_wait_seconds is observed by the pool (see
//     PoolTaskObserver) as each task starts.
//   - everything else is read at scrape time from the parts' own Stats(), so
//     nothing is counted twice.
// Labels are bounded: method, type, code, operation kind, priority, worker
// state, version. Key names, values and topics never become labels.
//
// Thread-safety: every method may be called from any thread. The interceptors
// and the pool observer are lock-free apart from prometheus-cpp's own
// per-series locking.
#ifndef TSHARE_SERVICE_METRICS_H_
#define TSHARE_SERVICE_METRICS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/thread_pool.h"
#include "grpcpp/support/server_interceptor.h"
#include "service/admin_service.h"

namespace prometheus {
class Counter;
class Exposer;
class Histogram;
class Registry;
}  // namespace prometheus

namespace tshare::service {

namespace metrics_internal {
struct MethodMetrics;
class ServerCollector;
}  // namespace metrics_internal

// The services whose methods get grpc_server_* series at 0 from the start:
// the tshare.v1 services, grpc.health.v1.Health and, when linked in, server
// reflection.
std::vector<std::string> DefaultMetricsServices();

// Example (what Server does):
//   Metrics metrics(kServerVersion, DefaultMetricsServices());
//   pool_options.on_task_start = metrics.PoolTaskObserver();
//   ...
//   std::vector<std::unique_ptr<
//       grpc::experimental::ServerInterceptorFactoryInterface>> creators;
//   creators.push_back(metrics.NewInterceptorFactory());
//   builder.experimental().SetInterceptorCreators(std::move(creators));
//   absl::Status serving = metrics.Serve("127.0.0.1:9464", admin_sources);
//   ...
//   metrics.StopServing();  // before the sources go away
class Metrics final {
 public:
  // `version` is tshare_build_info's label. `services` are full service names
  // ("tshare.v1.Shares"); those found in the generated descriptor pool get
  // their method series, others are ignored. Calls of methods outside them
  // are not counted (so a client cannot create series by calling made-up
  // method names).
  Metrics(std::string version, const std::vector<std::string>& services);
  // StopServing().
  ~Metrics();

  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  Metrics(Metrics&&) = delete;
  Metrics& operator=(Metrics&&) = delete;

  // A factory for ServerBuilder::experimental().SetInterceptorCreators. The
  // factory and its interceptors borrow this Metrics: it must outlive the gRPC
  // server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewInterceptorFactory();

  // For ThreadPoolOptions::on_task_start: observes each task's queue wait in
  // tshare_pool_task_wait_seconds{priority}. Borrows this Metrics: it must
  // outlive the pool.
  std::function<void(core::Priority, absl::Duration)> PoolTaskObserver();

  // Serves /metrics on `address` (IPV4:PORT or HOST:PORT, port 0 picks a free
  // port) and starts reading `sources` at each scrape; they must stay valid
  // until StopServing() returns. Errors name --metrics_listen: UNAVAILABLE if
  // the port cannot be bound (in use), INVALID_ARGUMENT for an address that is
  // not IPv4, FAILED_PRECONDITION if already serving.
  absl::Status Serve(absl::string_view address, AdminSources sources)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Stops serving. When it returns no scrape runs and none will read the
  // sources again. Idempotent.
  void StopServing() ABSL_LOCKS_EXCLUDED(mu_);
  // The bound port while serving, else 0.
  int port() const ABSL_LOCKS_EXCLUDED(mu_);

  // The text exposition of everything /metrics serves except the exposer's own
  // series (sources are read only while serving).
  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class InterceptorFactory;

  // The series of a method, or nullptr for an unknown one. `method` is
  // "/package.Service/Method".
  const metrics_internal::MethodMetrics* FindMethod(
      absl::string_view method) const;

  const std::shared_ptr<prometheus::Registry> registry_;
  // Immutable after the constructor, so interceptors read it without a lock.
  absl::flat_hash_map<std::string,
                      std::unique_ptr<metrics_internal::MethodMetrics>>
      methods_;
  // tshare_pool_task_wait_seconds by Priority index.
  prometheus::Histogram* pool_wait_[core::kNumPriorities] = {};
  const std::shared_ptr<metrics_internal::ServerCollector> collector_;

  mutable absl::Mutex mu_;
  std::unique_ptr<prometheus::Exposer> exposer_ ABSL_GUARDED_BY(mu_);
  int port_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_METRICS_H_
