#include "core/message_bus.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"

namespace tshare::core {
namespace bus_internal {
namespace {

// Debian's Abseil keeps its own string_view type.
absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

using Segments = absl::InlinedVector<std::string_view, 8>;

// "a.b.c" -> {"a", "b", "c"}; "" -> {""}; "a..b" -> {"a", "", "b"}.
Segments Split(std::string_view s) {
  Segments out;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

// The name quoted for an error message, cut short if it is long.
std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 120;
  if (s.size() <= kMaxShown) return absl::StrCat("\"", AsAbsl(s), "\"");
  return absl::StrCat("\"", AsAbsl(s.substr(0, kMaxShown)), "...\" (", s.size(),
                      " bytes)");
}

absl::Status CheckSegments(std::string_view what, std::string_view name,
                           const Segments& segments) {
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(AsAbsl(what), " ", Quote(name),
                       " has an empty segment (segment ", i + 1,
                       "): remove the leading, trailing or doubled '.' so that "
                       "every segment between "
                       "dots is non-empty, as in \"orders.new\""));
    }
  }
  return absl::OkStatus();
}

// True if `topic` is a valid topic: what ValidateTopicImpl accepts, in one pass
// over the characters and without building anything (Publish's fast path).
bool IsValidTopic(std::string_view topic) {
  bool segment_empty = true;
  for (const char c : topic) {
    if (c == '.') {
      if (segment_empty) return false;
      segment_empty = true;
    } else if (c == '*' || c == '>') {
      return false;
    } else {
      segment_empty = false;
    }
  }
  return !segment_empty;
}

absl::Status ValidateTopicImpl(std::string_view topic) {
  if (topic.empty()) {
    return absl::InvalidArgumentError(
        "topic is empty: publish on a dot-separated name such as "
        "\"orders.new\"");
  }
  TSHARE_RETURN_IF_ERROR(CheckSegments("topic", topic, Split(topic)));
  const size_t wildcard = topic.find_first_of("*>");
  if (wildcard != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic ", Quote(topic), " contains the wildcard '",
                     AsAbsl(topic.substr(wildcard, 1)),
                     "': wildcards belong in Subscribe patterns; publish on a "
                     "concrete topic such as "
                     "\"orders.new\""));
  }
  return absl::OkStatus();
}

absl::Status ValidatePatternImpl(std::string_view pattern) {
  if (pattern.empty()) {
    return absl::InvalidArgumentError(
        "pattern is empty: subscribe to a topic such as \"orders.new\" or a "
        "pattern such as "
        "\"orders.*\" (one segment) or \"orders.>\" (one or more segments)");
  }
  const Segments segments = Split(pattern);
  TSHARE_RETURN_IF_ERROR(CheckSegments("pattern", pattern, segments));
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string_view segment = segments[i];
    if (segment == "*") continue;
    if (segment == ">") {
      if (i + 1 != segments.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "pattern ", Quote(pattern), " has '>' as segment ", i + 1, " of ",
            segments.size(),
            ": '>' matches all remaining segments, so it may only be the last "
            "one, as in "
            "\"orders.>\"; use '*' for a single segment in the middle"));
      }
      continue;
    }
    if (segment.find_first_of("*>") != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pattern ", Quote(pattern), " has segment ", Quote(segment),
          ": a wildcard must be a whole segment, either \"*\" (exactly one "
          "segment) or, "
          "last, \">\" (one or more segments)"));
    }
  }
  return absl::OkStatus();
}

bool MatchesImpl(std::string_view pattern, std::string_view topic) {
  const Segments p = Split(pattern);
  const Segments t = Split(topic);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return t.size() > i;
    if (i >= t.size()) return false;
    if (p[i] != "*" && p[i] != t[i]) return false;
  }
  return p.size() == t.size();
}

}  // namespace

// When one Publish call began, for kBlock deadlines. A clock reading costs
// tens of nanoseconds, a noticeable part of a Publish, so it is taken at the
// start only if the bus has kBlock subscriptions; otherwise at first use, which
// happens only if a kBlock subscription appeared during the call.
class PublishStart final {
 public:
  explicit PublishStart(bool read_now) {
    if (read_now) time_ = absl::Now();
  }
  absl::Time Get() {
    if (time_ == absl::InfiniteFuture()) time_ = absl::Now();
    return time_;
  }

