// tshare-bench: the load generator that measures tshared, and etcd and Redis
// beside it with the same client and the same load shape.
//
//   tshare-bench SCENARIO --target=HOST:PORT [options]
//   tshare-bench get --target=127.0.0.1:7420 --clients=16 --duration=5s --json
//   tshare-bench add --target=etcd://127.0.0.1:2379 --hot
//   tshare-bench pubsub --target=redis://127.0.0.1:6379 --subscribers=10
//
// One C++ program on gRPC's asynchronous completion-queue client API: a few
// load threads, each with its own completion queue, drive every call; nothing
// blocks per request.
//
// Load shapes:
// - closed loop (the default): --clients clients, each with --inflight requests
// in flight,
//   spread over --conns TCP connections (channels with distinct arguments, so
//   they really are separate connections); a client sends its next request as
//   soon as one completes.
// - open loop (--rate=N): N requests per second at fixed intervals, whatever
// the server does;
//   each latency is measured from the request's SCHEDULED send time, so a
//   server that stalls is charged for the requests it delayed (no coordinated
//   omission).
//
// Scenarios (what each one does on tshared / on etcd; Redis only serves pubsub
// here, the rest is redis-benchmark's job, see bench/compare.sh):
//   put        Shares.Set of a random key           | KV.Put
//   get        Shares.Get of a random preloaded key | KV.Range, serializable
//   (--linearizable) add        Shares.Update add 1 (--hot: one key) | Range
//   then Txn(mod_revision = r) loop cas        Get then Set(if_version) loop |
//   Range then Txn(mod_revision = r) loop mixed      --get-fraction Gets, the
//   rest Sets   | Range / Put session    Shares.Session, --batch ops a frame  |
//   one Txn of --batch ops (atomic; etcd has
//              and --inflight frames in flight      | no pipelined stream, see
//              docs)
//   watch      --writers writers, --watchers watches of --watch-keys keys over
//   --streams
//              streams; reports events delivered/s and put->event latency (the
//              writer puts its send time into the value)
//   pubsub     one publisher (publish ops on one Shares.Session, or Bus.Publish
//   with --publish-via=unary) and --subscribers subscribers (BATCH frames of
//   up to --max-batch); deliveries/s and
//              publish->delivery latency. etcd: not applicable. Redis:
//              PUBLISH/SUBSCRIBE over a minimal RESP client, same shape.
//   idle-conns the get scenario while --idle-conns other connections stay open
//   and idle load       puts keys 0..--keys-1 once (tshared: through Session
//   frames), then reports
//              the rate and the server's RSS; for memory comparisons
//
// Output: ops/s, latency percentiles (log-bucketed histogram, one per load
// thread, merged), errors, the server's CPU seconds over the measured window
// (from /proc/PID/stat of
// --server-pid) and ops per server CPU-second; a progress line on stderr every
// second; with
// --json, one JSON object on stdout.
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/bench_keys.h"
#include "bench/histogram.h"
#include "bench/resp.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "tshare/v1/bus.grpc.pb.h"
#include "tshare/v1/shares.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:7420",
          "HOST:PORT of tshared (or of any server of tshare.v1.Shares), "
          "etcd://HOST:PORT, or "
          "redis://HOST:PORT (pubsub only)");
ABSL_FLAG(int32_t, clients, 16, "Concurrent clients (closed loop)");
ABSL_FLAG(int32_t, conns, 1, "TCP connections the clients are spread over");
ABSL_FLAG(
    int32_t, inflight, 1,
    "Requests (session: frames) each client keeps in flight (closed loop)");
ABSL_FLAG(int32_t, threads, 0,
          "Load threads (one completion queue each); 0 = the CPUs this process "
          "may run on");
ABSL_FLAG(uint64_t, keys, 10000, "Key space: keys 0..keys-1");
ABSL_FLAG(int32_t, key_bytes, 16, "Key length (prefix + zero-padded index)");
ABSL_FLAG(int32_t, value_bytes, 64, "Value length, in bytes");
ABSL_FLAG(std::string, key_prefix, "",
          "Key prefix; empty = the scenario's (key: for "
          "put/get/mixed/session/load/idle-conns, "
          "counter: for add/cas, watch: for watch)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "Measured time");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1),
          "Load before the measured time starts");
ABSL_FLAG(double, rate, 0,
          "Open loop: requests per second (watch/pubsub: writes/publishes per "
          "second), "
          "latency from the scheduled send time; 0 = closed loop");
ABSL_FLAG(int32_t, max_outstanding, 100000,
          "Open loop: requests in flight at most (later ones wait, their "
          "latency still counts "
          "from their scheduled time)");
ABSL_FLAG(bool, hot, false, "add/cas: every client works on the same key");
ABSL_FLAG(int32_t, batch, 16,
          "session: ops per frame (etcd: ops per Txn); load: ops per frame");
ABSL_FLAG(std::string, session_op, "put", "session: put, get or mixed");
ABSL_FLAG(double, get_fraction, 0.9,
          "mixed (and session with --session-op=mixed): share of gets");
ABSL_FLAG(bool, linearizable, false,
          "etcd get: linearizable Range instead of serializable");
ABSL_FLAG(bool, preload, true,
          "get/mixed/idle-conns/session: put every key first (off for a server "
          "that cannot "
          "Set, like cq_server, which preloads itself)");
ABSL_FLAG(int32_t, writers, 4, "watch: writer clients");
ABSL_FLAG(int32_t, watchers, 1000, "watch: watches (key registrations) in all");
ABSL_FLAG(int32_t, streams, 20, "watch: streams the watches are spread over");
ABSL_FLAG(uint64_t, watch_keys, 100,
          "watch: keys written and watched; each write reaches "
          "watchers/watch_keys watches");
ABSL_FLAG(int32_t, subscribers, 10,
          "pubsub: subscriber streams (connections for Redis)");
ABSL_FLAG(std::string, publish_via, "session",
          "pubsub on tshared: 'session' (publish ops pipelined on one "
          "Shares.Session stream, --inflight of them unanswered, each frame "
          "taking every free slot, as the Redis publisher pipelines its "
          "PUBLISHes) or 'unary' (--inflight Bus.Publish calls)");
ABSL_FLAG(uint32_t, max_batch, 64,
          "pubsub on tshared: SubscribeRequest.max_batch (messages per frame "
          "when several wait; 1 = a frame per message)");
ABSL_FLAG(int32_t, idle_conns, 1000,
          "idle-conns: idle connections held open during the load");
ABSL_FLAG(int32_t, server_pid, 0,
          "PID of the server, for its CPU time and RSS (0: not read)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call");
ABSL_FLAG(bool, json, false,
          "Print one JSON object on stdout instead of the text report");
ABSL_FLAG(bool, progress, true, "A progress line on stderr every second");
ABSL_FLAG(std::string, label, "",
          "Free text copied into the JSON (for scripts)");

namespace tshare::bench {
namespace {

// ---------------------------------------------------------------------------------------
// Small utilities.

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void SleepUntilNs(int64_t t) {
  timespec ts;
  ts.tv_sec = t / 1'000'000'000;
  ts.tv_nsec = t % 1'000'000'000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) ==
         EINTR) {
  }
}

// splitmix64: cheap, good enough to pick keys.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
};

// utime + stime of a process, in seconds; -1 if unreadable.
double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(paren + 2), ' ', absl::SkipEmpty());
  // After "pid (comm) ": state is field 3, utime 14, stime 15.
  if (fields.size() < 13) return -1;
  double utime = 0, stime = 0;
  if (!absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime))
    return -1;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmRSS of a process in KiB; -1 if unreadable.
int64_t ProcessRssKb(int pid) {
  if (pid <= 0) return -1;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      int64_t kb = 0;
      std::vector<std::string> parts =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kb)) return kb;
    }
  }
  return -1;
}

int CpusAllowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    return std::max(1u, std::thread::hardware_concurrency());
  }
  return std::max(1, CPU_COUNT(&set));
}

void RaiseFileLimit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

// absl flags are identifiers; accept the dashed spelling too (--key-bytes =
// --key_bytes).
std::vector<char*> UnderscoreFlagNames(int argc, char** argv,
                                       std::vector<std::string>* store) {
  store->reserve(argc);
  std::vector<char*> out;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && absl::StartsWith(arg, "--") && arg.size() > 2) {
      const size_t end = std::min(arg.find('='), arg.size());
      for (size_t j = 2; j < end; ++j) {
        if (arg[j] == '-') arg[j] = '_';
      }
    }
    store->push_back(std::move(arg));
  }
  for (std::string& s : *store) out.push_back(s.data());
  return out;
}

// ---------------------------------------------------------------------------------------
// Configuration.

enum class Backend { kTshare, kEtcd, kRedis };

const char* BackendName(Backend b) {
  switch (b) {
    case Backend::kTshare:
      return "tshare";
    case Backend::kEtcd:
      return "etcd";
    case Backend::kRedis:
      return "redis";
  }
  return "?";
}

enum class Scenario {
  kPut,
  kGet,
  kAdd,
  kCas,
  kMixed,
  kSession,
  kWatch,
  kPubsub,
  kIdle,
  kLoad
};

struct ScenarioName {
  const char* name;
  Scenario scenario;
};
constexpr ScenarioName kScenarios[] = {
    {"put", Scenario::kPut},         {"get", Scenario::kGet},
    {"add", Scenario::kAdd},         {"cas", Scenario::kCas},
    {"mixed", Scenario::kMixed},     {"session", Scenario::kSession},
    {"watch", Scenario::kWatch},     {"pubsub", Scenario::kPubsub},
    {"idle-conns", Scenario::kIdle}, {"load", Scenario::kLoad},
};

struct Config {
  std::string scenario_name;
  Scenario scenario = Scenario::kPut;
  Backend backend = Backend::kTshare;
  std::string address;  // host:port
  int clients = 16;
  int conns = 1;
  int inflight = 1;
  int threads = 1;
  uint64_t keys = 10000;
  size_t key_bytes = 16;
  size_t value_bytes = 64;
  std::string key_prefix;
  absl::Duration duration;
  absl::Duration warmup;
  double rate = 0;
  int max_outstanding = 100000;
  bool hot = false;
  int batch = 16;
  std::string session_op;
  double get_fraction = 0.9;
  bool linearizable = false;
  bool preload = true;
  int writers = 4;
  int watchers = 1000;
  int streams = 20;
  uint64_t watch_keys = 100;
  int subscribers = 10;
  std::string publish_via;
  uint32_t max_batch = 64;
  int idle_conns = 1000;
  int server_pid = 0;
  absl::Duration timeout;
  bool json = false;
  bool progress = true;
  std::string label;
};

