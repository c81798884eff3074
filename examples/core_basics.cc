// core_basics: the seed's basic examples with tshare::core alone: one process,
// no server.
//
//   1. Share<T> and threads: a worker sets a counter, a message and a flag;
//      main waits for the flag (no poll-and-sleep loop).
//   2. Share<T> with WaitForChange: a game state changed ten times; main
//      follows it by version, so no change slips between two waits; the state
//      goes out as JSON and comes back into another share.
//   3. SimpleShare<T>: the cheapest shared value, one mutex.
//   4. AtomicShare<T>: five threads, a hundred increments each, exactly 500 at
//      the end, with Add and with a compare-and-swap Update of a two-field
//      struct (the seed's ArcThreadShare lost most of them).
//   5. ThreadPool: strict priorities (critical, high, normal, low) and a
//      future with Then.
//   6. MessageBus: topics, wildcard patterns, per-topic order.
//   7. WorkerManager with SpawnWorkers (the seed's spawn_workers!): a task
//      generator and an executor sharing one Share; the generator is paused,
//      the executor catches up, the generator resumes, both stop.
//
// Each section prints what it saw; the program exits 1 if anything differs
// from what the library promises.
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/atomic_share.h"
#include "core/message_bus.h"
#include "core/share.h"
#include "core/simple_share.h"
#include "core/thread_pool.h"
#include "core/worker_manager.h"
#include "nlohmann/json.hpp"

namespace {

using tshare::core::AtomicShare;
using tshare::core::Share;
using tshare::core::WorkerContext;

int failures = 0;

// Prints `line`, marked when `ok` is false (and then counted as a failure).
void Report(bool ok, const std::string& line) {
  std::printf("%s%s\n", line.c_str(), ok ? "" : "   <-- UNEXPECTED");
  std::fflush(stdout);
  if (!ok) ++failures;
}

void BasicTypes() {
  auto counter = tshare::core::MakeShare<int64_t>(0);
  auto message = tshare::core::MakeShare<std::string>("Hello");
  auto is_running = tshare::core::MakeShare(true);
  // Copies of a handle share one value: the thread changes what main reads.
  std::thread worker([counter, message, is_running] {
    counter.Set(42);
    message.Set("World");
    is_running.Set(false);
  });
  const absl::Status stopped = is_running.WaitUntil(
      [](bool running) { return !running; }, absl::Seconds(10));
  worker.join();
  Report(stopped.ok() && counter.Get() == 42 && message.Get() == "World",
         absl::StrCat("1. share: counter=", counter.Get(),
                      ", message=", message.Get(),
                      ", is_running=", is_running.Get() ? "true" : "false"));
}

struct GameState {
  int score = 0;
  int level = 1;
  bool game_over = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GameState, score, level, game_over)

void WaitForChange() {
  Share<GameState> game;
  std::thread player([game] {
    for (int i = 1; i <= 10; ++i) {
      game.Update([i](GameState& g) {
        g.score += i * 100;
        if (g.score >= g.level * 1000) ++g.level;
      });
    }
    game.Update([](GameState& g) { g.game_over = true; });
  });
  // Follow the game by version: a change made between two waits is reported by
  // the next one.
  uint64_t seen = 0;
  bool over = false;
  while (!over) {
    absl::StatusOr<uint64_t> version =
        game.WaitForChange(seen, absl::Seconds(10));
    if (!version.ok()) break;
    seen = *version;
    over = game.Read([](const GameState& g) { return g.game_over; });
  }
  player.join();
  const GameState final_state = game.Get();
  Report(
      over && seen == 11 && final_state.score == 5500 && final_state.level == 6,
      absl::StrCat("2. share: game over at version ", seen, ": ",
                   game.ToJson()));
  // The seed's serialize feature: a saved state loaded into another share.
  Share<GameState> restored;
  const absl::Status loaded = restored.FromJson(game.ToJson());
  const GameState r = restored.Get();
  Report(loaded.ok() && r.score == 5500 && r.level == 6 && r.game_over,
         absl::StrCat("2. share: loaded from JSON: score ", r.score, ", level ",
                      r.level, ", version ", restored.version()));
}

void Simple() {
  auto log = tshare::core::MakeSimpleShare<std::vector<std::string>>({});
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([log, t] {
      for (int i = 0; i < 3; ++i) {
        log.Update([&](std::vector<std::string>& lines) {
          lines.push_back(absl::StrCat("writer ", t, " line ", i));
        });
      }
    });
  }
  for (std::thread& w : writers) w.join();
  const size_t lines =
      log.Read([](const std::vector<std::string>& l) { return l.size(); });
  Report(lines == 6,
         absl::StrCat("3. simple share: ", lines, " log lines from 2 threads"));
}

