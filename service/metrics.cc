#include "service/metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.pb.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "proto/grpc_status.h"
#include "service/bus_service.h"
#include "service/store.h"
#include "service/watch_hub.h"
#include "service/workers_service.h"
#include "tshare/v1/admin.grpc.pb.h"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"
#include "tshare/v1/workers.grpc.pb.h"

namespace tshare::service {
namespace metrics_internal {

// grpc::StatusCode runs from OK (0) to UNAUTHENTICATED (16).
inline constexpr int kNumGrpcCodes = 17;

// The series of one method, created at start and never removed.
struct MethodMetrics {
  prometheus::Counter* started = nullptr;
  prometheus::Counter* received = nullptr;
  prometheus::Counter* sent = nullptr;
  prometheus::Histogram* seconds = nullptr;
  prometheus::Counter* handled[kNumGrpcCodes] = {};
};

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily NewFamily(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddSample(MetricFamily* family, double value,
               std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family->type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family->metric.push_back(std::move(metric));
}

MetricFamily GaugeFamily(std::string name, std::string help, double value) {
  MetricFamily family =
      NewFamily(std::move(name), std::move(help), MetricType::Gauge);
  AddSample(&family, value);
  return family;
}

MetricFamily CounterFamily(std::string name, std::string help, double value) {
  MetricFamily family =
      NewFamily(std::move(name), std::move(help), MetricType::Counter);
  AddSample(&family, value);
  return family;
}

// What /proc says about this process; `ok` false where it could not be read.
struct ProcessFigures {
  bool stat_ok = false;
  double cpu_seconds = 0;
  double start_time_seconds = 0;
  double virtual_bytes = 0;
  double resident_bytes = 0;
  bool fds_ok = false;
  double open_fds = 0;
  bool limit_ok = false;
  double max_fds = 0;
};

// The system's boot time in seconds since the epoch: the wall clock minus the
// time since boot (CLOCK_BOOTTIME, the clock of /proc/self/stat's starttime).
// Needs no /proc/stat, which a hardened unit (ProcSubset=pid) hides.
bool BootTime(double* seconds) {
  timespec real{}, boot{};
  if (clock_gettime(CLOCK_REALTIME, &real) != 0 ||
      clock_gettime(CLOCK_BOOTTIME, &boot) != 0) {
    return false;
  }
  *seconds = static_cast<double>(real.tv_sec - boot.tv_sec) +
             static_cast<double>(real.tv_nsec - boot.tv_nsec) / 1e9;
  return true;
}

ProcessFigures ReadProcess() {
  ProcessFigures out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  {
    std::ifstream in("/proc/self/stat");
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string stat = buffer.str();
    // The command name (field 2) is in parentheses and may hold spaces: the
    // fields counted below start after its closing parenthesis, at field 3.
    const size_t close = stat.rfind(')');
    double boot = 0;
    if (close != std::string::npos && ticks > 0 && BootTime(&boot)) {
      std::vector<absl::string_view> f = absl::StrSplit(
          absl::string_view(stat).substr(close + 2), ' ', absl::SkipEmpty());
      // f[0] is field 3 (state): field n is f[n - 3].
      uint64_t utime = 0, stime = 0, start = 0, vsize = 0;
      int64_t rss = 0;
      if (f.size() > 21 && absl::SimpleAtoi(f[11], &utime) &&
          absl::SimpleAtoi(f[12], &stime) && absl::SimpleAtoi(f[19], &start) &&
          absl::SimpleAtoi(f[20], &vsize) && absl::SimpleAtoi(f[21], &rss)) {
        out.stat_ok = true;
        out.cpu_seconds = static_cast<double>(utime + stime) / ticks;
        out.start_time_seconds = boot + static_cast<double>(start) / ticks;
        out.virtual_bytes = static_cast<double>(vsize);
        out.resident_bytes = static_cast<double>(rss) * page;
      }
    }
  }
  if (DIR* dir = opendir("/proc/self/fd"); dir != nullptr) {
    int count = 0;
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    closedir(dir);
    // Not counting the descriptor that reads the directory.
    out.open_fds = count > 0 ? count - 1 : 0;
    out.fds_ok = true;
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.limit_ok = true;
    out.max_fds = limit.rlim_cur == RLIM_INFINITY
                      ? static_cast<double>(INT64_MAX)
                      : static_cast<double>(limit.rlim_cur);
  }
  return out;
}

const char* const kWorkerStates[] = {"starting", "running", "paused",
                                     "stopping", "stopped", "failed"};

}  // namespace

// Reads the server's parts at scrape time.
class ServerCollector final : public prometheus::Collectable {
 public:
  explicit ServerCollector(std::string version)
      : version_(std::move(version)) {}