absl::StatusOr<Config> ConfigFromFlags(const std::string& scenario) {
  Config c;
  c.scenario_name = scenario;
  bool found = false;
  std::vector<std::string> names;
  for (const ScenarioName& s : kScenarios) {
    names.push_back(s.name);
    if (scenario == s.name) {
      c.scenario = s.scenario;
      found = true;
    }
  }
  if (!found) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown scenario '", scenario,
                     "'; one of: ", absl::StrJoin(names, ", ")));
  }
  const std::string target_flag = absl::GetFlag(FLAGS_target);
  absl::string_view target = target_flag;
  if (absl::ConsumePrefix(&target, "etcd://")) {
    c.backend = Backend::kEtcd;
  } else if (absl::ConsumePrefix(&target, "redis://")) {
    c.backend = Backend::kRedis;
  } else {
    absl::ConsumePrefix(&target, "tshare://");
  }
  if (target.empty() || target.find(':') == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target=", target_flag, " is not [etcd://|redis://]HOST:PORT"));
  }
  c.address = std::string(target);
  c.clients = absl::GetFlag(FLAGS_clients);
  c.conns = absl::GetFlag(FLAGS_conns);
  c.inflight = absl::GetFlag(FLAGS_inflight);
  c.threads = absl::GetFlag(FLAGS_threads);
  if (c.threads <= 0) c.threads = CpusAllowed();
  c.keys = absl::GetFlag(FLAGS_keys);
  c.key_bytes =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_key_bytes)));
  c.value_bytes =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_value_bytes)));
  c.key_prefix = absl::GetFlag(FLAGS_key_prefix);
  if (c.key_prefix.empty()) {
    switch (c.scenario) {
      case Scenario::kAdd:
      case Scenario::kCas:
        c.key_prefix = "counter:";
        break;
      case Scenario::kWatch:
        c.key_prefix = "watch:";
        break;
      default:
        c.key_prefix = "key:";
    }
  }
  c.duration = absl::GetFlag(FLAGS_duration);
  c.warmup = absl::GetFlag(FLAGS_warmup);
  c.rate = absl::GetFlag(FLAGS_rate);
  c.max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  c.hot = absl::GetFlag(FLAGS_hot);
  c.batch = absl::GetFlag(FLAGS_batch);
  c.session_op = absl::GetFlag(FLAGS_session_op);
  c.get_fraction = absl::GetFlag(FLAGS_get_fraction);
  c.linearizable = absl::GetFlag(FLAGS_linearizable);
  c.preload = absl::GetFlag(FLAGS_preload);
  c.writers = absl::GetFlag(FLAGS_writers);
  c.watchers = absl::GetFlag(FLAGS_watchers);
  c.streams = absl::GetFlag(FLAGS_streams);
  c.watch_keys = absl::GetFlag(FLAGS_watch_keys);
  c.subscribers = absl::GetFlag(FLAGS_subscribers);
  c.publish_via = absl::GetFlag(FLAGS_publish_via);
  if (c.publish_via != "session" && c.publish_via != "unary") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--publish-via=", c.publish_via, ": use session or unary"));
  }
  c.max_batch = absl::GetFlag(FLAGS_max_batch);
  c.idle_conns = absl::GetFlag(FLAGS_idle_conns);
  c.server_pid = absl::GetFlag(FLAGS_server_pid);
  c.timeout = absl::GetFlag(FLAGS_timeout);
  c.json = absl::GetFlag(FLAGS_json);
  c.progress = absl::GetFlag(FLAGS_progress);
  c.label = absl::GetFlag(FLAGS_label);

  auto positive = [](const char* flag, int64_t v) -> absl::Status {
    if (v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", v, " must be > 0"));
    }
    return absl::OkStatus();
  };
  for (auto [flag, v] : {std::pair<const char*, int64_t>{"clients", c.clients},
                         {"conns", c.conns},
                         {"inflight", c.inflight},
                         {"keys", static_cast<int64_t>(c.keys)},
                         {"batch", c.batch},
                         {"writers", c.writers},
                         {"watchers", c.watchers},
                         {"streams", c.streams},
                         {"watch_keys", static_cast<int64_t>(c.watch_keys)},
                         {"subscribers", c.subscribers},
                         {"max_outstanding", c.max_outstanding}}) {
    if (absl::Status s = positive(flag, v); !s.ok()) return s;
  }
  if (c.idle_conns < 0)
    return absl::InvalidArgumentError("--idle_conns must be >= 0");
  if (c.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--duration must be > 0 (e.g. --duration=5s)");
  }
  if (c.warmup < absl::ZeroDuration())
    return absl::InvalidArgumentError("--warmup must be >= 0");
  if (c.rate < 0) return absl::InvalidArgumentError("--rate must be >= 0");
  if (c.session_op != "put" && c.session_op != "get" &&
      c.session_op != "mixed") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--session_op=", c.session_op, " is not put, get or mixed"));
  }
  if (c.get_fraction < 0 || c.get_fraction > 1) {
    return absl::InvalidArgumentError("--get_fraction must be in [0, 1]");
  }
  if (c.scenario == Scenario::kWatch && c.watchers < c.streams) {
    return absl::InvalidArgumentError("watch: --watchers must be >= --streams");
  }
  if (c.scenario == Scenario::kWatch &&
      static_cast<uint64_t>((c.watchers + c.streams - 1) / c.streams) >
          c.watch_keys) {
    return absl::InvalidArgumentError(
        "watch: each stream watches watchers/streams distinct keys, so "
        "--watch_keys must be "
        ">= watchers/streams");
  }
  if (c.scenario == Scenario::kSession && c.backend == Backend::kEtcd &&
      static_cast<uint64_t>(c.batch) > c.keys) {
    return absl::InvalidArgumentError(
        "session on etcd: --batch must be <= --keys (one Txn "
        "may not touch a key twice)");
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// Measurement: per-thread statistics, merged at the end.

// What a run measured; copyable, merged across threads.
struct Figures {
  // The scenario's primary figure: ops (watch: events delivered, pubsub:
  // deliveries).
  Histogram latency;
  uint64_t ops = 0;
  uint64_t errors = 0;
  uint64_t retries = 0;
  // Writes of the watch and pubsub scenarios (puts / publishes).
  Histogram write_latency;
  uint64_t writes = 0;
  uint64_t write_errors = 0;
  // Changes or messages the server reported as conflated or dropped
  // (watch/pubsub).
  uint64_t conflated = 0;
  uint64_t dropped = 0;
  std::string first_error;

  void Merge(const Figures& o) {
    latency.Merge(o.latency);
    ops += o.ops;
    errors += o.errors;
    retries += o.retries;
    write_latency.Merge(o.write_latency);
    writes += o.writes;
    write_errors += o.write_errors;
    conflated += o.conflated;
    dropped += o.dropped;
    if (first_error.empty()) first_error = o.first_error;
  }
};

// One thread's figures, plus running totals another thread reads for the
// progress line.
struct Stats : Figures {
  std::atomic<uint64_t> progress_ops{0};
  std::atomic<uint64_t> progress_errors{0};
};

// The measured window [begin, end) in NowNs() time; nothing is recorded outside
// it.
struct Window {
  std::atomic<int64_t> begin{INT64_MAX};
  std::atomic<int64_t> end{INT64_MAX};
  bool Contains(int64_t t) const {
    return t >= begin.load(std::memory_order_relaxed) &&
           t < end.load(std::memory_order_relaxed);
  }
};

// A completion-queue tag: what to do when the operation completes.
struct Tag {
  std::function<void(bool ok)> fn;
};

class Worker final {
 public:
  Worker() = default;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Start() {
    thread_ = std::thread([this] {
      void* tag = nullptr;
      bool ok = false;
      while (cq_.Next(&tag, &ok)) static_cast<Tag*>(tag)->fn(ok);
    });
  }
  void Stop() {
    cq_.Shutdown();
    if (thread_.joinable()) thread_.join();
  }

  grpc::CompletionQueue* cq() { return &cq_; }
  // Touched only by this worker's thread until Stop().
  Stats& stats() { return stats_; }

 private:
  grpc::CompletionQueue cq_;
  std::thread thread_;
  Stats stats_;
};

// One unary call: owns its context, response and status for the call's
// lifetime.
template <typename Response>
struct UnaryCall {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
  Response response;
  grpc::Status status;

  // prepare(ClientContext*, CompletionQueue*) returns the stub's
  // PrepareAsyncX(...) reader.
  template <typename Prepare>
  void Start(Prepare&& prepare, grpc::CompletionQueue* cq,
             absl::Duration timeout, Tag* tag) {
    context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(timeout));
    response.Clear();
    reader = prepare(context.get(), cq);
    reader->StartCall();
    reader->Finish(&response, &status, tag);
  }
};

// ---------------------------------------------------------------------------------------
// The run's shared state: workers, channels, stubs, the window.

class Group;

class Bench final {
 public:
  explicit Bench(Config config) : config_(std::move(config)) {
    filler_ = std::string(config_.value_bytes, 'v');
    workers_.reserve(config_.threads);
    for (int i = 0; i < config_.threads; ++i) {
      workers_.push_back(std::make_unique<Worker>());
      workers_.back()->Start();
    }
    if (config_.backend == Backend::kRedis) return;
    for (int i = 0; i < config_.conns; ++i) {
      std::shared_ptr<grpc::Channel> channel =
          NewChannel("tshare_bench.conn", i);
      channels_.push_back(channel);
      if (config_.backend == Backend::kTshare) {
        shares_.push_back(tshare::v1::Shares::NewStub(channel));
        bus_.push_back(tshare::v1::Bus::NewStub(channel));
      } else {
        kv_.push_back(etcdserverpb::KV::NewStub(channel));
        watch_.push_back(etcdserverpb::Watch::NewStub(channel));
      }
    }
  }
  ~Bench() {
    for (auto& w : workers_) w->Stop();
  }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  // A channel of its own: distinct channel arguments keep gRPC from sharing the
  // TCP connection (subchannel) with another channel.
  std::shared_ptr<grpc::Channel> NewChannel(const std::string& arg, int index) {
    grpc::ChannelArguments args;
    args.SetInt(arg, index);
    args.SetMaxReceiveMessageSize(-1);
    return grpc::CreateCustomChannel(config_.address,
                                     grpc::InsecureChannelCredentials(), args);
  }

  const Config& config() const { return config_; }
  Window& window() { return window_; }
  Worker* WorkerFor(int client) {
    return workers_[client % workers_.size()].get();
  }
  int ConnFor(int client) const { return client % config_.conns; }
  tshare::v1::Shares::Stub* shares(int client) {
    return shares_[ConnFor(client)].get();
  }
  tshare::v1::Bus::Stub* bus(int client) { return bus_[ConnFor(client)].get(); }
  etcdserverpb::KV::Stub* kv(int client) { return kv_[ConnFor(client)].get(); }
  etcdserverpb::Watch::Stub* watch(int client) {
    return watch_[ConnFor(client)].get();
  }
  const std::string& filler() const { return filler_; }
  uint64_t NextSeed() {
    return seed_.fetch_add(0x51ed270b27e0c3b5ULL) ^ 0x2545f4914f6cdd1dULL;
  }
  std::vector<std::unique_ptr<Worker>>& workers() { return workers_; }

  // Waits until every connection is ready (or `deadline`); false if one is not.
  bool WaitConnected(absl::Duration deadline) {
    const auto until =
        std::chrono::system_clock::now() + absl::ToChronoNanoseconds(deadline);
    bool all = true;
    for (auto& c : channels_) all = c->WaitForConnected(until) && all;
    return all;
  }

  // Counts of streams that saw their first frame, and etcd watches the server
  // acknowledged.
  std::atomic<int> streams_ready{0};
  std::atomic<int> etcd_watches_created{0};

 private:
  const Config config_;
  std::string filler_;
  Window window_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<tshare::v1::Shares::Stub>> shares_;
  std::vector<std::unique_ptr<tshare::v1::Bus::Stub>> bus_;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv_;
  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> watch_;
  std::atomic<uint64_t> seed_{0x1234567};
};

// ---------------------------------------------------------------------------------------
// Ops: one logical operation (which may take several calls, like a CAS retry
// loop), and a Group of them run closed loop or open loop.

enum class KeyMode { kUniform, kSequential };

class Op {
 public:
  Op(Group* group, int client);
  virtual ~Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  // Starts the op as if sent at `scheduled_ns` (latency counts from there).
  void Begin(int64_t scheduled_ns);

 protected:
  // Issues the op's first call; false if there is nothing left to do (a load
  // ran out of keys).
  virtual bool Start() = 0;
  // The op finished: `ok_ops` ops succeeded, `failed_ops` failed.
  void End(uint64_t ok_ops, uint64_t failed_ops, const grpc::Status& status);
  void End(const grpc::Status& status) {
    End(status.ok() ? 1 : 0, status.ok() ? 0 : 1, status);
  }
  // The next key index, or false when a sequential key space is exhausted.
  bool PickKey(uint64_t* index);
  std::string Key(uint64_t index) const;

