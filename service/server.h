// tshared's server: the store, watch hub, thread pool, message bus and worker
// registry behind one gRPC server (Shares, Bus, Workers, Admin, plus
// grpc.health.v1.Health and reflection).
//
// Thread-safety: every public method may be called from any thread. Shutdown()
// may be called more than once and concurrently with Wait(); the accessors stay
// valid until the Server is destroyed.
#ifndef TSHARE_SERVICE_SERVER_H_
#define TSHARE_SERVICE_SERVER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "service/options.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace tshare::core {
class MessageBus;
class ThreadPool;
class WorkerManager;
}  // namespace tshare::core

namespace tshare::service {

class AdminService;
class BusService;
class Metrics;
class SharesService;
class Store;
class WatchHub;
class WorkersService;

// The version tshared reports (Admin.Stats, --version).
inline constexpr char kServerVersion[] = "0.1.0";

// OK if `options` can start a server; INVALID_ARGUMENT naming the flag
// otherwise
// ("--listen=\"x\" is not HOST:PORT", "--pool_threads=-1 must be >= 0", ...).
absl::Status ValidateOptions(const ServerOptions& options);

// A running tshared.
//
// Example:
//   ServerOptions options;
//   options.listen = "127.0.0.1:0";
//   absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
//   if (!server.ok()) return server.status();
//   std::printf("listening on %s\n", (*server)->address().c_str());
//   ...
//   (*server)->Shutdown(absl::Seconds(3));
//   (*server)->Wait();
class Server final {
 public:
  // Binds, starts gRPC, the pool and the server's own workers (the
  // "history-compactor"). A port in use is UNAVAILABLE ("cannot listen on
  // 127.0.0.1:7420: address in use; pass --listen=HOST:PORT"); bad options
  // are INVALID_ARGUMENT (see ValidateOptions).
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);

  // Shuts down with options().shutdown_grace if that was not done yet, then
  // waits.
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  Server(Server&&) = delete;
  Server& operator=(Server&&) = delete;

  // The bound gRPC port (the chosen one when --listen asked for port 0).
  int port() const { return port_; }
  // "host:port" with the bound port, e.g. "127.0.0.1:7420".
  std::string address() const;
  const ServerOptions& options() const { return options_; }
  // Random for every start of the in-memory store.
  const std::string& store_id() const;
  absl::Time started_at() const { return started_at_; }

  // Health turns NOT_SERVING (overall and per service), new calls are refused
  // with UNAVAILABLE, open streams end with UNAVAILABLE, in-flight unary calls
  // get until `grace`, then the server's workers stop and the pool shuts down.
  // Returns when all of that is done. Later calls return at once (after the
  // first one finished).
  void Shutdown(absl::Duration grace) ABSL_LOCKS_EXCLUDED(shutdown_mu_);
  // Blocks until Shutdown() has completed.
  void Wait();
  // True once Shutdown() has begun.
  bool shutting_down() const { return shutdown_begun_.HasBeenNotified(); }

  // The parts, for tests, metrics and the services. Valid for the Server's
  // lifetime.
  Store& store() { return *store_; }
  WatchHub& hub() { return *hub_; }
  core::ThreadPool& pool() { return *pool_; }
  core::MessageBus& bus() { return *bus_; }
  // The server's own workers (kind SERVER in the Workers service).
  core::WorkerManager& workers() { return *workers_; }
  SharesService& shares_service() { return *shares_service_; }
  BusService& bus_service() { return *bus_service_; }
  WorkersService& workers_service() { return *workers_service_; }
  AdminService& admin_service() { return *admin_service_; }
  grpc::Server& grpc_server() { return *grpc_server_; }
  // The Prometheus metrics; they count calls even when --metrics_listen is
  // empty (then nothing serves them).
  Metrics& metrics() { return *metrics_; }
  // The bound /metrics port (the chosen one for port 0); 0 when metrics are
  // off.
  int metrics_port() const;

  // Counts the gRPC calls in flight (defined in server.cc).
  class CallTracker;

 private:
  explicit Server(ServerOptions options);

  // Name of the server's own worker that trims the watch history every
  // --compact_interval.
  static constexpr char kCompactorName[] = "history-compactor";

  absl::Status Init();
  void SetServing(bool serving);

  const ServerOptions options_;
  const absl::Time started_at_;
  int port_ = 0;
  std::string host_;
  // Outlives grpc_server_ (declared before it), whose calls report to it.
  const std::unique_ptr<CallTracker> calls_;

  // Destroyed in reverse order: the gRPC server first, then the services, the
  // parts they use. The metrics last: the pool and the gRPC server's
  // interceptors report to them.
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<core::ThreadPool> pool_;
  std::unique_ptr<core::MessageBus> bus_;
  std::unique_ptr<core::WorkerManager> workers_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<WatchHub> hub_;
  // Declared before shares_service_, which borrows it (Session publish ops).
  std::unique_ptr<BusService> bus_service_;
  std::unique_ptr<SharesService> shares_service_;
  std::unique_ptr<WorkersService> workers_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<grpc::Server> grpc_server_;

  absl::Notification shutdown_begun_;
  absl::Notification shutdown_done_;
  // Serializes Shutdown() callers: the first does the work, the others wait for
  // it.
  absl::Mutex shutdown_mu_;
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_SERVER_H_