 private:
  absl::Time time_ = absl::InfiniteFuture();
};

// Bus-wide totals, shared by the bus and its subscribers so that a subscriber's
// delivery work can still count after the bus is gone.
// Each on its own cache line: publishers count `published` while pool threads
// count `delivered`, and sharing a line would make every message bounce it
// between the two.
struct BusCounters {
  alignas(ABSL_CACHELINE_SIZE) std::atomic<uint64_t> published{0};
  alignas(ABSL_CACHELINE_SIZE) std::atomic<uint64_t> delivered{0};
  alignas(ABSL_CACHELINE_SIZE) std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> handler_failures{0};
};

// One subscription's queue, handler and counters. Owned by the bus's index
// (while subscribed), by its Subscription handle and by its pending drain task.
//
// At most one drain task exists at a time: `scheduled_` says one is queued on
// the pool or running, and whoever sets it from false to true must schedule one
// (or reset it). The drain pops one message at a time under mu_ and calls the
// handler with mu_ released.
class Subscriber final : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(uint64_t id, std::vector<std::string> patterns, Handler handler,
             SubscribeOptions options, ThreadPool* pool, int drain_batch,
             std::shared_ptr<BusCounters> counters, std::weak_ptr<BusCore> core)
      : id_(id),
        patterns_(std::move(patterns)),
        options_(options),
        pool_(pool),
        drain_batch_(std::max(1, drain_batch)),
        counters_(std::move(counters)),
        core_(std::move(core)),
        handler_(std::move(handler)) {}

  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  uint64_t id() const { return id_; }
  const std::vector<std::string>& patterns() const { return patterns_; }
  bool blocking() const { return options_.policy == OverflowPolicy::kBlock; }

  // Adds `message` to the queue under the overflow policy and makes sure a
  // drain is scheduled. `publish_start` anchors the kBlock deadline. True if
  // the caller is to run the drain itself (deliver_on_publisher), by calling
  // DrainOnPublisher() once it holds no bus lock.
  [[nodiscard]] bool Enqueue(const std::shared_ptr<const Message>& message,
                             PublishStart* publish_start)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The drain that Enqueue left to the publishing thread: up to drain_batch
  // handler calls here, then the pool takes over.
  void DrainOnPublisher() ABSL_LOCKS_EXCLUDED(mu_) {
    Drain(/*on_publisher=*/true);
  }

  // Removes this subscriber from its bus (if the bus still exists), then
  // Close().
  void Unsubscribe() ABSL_LOCKS_EXCLUDED(mu_);

  // Stops delivery: discards the queue, waits for a running handler call to end
  // (unless it is the calling thread's) and destroys the handler. Idempotent.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  bool active() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return !closed_;
  }

  SubscriptionStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The pool task: runs Drain() once; if the pool destroys it unrun (queue
  // full, shut down, ShutdownNow), gives up the drain slot so that a later
  // Enqueue can schedule again.
  class DrainTask final {
   public:
    explicit DrainTask(std::shared_ptr<Subscriber> subscriber)
        : subscriber_(std::move(subscriber)) {}
    DrainTask(DrainTask&& other) noexcept = default;
    DrainTask& operator=(DrainTask&&) = delete;
    ~DrainTask() {
      if (subscriber_ != nullptr) subscriber_->OnDrainDropped();
    }
    void operator()() && {
      std::shared_ptr<Subscriber> subscriber = std::move(subscriber_);
      subscriber->Drain(/*on_publisher=*/false);
    }

   private:
    std::shared_ptr<Subscriber> subscriber_;
  };

  // Queues a drain task. REQUIRES: the caller set scheduled_ from false to
  // true; mu_ not held. False if the pool refused (scheduled_ has then been
  // reset).
  bool Schedule() ABSL_LOCKS_EXCLUDED(mu_);
  // Delivers queued messages. On a pool thread it goes on while nothing else
  // waits for the pool; on the publishing thread it stops after one batch and
  // hands the rest to the pool.
  void Drain(bool on_publisher) ABSL_LOCKS_EXCLUDED(mu_);
  void OnDrainDropped() ABSL_LOCKS_EXCLUDED(mu_);
  // Calls the handler; false (with the reason in *error) if it threw.
  bool Invoke(const Message& message, std::string* error);

  bool HasRoomOrClosed() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closed_ || queue_.size() < options_.max_queue;
  }
  bool HandlerIdle() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !in_handler_;
  }
  bool InOwnHandler() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return in_handler_ && handler_thread_ == std::this_thread::get_id();
  }

  const uint64_t id_;
  const std::vector<std::string> patterns_;
  const SubscribeOptions options_;
  ThreadPool* const pool_;
  const int drain_batch_;
  const std::shared_ptr<BusCounters> counters_;
  const std::weak_ptr<BusCore> core_;

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const Message>> queue_ ABSL_GUARDED_BY(mu_);
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // True while the drain calls the handler (or destroys it after a close during
  // the call).
  bool in_handler_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id handler_thread_ ABSL_GUARDED_BY(mu_);
  uint64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t handler_failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_failure_ ABSL_GUARDED_BY(mu_);
  // Called only by the drain, without mu_, while in_handler_ is true; reset
  // only under mu_, by Close once in_handler_ is false or by the drain after a
  // close during the call. So a call and a reset never overlap.
  Handler handler_;
};