  void SetSources(const AdminSources* sources) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::WriterMutexLock lock(&mu_);
    if (sources == nullptr) {
      serving_ = false;
      return;
    }
    sources_ = *sources;
    serving_ = true;
  }

  std::vector<MetricFamily> Collect() const override ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<MetricFamily> out;
    {
      MetricFamily info = NewFamily(
          "tshare_build_info",
          "Always 1; the version label is the tshared release that runs.",
          MetricType::Gauge);
      AddSample(&info, 1, {{"version", version_}});
      out.push_back(std::move(info));
    }
    CollectProcess(&out);
    absl::ReaderMutexLock lock(&mu_);
    if (serving_) CollectParts(&out);
    return out;
  }

 private:
  static void CollectProcess(std::vector<MetricFamily>* out) {
    const ProcessFigures p = ReadProcess();
    if (p.stat_ok) {
      out->push_back(CounterFamily(
          "process_cpu_seconds_total",
          "Total user and system CPU time spent in seconds.", p.cpu_seconds));
      out->push_back(
          GaugeFamily("process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds.",
                      p.start_time_seconds));
      out->push_back(GaugeFamily("process_virtual_memory_bytes",
                                 "Virtual memory size in bytes.",
                                 p.virtual_bytes));
      out->push_back(GaugeFamily("process_resident_memory_bytes",
                                 "Resident memory size in bytes.",
                                 p.resident_bytes));
    }
    if (p.fds_ok) {
      out->push_back(GaugeFamily(
          "process_open_fds", "Number of open file descriptors.", p.open_fds));
    }
    if (p.limit_ok) {
      out->push_back(GaugeFamily("process_max_fds",
                                 "Maximum number of open file descriptors.",
                                 p.max_fds));
    }
  }