  Group* const group_;
  Bench* const bench_;
  const int client_;
  Worker* const worker_;
  Tag tag_;
  Rng rng_;
  uint64_t retries_ = 0;
  int64_t scheduled_ns_ = 0;
};

class Group final {
 public:
  using Factory = std::function<std::unique_ptr<Op>(Group*, int client)>;

  Group(Bench* bench, Factory factory, bool writer, KeyMode key_mode,
        std::string prefix, uint64_t keys)
      : bench_(bench),
        factory_(std::move(factory)),
        writer_(writer),
        key_mode_(key_mode),
        prefix_(std::move(prefix)),
        keys_(keys) {}
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  ~Group() {
    stop_.store(true);
    if (pacer_.joinable()) pacer_.join();
    // Ops whose calls never completed (a drain that timed out) must outlive
    // their tags.
    if (active_.load() > 0) {
      for (auto& op : ops_) op.release();
    }
  }

  // Closed loop: clients x inflight ops, each starting its next op when one
  // ends.
  void StartClosed(int clients, int inflight) {
    for (int c = 0; c < clients; ++c) {
      for (int d = 0; d < inflight; ++d) ops_.push_back(factory_(this, c));
    }
    active_.store(static_cast<int64_t>(ops_.size()));
    const int64_t now = NowNs();
    for (auto& op : ops_) op->Begin(now);
  }

  // Open loop: `rate` ops per second from now, round robin over `clients`.
  void StartOpen(double rate, int clients, int max_outstanding) {
    open_ = true;
    pacer_ = std::thread([this, rate, clients, max_outstanding] {
      const double interval = 1e9 / rate;
      const int64_t start = NowNs();
      uint64_t n = 0;
      int client = 0;
      while (!stop_.load(std::memory_order_acquire)) {
        const int64_t due =
            start + static_cast<int64_t>(static_cast<double>(n) * interval);
        SleepUntilNs(due);
        if (stop_.load(std::memory_order_acquire)) break;
        if (active_.load(std::memory_order_relaxed) >= max_outstanding) {
          // Too many in flight: wait for some to end; this op's latency still
          // counts from `due`.
          SleepUntilNs(NowNs() + 100'000);
          continue;
        }
        Op* op = factory_(this, client).release();
        client = (client + 1) % clients;
        active_.fetch_add(1, std::memory_order_relaxed);
        op->Begin(due);
        ++n;
      }
    });
  }

  // No new ops start; those in flight finish. Returns when none is left or
  // `deadline` passed (then false).
  bool StopAndDrain(absl::Duration deadline) {
    stop_.store(true, std::memory_order_release);
    if (pacer_.joinable()) pacer_.join();
    const int64_t until = NowNs() + absl::ToInt64Nanoseconds(deadline);
    while (active_.load() > 0 && NowNs() < until)
      SleepUntilNs(NowNs() + 1'000'000);
    return active_.load() == 0;
  }
  // Waits (up to `deadline`) until every op retired by itself (a load that ran
  // out of keys).
  bool WaitDone(absl::Duration deadline) {
    const int64_t until = NowNs() + absl::ToInt64Nanoseconds(deadline);
    while (active_.load() > 0 && NowNs() < until)
      SleepUntilNs(NowNs() + 1'000'000);
    return active_.load() == 0;
  }

  // Called by an op that ended: closed loop starts its next op, open loop
  // deletes it.
  void OnEnd(Op* op) {
    if (open_) {
      delete op;
      active_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    if (stop_.load(std::memory_order_acquire)) {
      Retire(op);
      return;
    }
    op->Begin(NowNs());
  }
  // An op that will not run again.
  void Retire(Op* op) {
    if (open_) delete op;
    active_.fetch_sub(1, std::memory_order_relaxed);
  }

  bool PickKey(Rng& rng, uint64_t* index) {
    if (key_mode_ == KeyMode::kSequential) {
      *index = next_key_.fetch_add(1, std::memory_order_relaxed);
      return *index < keys_;
    }
    *index = rng.Uniform(keys_);
    return true;
  }
  bool stopping() const { return stop_.load(std::memory_order_acquire); }

  Bench* bench() const { return bench_; }
  bool writer() const { return writer_; }
  const std::string& prefix() const { return prefix_; }
  uint64_t keys() const { return keys_; }

 private:
  Bench* const bench_;
  const Factory factory_;
  // Records into Stats::write_* (watch and pubsub writers) instead of the
  // primary figures.
  const bool writer_;
  const KeyMode key_mode_;
  const std::string prefix_;
  const uint64_t keys_;
  bool open_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> active_{0};
  std::atomic<uint64_t> next_key_{0};
  std::vector<std::unique_ptr<Op>> ops_;
  std::thread pacer_;
};

Op::Op(Group* group, int client)
    : group_(group),
      bench_(group->bench()),
      client_(client),
      worker_(group->bench()->WorkerFor(client)),
      rng_{group->bench()->NextSeed()} {}

void Op::Begin(int64_t scheduled_ns) {
  scheduled_ns_ = scheduled_ns;
  retries_ = 0;
  if (!Start()) group_->Retire(this);
}

bool Op::PickKey(uint64_t* index) { return group_->PickKey(rng_, index); }

std::string Op::Key(uint64_t index) const {
  return KeyName(group_->prefix(), index, bench_->config().key_bytes);
}

void Op::End(uint64_t ok_ops, uint64_t failed_ops, const grpc::Status& status) {
  const int64_t now = NowNs();
  Stats& s = worker_->stats();
  if (bench_->window().Contains(now)) {
    if (group_->writer()) {
      s.writes += ok_ops;
      s.write_errors += failed_ops;
      if (ok_ops > 0)
        s.write_latency.Record(static_cast<uint64_t>(now - scheduled_ns_),
                               ok_ops);
    } else {
      s.ops += ok_ops;
      s.errors += failed_ops;
      s.retries += retries_;
      if (ok_ops > 0)
        s.latency.Record(static_cast<uint64_t>(now - scheduled_ns_), ok_ops);
    }
    if (failed_ops > 0 && s.first_error.empty()) {
      s.first_error =
          absl::StrCat("code ", static_cast<int>(status.error_code()), ": ",
                       status.error_message());
    }
  }
  if (!group_->writer()) {
    s.progress_ops.fetch_add(ok_ops, std::memory_order_relaxed);
    s.progress_errors.fetch_add(failed_ops, std::memory_order_relaxed);
  }
  group_->OnEnd(this);
}

// ---- tshared ops.

// The topic of the pubsub scenario (a Redis channel of the same name).
constexpr char kPubsubTopic[] = "bench.pubsub";

enum class KvMode { kGet, kSet, kAdd, kMixed, kPublish, kStampedSet };

class TshareKvOp final : public Op {
 public:
  TshareKvOp(Group* group, int client, KvMode mode)
      : Op(group, client), mode_(mode) {
    tag_.fn = [this](bool) { OnDone(); };
    set_.mutable_value()->set_bytes_value(bench_->filler());
    update_.mutable_add()->set_int_value(1);
    publish_.set_topic(kPubsubTopic);
  }

 private:
  bool Start() override {
    Bench& b = *bench_;
    grpc::CompletionQueue* cq = worker_->cq();
    const absl::Duration timeout = b.config().timeout;
    if (mode_ == KvMode::kPublish) {
      publish_.mutable_value()->set_bytes_value(
          StampedValue(NowNs(), b.config().value_bytes));
      auto* stub = b.bus(client_);
      current_ = KvMode::kPublish;
      publish_call_.Start(
          [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
            return stub->PrepareAsyncPublish(c, publish_, q);
          },
          cq, timeout, &tag_);
      return true;
    }
    uint64_t index = 0;
    if (!PickKey(&index)) return false;
    auto* stub = b.shares(client_);
    current_ = mode_;
    if (mode_ == KvMode::kMixed) {
      current_ =
          rng_.Unit() < b.config().get_fraction ? KvMode::kGet : KvMode::kSet;
    }
    switch (current_) {
      case KvMode::kGet:
        get_.set_key(Key(index));
        get_call_.Start(
            [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
              return stub->PrepareAsyncGet(c, get_, q);
            },
            cq, timeout, &tag_);
        break;
      case KvMode::kStampedSet:
        set_.mutable_value()->set_bytes_value(
            StampedValue(NowNs(), b.config().value_bytes));
        [[fallthrough]];
      case KvMode::kSet:
        set_.set_key(Key(index));
        set_call_.Start(
            [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
              return stub->PrepareAsyncSet(c, set_, q);
            },
            cq, timeout, &tag_);
        break;
      case KvMode::kAdd:
        update_.set_key(Key(index));
        update_call_.Start(
            [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
              return stub->PrepareAsyncUpdate(c, update_, q);
            },
            cq, timeout, &tag_);
        break;
      default:
        break;
    }
    return true;
  }

  void OnDone() {
    switch (current_) {
      case KvMode::kGet:
        End(get_call_.status);
        break;
      case KvMode::kSet:
      case KvMode::kStampedSet:
        End(set_call_.status);
        break;
      case KvMode::kAdd:
        End(update_call_.status);
        break;
      case KvMode::kPublish:
        End(publish_call_.status);
        break;
      default:
        break;
    }
  }

  const KvMode mode_;
  KvMode current_ = KvMode::kGet;
  tshare::v1::GetRequest get_;
  tshare::v1::SetRequest set_;
  tshare::v1::UpdateRequest update_;
  tshare::v1::PublishRequest publish_;
  UnaryCall<tshare::v1::GetResponse> get_call_;
  UnaryCall<tshare::v1::SetResponse> set_call_;
  UnaryCall<tshare::v1::UpdateResponse> update_call_;
  UnaryCall<tshare::v1::PublishResponse> publish_call_;
};

// The read-modify-write loop a client writes with optimistic concurrency: Get
// the value and its version, Set value+1 if the version is still the same (0 =
// "still absent"), on a conflict read again.
class TshareCasOp final : public Op {
 public:
  TshareCasOp(Group* group, int client) : Op(group, client) {
    tag_.fn = [this](bool) { reading_ ? OnGet() : OnSet(); };
  }

 private:
  static constexpr uint64_t kMaxAttempts = 100000;

  bool Start() override {
    uint64_t index = 0;
    if (!PickKey(&index)) return false;
    get_.set_key(Key(index));
    set_.set_key(get_.key());
    Read();
    return true;
  }
  void Read() {
    reading_ = true;
    auto* stub = bench_->shares(client_);
    get_call_.Start(
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub->PrepareAsyncGet(c, get_, q);
        },
        worker_->cq(), bench_->config().timeout, &tag_);
  }
  void OnGet() {
    const grpc::Status& st = get_call_.status;
    int64_t value = 0;
    uint64_t version = 0;
    if (st.ok()) {
      value = get_call_.response.value().int_value();
      version = get_call_.response.version();
    } else if (st.error_code() != grpc::StatusCode::NOT_FOUND) {
      End(st);
      return;
    }
    reading_ = false;
    set_.mutable_value()->set_int_value(value + 1);
    set_.set_if_version(version);
    auto* stub = bench_->shares(client_);
    set_call_.Start(
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub->PrepareAsyncSet(c, set_, q);
        },
        worker_->cq(), bench_->config().timeout, &tag_);
  }
  void OnSet() {
    const grpc::Status& st = set_call_.status;
    if ((st.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
         st.error_code() == grpc::StatusCode::ABORTED) &&
        retries_ < kMaxAttempts) {
      ++retries_;
      Read();
      return;
    }
    End(st);
  }

  bool reading_ = true;
  tshare::v1::GetRequest get_;
  tshare::v1::SetRequest set_;
  UnaryCall<tshare::v1::GetResponse> get_call_;
  UnaryCall<tshare::v1::SetResponse> set_call_;
};

// ---- etcd ops.

