#include "service/server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/message_bus.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"
#include "core/worker_manager.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_interceptor.h"
#include "service/admin_service.h"
#include "service/bus_service.h"
#include "service/metrics.h"
#include "service/shares_service.h"
#include "service/store.h"
#include "service/watch_hub.h"
#include "service/workers_service.h"

namespace tshare::service {
namespace {

// The health service names: "" (the whole server) and each tshare.v1 service.
const char* const kHealthServices[] = {
    "",
    v1::Shares::service_full_name(),
    v1::Bus::service_full_name(),
    v1::Workers::service_full_name(),
    v1::Admin::service_full_name(),
};

struct HostPort {
  std::string host;  // as written, brackets kept for IPv6 ("[::1]")
  int port = 0;
};

// "HOST:PORT" or "[V6]:PORT".
absl::StatusOr<HostPort> ParseHostPort(absl::string_view flag,
                                       absl::string_view address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=\"", address, "\" ", why,
                     "; use HOST:PORT, e.g. 127.0.0.1:7420 or [::1]:7420"));
  };
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return bad("has no port");
  HostPort out;
  out.host = std::string(address.substr(0, colon));
  if (out.host.empty()) return bad("has no host");
  if (out.host.front() == '[' && out.host.back() != ']')
    return bad("has an unclosed '['");
  if (out.host.front() != '[' && out.host.find(':') != std::string::npos) {
    return bad("has an IPv6 host without brackets");
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), &out.port) || out.port < 0 ||
      out.port > 65535) {
    return bad("has no port number in 0..65535");
  }
  return out;
}

// Fails the way binding the gRPC port would, with a message that says what to
// do. (gRPC itself only logs why a bind failed.)
absl::Status CheckCanListen(const HostPort& hp, absl::string_view address) {
  if (hp.port == 0) return absl::OkStatus();
  std::string host = hp.host;
  if (host.size() >= 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* results = nullptr;
  const std::string port = std::to_string(hp.port);
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &results);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", address, ": ", gai_strerror(rc),
                     "; pass --listen=HOST:PORT"));
  }
  absl::Status status;
  for (addrinfo* entry = results; entry != nullptr && status.ok();
       entry = entry->ai_next) {
    const int fd =
        socket(entry->ai_family, entry->ai_socktype, entry->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    // As gRPC does: a port whose old connections are in TIME_WAIT is free.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, entry->ai_addr, entry->ai_addrlen) != 0) {
      const int err = errno;
      if (err == EADDRINUSE) {
        status = absl::UnavailableError(
            absl::StrCat("cannot listen on ", address,
                         ": address in use; pass --listen=HOST:PORT"));
      } else if (err == EACCES) {
        status = absl::PermissionDeniedError(
            absl::StrCat("cannot listen on ", address,
                         ": permission denied; pass --listen=HOST:PORT with a "
                         "port >= 1024"));
      } else {
        status = absl::InvalidArgumentError(
            absl::StrCat("cannot listen on ", address, ": ", std::strerror(err),
                         "; pass --listen=HOST:PORT"));
      }
    }
    close(fd);
  }
  freeaddrinfo(results);
  return status;
}

absl::Status AtLeast(absl::string_view flag, uint64_t value, uint64_t minimum) {
  if (value >= minimum) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", value, " must be at least ", minimum));
}

}  // namespace

// Counts the calls in flight: gRPC creates one CountingInterceptor per call and
// destroys it when the call is over.
class Server::CallTracker final {
 public:
  void Add(int delta) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    active_ += delta;
  }
  // Returns once no call is in flight, or at `deadline`.
  void WaitUntilIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(this, &CallTracker::Idle), deadline);
  }

 private:
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_ == 0; }

  absl::Mutex mu_;
  int64_t active_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {

class CountingInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit CountingInterceptor(Server::CallTracker* calls) : calls_(calls) {
    calls_->Add(1);
  }
  ~CountingInterceptor() override { calls_->Add(-1); }
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  Server::CallTracker* const calls_;
};

class CountingInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingInterceptorFactory(Server::CallTracker* calls)
      : calls_(calls) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* /*info*/) override {
    return new CountingInterceptor(calls_);
  }

 private:
  Server::CallTracker* const calls_;
};

}  // namespace