// The bus's shared state: topics with their sequence counters, and the
// subscription index.
//
// Locks: a topic's mu is held across one Publish's sequence assignment, index
// lookup and Enqueue calls, so that every subscriber receives one topic's
// messages in sequence order; under it Publish takes index_mu_ (only when the
// topic's target list is out of date, and released again before any Enqueue)
// and then each Subscriber's mu_. Nothing is locked under index_mu_, topics_mu_
// or a Subscriber's mu_, and no lock of the bus is held while a handler runs.
// (A drain reads the pool's Stats() with no bus lock held.)
class BusCore final : public std::enable_shared_from_this<BusCore> {
 public:
  BusCore(ThreadPool* pool, MessageBusOptions options)
      : pool_(pool),
        options_(options),
        counters_(std::make_shared<BusCounters>()) {}

  BusCore(const BusCore&) = delete;
  BusCore& operator=(const BusCore&) = delete;

  absl::StatusOr<uint64_t> Publish(std::string_view topic, Payload payload)
      ABSL_LOCKS_EXCLUDED(topics_mu_, index_mu_);
  absl::StatusOr<std::shared_ptr<Subscriber>> Subscribe(
      std::vector<std::string> patterns, Handler handler,
      SubscribeOptions options) ABSL_LOCKS_EXCLUDED(index_mu_);
  void Remove(const Subscriber& subscriber) ABSL_LOCKS_EXCLUDED(index_mu_);
  // Removes and closes every subscriber; later Subscribe calls fail.
  void Shutdown() ABSL_LOCKS_EXCLUDED(index_mu_);

  uint64_t LastSequence(std::string_view topic) const
      ABSL_LOCKS_EXCLUDED(topics_mu_);
  MessageBusStats Stats() const ABSL_LOCKS_EXCLUDED(topics_mu_, index_mu_);
  std::vector<SubscriptionStats> ListSubscriptions() const
      ABSL_LOCKS_EXCLUDED(index_mu_);

 private:
  struct TopicState {
    // Serializes Publish calls on this topic (sequence assignment plus
    // enqueue).
    absl::Mutex mu;
    // Written under mu; read without it by LastSequence.
    std::atomic<uint64_t> last_sequence{0};
    // The subscribers this topic's messages go to, as the index was at
    // index_generation `targets_generation`: a Publish reuses them while the
    // index is unchanged, without taking index_mu_ or walking the trie. A
    // subscriber removed since stays here (inactive, its handler already
    // destroyed) until the next Publish on this topic rebuilds the list.
    std::vector<std::shared_ptr<Subscriber>> targets ABSL_GUARDED_BY(mu);
    uint64_t targets_generation ABSL_GUARDED_BY(mu) = 0;
  };

  // A trie by pattern segment. A subscriber sits at the node its pattern's
  // literal and "*" segments lead to: in `exact` if the pattern ends there, in
  // `rest` if a final ">" follows.
  struct TrieNode {
    absl::flat_hash_map<std::string, std::unique_ptr<TrieNode>> children;
    std::unique_ptr<TrieNode> star;
    std::vector<std::shared_ptr<Subscriber>> exact;
    std::vector<std::shared_ptr<Subscriber>> rest;

    bool empty() const {
      return children.empty() && star == nullptr && exact.empty() &&
             rest.empty();
    }
  };