  void CollectParts(std::vector<MetricFamily>* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    const v1::StoreStats store = sources_.store->Stats();
    out->push_back(GaugeFamily("tshare_keys", "Keys held in the store.",
                               static_cast<double>(store.keys())));
    out->push_back(GaugeFamily("tshare_store_bytes",
                               "Bytes of keys and values held in the store.",
                               static_cast<double>(store.bytes())));
    out->push_back(
        GaugeFamily("tshare_revision",
                    "The store's revision: the number of changes since "
                    "the store started.",
                    static_cast<double>(store.revision())));
    out->push_back(
        GaugeFamily("tshare_history_changes",
                    "Changes kept in the watch history (--history caps "
                    "it between compactions).",
                    static_cast<double>(store.history_size())));
    {
      MetricFamily ops = NewFamily(
          "tshare_store_ops_total",
          "Store operations by kind (get, set, update, delete, txn, list, "
          "wait_for), failed ones included.",
          MetricType::Counter);
      const std::pair<const char*, uint64_t> kinds[] = {
          {"get", store.gets()},          {"set", store.sets()},
          {"update", store.updates()},    {"delete", store.deletes()},
          {"txn", store.txns()},          {"list", store.lists()},
          {"wait_for", store.wait_fors()}};
      for (const auto& [kind, count] : kinds) {
        AddSample(&ops, static_cast<double>(count), {{"op", kind}});
      }
      out->push_back(std::move(ops));
    }

    const v1::WatchStats watch = sources_.hub->Stats();
    out->push_back(GaugeFamily("tshare_watches", "Open watches.",
                               static_cast<double>(watch.watches())));
    out->push_back(CounterFamily("tshare_watch_events_sent_total",
                                 "Change events sent to watchers.",
                                 static_cast<double>(watch.events_sent())));
    out->push_back(CounterFamily(
        "tshare_watch_events_dropped_total",
        "Change events a watcher never got: discarded by its DROP_OLDEST or "
        "DROP_NEWEST policy once its queue was full.",
        static_cast<double>(watch.dropped())));
    out->push_back(CounterFamily(
        "tshare_watch_events_conflated_total",
        "Change events replaced by a newer change of the same key (CONFLATE "
        "policy) once a watcher's queue was full.",
        static_cast<double>(watch.conflated())));
    out->push_back(
        CounterFamily("tshare_watch_resyncs_total",
                      "Watches that started before the kept history and "
                      "got a RESYNC snapshot.",
                      static_cast<double>(watch.resyncs())));
    out->push_back(GaugeFamily(
        "tshare_watch_max_lag_revisions",
        "Lag of the slowest open watch: the store's revision minus the last "
        "revision delivered to it (0 when every watch is caught up).",
        static_cast<double>(watch.max_lag())));

    const BusServiceStats bus = sources_.bus->Stats();
    out->push_back(GaugeFamily("tshare_bus_subscriptions",
                               "Open Bus.Subscribe streams.",
                               static_cast<double>(bus.subscriptions)));
    out->push_back(GaugeFamily("tshare_bus_topics",
                               "Distinct bus topics published since the start.",
                               static_cast<double>(bus.topics)));
    out->push_back(CounterFamily("tshare_bus_published_total",
                                 "Messages published on the bus.",
                                 static_cast<double>(bus.published)));
    out->push_back(
        CounterFamily("tshare_bus_delivered_total",
                      "Bus messages written to subscribers' streams.",
                      static_cast<double>(bus.delivered)));
    out->push_back(CounterFamily(
        "tshare_bus_dropped_total",
        "Bus messages a subscriber never got (its overflow policy discarded "
        "or conflated them, or the server could not keep up).",
        static_cast<double>(bus.dropped)));
    out->push_back(
        CounterFamily("tshare_bus_conflated_total",
                      "Of tshare_bus_dropped_total, messages replaced by "
                      "a newer one of the same topic (CONFLATE).",
                      static_cast<double>(bus.conflated)));

    core::ThreadPool& pool = *sources_.pool;
    const core::ThreadPoolStats ps = pool.Stats();
    out->push_back(GaugeFamily("tshare_pool_threads",
                               "Live threads of the server's pool.",
                               ps.threads));
    out->push_back(GaugeFamily("tshare_pool_max_threads",
                               "Most threads the server's pool may start.",
                               pool.options().max_threads));
    out->push_back(GaugeFamily("tshare_pool_active_threads",
                               "Pool threads running a task now.", ps.active));
    {
      MetricFamily queued = NewFamily(
          "tshare_pool_queued_tasks",
          "Tasks waiting in the pool's queue, by priority.", MetricType::Gauge);
      for (int p = 0; p < core::kNumPriorities; ++p) {
        AddSample(
            &queued, static_cast<double>(ps.queued[p]),
            {{"priority", core::PriorityName(static_cast<core::Priority>(p))}});
      }
      out->push_back(std::move(queued));
    }
    out->push_back(
        GaugeFamily("tshare_pool_max_queued_tasks",
                    "Capacity of the pool's queue (all priorities); a "
                    "task beyond it is rejected.",
                    static_cast<double>(pool.options().max_queue)));
    out->push_back(
        CounterFamily("tshare_pool_tasks_completed_total",
                      "Pool tasks that ran to their end, failed ones "
                      "included.",
                      static_cast<double>(ps.completed)));
    out->push_back(CounterFamily("tshare_pool_tasks_failed_total",
                                 "Pool tasks that threw or returned an error.",
                                 static_cast<double>(ps.failed)));
    out->push_back(
        CounterFamily("tshare_pool_tasks_rejected_total",
                      "Tasks the pool refused (queue full or shutting "
                      "down).",
                      static_cast<double>(ps.rejected)));

    const v1::WorkerStats workers = sources_.workers->Stats();
    MetricFamily by_state = NewFamily(
        "tshare_workers",
        "Workers (the server's own and attached client workers) by state.",
        MetricType::Gauge);
    const uint32_t counts[] = {workers.starting(), workers.running(),
                               workers.paused(),   workers.stopping(),
                               workers.stopped(),  workers.failed()};
    for (size_t i = 0; i < std::size(kWorkerStates); ++i) {
      AddSample(&by_state, counts[i], {{"state", kWorkerStates[i]}});
    }
    out->push_back(std::move(by_state));
  }