absl::Status ValidateOptions(const ServerOptions& o) {
  TSHARE_RETURN_IF_ERROR(ParseHostPort("listen", o.listen).status());
  if (!o.metrics_listen.empty()) {
    TSHARE_RETURN_IF_ERROR(
        ParseHostPort("metrics_listen", o.metrics_listen).status());
  }
  TSHARE_RETURN_IF_ERROR(AtLeast("max_key_bytes", o.max_key_bytes, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("max_value_bytes", o.max_value_bytes, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("max_txn_ops", o.max_txn_ops, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("max_page_size", o.max_page_size, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("max_session_ops", o.max_session_ops, 1));
  TSHARE_RETURN_IF_ERROR(
      AtLeast("max_watches_per_stream", o.max_watches_per_stream, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("max_subscriptions_per_stream",
                                 o.max_subscriptions_per_stream, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("max_topic_bytes", o.max_topic_bytes, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("history", o.history, 1));
  TSHARE_RETURN_IF_ERROR(AtLeast("watch_queue", o.watch_queue, 1));
  TSHARE_RETURN_IF_ERROR(
      AtLeast("subscription_queue", o.subscription_queue, 1));
  if (o.max_value_bytes > (1u << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_value_bytes=", o.max_value_bytes,
                     " exceeds the maximum of 1073741824 (1 GiB)"));
  }
  if (o.max_watch_queue < o.watch_queue || o.max_watch_queue > 0xFFFFFFFFu) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_watch_queue=", o.max_watch_queue,
        " must be between --watch_queue=", o.watch_queue, " and 4294967295"));
  }
  if (o.max_subscription_queue < o.subscription_queue ||
      o.max_subscription_queue > 0xFFFFFFFFu) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_subscription_queue=", o.max_subscription_queue,
        " must be between --subscription_queue=", o.subscription_queue,
        " and 4294967295"));
  }
  if (o.compact_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--compact_interval=", absl::FormatDuration(o.compact_interval),
        " must be positive, e.g. 1s"));
  }
  if (o.progress_interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--progress_interval=", absl::FormatDuration(o.progress_interval),
        " must be at least 10ms"));
  }
  if (o.pool_threads < 0 || o.pool_threads > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pool_threads=", o.pool_threads,
                     " must be between 0 (one per CPU) and 4096"));
  }
  if (o.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shutdown_grace=", absl::FormatDuration(o.shutdown_grace),
        " must not be negative"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  TSHARE_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<Server> server(new Server(std::move(options)));
  TSHARE_RETURN_IF_ERROR(server->Init());
  return server;
}

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      started_at_(absl::Now()),
      calls_(std::make_unique<CallTracker>()) {}

Server::~Server() {
  Shutdown(options_.shutdown_grace);
  Wait();
}

const std::string& Server::store_id() const { return store_->store_id(); }

std::string Server::address() const { return absl::StrCat(host_, ":", port_); }