  using Targets = absl::InlinedVector<std::shared_ptr<Subscriber>, 8>;

  absl::StatusOr<TopicState*> FindOrAddTopic(std::string_view topic)
      ABSL_LOCKS_EXCLUDED(topics_mu_);
  static void Insert(TrieNode* node, const Segments& pattern,
                     const std::shared_ptr<Subscriber>& subscriber);
  // Returns true if `node` is empty afterwards (the caller then deletes it).
  static bool Erase(TrieNode* node, const Segments& pattern, size_t i,
                    const Subscriber* subscriber);
  static void Collect(const TrieNode& node, const Segments& topic, size_t i,
                      Targets* out);

  ThreadPool* const pool_;
  const MessageBusOptions options_;
  const std::shared_ptr<BusCounters> counters_;

  mutable absl::Mutex topics_mu_;
  // Entries are never removed, so a TopicState* stays valid for the core's
  // life.
  absl::flat_hash_map<std::string, std::unique_ptr<TopicState>> topics_
      ABSL_GUARDED_BY(topics_mu_);

  mutable absl::Mutex index_mu_;
  // +1 (under index_mu_) on every change of the index; starts at 1 so that a
  // new TopicState (generation 0) builds its target list.
  std::atomic<uint64_t> index_generation_{1};
  // Active kBlock subscriptions (changed under index_mu_).
  std::atomic<size_t> blocking_subscriptions_{0};
  bool shut_down_ ABSL_GUARDED_BY(index_mu_) = false;
  uint64_t last_id_ ABSL_GUARDED_BY(index_mu_) = 0;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Subscriber>> subscribers_
      ABSL_GUARDED_BY(index_mu_);
  // Subscribers with more than one pattern: only then can one Publish find a
  // subscriber twice.
  size_t multi_pattern_subscribers_ ABSL_GUARDED_BY(index_mu_) = 0;
  TrieNode root_ ABSL_GUARDED_BY(index_mu_);
};

// ---- Subscriber ----

bool Subscriber::Enqueue(const std::shared_ptr<const Message>& message,
                         PublishStart* publish_start) {
  // Destroyed after mu_ is released: a payload's destructor is user code.
  std::shared_ptr<const Message> evicted;
  bool accept = true;
  bool schedule = false;
  mu_.Lock();
  if (closed_) {
    mu_.Unlock();
    return false;
  }
  if (queue_.size() >= options_.max_queue) {
    switch (options_.policy) {
      case OverflowPolicy::kDropOldest:
        evicted = std::move(queue_.front());
        queue_.pop_front();
        ++dropped_;
        counters_->dropped.fetch_add(1, std::memory_order_relaxed);
        break;
      case OverflowPolicy::kDropNewest:
        accept = false;
        break;
      case OverflowPolicy::kBlock:
        // From this subscription's own handler nothing can make room while we
        // wait.
        if (!InOwnHandler()) {
          if (!scheduled_) {
            // The pool refused an earlier drain: retry, or the wait cannot end
            // early.
            scheduled_ = true;
            mu_.Unlock();
            Schedule();
            mu_.Lock();
          }
          mu_.AwaitWithDeadline(
              absl::Condition(this, &Subscriber::HasRoomOrClosed),
              publish_start->Get() + options_.block_timeout);
          if (closed_) {
            mu_.Unlock();
            return false;
          }
        }
        accept = queue_.size() < options_.max_queue;
        break;
    }
  }
  if (accept) {
    queue_.push_back(message);
    if (!scheduled_) {
      scheduled_ = true;
      schedule = true;
    }
  } else {
    ++dropped_;
    counters_->dropped.fetch_add(1, std::memory_order_relaxed);
  }
  mu_.Unlock();
  if (schedule) {
    if (options_.deliver_on_publisher) return true;
    Schedule();
  }
  return false;
}

bool Subscriber::Schedule() {
  return pool_->Execute(DrainTask(shared_from_this()), options_.priority).ok();
}

void Subscriber::OnDrainDropped() {
  absl::MutexLock lock(&mu_);
  scheduled_ = false;
}

bool Subscriber::Invoke(const Message& message, std::string* error) {
  try {
    handler_(message);
    return true;
  } catch (const std::exception& e) {
    *error = e.what();
  } catch (...) {
    *error = "unknown exception";
  }
  return false;
}