  const std::string version_;
  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  AdminSources sources_ ABSL_GUARDED_BY(mu_);
};

namespace {

// Counts one call: started when the client's metadata arrives, each message
// received and sent, and at the status the handled code and the handling
// time. Hooks of one call may run on different threads at once (a bidi
// stream reads and writes concurrently); the counters are thread-safe.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(const MethodMetrics* metrics)
      : metrics_(metrics), start_(std::chrono::steady_clock::now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      metrics_->started->Increment();
    }
    // A null message is the end of the client's stream, not a message.
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      metrics_->received->Increment();
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      metrics_->sent->Increment();
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      int code = static_cast<int>(methods->GetSendStatus().error_code());
      if (code < 0 || code >= kNumGrpcCodes) {
        code = static_cast<int>(grpc::StatusCode::UNKNOWN);
      }
      metrics_->handled[code]->Increment();
      metrics_->seconds->Observe(std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - start_)
                                     .count());
    }
    methods->Proceed();
  }

 private:
  const MethodMetrics* const metrics_;
  const std::chrono::steady_clock::time_point start_;
};

// go-grpc-prometheus's grpc_type values.
const char* TypeLabel(const google::protobuf::MethodDescriptor& method) {
  if (method.client_streaming() && method.server_streaming()) {
    return "bidi_stream";
  }
  if (method.client_streaming()) return "client_stream";
  if (method.server_streaming()) return "server_stream";
  return "unary";
}

// client_golang's default buckets, which go-grpc-prometheus uses.
const prometheus::Histogram::BucketBoundaries& HandlingBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{
          0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *kBuckets;
}

// From 10 µs (a task taken at once) to 10 s (a saturated pool).
const prometheus::Histogram::BucketBoundaries& PoolWaitBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{
          0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01,
          0.05,    0.1,    0.5,    1,     5,     10};
  return *kBuckets;
}

// "IPV4:PORT" for civetweb (built without IPv6 in Debian) from a validated
// HOST:PORT.
absl::StatusOr<std::string> CivetAddress(absl::string_view address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_listen=\"", address, "\" ", why,
        "; use IPV4:PORT or HOST:PORT, e.g. 127.0.0.1:9464 or 0.0.0.0:9464 "
        "(empty turns metrics off)"));
  };
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return bad("is not HOST:PORT");
  }
  const std::string host(address.substr(0, colon));
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return bad("has no port number in 0..65535");
  }
  if (host.front() == '[') {
    return bad("is IPv6: the metrics endpoint listens on IPv4 only");
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &results); rc != 0) {
    return bad(absl::StrCat("cannot be resolved to an IPv4 address (",
                            gai_strerror(rc), ")"));
  }
  char text[INET_ADDRSTRLEN] = {};
  const auto* in = reinterpret_cast<const sockaddr_in*>(results->ai_addr);
  inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
  freeaddrinfo(results);
  return absl::StrCat(text, ":", port);
}

}  // namespace
}  // namespace metrics_internal

using metrics_internal::MethodMetrics;

std::vector<std::string> DefaultMetricsServices() {
  // Linked in so that the generated pool knows grpc.health.v1.Health.
  grpc::health::v1::HealthCheckRequest::descriptor();
  return {v1::Shares::service_full_name(),
          v1::Bus::service_full_name(),
          v1::Workers::service_full_name(),
          v1::Admin::service_full_name(),
          "grpc.health.v1.Health",
          "grpc.reflection.v1alpha.ServerReflection"};
}

class Metrics::InterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InterceptorFactory(const Metrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const MethodMetrics* method = metrics_->FindMethod(info->method());
    if (method == nullptr) return nullptr;  // not a served method: not counted
    return new metrics_internal::MetricsInterceptor(method);
  }

 private:
  const Metrics* const metrics_;
};

