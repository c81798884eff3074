// Micro-benchmarks of tshare::core, each beside the baseline it is judged
// against.
//
//   cmake -S . -B build-perf -G Ninja -DCMAKE_BUILD_TYPE=Release \
//       -DTSHARE_CORE_ONLY=ON
//   cmake --build build-perf --target core_bench
//   build-perf/bench/core_bench --benchmark_repetitions=5 \
//       --benchmark_report_aggregates_only=true \
//       [--mutex_deadlock_detection=false]
//
// Targets on a 2-core machine (docs/benchmarks.md has the figures): Share and
// AtomicShare within 1.5x of their baselines; the ThreadPool at least as fast
// as a plain pool of the same thread count despite priorities and statistics.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "benchmark/benchmark.h"
#include "core/atomic_share.h"
#include "core/message_bus.h"
#include "core/share.h"
#include "core/thread_pool.h"

namespace tshare::core {
namespace {

// ---------------------------------------------------------------------------
// Share<int64_t> vs absl::Mutex + int64_t.

struct MutexInt {
  absl::Mutex mu;
  int64_t value ABSL_GUARDED_BY(mu) = 0;
};

void BM_Baseline_MutexInt_Get(benchmark::State& state) {
  static MutexInt m;
  for (auto _ : state) {
    int64_t v;
    {
      absl::ReaderMutexLock l(&m.mu);
      v = m.value;
    }
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_Baseline_MutexInt_Get)->Threads(1)->Threads(2);

void BM_Share_Get(benchmark::State& state) {
  static Share<int64_t> share(0);
  for (auto _ : state) benchmark::DoNotOptimize(share.Get());
}
BENCHMARK(BM_Share_Get)->Threads(1)->Threads(2);

void BM_Baseline_MutexInt_Set(benchmark::State& state) {
  static MutexInt m;
  int64_t i = 0;
  for (auto _ : state) {
    absl::MutexLock l(&m.mu);
    m.value = ++i;
  }
}
BENCHMARK(BM_Baseline_MutexInt_Set)->Threads(1)->Threads(2);

void BM_Share_Set(benchmark::State& state) {
  static Share<int64_t> share(0);
  int64_t i = 0;
  for (auto _ : state) share.Set(++i);
}
BENCHMARK(BM_Share_Set)->Threads(1)->Threads(2);

void BM_Baseline_MutexInt_Update(benchmark::State& state) {
  static MutexInt m;
  for (auto _ : state) {
    absl::MutexLock l(&m.mu);
    ++m.value;
  }
}
BENCHMARK(BM_Baseline_MutexInt_Update)->Threads(1)->Threads(2);

void BM_Share_Update(benchmark::State& state) {
  static Share<int64_t> share(0);
  for (auto _ : state) share.Update([](int64_t& v) { ++v; });
}
BENCHMARK(BM_Share_Update)->Threads(1)->Threads(2);

// ---------------------------------------------------------------------------
// AtomicShare<int64_t> vs std::atomic<int64_t>.

void BM_Baseline_StdAtomic_FetchAdd(benchmark::State& state) {
  static std::atomic<int64_t> value{0};
  for (auto _ : state) benchmark::DoNotOptimize(value.fetch_add(1) + 1);
}
BENCHMARK(BM_Baseline_StdAtomic_FetchAdd)->Threads(1)->Threads(2);

void BM_AtomicShare_Add(benchmark::State& state) {
  static AtomicShare<int64_t> share(0);
  for (auto _ : state) benchmark::DoNotOptimize(share.Add(1));
}
BENCHMARK(BM_AtomicShare_Add)->Threads(1)->Threads(2);

void BM_Baseline_StdAtomic_CasLoop(benchmark::State& state) {
  static std::atomic<int64_t> value{0};
  for (auto _ : state) {
    int64_t old = value.load();
    while (!value.compare_exchange_weak(old, old + 1)) {
    }
    benchmark::DoNotOptimize(old);
  }
}
BENCHMARK(BM_Baseline_StdAtomic_CasLoop)->Threads(1)->Threads(2);

void BM_AtomicShare_Update(benchmark::State& state) {
  static AtomicShare<int64_t> share(0);
  for (auto _ : state) {
    benchmark::DoNotOptimize(share.Update([](int64_t v) { return v + 1; }));
  }
}
BENCHMARK(BM_AtomicShare_Update)->Threads(1)->Threads(2);

// ---------------------------------------------------------------------------
// AtomicShare<std::string> (copy-on-write), 2 threads, judged against
// copy-on-write written by hand (below) and shown beside absl::Mutex +
// std::string updated in place, all applying the same update function: it
// takes the value by value and returns the new one, as Update's callers write
// it. (The mutex baseline runs it under its lock; AtomicShare runs it outside
// any lock, on a snapshot, and installs the result unless another update landed
// first.)

std::string NextString(std::string v) {
  v[0] = static_cast<char>('a' + (v[0] + 1) % 26);
  return v;
}

struct MutexString {
  absl::Mutex mu;
  std::string value ABSL_GUARDED_BY(mu) = std::string(32, 'x');
};

void BM_Baseline_MutexString_Update(benchmark::State& state) {
  static MutexString m;
  for (auto _ : state) {
    absl::MutexLock l(&m.mu);
    m.value = NextString(m.value);
  }
}
BENCHMARK(BM_Baseline_MutexString_Update)->Threads(2);

void BM_AtomicShare_String_Update(benchmark::State& state) {
  static AtomicShare<std::string> share(std::string(32, 'x'));
  for (auto _ : state) {
    benchmark::DoNotOptimize(share.Update(&NextString));
  }
}
BENCHMARK(BM_AtomicShare_String_Update)->Threads(2);

// Copy-on-write written by hand, the simplest way: readers copy the pointer
// under the mutex and read with no lock held, as AtomicShare's readers do; the
// writer builds the new object with the mutex held (so f runs under the lock,
// which AtomicShare never does) and returns a copy of it, as Update does.
struct MutexCowString {
  absl::Mutex mu;
  std::shared_ptr<const std::string> value ABSL_GUARDED_BY(mu) =
      std::make_shared<const std::string>(32, 'x');
};

void BM_Baseline_CowString_Update(benchmark::State& state) {
  static MutexCowString m;
  for (auto _ : state) {
    std::shared_ptr<const std::string> next;
    {
      absl::MutexLock l(&m.mu);
      next = std::make_shared<const std::string>(NextString(*m.value));
      m.value = next;
    }
    std::string result = *next;
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_Baseline_CowString_Update)->Threads(2);

// ---------------------------------------------------------------------------
// ThreadPool vs a plain mutex + condition variable + deque pool with the same
// number of threads: submit `kTasks` empty tasks and wait until all have run.

constexpr int kTasks = 10000;

// CPU time used by the whole process (every thread) so far, in nanoseconds.
int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Reports, as counter "cpu_ns_per_item", the CPU time that all threads of the
// process (submitter, workers, anything else running) used per item between
// construction and Finish(). On a machine shared with other work, wall-clock
// time depends on how much of the CPU the process gets; this does not.
class ProcessCpuPerItem final {
 public:
  explicit ProcessCpuPerItem(benchmark::State& state)
      : state_(state), start_(ProcessCpuNanos()) {}
  void Finish(int64_t items) {
    state_.counters["cpu_ns_per_item"] =
        benchmark::Counter(static_cast<double>(ProcessCpuNanos() - start_) /
                           static_cast<double>(std::max<int64_t>(items, 1)));
  }

 private:
  benchmark::State& state_;
  const int64_t start_;
};

class PlainPool {
 public:
  explicit PlainPool(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { Loop(); });
    }
  }
  ~PlainPool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Execute(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> l(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return done_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool done_ = false;
  std::vector<std::thread> threads_;
};

void BM_Baseline_PlainPool_EmptyTasks(benchmark::State& state) {
  PlainPool pool(static_cast<int>(state.range(0)));
  ProcessCpuPerItem cpu(state);
  for (auto _ : state) {
    absl::BlockingCounter done(kTasks);
    for (int i = 0; i < kTasks; ++i)
      pool.Execute([&done] { done.DecrementCount(); });
    done.Wait();
  }
  cpu.Finish(state.iterations() * kTasks);
  state.SetItemsProcessed(state.iterations() * kTasks);
}
BENCHMARK(BM_Baseline_PlainPool_EmptyTasks)->Arg(1)->Arg(2)->UseRealTime();

void BM_ThreadPool_EmptyTasks(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(ThreadPoolOptions{.name = "bench",
                                    .min_threads = threads,
                                    .max_threads = threads,
                                    .max_queue = 2 * kTasks});
  ProcessCpuPerItem cpu(state);
  for (auto _ : state) {
    absl::BlockingCounter done(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      if (!pool.Execute([&done] { done.DecrementCount(); }).ok()) {
        state.SkipWithError("Execute refused a task");
        return;
      }
    }
    done.Wait();
  }
  cpu.Finish(state.iterations() * kTasks);
  state.SetItemsProcessed(state.iterations() * kTasks);
}
BENCHMARK(BM_ThreadPool_EmptyTasks)->Arg(1)->Arg(2)->UseRealTime();

// ---------------------------------------------------------------------------
// MessageBus: one publish to one subscriber, timed until the handler has run
// (latency), and a burst of kTasks publishes until all are delivered
// (throughput).

struct DeliveryCounts {
  int64_t sent = 0;
  int64_t delivered = 0;
};

bool AllDelivered(DeliveryCounts* c) { return c->delivered >= c->sent; }

void RunBusBenchmark(benchmark::State& state, int batch) {
  ThreadPool pool(
      ThreadPoolOptions{.name = "bench", .min_threads = 1, .max_threads = 2});
  MessageBus bus(&pool);
  absl::Mutex mu;
  DeliveryCounts counts;
  auto sub = bus.Subscribe(
      "bench.topic",
      [&](const Message&) {
        absl::MutexLock l(&mu);
        ++counts.delivered;
      },
      SubscribeOptions{.max_queue = static_cast<size_t>(2 * batch)});
  if (!sub.ok()) {
    state.SkipWithError("Subscribe failed");
    return;
  }
  ProcessCpuPerItem cpu(state);
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (!bus.Publish("bench.topic", int64_t{i}).ok()) {
        state.SkipWithError("Publish failed");
        return;
      }
    }
    absl::MutexLock l(&mu);
    counts.sent += batch;
    mu.Await(absl::Condition(&AllDelivered, &counts));
  }
  cpu.Finish(state.iterations() * batch);
  state.SetItemsProcessed(state.iterations() * batch);
}

// One message, timed from Publish until its handler ran.
void BM_MessageBus_PublishToDelivery(benchmark::State& state) {
  RunBusBenchmark(state, 1);
}
BENCHMARK(BM_MessageBus_PublishToDelivery)->UseRealTime();

// A burst of messages, timed until the last was delivered.
void BM_MessageBus_Burst(benchmark::State& state) {
  RunBusBenchmark(state, kTasks);
}
BENCHMARK(BM_MessageBus_Burst)->UseRealTime();

}  // namespace
}  // namespace tshare::core

// Debian's Abseil is compiled without NDEBUG, so every absl::Mutex lock and
// unlock also runs Abseil's deadlock detector (a process-wide graph behind a
// global spin lock). A build of Abseil with NDEBUG skips it; so does a program
// that calls absl::SetMutexDeadlockDetectionMode(kIgnore).
// --mutex_deadlock_detection=false measures that configuration; the default
// measures what a program linked against Debian's Abseil gets.
int main(int argc, char** argv) {
  constexpr std::string_view kFlag = "--mutex_deadlock_detection=";
  bool detection = true;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.substr(0, kFlag.size()) != kFlag) {
      argv[kept++] = argv[i];
      continue;
    }
    const std::string_view value = arg.substr(kFlag.size());
    if (value == "false") {
      detection = false;
    } else if (value != "true") {
      std::fprintf(stderr, "%s takes true or false\n", argv[i]);
      return 1;
    }
  }
  argc = kept;
  if (!detection) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("mutex_deadlock_detection",
                              detection ? "true" : "false");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