void Subscriber::Drain(bool on_publisher) {
  int budget = drain_batch_;
  mu_.Lock();
  while (true) {
    if (closed_ || queue_.empty()) {
      scheduled_ = false;
      break;
    }
    if (budget == 0) {
      // Yield the thread to other pool work, if any is waiting; the next task
      // continues where this one stops. With nothing waiting, re-queueing would
      // only hand the drain to another thread (a wake-up and a cold cache per
      // batch), so it goes on here. A publishing thread always hands over: its
      // Publish is waiting to return.
      mu_.Unlock();
      if (!on_publisher && pool_->Stats().queued_total == 0) {
        mu_.Lock();
        budget = drain_batch_;
        continue;
      }
      on_publisher = false;
      if (Schedule()) return;
      mu_.Lock();
      // The refused task gave up the slot; unless an Enqueue took it since,
      // keep draining here.
      if (scheduled_) break;
      scheduled_ = true;
      budget = drain_batch_;
      continue;
    }
    --budget;
    std::shared_ptr<const Message> message = std::move(queue_.front());
    queue_.pop_front();
    in_handler_ = true;
    handler_thread_ = std::this_thread::get_id();
    mu_.Unlock();

    std::string error;
    const bool ok = Invoke(*message, &error);
    message.reset();
    counters_->delivered.fetch_add(1, std::memory_order_relaxed);
    if (!ok)
      counters_->handler_failures.fetch_add(1, std::memory_order_relaxed);

    mu_.Lock();
    ++delivered_;
    if (!ok) {
      ++handler_failures_;
      last_failure_ = std::move(error);
    }
    if (closed_ && handler_ != nullptr) {
      // Closed during the call (by the handler itself, or by a thread now
      // waiting for in_handler_ to clear): destroy the handler before anyone is
      // told it is gone.
      Handler doomed = std::exchange(handler_, nullptr);
      mu_.Unlock();
      doomed = nullptr;
      mu_.Lock();
    }
    in_handler_ = false;
    handler_thread_ = std::thread::id();
  }
  mu_.Unlock();
}

void Subscriber::Unsubscribe() {
  if (std::shared_ptr<BusCore> core = core_.lock()) core->Remove(*this);
  Close();
}

void Subscriber::Close() {
  // Both destroyed after the lock is released (declared before it).
  std::deque<std::shared_ptr<const Message>> discarded;
  Handler doomed;
  absl::MutexLock lock(&mu_);
  closed_ = true;
  discarded.swap(queue_);
  if (InOwnHandler())
    return;  // the drain destroys the handler once this call returns
  mu_.Await(absl::Condition(this, &Subscriber::HandlerIdle));
  doomed = std::exchange(handler_, nullptr);
}

SubscriptionStats Subscriber::Stats() const {
  SubscriptionStats stats;
  stats.id = id_;
  stats.patterns = patterns_;
  stats.pattern = absl::StrJoin(patterns_, ", ");
  stats.max_queue = options_.max_queue;
  stats.policy = options_.policy;
  stats.priority = options_.priority;
  absl::MutexLock lock(&mu_);
  stats.delivered = delivered_;
  stats.dropped = dropped_;
  stats.handler_failures = handler_failures_;
  stats.last_failure = last_failure_;
  stats.queued = queue_.size();
  stats.active = !closed_;
  return stats;
}

// ---- BusCore ----

absl::StatusOr<BusCore::TopicState*> BusCore::FindOrAddTopic(
    std::string_view topic) {
  {
    absl::ReaderMutexLock lock(&topics_mu_);
    auto it = topics_.find(AsAbsl(topic));
    if (it != topics_.end()) return it->second.get();
  }
  absl::MutexLock lock(&topics_mu_);
  auto it = topics_.find(AsAbsl(topic));
  if (it != topics_.end()) return it->second.get();
  if (options_.max_topics != 0 && topics_.size() >= options_.max_topics) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "topic ", Quote(topic), " would be topic number ", topics_.size() + 1,
        " but this bus allows max_topics=", options_.max_topics,
        ": publish on an existing topic or raise max_topics"));
  }
  auto state = std::make_unique<TopicState>();
  TopicState* raw = state.get();
  topics_.emplace(std::string(topic), std::move(state));
  return raw;
}