class EtcdKvOp final : public Op {
 public:
  EtcdKvOp(Group* group, int client, KvMode mode)
      : Op(group, client), mode_(mode) {
    tag_.fn = [this](bool) {
      End(current_ == KvMode::kGet ? range_call_.status : put_call_.status);
    };
    put_.set_value(bench_->filler());
    range_.set_serializable(!bench_->config().linearizable);
  }

 private:
  bool Start() override {
    uint64_t index = 0;
    if (!PickKey(&index)) return false;
    const Config& cfg = bench_->config();
    auto* stub = bench_->kv(client_);
    current_ = mode_;
    if (mode_ == KvMode::kMixed) {
      current_ = rng_.Unit() < cfg.get_fraction ? KvMode::kGet : KvMode::kSet;
    }
    if (current_ == KvMode::kGet) {
      range_.set_key(Key(index));
      range_call_.Start(
          [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
            return stub->PrepareAsyncRange(c, range_, q);
          },
          worker_->cq(), cfg.timeout, &tag_);
    } else {
      if (current_ == KvMode::kStampedSet)
        put_.set_value(StampedValue(NowNs(), cfg.value_bytes));
      current_ = KvMode::kSet;
      put_.set_key(Key(index));
      put_call_.Start(
          [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
            return stub->PrepareAsyncPut(c, put_, q);
          },
          worker_->cq(), cfg.timeout, &tag_);
    }
    return true;
  }

  const KvMode mode_;
  KvMode current_ = KvMode::kGet;
  etcdserverpb::RangeRequest range_;
  etcdserverpb::PutRequest put_;
  UnaryCall<etcdserverpb::RangeResponse> range_call_;
  UnaryCall<etcdserverpb::PutResponse> put_call_;
};

// What an etcd user writes to add to a counter (etcd has no add): read the
// value and its mod_revision, then Txn(if mod_revision is unchanged: put
// value+1; else: get the key) and retry from the fresh value until the Txn
// succeeds.
class EtcdAddLoopOp final : public Op {
 public:
  EtcdAddLoopOp(Group* group, int client) : Op(group, client) {
    tag_.fn = [this](bool) { reading_ ? OnRange() : OnTxn(); };
    range_.set_serializable(true);
    etcdserverpb::Compare* cmp = txn_.add_compare();
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_target(etcdserverpb::Compare::MOD);
    txn_.add_success()->mutable_request_put();
    txn_.add_failure()->mutable_request_range();
  }

 private:
  static constexpr uint64_t kMaxAttempts = 100000;

  bool Start() override {
    uint64_t index = 0;
    if (!PickKey(&index)) return false;
    const std::string key = Key(index);
    range_.set_key(key);
    txn_.mutable_compare(0)->set_key(key);
    txn_.mutable_success(0)->mutable_request_put()->set_key(key);
    txn_.mutable_failure(0)->mutable_request_range()->set_key(key);
    reading_ = true;
    auto* stub = bench_->kv(client_);
    range_call_.Start(
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub->PrepareAsyncRange(c, range_, q);
        },
        worker_->cq(), bench_->config().timeout, &tag_);
    return true;
  }
  // kvs: the key's current state (empty: absent, mod_revision 0).
  void SendTxn(
      const google::protobuf::RepeatedPtrField<mvccpb::KeyValue>& kvs) {
    int64_t value = 0;
    int64_t mod = 0;
    if (!kvs.empty()) {
      mod = kvs[0].mod_revision();
      if (!absl::SimpleAtoi(kvs[0].value(), &value)) value = 0;
    }
    txn_.mutable_compare(0)->set_mod_revision(mod);
    txn_.mutable_success(0)->mutable_request_put()->set_value(
        std::to_string(value + 1));
    reading_ = false;
    auto* stub = bench_->kv(client_);
    txn_call_.Start(
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub->PrepareAsyncTxn(c, txn_, q);
        },
        worker_->cq(), bench_->config().timeout, &tag_);
  }
  void OnRange() {
    if (!range_call_.status.ok()) {
      End(range_call_.status);
      return;
    }
    SendTxn(range_call_.response.kvs());
  }
  void OnTxn() {
    const grpc::Status& st = txn_call_.status;
    if (!st.ok() || txn_call_.response.succeeded()) {
      End(st);
      return;
    }
    if (++retries_ >= kMaxAttempts) {
      End(grpc::Status(grpc::StatusCode::ABORTED,
                       "add: too many Txn conflicts"));
      return;
    }
    const etcdserverpb::TxnResponse& r = txn_call_.response;
    if (r.responses_size() == 0) {
      End(grpc::Status(grpc::StatusCode::INTERNAL,
                       "etcd Txn failure branch returned nothing"));
      return;
    }
    // The failure branch's range is the fresh state: copy it out before the
    // next call reuses the response.
    google::protobuf::RepeatedPtrField<mvccpb::KeyValue> kvs =
        r.responses(0).response_range().kvs();
    SendTxn(kvs);
  }

  bool reading_ = true;
  etcdserverpb::RangeRequest range_;
  etcdserverpb::TxnRequest txn_;
  UnaryCall<etcdserverpb::RangeResponse> range_call_;
  UnaryCall<etcdserverpb::TxnResponse> txn_call_;
};

// session on etcd: one Txn of --batch ops on consecutive (so distinct) keys.
// Atomic, unlike a Session frame; the closest thing etcd has to several ops per
// message.
class EtcdTxnBatchOp final : public Op {
 public:
  EtcdTxnBatchOp(Group* group, int client) : Op(group, client) {
    tag_.fn = [this](bool) {
      const grpc::Status& st = call_.status;
      const uint64_t n = static_cast<uint64_t>(txn_.success_size());
      End(st.ok() ? n : 0, st.ok() ? 0 : n, st);
    };
  }

 private:
  bool Start() override {
    const Config& cfg = bench_->config();
    uint64_t first = 0;
    if (!PickKey(&first)) return false;
    txn_.clear_success();
    for (int i = 0; i < cfg.batch; ++i) {
      const std::string key =
          Key((first + static_cast<uint64_t>(i)) % group_->keys());
      const bool get =
          cfg.session_op == "get" ||
          (cfg.session_op == "mixed" && rng_.Unit() < cfg.get_fraction);
      etcdserverpb::RequestOp* op = txn_.add_success();
      if (get) {
        op->mutable_request_range()->set_key(key);
        op->mutable_request_range()->set_serializable(true);
      } else {
        op->mutable_request_put()->set_key(key);
        op->mutable_request_put()->set_value(bench_->filler());
      }
    }
    auto* stub = bench_->kv(client_);
    call_.Start(
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub->PrepareAsyncTxn(c, txn_, q);
        },
        worker_->cq(), cfg.timeout, &tag_);
    return true;
  }

  etcdserverpb::TxnRequest txn_;
  UnaryCall<etcdserverpb::TxnResponse> call_;
};

// ---------------------------------------------------------------------------------------
// Streams: Session (pipelined ops), Watch (tshared and etcd), Subscribe.

class Stream {
 public:
  virtual ~Stream() = default;
  virtual void Start() = 0;
  // From any thread: ends the stream (its calls complete with ok = false).
  void Cancel() { context_.TryCancel(); }
  bool done() const { return done_.load(std::memory_order_acquire); }

 protected:
  // Every tag given to gRPC is counted; the stream is done once Finish
  // completed and no tag is outstanding (only then may it be destroyed).
  void Issued() { ++pending_; }
  void Completed() {
    --pending_;
    if (finished_ && pending_ == 0)
      done_.store(true, std::memory_order_release);
  }

  grpc::ClientContext context_;
  grpc::Status status_;
  int pending_ = 0;
  bool finishing_ = false;
  bool finished_ = false;
  std::atomic<bool> done_{false};
};

// Records the delivery of a change or message stamped at `stamp` (NowNs of its
// writer).
void RecordDelivery(Bench* bench, Stats& s, int64_t stamp) {
  const int64_t now = NowNs();
  s.progress_ops.fetch_add(1, std::memory_order_relaxed);
  if (!bench->window().Contains(now)) return;
  ++s.ops;
  if (stamp > 0 && now >= stamp)
    s.latency.Record(static_cast<uint64_t>(now - stamp));
}

void RecordStreamError(Bench* bench, Stats& s, const grpc::Status& st) {
  if (st.ok() || st.error_code() == grpc::StatusCode::CANCELLED) return;
  s.progress_errors.fetch_add(1, std::memory_order_relaxed);
  ++s.errors;
  if (s.first_error.empty()) {
    s.first_error = absl::StrCat("stream ended with code ",
                                 static_cast<int>(st.error_code()), ": ",
                                 st.error_message());
  }
  (void)bench;
}

// Shares.Session: frames of --batch ops, up to `inflight` frames unanswered,
// results matched to frames in order. With a sequential Group it is the fast
// loader (load, preload). With `max_ops` > 0 at most that many ops are
// unanswered, and each frame takes every free slot (up to `batch`) when the
// previous write is done: how a pipelining client keeps a window full (the
// pubsub publisher, like its Redis counterpart's --inflight PUBLISHes).
class SessionStream final : public Stream {
 public:
  SessionStream(Bench* bench, Group* group, int client, int inflight, int batch,
                std::string op, int max_ops = 0)
      : bench_(bench),
        group_(group),
        client_(client),
        worker_(bench->WorkerFor(client)),
        inflight_(inflight),
        batch_(batch),
        max_ops_(max_ops),
        op_(std::move(op)),
        rng_{bench->NextSeed()} {
    start_tag_.fn = [this](bool ok) { OnStart(ok); };
    read_tag_.fn = [this](bool ok) { OnRead(ok); };
    write_tag_.fn = [this](bool ok) { OnWrite(ok); };
    writes_done_tag_.fn = [this](bool) { Completed(); };
    finish_tag_.fn = [this](bool) {
      finished_ = true;
      if (!status_.ok() &&
          status_.error_code() != grpc::StatusCode::CANCELLED) {
        RecordStreamError(bench_, worker_->stats(), status_);
      }
      Completed();
    };
  }

  void Start() override {
    rw_ =
        bench_->shares(client_)->PrepareAsyncSession(&context_, worker_->cq());
    Issued();
    rw_->StartCall(&start_tag_);
  }

 private:
  struct Frame {
    int64_t sent_ns;
    int ops;
    int remaining;
    int failed;
  };