Metrics::Metrics(std::string version, const std::vector<std::string>& services)
    : registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<metrics_internal::ServerCollector>(
          std::move(version))) {
  auto& started = prometheus::BuildCounter()
                      .Name("grpc_server_started_total")
                      .Help("Total number of RPCs started on the server.")
                      .Register(*registry_);
  auto& handled = prometheus::BuildCounter()
                      .Name("grpc_server_handled_total")
                      .Help(
                          "Total number of RPCs completed on the server, "
                          "regardless of success or failure.")
                      .Register(*registry_);
  auto& received =
      prometheus::BuildCounter()
          .Name("grpc_server_msg_received_total")
          .Help("Total number of RPC stream messages received on the server.")
          .Register(*registry_);
  auto& sent =
      prometheus::BuildCounter()
          .Name("grpc_server_msg_sent_total")
          .Help("Total number of gRPC stream messages sent by the server.")
          .Register(*registry_);
  auto& seconds = prometheus::BuildHistogram()
                      .Name("grpc_server_handling_seconds")
                      .Help(
                          "Histogram of response latency (seconds) of gRPC "
                          "that had been application-level handled by the "
                          "server.")
                      .Register(*registry_);
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service =
        pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor& method = *service->method(i);
      const prometheus::Labels labels = {
          {"grpc_type", metrics_internal::TypeLabel(method)},
          {"grpc_service", service->full_name()},
          {"grpc_method", method.name()}};
      auto m = std::make_unique<MethodMetrics>();
      m->started = &started.Add(labels);
      m->received = &received.Add(labels);
      m->sent = &sent.Add(labels);
      m->seconds = &seconds.Add(labels, metrics_internal::HandlingBuckets());
      for (int code = 0; code < metrics_internal::kNumGrpcCodes; ++code) {
        prometheus::Labels with_code = labels;
        with_code["grpc_code"] =
            std::string(GrpcCodeLabel(static_cast<grpc::StatusCode>(code)));
        m->handled[code] = &handled.Add(with_code);
      }
      methods_.emplace(
          absl::StrCat("/", service->full_name(), "/", method.name()),
          std::move(m));
    }
  }

  auto& wait = prometheus::BuildHistogram()
                   .Name("tshare_pool_task_wait_seconds")
                   .Help(
                       "Time pool tasks waited in the queue before a thread "
                       "took them, by priority.")
                   .Register(*registry_);
  for (int p = 0; p < core::kNumPriorities; ++p) {
    pool_wait_[p] = &wait.Add(
        {{"priority", core::PriorityName(static_cast<core::Priority>(p))}},
        metrics_internal::PoolWaitBuckets());
  }
}

Metrics::~Metrics() { StopServing(); }

const MethodMetrics* Metrics::FindMethod(absl::string_view method) const {
  auto it = methods_.find(method);
  return it == methods_.end() ? nullptr : it->second.get();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::NewInterceptorFactory() {
  return std::make_unique<InterceptorFactory>(this);
}

std::function<void(core::Priority, absl::Duration)>
Metrics::PoolTaskObserver() {
  return [this](core::Priority priority, absl::Duration wait) {
    const int p = static_cast<int>(priority);
    if (p < 0 || p >= core::kNumPriorities) return;
    pool_wait_[p]->Observe(absl::ToDoubleSeconds(wait));
  };
}

absl::Status Metrics::Serve(absl::string_view address, AdminSources sources) {
  absl::StatusOr<std::string> civet = metrics_internal::CivetAddress(address);
  if (!civet.ok()) return civet.status();
  absl::MutexLock lock(&mu_);
  if (exposer_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("metrics are already served on port ", port_,
                     "; --metrics_listen takes one address"));
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(*civet);
  } catch (const std::exception&) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", address,
        ": address in use or not available; pass --metrics_listen=HOST:PORT "
        "(empty turns metrics off)"));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  collector_->SetSources(&sources);
  exposer->RegisterCollectable(registry_);
  exposer->RegisterCollectable(collector_);
  port_ = ports.empty() ? 0 : ports.front();
  exposer_ = std::move(exposer);
  return absl::OkStatus();
}

void Metrics::StopServing() {
  std::unique_ptr<prometheus::Exposer> exposer;
  {
    absl::MutexLock lock(&mu_);
    exposer = std::move(exposer_);
    port_ = 0;
  }
  // Joins civetweb's threads: no scrape is running after this.
  exposer.reset();
  collector_->SetSources(nullptr);
}

int Metrics::port() const {
  absl::MutexLock lock(&mu_);
  return port_;
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> parts = collector_->Collect();
  families.insert(families.end(), std::make_move_iterator(parts.begin()),
                  std::make_move_iterator(parts.end()));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace tshare::service