absl::StatusOr<uint64_t> BusCore::Publish(std::string_view topic,
                                          Payload payload) {
  // The one-pass check accepts exactly what ValidateTopicImpl accepts; only a
  // bad topic pays for the error message.
  if (!IsValidTopic(topic)) {
    TSHARE_RETURN_IF_ERROR(ValidateTopicImpl(topic));
  }
  PublishStart start(blocking_subscriptions_.load(std::memory_order_relaxed) >
                     0);
  TSHARE_ASSIGN_OR_RETURN(TopicState * state, FindOrAddTopic(topic));
  // Both outlive the locks below: releasing them may run destructors of
  // payloads and subscribers.
  std::vector<std::shared_ptr<Subscriber>> stale_targets;
  // deliver_on_publisher subscriptions this call is to drain once unlocked.
  absl::InlinedVector<std::shared_ptr<Subscriber>, 4> drain_here;
  std::shared_ptr<const Message> message;
  uint64_t sequence = 0;
  {
    absl::MutexLock topic_lock(&state->mu);
    sequence = state->last_sequence.load(std::memory_order_relaxed) + 1;
    state->last_sequence.store(sequence, std::memory_order_relaxed);
    message = std::make_shared<const Message>(
        Message{std::string(topic), std::move(payload), sequence, absl::Now()});
    if (state->targets_generation !=
        index_generation_.load(std::memory_order_acquire)) {
      Targets targets;
      absl::ReaderMutexLock index_lock(&index_mu_);
      Collect(root_, Split(topic), 0, &targets);
      if (multi_pattern_subscribers_ > 0 && targets.size() > 1) {
        std::sort(targets.begin(), targets.end());
        targets.erase(std::unique(targets.begin(), targets.end()),
                      targets.end());
      }
      stale_targets.swap(state->targets);
      state->targets.assign(std::make_move_iterator(targets.begin()),
                            std::make_move_iterator(targets.end()));
      state->targets_generation =
          index_generation_.load(std::memory_order_relaxed);
    }
    counters_->published.fetch_add(1, std::memory_order_relaxed);
    for (const std::shared_ptr<Subscriber>& target : state->targets) {
      if (target->Enqueue(message, &start)) drain_here.push_back(target);
    }
  }
  for (const std::shared_ptr<Subscriber>& target : drain_here)
    target->DrainOnPublisher();
  return sequence;
}

void BusCore::Collect(const TrieNode& node, const Segments& topic, size_t i,
                      Targets* out) {
  if (i == topic.size()) {
    out->insert(out->end(), node.exact.begin(), node.exact.end());
    return;
  }
  out->insert(out->end(), node.rest.begin(), node.rest.end());
  if (auto it = node.children.find(AsAbsl(topic[i]));
      it != node.children.end()) {
    Collect(*it->second, topic, i + 1, out);
  }
  if (node.star != nullptr) Collect(*node.star, topic, i + 1, out);
}

void BusCore::Insert(TrieNode* node, const Segments& pattern,
                     const std::shared_ptr<Subscriber>& subscriber) {
  for (const std::string_view segment : pattern) {
    if (segment == ">") {
      node->rest.push_back(subscriber);
      return;
    }
    std::unique_ptr<TrieNode>* next;
    if (segment == "*") {
      next = &node->star;
    } else {
      next = &node->children[AsAbsl(segment)];
    }
    if (*next == nullptr) *next = std::make_unique<TrieNode>();
    node = next->get();
  }
  node->exact.push_back(subscriber);
}

bool BusCore::Erase(TrieNode* node, const Segments& pattern, size_t i,
                    const Subscriber* subscriber) {
  auto erase_from =
      [subscriber](std::vector<std::shared_ptr<Subscriber>>* list) {
        list->erase(
            std::remove_if(list->begin(), list->end(),
                           [subscriber](const std::shared_ptr<Subscriber>& s) {
                             return s.get() == subscriber;
                           }),
            list->end());
      };
  if (i == pattern.size()) {
    erase_from(&node->exact);
  } else if (pattern[i] == ">") {
    erase_from(&node->rest);
  } else if (pattern[i] == "*") {
    if (node->star != nullptr &&
        Erase(node->star.get(), pattern, i + 1, subscriber)) {
      node->star.reset();
    }
  } else if (auto it = node->children.find(AsAbsl(pattern[i]));
             it != node->children.end()) {
    if (Erase(it->second.get(), pattern, i + 1, subscriber))
      node->children.erase(it);
  }
  return node->empty();
}