  void OnStart(bool ok) {
    if (!ok) {
      Finish();
      Completed();
      return;
    }
    Read();
    Pump();
    Completed();
  }
  void Read() {
    Issued();
    rw_->Read(&response_, &read_tag_);
  }
  void OnRead(bool ok) {
    if (!ok) {
      Finish();
      Completed();
      return;
    }
    Stats& s = worker_->stats();
    for (const tshare::v1::SessionResult& r : response_.results()) {
      if (frames_.empty()) {
        RecordStreamError(
            bench_, s,
            grpc::Status(grpc::StatusCode::INTERNAL, "result for no op"));
        break;
      }
      Frame& f = frames_.front();
      if (r.code() != 0) {
        ++f.failed;
        if (s.first_error.empty()) {
          s.first_error =
              absl::StrCat("session op code ", r.code(), ": ", r.message());
        }
      }
      --outstanding_ops_;
      if (--f.remaining == 0) {
        const int64_t now = NowNs();
        const uint64_t ok_ops = static_cast<uint64_t>(f.ops - f.failed);
        if (bench_->window().Contains(now)) {
          if (group_->writer()) {
            s.writes += ok_ops;
            s.write_errors += static_cast<uint64_t>(f.failed);
            if (ok_ops > 0)
              s.write_latency.Record(static_cast<uint64_t>(now - f.sent_ns),
                                     ok_ops);
          } else {
            s.ops += ok_ops;
            s.errors += static_cast<uint64_t>(f.failed);
            if (ok_ops > 0)
              s.latency.Record(static_cast<uint64_t>(now - f.sent_ns), ok_ops);
          }
        }
        if (!group_->writer()) {
          s.progress_ops.fetch_add(ok_ops, std::memory_order_relaxed);
          s.progress_errors.fetch_add(static_cast<uint64_t>(f.failed),
                                      std::memory_order_relaxed);
        }
        frames_.pop_front();
      }
    }
    Read();
    Pump();
    Completed();
  }
  void OnWrite(bool ok) {
    writing_ = false;
    if (!ok) broken_ = true;
    Pump();
    Completed();
  }
  // Sends the next frame if there is room, or half-closes once everything is
  // answered.
  void Pump() {
    if (writing_ || writes_done_ || broken_ || finishing_) return;
    const int room =
        max_ops_ > 0 ? std::min(batch_, max_ops_ - outstanding_ops_) : batch_;
    if (!group_->stopping() && !exhausted_ && room > 0 &&
        static_cast<int>(frames_.size()) < inflight_) {
      request_.clear_ops();
      const Config& cfg = bench_->config();
      for (int i = 0; i < room; ++i) {
        if (op_ == "publish") {
          tshare::v1::SessionOp* op = request_.add_ops();
          op->set_id(next_id_++);
          tshare::v1::PublishRequest* publish = op->mutable_publish();
          publish->set_topic(kPubsubTopic);
          publish->mutable_value()->set_bytes_value(
              StampedValue(NowNs(), cfg.value_bytes));
          continue;
        }
        uint64_t index = 0;
        if (!group_->PickKey(rng_, &index)) {
          exhausted_ = true;
          break;
        }
        tshare::v1::SessionOp* op = request_.add_ops();
        op->set_id(next_id_++);
        const std::string key = KeyName(group_->prefix(), index, cfg.key_bytes);
        const bool get =
            op_ == "get" || (op_ == "mixed" && rng_.Unit() < cfg.get_fraction);
        if (get) {
          op->mutable_get()->set_key(key);
        } else {
          tshare::v1::SetRequest* set = op->mutable_set();
          set->set_key(key);
          set->mutable_value()->set_bytes_value(bench_->filler());
        }
      }
      if (request_.ops_size() > 0) {
        frames_.push_back(
            Frame{NowNs(), request_.ops_size(), request_.ops_size(), 0});
        outstanding_ops_ += request_.ops_size();
        writing_ = true;
        Issued();
        rw_->Write(request_, &write_tag_);
        return;
      }
    }
    if (frames_.empty()) {
      writes_done_ = true;
      Issued();
      rw_->WritesDone(&writes_done_tag_);
    }
  }
  void Finish() {
    if (finishing_) return;
    finishing_ = true;
    Issued();
    rw_->Finish(&status_, &finish_tag_);
  }

  Bench* const bench_;
  Group* const group_;
  const int client_;
  Worker* const worker_;
  const int inflight_;
  const int batch_;
  const int max_ops_;
  const std::string op_;
  Rng rng_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<tshare::v1::SessionRequest,
                                                tshare::v1::SessionResponse>>
      rw_;
  tshare::v1::SessionRequest request_;
  tshare::v1::SessionResponse response_;
  std::deque<Frame> frames_;
  int outstanding_ops_ = 0;
  uint64_t next_id_ = 1;
  bool writing_ = false;
  bool writes_done_ = false;
  bool broken_ = false;
  bool exhausted_ = false;
  Tag start_tag_, read_tag_, write_tag_, writes_done_tag_, finish_tag_;
};

// A server-streaming call whose messages carry stamped deliveries (tshared
// Watch and Bus.Subscribe). It counts as ready (Bench::streams_ready) once the
// server sent its headers: tshared's Watch sends them as soon as the watch is
// registered.
template <typename Message>
class ReaderStream : public Stream {
 public:
  ReaderStream(Bench* bench, int client)
      : bench_(bench), worker_(bench->WorkerFor(client)) {
    start_tag_.fn = [this](bool ok) {
      if (ok) {
        Issued();
        reader_->ReadInitialMetadata(&metadata_tag_);
      } else {
        Finish();
      }
      Completed();
    };
    metadata_tag_.fn = [this](bool ok) {
      if (ok) {
        bench_->streams_ready.fetch_add(1);
        Read();
      } else {
        Finish();
      }
      Completed();
    };
    read_tag_.fn = [this](bool ok) {
      if (!ok) {
        Finish();
      } else {
        Process(message_);
        Read();
      }
      Completed();
    };
    finish_tag_.fn = [this](bool) {
      finished_ = true;
      RecordStreamError(bench_, worker_->stats(), status_);
      Completed();
    };
  }

 protected:
  void Go(std::unique_ptr<grpc::ClientAsyncReader<Message>> reader) {
    reader_ = std::move(reader);
    Issued();
    reader_->StartCall(&start_tag_);
  }
  virtual void Process(const Message& m) = 0;

  Bench* const bench_;
  Worker* const worker_;

 private:
  void Read() {
    Issued();
    reader_->Read(&message_, &read_tag_);
  }
  void Finish() {
    if (finishing_) return;
    finishing_ = true;
    Issued();
    reader_->Finish(&status_, &finish_tag_);
  }

  std::unique_ptr<grpc::ClientAsyncReader<Message>> reader_;
  Message message_;
  Tag start_tag_, metadata_tag_, read_tag_, finish_tag_;
};

class TshareWatchStream final : public ReaderStream<tshare::v1::WatchEvent> {
 public:
  TshareWatchStream(Bench* bench, int client, std::vector<std::string> keys)
      : ReaderStream(bench, client), client_(client) {
    for (std::string& k : keys) request_.add_keys(std::move(k));
  }
  void Start() override {
    Go(bench_->shares(client_)->PrepareAsyncWatch(&context_, request_,
                                                  worker_->cq()));
  }

 private:
  void Process(const tshare::v1::WatchEvent& ev) override {
    Stats& s = worker_->stats();
    if (ev.has_loss()) {
      s.conflated += ev.loss().conflated();
      s.dropped += ev.loss().dropped();
    }
    if (ev.kind() != tshare::v1::WatchEvent::CHANGES) return;
    for (const tshare::v1::Event& e : ev.events()) {
      RecordDelivery(bench_, s, StampOf(e.kv().value().bytes_value()));
    }
  }

  const int client_;
  tshare::v1::WatchRequest request_;
};

class TshareSubscribeStream final
    : public ReaderStream<tshare::v1::BusMessage> {
 public:
  TshareSubscribeStream(Bench* bench, int client)
      : ReaderStream(bench, client), client_(client) {
    request_.add_patterns(kPubsubTopic);
    request_.set_max_batch(bench->config().max_batch);
  }
  void Start() override {
    Go(bench_->bus(client_)->PrepareAsyncSubscribe(&context_, request_,
                                                   worker_->cq()));
  }

 private:
  void Process(const tshare::v1::BusMessage& m) override {
    Stats& s = worker_->stats();
    if (m.has_loss()) {
      s.conflated += m.loss().conflated();
      s.dropped += m.loss().dropped();
    }
    if (m.kind() == tshare::v1::BusMessage::MESSAGE) {
      RecordDelivery(bench_, s, StampOf(m.value().bytes_value()));
    } else if (m.kind() == tshare::v1::BusMessage::BATCH) {
      for (const tshare::v1::BusMessage& one : m.messages()) {
        RecordDelivery(bench_, s, StampOf(one.value().bytes_value()));
      }
    }
  }

  const int client_;
  tshare::v1::SubscribeRequest request_;
};

// etcd's Watch: one bidi stream carrying one create request per watched key.
class EtcdWatchStream final : public Stream {
 public:
  EtcdWatchStream(Bench* bench, int client, std::vector<std::string> keys)
      : bench_(bench),
        client_(client),
        worker_(bench->WorkerFor(client)),
        keys_(std::move(keys)) {
    start_tag_.fn = [this](bool ok) {
      if (ok) {
        Read();
        WriteNext();
      } else {
        Finish();
      }
      Completed();
    };
    write_tag_.fn = [this](bool ok) {
      if (ok) WriteNext();
      Completed();
    };
    read_tag_.fn = [this](bool ok) {
      if (!ok) {
        Finish();
      } else {
        Process();
        Read();
      }
      Completed();
    };
    finish_tag_.fn = [this](bool) {
      finished_ = true;
      RecordStreamError(bench_, worker_->stats(), status_);
      Completed();
    };
  }
  void Start() override {
    rw_ = bench_->watch(client_)->PrepareAsyncWatch(&context_, worker_->cq());
    Issued();
    rw_->StartCall(&start_tag_);
  }

 private:
  void WriteNext() {
    if (next_ >= keys_.size()) return;
    request_.mutable_create_request()->set_key(keys_[next_++]);
    Issued();
    rw_->Write(request_, &write_tag_);
  }
  void Read() {
    Issued();
    rw_->Read(&response_, &read_tag_);
  }
  void Process() {
    Stats& s = worker_->stats();
    if (response_.created()) {
      if (!first_) {
        first_ = true;
        bench_->streams_ready.fetch_add(1);
      }
      bench_->etcd_watches_created.fetch_add(1);
    }
    if (response_.canceled()) {
      RecordStreamError(bench_, s,
                        grpc::Status(grpc::StatusCode::ABORTED,
                                     absl::StrCat("etcd canceled a watch: ",
                                                  response_.cancel_reason())));
    }
    for (const mvccpb::Event& e : response_.events()) {
      RecordDelivery(bench_, s, StampOf(e.kv().value()));
    }
  }
  void Finish() {
    if (finishing_) return;
    finishing_ = true;
    Issued();
    rw_->Finish(&status_, &finish_tag_);
  }

  Bench* const bench_;
  const int client_;
  Worker* const worker_;
  const std::vector<std::string> keys_;
  size_t next_ = 0;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest,
                                                etcdserverpb::WatchResponse>>
      rw_;
  etcdserverpb::WatchRequest request_;
  etcdserverpb::WatchResponse response_;
  bool first_ = false;
  Tag start_tag_, write_tag_, read_tag_, finish_tag_;
};

// ---------------------------------------------------------------------------------------
// Redis pub/sub over RESP: one publisher connection with --inflight PUBLISHes
// pipelined (or
// --rate) on one thread; --subscribers connections in SUBSCRIBE read by
// --threads threads (epoll), as many as the load threads that read tshared's
// subscriber streams.

class RedisPubSub final {
 public:
  RedisPubSub(Bench* bench, std::string host, int port)
      : bench_(bench), host_(std::move(host)), port_(port) {}
  ~RedisPubSub() {
    stop_.store(true);
    if (publisher_.joinable()) publisher_.join();
    for (std::thread& t : subscribers_) t.join();
    for (int fd : sub_fds_) close(fd);
    if (pub_fd_ >= 0) close(pub_fd_);
  }
  RedisPubSub(const RedisPubSub&) = delete;
  RedisPubSub& operator=(const RedisPubSub&) = delete;

  // Connects the subscribers and waits for every SUBSCRIBE confirmation.
  absl::Status Subscribe(int subscribers) {
    const std::string cmd = RespCommand({"SUBSCRIBE", kChannel});
    for (int i = 0; i < subscribers; ++i) {
      absl::StatusOr<int> fd = TcpConnect(host_, port_);
      if (!fd.ok()) return fd.status();
      sub_fds_.push_back(*fd);
      parsers_.push_back(std::make_unique<RespParser>());
      if (!WriteAll(*fd, cmd))
        return absl::UnavailableError("redis: SUBSCRIBE write failed");
    }
    for (size_t i = 0; i < sub_fds_.size(); ++i) {
      RespValue v;
      bool confirmed = false;
      const int64_t until = NowNs() + 10'000'000'000;
      while (!confirmed && NowNs() < until) {
        while (parsers_[i]->Next(&v)) {
          if (v.type == RespValue::Type::kArray && !v.elements.empty() &&
              v.elements[0].str == "subscribe") {
            confirmed = true;
          }
        }
        if (confirmed) break;
        if (!parsers_[i]->error().empty())
          return absl::InternalError(parsers_[i]->error());
        char buf[4096];
        const ssize_t n = read(sub_fds_[i], buf, sizeof(buf));
        if (n <= 0)
          return absl::UnavailableError("redis: subscriber connection closed");
        parsers_[i]->Feed(absl::string_view(buf, static_cast<size_t>(n)));
      }
      if (!confirmed)
        return absl::DeadlineExceededError("redis: no SUBSCRIBE confirmation");
    }
    bench_->streams_ready.store(subscribers);
    return absl::OkStatus();
  }