absl::Status Server::Init() {
  TSHARE_ASSIGN_OR_RETURN(HostPort listen,
                          ParseHostPort("listen", options_.listen));
  host_ = listen.host;
  TSHARE_RETURN_IF_ERROR(CheckCanListen(listen, options_.listen));

  const int cpus =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int threads = options_.pool_threads > 0 ? options_.pool_threads : cpus;
  core::ThreadPoolOptions pool_options;
  pool_options.name = "tshared-pool";
  // One more thread than asked for: the history compactor occupies one while it
  // runs.
  pool_options.min_threads = 2;
  pool_options.max_threads = threads + 1;
  metrics_ =
      std::make_unique<Metrics>(kServerVersion, DefaultMetricsServices());
  pool_options.on_task_start = metrics_->PoolTaskObserver();
  pool_ = std::make_unique<core::ThreadPool>(pool_options);
  bus_ = std::make_unique<core::MessageBus>(pool_.get());
  workers_ = std::make_unique<core::WorkerManager>();
  store_ = std::make_unique<Store>(options_);
  hub_ = std::make_unique<WatchHub>(store_.get(), options_);
  bus_service_ = std::make_unique<BusService>(bus_.get(), options_);
  shares_service_ = std::make_unique<SharesService>(
      store_.get(), hub_.get(), bus_service_.get(), options_);
  workers_service_ = std::make_unique<WorkersService>(workers_.get(), options_);
  admin_service_ = std::make_unique<AdminService>(
      AdminSources{store_.get(), hub_.get(), bus_service_.get(), pool_.get(),
                   workers_service_.get(), started_at_});

  // Linked in so that reflection can describe grpc.health.v1.Health (the
  // built-in health service has no descriptor of its own).
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // Without this, gRPC's SO_REUSEPORT would let a second tshared share the
  // port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const size_t max_message =
      std::max<size_t>(4u << 20, options_.max_value_bytes +
                                     options_.max_key_bytes + (64u << 10));
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<size_t>(max_message, std::numeric_limits<int>::max())));
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(shares_service_.get());
  builder.RegisterService(bus_service_.get());
  builder.RegisterService(workers_service_.get());
  builder.RegisterService(admin_service_.get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<CountingInterceptorFactory>(calls_.get()));
  interceptors.push_back(metrics_->NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  if (!options_.metrics_listen.empty()) {
    TSHARE_RETURN_IF_ERROR(metrics_->Serve(
        options_.metrics_listen,
        AdminSources{store_.get(), hub_.get(), bus_service_.get(), pool_.get(),
                     workers_service_.get(), started_at_}));
  }
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || port_ == 0) {
    grpc_server_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.listen,
        ": gRPC could not bind it (address in use or not available); pass "
        "--listen=HOST:PORT"));
  }
  SetServing(true);

  // The history compactor: a server worker run on the pool, controlled like any
  // worker.
  TSHARE_ASSIGN_OR_RETURN(std::shared_ptr<core::WorkerControl> control,
                          workers_->Attach(kCompactorName));
  Store* store = store_.get();
  const absl::Duration interval = options_.compact_interval;
  absl::Status submitted = pool_->Execute(
      [control, store, interval] {
        control->MarkRunning();
        core::WorkerContext context(*control);
        uint64_t runs = 0;
        while (context.Checkpoint()) {
          store->Compact();
          ++runs;
          context.ReportProgress(absl::StrCat(
              runs, " compactions, ", store->history_size(), " changes kept"));
          if (!context.SleepFor(interval)) break;
        }
        control->Finish(absl::OkStatus());
      },
      core::Priority::kLow);
  if (!submitted.ok()) {
    control->Finish(submitted);
    return submitted;
  }
  return absl::OkStatus();
}

void Server::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health =
      grpc_server_->GetHealthCheckService();
  if (health == nullptr) return;
  if (!serving) {
    health->SetServingStatus(false);  // every service, "" included
    return;
  }
  for (const char* name : kHealthServices) health->SetServingStatus(name, true);
}

void Server::Shutdown(absl::Duration grace) {
  absl::MutexLock lock(&shutdown_mu_);
  if (shutdown_done_.HasBeenNotified()) return;
  shutdown_begun_.Notify();
  if (grpc_server_ != nullptr) SetServing(false);
  // Streams end with UNAVAILABLE and new calls are refused before gRPC stops
  // accepting.
  if (shares_service_ != nullptr) shares_service_->BeginShutdown();
  if (hub_ != nullptr) hub_->Shutdown();
  if (bus_service_ != nullptr) bus_service_->BeginShutdown();
  if (workers_service_ != nullptr) workers_service_->BeginShutdown();
  if (admin_service_ != nullptr) admin_service_->BeginShutdown();
  if (grpc_server_ != nullptr) {
    // gRPC's graceful shutdown keeps each connection until its client
    // acknowledges the GOAWAY (a ping), which can take until the deadline even
    // with no call left. So the calls in flight get the grace here, and gRPC
    // then closes the connections at once.
    calls_->WaitUntilIdle(absl::Now() + grace);
    grpc_server_->Shutdown(absl::ToChronoTime(absl::Now()));
  }

  // Every Attach stream has ended, so every client worker is finished: this
  // stops the server's own workers and waits for them.
  if (workers_ != nullptr) workers_->RemoveAll().IgnoreError();
  if (pool_ != nullptr) pool_->Shutdown();
  // No scrape reads the parts after this.
  if (metrics_ != nullptr) metrics_->StopServing();
  shutdown_done_.Notify();
}

void Server::Wait() { shutdown_done_.WaitForNotification(); }

int Server::metrics_port() const {
  return metrics_ == nullptr ? 0 : metrics_->port();
}

}  // namespace tshare::service