absl::StatusOr<std::shared_ptr<Subscriber>> BusCore::Subscribe(
    std::vector<std::string> patterns, Handler handler,
    SubscribeOptions options) {
  if (patterns.empty()) {
    return absl::InvalidArgumentError(
        "no pattern given: subscribe to at least one topic or pattern, such as "
        "\"orders.*\"");
  }
  for (const std::string& pattern : patterns) {
    TSHARE_RETURN_IF_ERROR(ValidatePatternImpl(pattern));
  }
  if (handler == nullptr) {
    return absl::InvalidArgumentError(
        "handler is empty: pass a callable that takes a Message");
  }
  if (options.max_queue == 0) {
    return absl::InvalidArgumentError(
        "max_queue is 0: it must be at least 1 (the messages a subscription "
        "may hold while "
        "its handler is busy)");
  }
  if (options.block_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block_timeout is ", absl::FormatDuration(options.block_timeout),
        ": it must be zero (drop at once) or positive"));
  }
  // Keep the first of any duplicate patterns.
  std::vector<std::string> unique;
  for (std::string& pattern : patterns) {
    if (std::find(unique.begin(), unique.end(), pattern) == unique.end()) {
      unique.push_back(std::move(pattern));
    }
  }

  absl::MutexLock lock(&index_mu_);
  if (shut_down_) {
    return absl::FailedPreconditionError("the message bus is being destroyed");
  }
  if (options_.max_subscriptions != 0 &&
      subscribers_.size() >= options_.max_subscriptions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this bus already has ", subscribers_.size(),
        " subscriptions, its max_subscriptions: unsubscribe one first or raise "
        "max_subscriptions"));
  }
  auto subscriber = std::make_shared<Subscriber>(
      ++last_id_, std::move(unique), std::move(handler), options, pool_,
      options_.drain_batch, counters_, weak_from_this());
  for (const std::string& pattern : subscriber->patterns()) {
    Insert(&root_, Split(pattern), subscriber);
  }
  if (subscriber->patterns().size() > 1) ++multi_pattern_subscribers_;
  if (subscriber->blocking()) {
    blocking_subscriptions_.fetch_add(1, std::memory_order_relaxed);
  }
  subscribers_.emplace(subscriber->id(), subscriber);
  index_generation_.fetch_add(1, std::memory_order_release);
  return subscriber;
}

void BusCore::Remove(const Subscriber& subscriber) {
  std::shared_ptr<Subscriber> removed;  // released after the lock
  absl::MutexLock lock(&index_mu_);
  auto it = subscribers_.find(subscriber.id());
  if (it == subscribers_.end()) return;
  removed = std::move(it->second);
  subscribers_.erase(it);
  for (const std::string& pattern : subscriber.patterns()) {
    Erase(&root_, Split(pattern), 0, &subscriber);
  }
  if (subscriber.patterns().size() > 1) --multi_pattern_subscribers_;
  if (subscriber.blocking()) {
    blocking_subscriptions_.fetch_sub(1, std::memory_order_relaxed);
  }
  index_generation_.fetch_add(1, std::memory_order_release);
}

void BusCore::Shutdown() {
  absl::flat_hash_map<uint64_t, std::shared_ptr<Subscriber>> subscribers;
  TrieNode root;
  {
    absl::MutexLock lock(&index_mu_);
    shut_down_ = true;
    subscribers.swap(subscribers_);
    std::swap(root, root_);
    multi_pattern_subscribers_ = 0;
    blocking_subscriptions_.store(0, std::memory_order_relaxed);
    index_generation_.fetch_add(1, std::memory_order_release);
  }
  for (auto& [id, subscriber] : subscribers) subscriber->Close();
}

uint64_t BusCore::LastSequence(std::string_view topic) const {
  absl::ReaderMutexLock lock(&topics_mu_);
  auto it = topics_.find(AsAbsl(topic));
  if (it == topics_.end()) return 0;
  return it->second->last_sequence.load(std::memory_order_relaxed);
}