  void StartSubscriberLoops(int threads) {
    threads =
        std::max(1, std::min<int>(threads, static_cast<int>(sub_fds_.size())));
    for (int t = 0; t < threads; ++t)
      sub_stats_.push_back(std::make_unique<Stats>());
    for (int t = 0; t < threads; ++t) {
      subscribers_.emplace_back(
          [this, t, threads] { SubscriberLoop(t, threads); });
    }
  }
  absl::Status StartPublisher() {
    absl::StatusOr<int> fd = TcpConnect(host_, port_);
    if (!fd.ok()) return fd.status();
    pub_fd_ = *fd;
    publisher_ = std::thread([this] { PublisherLoop(); });
    return absl::OkStatus();
  }
  // Stops publishing; returns once the publisher's outstanding replies arrived
  // (or 10 s).
  void StopPublisher() {
    pub_stop_.store(true);
    if (publisher_.joinable()) publisher_.join();
  }
  void StopSubscribers() {
    stop_.store(true);
    for (std::thread& t : subscribers_) t.join();
    subscribers_.clear();
  }
  Stats& publisher_stats() { return pub_stats_; }
  // Valid once the subscriber loops started.
  std::vector<std::unique_ptr<Stats>>& subscriber_stats() { return sub_stats_; }

 private:
  static constexpr const char* kChannel = kPubsubTopic;

  static bool WriteAll(int fd, absl::string_view data) {
    while (!data.empty()) {
      const ssize_t n = write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads the subscriber connections i with i % threads == t.
  void SubscriberLoop(int t, int threads) {
    Stats& stats = *sub_stats_[t];
    const int ep = epoll_create1(0);
    for (size_t i = t; i < sub_fds_.size(); i += threads) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep, EPOLL_CTL_ADD, sub_fds_[i], &ev);
    }
    std::vector<epoll_event> events(64);
    char buf[65536];
    RespValue v;
    while (!stop_.load(std::memory_order_relaxed)) {
      const int n =
          epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
      for (int e = 0; e < n; ++e) {
        const size_t i = events[e].data.u64;
        const ssize_t r = read(sub_fds_[i], buf, sizeof(buf));
        if (r <= 0) {
          epoll_ctl(ep, EPOLL_CTL_DEL, sub_fds_[i], nullptr);
          if (!stop_.load()) {
            RecordStreamError(
                bench_, stats,
                grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             "redis subscriber connection closed"));
          }
          continue;
        }
        parsers_[i]->Feed(absl::string_view(buf, static_cast<size_t>(r)));
        while (parsers_[i]->Next(&v)) {
          if (v.type == RespValue::Type::kArray && v.elements.size() == 3 &&
              v.elements[0].str == "message") {
            RecordDelivery(bench_, stats, StampOf(v.elements[2].str));
          }
        }
      }
    }
    close(ep);
  }

  void PublisherLoop() {
    const Config& cfg = bench_->config();
    RespParser parser;
    std::deque<int64_t>
        scheduled;  // of the PUBLISHes awaiting their reply, in order
    std::string out;
    char buf[65536];
    RespValue v;
    const double interval = cfg.rate > 0 ? 1e9 / cfg.rate : 0;
    const int64_t start = NowNs();
    uint64_t sent = 0;
    int64_t drain_until = INT64_MAX;
    while (true) {
      const bool stopping = pub_stop_.load(std::memory_order_relaxed);
      if (stopping && drain_until == INT64_MAX)
        drain_until = NowNs() + 10'000'000'000;
      if (stopping && (scheduled.empty() || NowNs() > drain_until)) break;
      int64_t now = NowNs();
      int timeout_ms = 100;
      if (!stopping) {
        if (interval > 0) {
          while (static_cast<int>(scheduled.size()) < cfg.max_outstanding) {
            const int64_t due =
                start +
                static_cast<int64_t>(static_cast<double>(sent) * interval);
            if (due > now) {
              timeout_ms = static_cast<int>(
                  std::max<int64_t>(0, (due - now) / 1'000'000));
              break;
            }
            absl::StrAppend(&out,
                            RespCommand({"PUBLISH", kChannel,
                                         StampedValue(now, cfg.value_bytes)}));
            scheduled.push_back(due);
            ++sent;
          }
        } else {
          while (static_cast<int>(scheduled.size()) < cfg.inflight) {
            absl::StrAppend(&out,
                            RespCommand({"PUBLISH", kChannel,
                                         StampedValue(now, cfg.value_bytes)}));
            scheduled.push_back(now);
          }
        }
      }
      if (!out.empty()) {
        if (!WriteAll(pub_fd_, out)) {
          RecordStreamError(bench_, pub_stats_,
                            grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                         "redis publish failed"));
          break;
        }
        out.clear();
      }
      pollfd p{pub_fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) continue;
      const ssize_t r = read(pub_fd_, buf, sizeof(buf));
      if (r <= 0) break;
      parser.Feed(absl::string_view(buf, static_cast<size_t>(r)));
      now = NowNs();
      while (parser.Next(&v)) {
        if (scheduled.empty()) break;
        const int64_t due = scheduled.front();
        scheduled.pop_front();
        if (!bench_->window().Contains(now)) continue;
        if (v.type == RespValue::Type::kInteger) {
          ++pub_stats_.writes;
          pub_stats_.write_latency.Record(static_cast<uint64_t>(now - due));
        } else {
          ++pub_stats_.write_errors;
          if (pub_stats_.first_error.empty()) pub_stats_.first_error = v.str;
        }
      }
    }
  }

  Bench* const bench_;
  const std::string host_;
  const int port_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pub_stop_{false};
  std::vector<int> sub_fds_;
  std::vector<std::unique_ptr<RespParser>> parsers_;
  int pub_fd_ = -1;
  std::thread publisher_;
  std::vector<std::thread> subscribers_;
  Stats pub_stats_;
  std::vector<std::unique_ptr<Stats>> sub_stats_;
};

// ---------------------------------------------------------------------------------------
// Running a scenario.

struct Result {
  Figures stats;
  double seconds = 0;
  double server_cpu_seconds = -1;
  // This process's CPU time over the same window: shows when the client, not
  // the server, is the bottleneck.
  double client_cpu_seconds = -1;
  int64_t server_rss_kb = -1;
  int idle_connected = -1;
  int streams_ready = -1;
  std::string not_applicable;
  std::string note;
};

std::unique_ptr<Op> MakeKvOp(Group* g, int client, KvMode mode) {
  if (g->bench()->config().backend == Backend::kEtcd) {
    return std::make_unique<EtcdKvOp>(g, client, mode);
  }
  return std::make_unique<TshareKvOp>(g, client, mode);
}

class Runner final {
 public:
  explicit Runner(Bench* bench) : bench_(bench), cfg_(bench->config()) {}

  absl::StatusOr<Result> Run() {
    Result result;
    if (cfg_.backend == Backend::kRedis && cfg_.scenario != Scenario::kPubsub) {
      result.not_applicable =
          "tshare-bench drives Redis for pubsub only; the other Redis figures "
          "come from "
          "redis-benchmark (bench/compare.sh)";
      return result;
    }
    if (cfg_.backend == Backend::kEtcd && cfg_.scenario == Scenario::kPubsub) {
      result.not_applicable =
          "etcd has no publish/subscribe; its closest equivalent is the watch "
          "scenario";
      return result;
    }
    if (cfg_.backend != Backend::kRedis &&
        !bench_->WaitConnected(absl::Seconds(10))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", cfg_.address));
    }
    switch (cfg_.scenario) {
      case Scenario::kLoad:
        return RunLoad();
      case Scenario::kWatch:
        return RunWatch();
      case Scenario::kPubsub:
        return cfg_.backend == Backend::kRedis ? RunRedisPubsub() : RunPubsub();
      default:
        return RunKv();
    }
  }