struct Counter {
  uint32_t value = 0;
  uint32_t operations = 0;
};

void Atomic() {
  auto hits = tshare::core::MakeAtomicShare<int64_t>(0);
  AtomicShare<Counter> counter;  // 8 bytes: lock-free, a CAS loop per Update.
  std::vector<std::thread> threads;
  for (int t = 0; t < 5; ++t) {
    threads.emplace_back([hits, counter] {
      for (int i = 0; i < 100; ++i) {
        hits.Add(1);
        counter.Update([](const Counter& c) {
          return Counter{c.value + 1, c.operations + 1};
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const Counter c = counter.Get();
  Report(hits.Get() == 500 && c.value == 500 && c.operations == 500,
         absl::StrCat("4. atomic share: ", hits.Get(),
                      " of 500 increments; Counter{value ", c.value,
                      ", operations ", c.operations, "}"));
}

void Pool() {
  tshare::core::ThreadPool pool(
      {.name = "example", .min_threads = 1, .max_threads = 1});
  auto order = tshare::core::MakeSimpleShare<std::vector<std::string>>({});
  // Hold the only thread so that the next four tasks queue up, then let them
  // run.
  absl::Notification started, release;
  absl::Status queued = pool.Execute(
      [&] {
        started.Notify();
        release.WaitForNotification();
      },
      tshare::core::Priority::kCritical);
  started.WaitForNotification();
  for (tshare::core::Priority p :
       {tshare::core::Priority::kLow, tshare::core::Priority::kNormal,
        tshare::core::Priority::kHigh, tshare::core::Priority::kCritical}) {
    if (queued.ok()) {
      queued = pool.Execute(
          [order, p] {
            order.Update([p](std::vector<std::string>& o) {
              o.push_back(tshare::core::PriorityName(p));
            });
          },
          p);
    }
  }
  release.Notify();
  auto answer = pool.Submit([] { return 6 * 7; });
  absl::StatusOr<std::string> text =
      answer.ok()
          ? answer->Then([](int v) { return absl::StrCat("answer ", v); }).Get()
          : absl::StatusOr<std::string>(answer.status());
  pool.Shutdown();  // Runs what is queued, then joins the thread.
  const std::string ran = absl::StrJoin(order.Get(), " ");
  const tshare::core::ThreadPoolStats stats = pool.Stats();
  Report(queued.ok() && ran == "critical high normal low",
         absl::StrCat("5. thread pool: ran by priority: ", ran));
  Report(text.ok() && *text == "answer 42" && stats.completed == 6,
         absl::StrCat("5. thread pool: future: ",
                      text.ok() ? *text : text.status().ToString(), "; ",
                      stats.completed, " tasks completed"));
}

struct Order {
  int id = 0;
};

void Bus() {
  tshare::core::MessageBus bus;  // Delivers on a pool of its own.
  absl::Mutex mu;
  std::vector<int> ids;  // Guarded by mu.
  bool in_order = true;  // Guarded by mu.
  uint64_t last_sequence = 0;
  absl::BlockingCounter new_orders(10);
  absl::BlockingCounter all_orders(11);
  auto one_segment =
      bus.Subscribe("orders.*", [&](const tshare::core::Message& m) {
        if (const Order* order = m.As<Order>()) {
          absl::MutexLock lock(&mu);
          if (last_sequence != 0 && m.sequence != last_sequence + 1)
            in_order = false;
          last_sequence = m.sequence;
          ids.push_back(order->id);
        }
        new_orders.DecrementCount();
      });
  auto any_depth = bus.Subscribe("orders.>", [&](const tshare::core::Message&) {
    all_orders.DecrementCount();
  });
  bool published = one_segment.ok() && any_depth.ok();
  for (int i = 0; i < 10 && published; ++i) {
    published = bus.Publish("orders.new", Order{i}).ok();
  }
  // Matches "orders.>" (one or more segments) but not "orders.*" (exactly one).
  published = published && bus.Publish("orders.eu.new", Order{100}).ok();
  if (published) {
    new_orders.Wait();
    all_orders.Wait();
  }
  absl::MutexLock lock(&mu);
  Report(published && in_order &&
             ids == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
         absl::StrCat("6. message bus: orders.* got ", ids.size(), " orders ",
                      in_order ? "in order" : "OUT OF ORDER",
                      "; orders.> got 11"));
}

struct TaskProcessor {
  int task_count = 0;
  int completed = 0;
};

void Workers() {
  Share<TaskProcessor> processor;
  absl::StatusOr<std::unique_ptr<tshare::core::WorkerManager>> spawned =
      tshare::core::SpawnWorkers(
          processor,
          {
              {"task_generator",
               [](Share<TaskProcessor> p, WorkerContext& context) {
                 while (context.Checkpoint()) {
                   const int n =
                       p.Write([](TaskProcessor& t) { return ++t.task_count; });
                   context.ReportProgress(absl::StrCat(n, " tasks"));
                   if (!context.SleepFor(absl::Milliseconds(5))) break;
                 }
               }},
              {"task_executor",
               [](Share<TaskProcessor> p, WorkerContext& context) {
                 while (context.Checkpoint()) {
                   // Wait for a task, at most 50 ms at a time so that a stop is
                   // seen.
                   auto pending = [](const TaskProcessor& t) {
                     return t.completed < t.task_count;
                   };
                   if (!p.WaitUntil(pending, absl::Milliseconds(50)).ok())
                     continue;
                   p.Update([](TaskProcessor& t) {
                     if (t.completed < t.task_count) ++t.completed;
                   });
                 }
               }},
          });
  if (!spawned.ok()) {
    Report(false, absl::StrCat("7. workers: ", spawned.status().ToString()));
    return;
  }
  tshare::core::WorkerManager& workers = **spawned;
  Report(workers.ActiveWorkers() == 2,
         absl::StrCat("7. workers: started ",
                      absl::StrJoin(workers.Names(), ", ")));

  const absl::Duration timeout = absl::Seconds(10);
  bool ok =
      processor
          .WaitUntil([](const TaskProcessor& t) { return t.task_count >= 5; },
                     timeout)
          .ok();
  // Pause the generator and wait until it really holds still at its checkpoint.
  ok = ok && workers.Pause("task_generator").ok() &&
       workers.WaitUntilParked("task_generator", timeout).ok();
  const int generated =
      processor.Read([](const TaskProcessor& t) { return t.task_count; });
  ok = ok && processor
                 .WaitUntil(
                     [generated](const TaskProcessor& t) {
                       return t.completed == generated;
                     },
                     timeout)
                 .ok();
  const bool still = processor.Read([](const TaskProcessor& t) {
    return t.task_count;
  }) == generated;
  const absl::StatusOr<bool> paused = workers.IsPaused("task_generator");
  Report(
      ok && still && paused.ok() && *paused,
      "7. workers: generator paused; the executor caught up with every task");

  ok = workers.Resume("task_generator").ok() &&
       processor
           .WaitUntil(
               [generated](const TaskProcessor& t) {
                 return t.task_count >= generated + 5;
               },
               timeout)
           .ok();
  Report(ok, "7. workers: generator resumed and went on");

  ok = workers.Stop("task_generator").ok() &&
       workers.Stop("task_executor").ok() && workers.JoinAll().ok();
  int stopped = 0;
  for (const tshare::core::WorkerInfo& info : workers.List()) {
    if (info.state == tshare::core::WorkerState::kStopped) ++stopped;
  }
  Report(ok && stopped == 2 && workers.ActiveWorkers() == 0,
         absl::StrCat("7. workers: ", stopped, " workers stopped"));
}

}  // namespace

int main() {
  BasicTypes();
  WaitForChange();
  Simple();
  Atomic();
  Pool();
  Bus();
  Workers();
  std::printf("%s\n",
              failures == 0
                  ? "all examples behaved as promised"
                  : absl::StrCat(failures, " UNEXPECTED results").c_str());
  return failures == 0 ? 0 : 1;
}