MessageBusStats BusCore::Stats() const {
  MessageBusStats stats;
  stats.published = counters_->published.load(std::memory_order_relaxed);
  stats.delivered = counters_->delivered.load(std::memory_order_relaxed);
  stats.dropped = counters_->dropped.load(std::memory_order_relaxed);
  stats.handler_failures =
      counters_->handler_failures.load(std::memory_order_relaxed);
  {
    absl::ReaderMutexLock lock(&index_mu_);
    stats.subscriptions = subscribers_.size();
  }
  {
    absl::ReaderMutexLock lock(&topics_mu_);
    stats.topics = topics_.size();
  }
  return stats;
}

std::vector<SubscriptionStats> BusCore::ListSubscriptions() const {
  std::vector<std::shared_ptr<Subscriber>> subscribers;
  {
    absl::ReaderMutexLock lock(&index_mu_);
    subscribers.reserve(subscribers_.size());
    for (const auto& [id, subscriber] : subscribers_)
      subscribers.push_back(subscriber);
  }
  std::sort(
      subscribers.begin(), subscribers.end(),
      [](const std::shared_ptr<Subscriber>& a,
         const std::shared_ptr<Subscriber>& b) { return a->id() < b->id(); });
  std::vector<SubscriptionStats> out;
  out.reserve(subscribers.size());
  for (const std::shared_ptr<Subscriber>& subscriber : subscribers) {
    out.push_back(subscriber->Stats());
  }
  return out;
}

}  // namespace bus_internal

// ---- Subscription ----

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Unsubscribe();
    subscriber_ = std::move(other.subscriber_);
  }
  return *this;
}

Subscription::~Subscription() { Unsubscribe(); }

void Subscription::Unsubscribe() {
  if (subscriber_ != nullptr) subscriber_->Unsubscribe();
}

bool Subscription::active() const {
  return subscriber_ != nullptr && subscriber_->active();
}

uint64_t Subscription::id() const {
  return subscriber_ == nullptr ? 0 : subscriber_->id();
}

SubscriptionStats Subscription::Stats() const {
  if (subscriber_ == nullptr) return SubscriptionStats{};
  return subscriber_->Stats();
}

// ---- MessageBus ----

namespace {
ThreadPoolOptions DefaultBusPoolOptions() {
  ThreadPoolOptions options;
  options.name = "message-bus";
  return options;
}
}  // namespace

MessageBus::MessageBus(ThreadPool* pool, MessageBusOptions options)
    : core_(std::make_shared<bus_internal::BusCore>(pool, options)) {}

MessageBus::MessageBus(ThreadPoolOptions pool_options,
                       MessageBusOptions options)
    : owned_pool_(std::make_unique<ThreadPool>(std::move(pool_options))),
      core_(std::make_shared<bus_internal::BusCore>(owned_pool_.get(),
                                                    options)) {}

MessageBus::MessageBus() : MessageBus(DefaultBusPoolOptions()) {}

MessageBus::~MessageBus() { core_->Shutdown(); }

absl::StatusOr<uint64_t> MessageBus::Publish(std::string_view topic,
                                             Payload payload) {
  return core_->Publish(topic, std::move(payload));
}

absl::StatusOr<Subscription> MessageBus::Subscribe(std::string_view pattern,
                                                   Handler handler,
                                                   SubscribeOptions options) {
  return SubscribeAny({std::string(pattern)}, std::move(handler), options);
}

absl::StatusOr<Subscription> MessageBus::SubscribeAny(
    std::vector<std::string> patterns, Handler handler,
    SubscribeOptions options) {
  TSHARE_ASSIGN_OR_RETURN(
      std::shared_ptr<bus_internal::Subscriber> subscriber,
      core_->Subscribe(std::move(patterns), std::move(handler), options));
  return Subscription(std::move(subscriber));
}

uint64_t MessageBus::LastSequence(std::string_view topic) const {
  return core_->LastSequence(topic);
}

MessageBusStats MessageBus::Stats() const { return core_->Stats(); }

std::vector<SubscriptionStats> MessageBus::ListSubscriptions() const {
  return core_->ListSubscriptions();
}

absl::Status MessageBus::ValidateTopic(std::string_view topic) {
  return bus_internal::ValidateTopicImpl(topic);
}

absl::Status MessageBus::ValidatePattern(std::string_view pattern) {
  return bus_internal::ValidatePatternImpl(pattern);
}

bool MessageBus::Matches(std::string_view pattern, std::string_view topic) {
  return bus_internal::MatchesImpl(pattern, topic);
}

}  // namespace tshare::core