 private:
  // Puts keys 0..keys-1 of `prefix` once, as fast as the server takes them (not
  // measured).
  absl::Status Preload(const std::string& prefix, uint64_t keys) {
    const int64_t t0 = NowNs();
    if (cfg_.backend == Backend::kTshare) {
      Group g(bench_, nullptr, false, KeyMode::kSequential, prefix, keys);
      std::vector<std::unique_ptr<Stream>> streams;
      const int n = std::max(1, std::min(cfg_.clients, 8));
      for (int c = 0; c < n; ++c) {
        streams.push_back(
            std::make_unique<SessionStream>(bench_, &g, c, 4, 100, "put"));
      }
      for (auto& s : streams) s->Start();
      if (!WaitStreams(streams, absl::Minutes(10))) {
        CancelStreams(streams);
        return absl::DeadlineExceededError(
            "preload did not finish in 10 minutes");
      }
    } else {
      Group g(
          bench_, [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kSet); },
          false, KeyMode::kSequential, prefix, keys);
      g.StartClosed(std::max(1, std::min(cfg_.clients, 16)), 8);
      if (!g.WaitDone(absl::Minutes(10))) {
        return absl::DeadlineExceededError(
            "preload did not finish in 10 minutes");
      }
    }
    if (cfg_.progress) {
      std::fprintf(stderr,
                   "tshare-bench: preloaded %" PRIu64 " keys in %.1fs\n", keys,
                   static_cast<double>(NowNs() - t0) / 1e9);
    }
    return absl::OkStatus();
  }

  static bool WaitStreams(std::vector<std::unique_ptr<Stream>>& streams,
                          absl::Duration deadline) {
    const int64_t until = NowNs() + absl::ToInt64Nanoseconds(deadline);
    for (auto& s : streams) {
      while (!s->done() && NowNs() < until) SleepUntilNs(NowNs() + 1'000'000);
    }
    return std::all_of(streams.begin(), streams.end(),
                       [](auto& s) { return s->done(); });
  }
  // Cancels the streams and waits until gRPC has returned all their tags.
  static void CancelStreams(std::vector<std::unique_ptr<Stream>>& streams) {
    for (auto& s : streams) s->Cancel();
    WaitStreams(streams, absl::Seconds(30));
    // A stream gRPC still holds tags of must outlive them.
    for (auto& s : streams) {
      if (!s->done()) s.release();
    }
  }

  // Sets the window from now (after warmup), prints progress each second until
  // it ends, and samples the server's CPU time at both edges.
  void Measure(Result* result,
               const std::function<std::string()>& extra = nullptr) {
    Window& w = bench_->window();
    const int64_t t0 = NowNs();
    const int64_t begin = t0 + absl::ToInt64Nanoseconds(cfg_.warmup);
    const int64_t end = begin + absl::ToInt64Nanoseconds(cfg_.duration);
    w.begin.store(begin);
    w.end.store(end);
    double cpu0 = -1;
    double client_cpu0 = -1;
    bool sampled_begin = false;
    uint64_t last_ops = ProgressOps(), last_errors = ProgressErrors();
    int64_t last = t0;
    int64_t next_tick = t0 + 1'000'000'000;
    while (true) {
      int64_t wake = std::min(next_tick, end);
      if (!sampled_begin) wake = std::min(wake, begin);
      SleepUntilNs(wake);
      const int64_t now = NowNs();
      if (!sampled_begin && now >= begin) {
        cpu0 = ProcessCpuSeconds(cfg_.server_pid);
        client_cpu0 = ProcessCpuSeconds(getpid());
        sampled_begin = true;
      }
      if (now >= end) break;
      if (now >= next_tick) {
        const uint64_t ops = ProgressOps(), errors = ProgressErrors();
        const double dt = static_cast<double>(now - last) / 1e9;
        if (cfg_.progress) {
          std::fprintf(
              stderr,
              "tshare-bench: %s %5.1fs %s %10.0f %s/s  errors %" PRIu64 "%s\n",
              cfg_.scenario_name.c_str(), static_cast<double>(now - t0) / 1e9,
              now < begin ? "warmup " : "measure",
              static_cast<double>(ops - last_ops) / dt, UnitName(),
              errors - last_errors, extra ? extra().c_str() : "");
        }
        last_ops = ops;
        last_errors = errors;
        last = now;
        next_tick += 1'000'000'000;
      }
    }
    const double cpu1 = ProcessCpuSeconds(cfg_.server_pid);
    if (cpu0 >= 0 && cpu1 >= 0) result->server_cpu_seconds = cpu1 - cpu0;
    const double client_cpu1 = ProcessCpuSeconds(getpid());
    if (client_cpu0 >= 0 && client_cpu1 >= 0) {
      result->client_cpu_seconds = client_cpu1 - client_cpu0;
    }
    result->server_rss_kb = ProcessRssKb(cfg_.server_pid);
    result->seconds = static_cast<double>(end - begin) / 1e9;
  }

  const char* UnitName() const {
    switch (cfg_.scenario) {
      case Scenario::kWatch:
        return "events";
      case Scenario::kPubsub:
        return "deliveries";
      default:
        return "ops";
    }
  }
  uint64_t ProgressOps() {
    uint64_t n = 0;
    for (auto& w : bench_->workers())
      n += w->stats().progress_ops.load(std::memory_order_relaxed);
    if (redis_ != nullptr) {
      for (auto& s : redis_->subscriber_stats()) {
        n += s->progress_ops.load(std::memory_order_relaxed);
      }
    }
    return n;
  }
  uint64_t ProgressErrors() {
    uint64_t n = 0;
    for (auto& w : bench_->workers()) {
      n += w->stats().progress_errors.load(std::memory_order_relaxed);
    }
    return n;
  }
  void Collect(Result* result) {
    for (auto& w : bench_->workers()) result->stats.Merge(w->stats());
  }

  Group::Factory KvFactory() {
    const bool etcd = cfg_.backend == Backend::kEtcd;
    switch (cfg_.scenario) {
      case Scenario::kPut:
        return [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kSet); };
      case Scenario::kGet:
      case Scenario::kIdle:
        return [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kGet); };
      case Scenario::kMixed:
        return [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kMixed); };
      case Scenario::kAdd:
        if (etcd) {
          return [](Group* g, int c) -> std::unique_ptr<Op> {
            return std::make_unique<EtcdAddLoopOp>(g, c);
          };
        }
        return [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kAdd); };
      case Scenario::kCas:
        if (etcd) {
          return [](Group* g, int c) -> std::unique_ptr<Op> {
            return std::make_unique<EtcdAddLoopOp>(g, c);
          };
        }
        return [](Group* g, int c) -> std::unique_ptr<Op> {
          return std::make_unique<TshareCasOp>(g, c);
        };
      case Scenario::kSession:
        return [](Group* g, int c) -> std::unique_ptr<Op> {
          return std::make_unique<EtcdTxnBatchOp>(g, c);
        };
      default:
        return nullptr;
    }
  }

  // put, get, add, cas, mixed, session, idle-conns.
  absl::StatusOr<Result> RunKv() {
    Result result;
    const bool needs_preload =
        cfg_.scenario == Scenario::kGet || cfg_.scenario == Scenario::kMixed ||
        cfg_.scenario == Scenario::kIdle ||
        (cfg_.scenario == Scenario::kSession && cfg_.session_op != "put");
    if (needs_preload && cfg_.preload) {
      if (absl::Status s = Preload(cfg_.key_prefix, cfg_.keys); !s.ok())
        return s;
    }
    std::vector<std::shared_ptr<grpc::Channel>> idle;
    if (cfg_.scenario == Scenario::kIdle) {
      result.idle_connected = OpenIdle(&idle);
    }
    // add/cas on one key: a key space of one.
    const uint64_t keys = (cfg_.hot && (cfg_.scenario == Scenario::kAdd ||
                                        cfg_.scenario == Scenario::kCas))
                              ? 1
                              : cfg_.keys;
    const std::string prefix = keys == 1 && cfg_.hot
                                   ? absl::StrCat(cfg_.key_prefix, "hot:")
                                   : cfg_.key_prefix;

    if (cfg_.scenario == Scenario::kSession &&
        cfg_.backend == Backend::kTshare) {
      Group g(bench_, nullptr, false, KeyMode::kUniform, prefix, keys);
      std::vector<std::unique_ptr<Stream>> streams;
      for (int c = 0; c < cfg_.clients; ++c) {
        streams.push_back(std::make_unique<SessionStream>(
            bench_, &g, c, cfg_.inflight, cfg_.batch, cfg_.session_op));
      }
      for (auto& s : streams) s->Start();
      Measure(&result);
      g.StopAndDrain(absl::ZeroDuration());
      if (!WaitStreams(streams, cfg_.timeout)) CancelStreams(streams);
      Collect(&result);
      return result;
    }
    if (cfg_.scenario == Scenario::kSession) {
      result.note = absl::StrCat(
          "etcd has no pipelined stream: each frame is one Txn of ", cfg_.batch,
          " ops (atomic, all through one raft entry when it writes)");
    }
    Group g(bench_, KvFactory(), false, KeyMode::kUniform, prefix, keys);
    if (cfg_.rate > 0) {
      g.StartOpen(cfg_.rate, cfg_.clients, cfg_.max_outstanding);
    } else {
      g.StartClosed(cfg_.clients, cfg_.inflight);
    }
    Measure(&result);
    if (!g.StopAndDrain(cfg_.timeout + absl::Seconds(5))) {
      return absl::DeadlineExceededError(
          "calls still in flight after the run; not reporting");
    }
    Collect(&result);
    return result;
  }

  int OpenIdle(std::vector<std::shared_ptr<grpc::Channel>>* idle) {
    for (int i = 0; i < cfg_.idle_conns; ++i) {
      idle->push_back(bench_->NewChannel("tshare_bench.idle", i));
      idle->back()->GetState(/*try_to_connect=*/true);
    }
    const auto until =
        std::chrono::system_clock::now() + std::chrono::seconds(60);
    int connected = 0;
    for (auto& c : *idle) connected += c->WaitForConnected(until) ? 1 : 0;
    if (cfg_.progress) {
      std::fprintf(stderr, "tshare-bench: %d of %d idle connections open\n",
                   connected, cfg_.idle_conns);
    }
    return connected;
  }

  // load: keys 0..keys-1 once; the window is the whole load.
  absl::StatusOr<Result> RunLoad() {
    Result result;
    Window& w = bench_->window();
    const int64_t t0 = NowNs();
    w.begin.store(t0);
    const double cpu0 = ProcessCpuSeconds(cfg_.server_pid);
    if (cfg_.backend == Backend::kTshare) {
      Group g(bench_, nullptr, false, KeyMode::kSequential, cfg_.key_prefix,
              cfg_.keys);
      std::vector<std::unique_ptr<Stream>> streams;
      for (int c = 0; c < cfg_.clients; ++c) {
        streams.push_back(std::make_unique<SessionStream>(
            bench_, &g, c, cfg_.inflight, cfg_.batch, "put"));
      }
      for (auto& s : streams) s->Start();
      if (!WaitStreams(streams, absl::Minutes(30))) {
        CancelStreams(streams);
        return absl::DeadlineExceededError("load did not finish in 30 minutes");
      }
    } else {
      Group g(
          bench_, [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kSet); },
          false, KeyMode::kSequential, cfg_.key_prefix, cfg_.keys);
      g.StartClosed(cfg_.clients, cfg_.inflight);
      if (!g.WaitDone(absl::Minutes(30))) {
        return absl::DeadlineExceededError("load did not finish in 30 minutes");
      }
    }
    const int64_t t1 = NowNs();
    const double cpu1 = ProcessCpuSeconds(cfg_.server_pid);
    if (cpu0 >= 0 && cpu1 >= 0) result.server_cpu_seconds = cpu1 - cpu0;
    result.seconds = static_cast<double>(t1 - t0) / 1e9;
    result.server_rss_kb = ProcessRssKb(cfg_.server_pid);
    Collect(&result);
    return result;
  }

  // The keys of stream s: watchers/streams consecutive keys (mod watch_keys)
  // starting where the previous stream's ended, so every key gets about
  // watchers/watch_keys watches.
  std::vector<std::vector<std::string>> WatchKeys() const {
    std::vector<std::vector<std::string>> out(cfg_.streams);
    uint64_t next = 0;
    for (int s = 0; s < cfg_.streams; ++s) {
      const int n = cfg_.watchers / cfg_.streams +
                    (s < cfg_.watchers % cfg_.streams ? 1 : 0);
      for (int i = 0; i < n; ++i) {
        out[s].push_back(
            KeyName(cfg_.key_prefix, next % cfg_.watch_keys, cfg_.key_bytes));
        ++next;
      }
    }
    return out;
  }

  absl::StatusOr<Result> RunWatch() {
    Result result;
    std::vector<std::unique_ptr<Stream>> streams;
    std::vector<std::vector<std::string>> keys = WatchKeys();
    for (int s = 0; s < cfg_.streams; ++s) {
      if (cfg_.backend == Backend::kEtcd) {
        streams.push_back(
            std::make_unique<EtcdWatchStream>(bench_, s, std::move(keys[s])));
      } else {
        streams.push_back(
            std::make_unique<TshareWatchStream>(bench_, s, std::move(keys[s])));
      }
    }
    for (auto& s : streams) s->Start();
    if (cfg_.backend == Backend::kTshare) {
      // tshared sends a watch's headers once it is registered; start writing
      // when all are (or after 10 s: then the warmup covers the rest, and the
      // report says so).
      const int64_t until = NowNs() + 10'000'000'000;
      while (bench_->streams_ready.load() < cfg_.streams && NowNs() < until) {
        SleepUntilNs(NowNs() + 1'000'000);
      }
    }
    if (cfg_.backend == Backend::kEtcd) {
      // etcd acknowledges each watch; start writing once all are in place.
      const int64_t until = NowNs() + 60'000'000'000;
      while (bench_->etcd_watches_created.load() < cfg_.watchers &&
             NowNs() < until) {
        SleepUntilNs(NowNs() + 1'000'000);
      }
      if (bench_->etcd_watches_created.load() < cfg_.watchers) {
        CancelStreams(streams);
        return absl::DeadlineExceededError(
            absl::StrCat("etcd created ", bench_->etcd_watches_created.load(),
                         " of ", cfg_.watchers, " watches in 60 s"));
      }
    }
    Group writers(
        bench_,
        [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kStampedSet); },
        /*writer=*/true, KeyMode::kUniform, cfg_.key_prefix, cfg_.watch_keys);
    if (cfg_.rate > 0) {
      writers.StartOpen(cfg_.rate, cfg_.writers, cfg_.max_outstanding);
    } else {
      writers.StartClosed(cfg_.writers, cfg_.inflight);
    }
    Measure(&result);
    writers.StopAndDrain(cfg_.timeout + absl::Seconds(5));
    // Deliveries of the last writes still count if they land inside the window;
    // the window is over, so the streams can go.
    CancelStreams(streams);
    result.streams_ready = bench_->streams_ready.load();
    Collect(&result);
    if (result.streams_ready < cfg_.streams) {
      result.note = absl::StrCat(
          cfg_.streams - result.streams_ready, " of ", cfg_.streams,
          " watch streams were not confirmed before the writes began");
    }
    return result;
  }

  absl::StatusOr<Result> RunPubsub() {
    Result result;
    std::vector<std::unique_ptr<Stream>> streams;
    for (int s = 0; s < cfg_.subscribers; ++s) {
      streams.push_back(std::make_unique<TshareSubscribeStream>(bench_, s));
    }
    for (auto& s : streams) s->Start();
    Group publisher(
        bench_,
        [](Group* g, int c) { return MakeKvOp(g, c, KvMode::kPublish); },
        /*writer=*/true, KeyMode::kUniform, cfg_.key_prefix, 1);
    if (cfg_.publish_via == "session" && cfg_.rate <= 0) {
      // One stream after the subscribers (its own load thread when there are
      // enough), --inflight publishes unanswered.
      auto session = std::make_unique<SessionStream>(
          bench_, &publisher, cfg_.subscribers, /*inflight=*/cfg_.inflight,
          /*batch=*/cfg_.inflight, "publish", /*max_ops=*/cfg_.inflight);
      SessionStream* publisher_stream = session.get();
      streams.push_back(std::move(session));
      publisher_stream->Start();
    } else if (cfg_.rate > 0) {
      publisher.StartOpen(cfg_.rate, 1, cfg_.max_outstanding);
    } else {
      publisher.StartClosed(1, cfg_.inflight);
    }
    Measure(&result);
    publisher.StopAndDrain(cfg_.timeout + absl::Seconds(5));
    CancelStreams(streams);
    result.streams_ready = bench_->streams_ready.load();
    Collect(&result);
    return result;
  }

  absl::StatusOr<Result> RunRedisPubsub() {
    Result result;
    const size_t colon = cfg_.address.rfind(':');
    int port = 0;
    if (!absl::SimpleAtoi(cfg_.address.substr(colon + 1), &port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad port in ", cfg_.address));
    }
    RedisPubSub redis(bench_, cfg_.address.substr(0, colon), port);
    redis_ = &redis;
    if (absl::Status s = redis.Subscribe(cfg_.subscribers); !s.ok()) {
      redis_ = nullptr;
      return s;
    }
    redis.StartSubscriberLoops(cfg_.threads);
    if (absl::Status s = redis.StartPublisher(); !s.ok()) {
      redis_ = nullptr;
      return s;
    }
    Measure(&result);
    redis.StopPublisher();
    redis.StopSubscribers();
    redis_ = nullptr;
    result.streams_ready = bench_->streams_ready.load();
    result.stats.Merge(redis.publisher_stats());
    for (auto& s : redis.subscriber_stats()) result.stats.Merge(*s);
    return result;
  }

  Bench* const bench_;
  const Config& cfg_;
  RedisPubSub* redis_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Reporting.

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

nlohmann::json ToJson(const Config& c, const Result& r) {
  nlohmann::json j;
  j["scenario"] = c.scenario_name;
  if (!c.label.empty()) j["label"] = c.label;
  j["target"] = c.address;
  j["backend"] = BackendName(c.backend);
  if (!r.not_applicable.empty()) {
    j["not_applicable"] = r.not_applicable;
    return j;
  }
  const Figures& s = r.stats;
  const bool streaming =
      c.scenario == Scenario::kWatch || c.scenario == Scenario::kPubsub;
  j["clients"] =
      streaming ? (c.scenario == Scenario::kWatch ? c.writers : 1) : c.clients;
  j["conns"] = c.conns;
  j["inflight"] = c.inflight;
  j["threads"] = c.threads;
  j["keys"] = c.keys;
  j["key_bytes"] = c.key_bytes;
  j["value_bytes"] = c.value_bytes;
  j["rate"] = c.rate;
  if (c.scenario == Scenario::kSession || c.scenario == Scenario::kLoad)
    j["batch"] = c.batch;
  if (c.scenario == Scenario::kSession) j["session_op"] = c.session_op;
  if (c.scenario == Scenario::kPubsub && c.backend == Backend::kTshare) {
    j["publish_via"] = c.publish_via;
    j["max_batch"] = c.max_batch;
  }
  if (c.scenario == Scenario::kAdd || c.scenario == Scenario::kCas)
    j["hot"] = c.hot;
  j["duration_s"] = r.seconds;
  j["ops"] = s.ops;
  j["ops_per_sec"] = r.seconds > 0 ? static_cast<double>(s.ops) / r.seconds : 0;
  j["errors"] = s.errors + s.write_errors;
  j["retries"] = s.retries;
  j["p50_us"] = Us(s.latency.Percentile(50));
  j["p90_us"] = Us(s.latency.Percentile(90));
  j["p99_us"] = Us(s.latency.Percentile(99));
  j["p999_us"] = Us(s.latency.Percentile(99.9));
  j["max_us"] = Us(s.latency.max());
  j["mean_us"] = s.latency.mean() / 1000.0;
  if (streaming) {
    j["writes"] = s.writes;
    j["writes_per_sec"] =
        r.seconds > 0 ? static_cast<double>(s.writes) / r.seconds : 0;
    j["write_p50_us"] = Us(s.write_latency.Percentile(50));
    j["write_p99_us"] = Us(s.write_latency.Percentile(99));
    j["conflated"] = s.conflated;
    j["dropped"] = s.dropped;
    j["streams_ready"] = r.streams_ready;
    if (c.scenario == Scenario::kWatch) {
      j["watchers"] = c.watchers;
      j["streams"] = c.streams;
      j["watch_keys"] = c.watch_keys;
      j["events_per_sec"] = j["ops_per_sec"];
    } else {
      j["subscribers"] = c.subscribers;
      j["deliveries_per_sec"] = j["ops_per_sec"];
    }
  }
  if (c.scenario == Scenario::kIdle) {
    j["idle_conns"] = c.idle_conns;
    j["idle_connected"] = r.idle_connected;
  }
  if (r.server_cpu_seconds >= 0) {
    j["server_cpu_s"] = r.server_cpu_seconds;
    j["ops_per_server_cpu_s"] =
        r.server_cpu_seconds > 0
            ? static_cast<double>(s.ops) / r.server_cpu_seconds
            : 0;
  }
  if (r.client_cpu_seconds >= 0) j["client_cpu_s"] = r.client_cpu_seconds;
  if (r.server_rss_kb >= 0) j["server_rss_kb"] = r.server_rss_kb;
  if (!s.first_error.empty()) j["first_error"] = s.first_error;
  if (!r.note.empty()) j["note"] = r.note;
  return j;
}

void PrintText(const Config& c, const Result& r) {
  std::printf("scenario  %s   target %s (%s)\n", c.scenario_name.c_str(),
              c.address.c_str(), BackendName(c.backend));
  if (!r.not_applicable.empty()) {
    std::printf("not applicable: %s\n", r.not_applicable.c_str());
    return;
  }
  const Figures& s = r.stats;
  const double secs = r.seconds > 0 ? r.seconds : 1;
  const bool streaming =
      c.scenario == Scenario::kWatch || c.scenario == Scenario::kPubsub;
  if (streaming) {
    std::printf(
        "shape     %s, %d threads\n",
        c.scenario == Scenario::kWatch
            ? absl::StrFormat("%d writers, %d watches of %" PRIu64
                              " keys over %d streams",
                              c.writers, c.watchers, c.watch_keys, c.streams)
                  .c_str()
            : absl::StrFormat("1 publisher, %d subscribers", c.subscribers)
                  .c_str(),
        c.threads);
  } else {
    std::printf(
        "shape     %d clients x %d in flight over %d connections, %d "
        "threads%s\n",
        c.clients, c.inflight, c.conns, c.threads,
        c.rate > 0 ? absl::StrFormat(", open loop at %.0f/s", c.rate).c_str()
                   : "");
  }
  const char* unit = c.scenario == Scenario::kWatch    ? "events"
                     : c.scenario == Scenario::kPubsub ? "deliveries"
                                                       : "ops";
  std::printf("%-9s %.0f/s  (%" PRIu64 " in %.2fs)   errors %" PRIu64
              "   retries %" PRIu64 "\n",
              unit, static_cast<double>(s.ops) / secs, s.ops, r.seconds,
              s.errors + s.write_errors, s.retries);
  std::printf(
      "latency   p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max "
      "%.1f us\n",
      Us(s.latency.Percentile(50)), Us(s.latency.Percentile(90)),
      Us(s.latency.Percentile(99)), Us(s.latency.Percentile(99.9)),
      Us(s.latency.max()));
  if (streaming) {
    std::printf(
        "writes    %.0f/s  p50 %.1f us  p99 %.1f us   conflated %" PRIu64
        "  dropped %" PRIu64 "\n",
        static_cast<double>(s.writes) / secs,
        Us(s.write_latency.Percentile(50)), Us(s.write_latency.Percentile(99)),
        s.conflated, s.dropped);
  }
  if (r.server_cpu_seconds >= 0) {
    std::printf(
        "server    %.2f CPU s (%.0f%% of one core)   %.0f %s per server "
        "CPU-second\n",
        r.server_cpu_seconds, 100 * r.server_cpu_seconds / secs,
        r.server_cpu_seconds > 0
            ? static_cast<double>(s.ops) / r.server_cpu_seconds
            : 0,
        unit);
  }
  if (r.server_rss_kb >= 0)
    std::printf("server    RSS %" PRId64 " KiB\n", r.server_rss_kb);
  if (r.client_cpu_seconds >= 0) {
    std::printf("client    %.2f CPU s (%.0f%% of one core)\n",
                r.client_cpu_seconds, 100 * r.client_cpu_seconds / secs);
  }
  if (r.idle_connected >= 0) {
    std::printf("idle      %d of %d connections open\n", r.idle_connected,
                c.idle_conns);
  }
  if (!s.first_error.empty())
    std::printf("first error: %s\n", s.first_error.c_str());
  if (!r.note.empty()) std::printf("note: %s\n", r.note.c_str());
}

}  // namespace
}  // namespace tshare::bench

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Debian's Abseil is built without NDEBUG, so absl::Mutex (which gRPC uses)
  // would run its deadlock detector on every lock, making the client slower
  // than it needs to be.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  absl::SetProgramUsageMessage(
      "load generator for tshared, etcd and Redis.\n"
      "Usage: tshare-bench SCENARIO --target=HOST:PORT [options]\n"
      "SCENARIO: put, get, add, cas, mixed, session, watch, pubsub, "
      "idle-conns, load.\n"
      "--target=etcd://HOST:PORT drives etcd's KV/Watch API; redis://HOST:PORT "
      "Redis pub/sub.\n"
      "Flags may be spelled with dashes or underscores (--key-bytes = "
      "--key_bytes).");
  absl::FlagsUsageConfig usage_config;
  // --help lists this file's flags (absl matches the binary's name, spelled
  // with a dash).
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "tshare_bench");
  };
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<std::string> store;
  std::vector<char*> args =
      tshare::bench::UnderscoreFlagNames(argc, argv, &store);
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (positional.size() != 2) {
    std::fprintf(stderr,
                 "tshare-bench: give one SCENARIO (put, get, add, cas, mixed, "
                 "session, watch, "
                 "pubsub, idle-conns, load); see --help\n");
    return 2;
  }
  absl::StatusOr<tshare::bench::Config> config =
      tshare::bench::ConfigFromFlags(positional[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "tshare-bench: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  tshare::bench::RaiseFileLimit();
  absl::StatusOr<tshare::bench::Result> result;
  {
    tshare::bench::Bench bench(*config);
    tshare::bench::Runner runner(&bench);
    result = runner.Run();
  }
  if (!result.ok()) {
    std::fprintf(stderr, "tshare-bench: %s\n",
                 std::string(result.status().message()).c_str());
    return 1;
  }
  if (config->json) {
    std::printf("%s\n", tshare::bench::ToJson(*config, *result).dump().c_str());
  } else {
    tshare::bench::PrintText(*config, *result);
  }
  return 0;
}
