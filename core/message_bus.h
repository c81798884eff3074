// MessageBus: in-process publish/subscribe by topic, delivered on a ThreadPool.
//
// Thread-safety: MessageBus and Subscription are thread-safe; every method may
// be called from any thread, including from inside a handler. Handlers run on
// the bus's ThreadPool, never on the publishing thread, and never with a bus
// lock held. Payloads are immutable and shared by every subscriber that
// receives them.
#ifndef TSHARE_CORE_MESSAGE_BUS_H_
#define TSHARE_CORE_MESSAGE_BUS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/thread_pool.h"

namespace tshare::core {

namespace bus_internal {
class BusCore;
class Subscriber;
}  // namespace bus_internal

// An immutable, type-erased value shared by every message copy and every
// subscriber that receives it (publishing one message to a thousand subscribers
// stores it once). Cheap to copy: a copy shares the value.
//
//   Payload p = Payload::Of(Order{.id = 7});
//   if (const Order* order = p.As<Order>()) Use(order->id);
class Payload final {
 public:
  // An empty payload: As<T>() is nullptr for every T, type() is typeid(void).
  Payload() = default;

  // Stores a copy (or the moved value) of `value`. Character strings (string
  // literals, `const char*`, `std::string_view`) are stored as std::string, so
  // that the payload never points at a buffer the publisher may free: read them
  // back with As<std::string>().
  template <typename T>
  static Payload Of(T&& value) {
    using Stored = StoredType<std::decay_t<T>>;
    return Payload(std::make_shared<const Stored>(std::forward<T>(value)),
                   &typeid(Stored));
  }

  // Shares an existing value without copying it (for example a protobuf
  // message the caller built once). The caller must not modify it any more:
  // handlers on other threads read it. A null `value` gives an empty payload.
  template <typename T>
  static Payload FromShared(std::shared_ptr<T> value) {
    if (value == nullptr) return Payload();
    return Payload(std::shared_ptr<const void>(std::move(value)),
                   &typeid(std::remove_cv_t<T>));
  }

  // The value if it was stored as exactly `T` (no conversions, no base
  // classes), otherwise nullptr. The pointer stays valid while this Payload (or
  // any copy of it) lives.
  template <typename T>
  const T* As() const {
    if (value_ == nullptr || *type_ != typeid(std::remove_cv_t<T>))
      return nullptr;
    return static_cast<const T*>(value_.get());
  }

  // Like As<T>() but shares ownership, for keeping the value past the handler
  // call.
  template <typename T>
  std::shared_ptr<const T> Share() const {
    const T* p = As<T>();
    if (p == nullptr) return nullptr;
    return std::shared_ptr<const T>(value_, p);
  }

  bool empty() const { return value_ == nullptr; }
  // The stored type; typeid(void) when empty.
  const std::type_info& type() const { return *type_; }

 private:
  template <typename D>
  using StoredType = std::conditional_t<std::is_same_v<D, const char*> ||
                                            std::is_same_v<D, char*> ||
                                            std::is_same_v<D, std::string_view>,
                                        std::string, D>;

  Payload(std::shared_ptr<const void> value, const std::type_info* type)
      : value_(std::move(value)), type_(type) {}

  std::shared_ptr<const void> value_;
  const std::type_info* type_ = &typeid(void);
};

// One published message as a handler sees it. Every subscriber that receives it
// sees the same object (read-only, shared).
struct Message {
  // The concrete topic it was published on (never a pattern), e.g.
  // "orders.eu.new".
  std::string topic;
  Payload payload;
  // Per topic: 1 for the first message published on `topic`, +1 for each next
  // one.
  uint64_t sequence = 0;
  // When Publish assigned the sequence.
  absl::Time published_at;

  // Shorthand for payload.As<T>().
  template <typename T>
  const T* As() const {
    return payload.As<T>();
  }
};

// Called once per delivered message, on a pool thread (or the publishing
// thread, see SubscribeOptions::deliver_on_publisher), one call at a time per
// subscription, in publish order. It may call any MessageBus or Subscription
// method (including Publish and its own Unsubscribe). An exception it throws is
// caught and counted in handler_failures. It should not block for long: it
// holds a pool thread while it runs.
using Handler = absl::AnyInvocable<void(const Message&)>;

// What a subscription does with a new message when its queue already holds
// max_queue messages. A subscriber that keeps up never sees any of these act.
enum class OverflowPolicy {
  // Discard the oldest queued message to make room (counted in `dropped`).
  kDropOldest,
  // Discard the new message (counted in `dropped`).
  kDropNewest,
  // Make Publish wait for room, up to block_timeout measured from the start
  // of the Publish call; if there is still no room, this subscription drops
  // the new message and counts it. Publish still returns OK and still
  // delivers to every other subscription. A Publish from this subscription's
  // own handler does not wait (the handler is what would make room): the
  // message is dropped at once.
  //
  // Publish calls on one topic take turns (that keeps sequence order), so
  // while one waits here, others on the same topic wait behind it; each gives
  // up at its own deadline. A handler that publishes on such a topic waits
  // too, until the blocked Publish times out.
  kBlock,
};

struct SubscribeOptions {
  // Messages waiting for the handler, not counting the one being handled. Must
  // be >= 1.
  size_t max_queue = 1024;
  OverflowPolicy policy = OverflowPolicy::kDropOldest;
  // Only for kBlock: the longest a Publish waits for room. Must be >= 0.
  absl::Duration block_timeout = absl::Seconds(1);
  // The pool priority of this subscription's delivery work.
  Priority priority = Priority::kNormal;
  // If true, a Publish that finds this subscription idle runs the handler
  // itself, on the publishing thread, after Publish has released every bus
  // lock and before it returns; up to MessageBusOptions::drain_batch messages,
  // then the rest goes to the pool. A subscription already being delivered to
  // just queues, so the handler still runs one call at a time, in order. This
  // saves a hand-off to a pool thread per message; use it only for handlers
  // that return quickly and never block (Publish waits for them).
  bool deliver_on_publisher = false;
};

// A snapshot of one subscription's counters.
struct SubscriptionStats {
  // Unique within one bus, assigned in Subscribe order from 1; 0 for an empty
  // Subscription.
  uint64_t id = 0;
  // The patterns as given to Subscribe.
  std::vector<std::string> patterns;
  // The patterns joined with ", " (for display).
  std::string pattern;
  // Handler calls made (including those that threw).
  uint64_t delivered = 0;
  // Messages discarded by the overflow policy (or a kBlock timeout).
  uint64_t dropped = 0;
  // Handler calls that threw.
  uint64_t handler_failures = 0;
  // The what() of the last exception a handler threw ("unknown exception" for
  // non-std).
  std::string last_failure;
  // Messages waiting now (not counting one being handled).
  size_t queued = 0;
  size_t max_queue = 0;
  OverflowPolicy policy = OverflowPolicy::kDropOldest;
  Priority priority = Priority::kNormal;
  // False once unsubscribed (or once its bus is destroyed).
  bool active = false;
};

// A snapshot of the whole bus.
struct MessageBusStats {
  // Successful Publish calls.
  uint64_t published = 0;
  // Handler calls, over all subscriptions, past and present.
  uint64_t delivered = 0;
  // Messages dropped by any subscription's overflow policy.
  uint64_t dropped = 0;
  uint64_t handler_failures = 0;
  // Subscriptions active now.
  size_t subscriptions = 0;
  // Distinct topics ever published (each keeps its sequence counter).
  size_t topics = 0;
};

// An RAII handle for one subscription. Destroying it or calling Unsubscribe()
// stops delivery: once that returns, the handler is not running, will not run
// again, and has been destroyed (with whatever it captured). The one exception
// is Unsubscribe (or destruction) from inside the subscription's own handler:
// it returns at once, the current call finishes, and no further call follows.
// Queued messages are discarded (not counted as dropped).
//
// Unsubscribing another subscription from a handler waits for that one's
// running call, so two handlers must not unsubscribe each other at the same
// time.
//
// Movable, not copyable. A Subscription may outlive its MessageBus: it is then
// inactive and Unsubscribe() does nothing. Unsubscribe(), active(), id() and
// Stats() may run concurrently on one object; moving or destroying it must not
// overlap another call on the same object.
//
//   absl::StatusOr<Subscription> sub = bus.Subscribe("jobs.>", handler);
//   ...
//   sub->Unsubscribe();  // or let it go out of scope
class Subscription final {
 public:
  // An empty subscription: inactive, id() 0, Stats() all zero.
  Subscription() = default;
  // Leaves `other` empty.
  Subscription(Subscription&& other) noexcept = default;
  // Unsubscribes this one first, then takes over `other` (left empty).
  Subscription& operator=(Subscription&& other) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription();

  // Idempotent. See the class comment for what it guarantees on return.
  void Unsubscribe();

  // True until Unsubscribe() or the bus's destruction.
  bool active() const;
  // Unique within its bus (see SubscriptionStats::id); 0 when empty.
  uint64_t id() const;
  SubscriptionStats Stats() const;

 private:
  friend class MessageBus;
  explicit Subscription(std::shared_ptr<bus_internal::Subscriber> subscriber)
      : subscriber_(std::move(subscriber)) {}

  std::shared_ptr<bus_internal::Subscriber> subscriber_;
};

struct MessageBusOptions {
  // The most messages one subscription handles in one pool task before it
  // yields the thread (re-queues itself behind other pool work) when other
  // pool work is waiting; with none waiting it goes on. Values < 1 mean 1.
  int drain_batch = 256;
  // Subscribe fails with RESOURCE_EXHAUSTED beyond this many active
  // subscriptions; 0 = no limit.
  size_t max_subscriptions = 0;
  // Publish to a topic never published before fails with RESOURCE_EXHAUSTED
  // once this many topics exist; 0 = no limit. (Each topic keeps its sequence
  // counter for the bus's life.)
  size_t max_topics = 0;
};

// Topics are dot-separated, non-empty segments without '*' or '>':
// "orders.eu.new". Patterns are topics whose segments may also be "*" (exactly
// one segment, anywhere) or, as the last segment only, ">" (one or more
// segments): "orders.*" matches "orders.new" but not "orders" or
// "orders.eu.new"; "orders.>" matches "orders.new" and "orders.eu.new" but not
// "orders"; "*.new" matches "orders.new".
//
// Each subscription has its own bounded queue and is drained by one task at a
// time on the pool, so its handler sees messages in publish order, one call at
// a time, while other subscriptions run in parallel. Messages of one topic
// reach every subscription in sequence order. A slow subscription only ever
// slows Publish if its policy is kBlock.
//
//   ThreadPool pool(ThreadPoolOptions{.name = "bus", .max_threads = 4});
//   MessageBus bus(&pool);
//   auto sub = bus.Subscribe("orders.*", [](const Message& m) {
//     if (const Order* o = m.As<Order>()) Ship(*o);
//   });
//   if (!sub.ok()) return sub.status();
//   absl::StatusOr<uint64_t> seq = bus.Publish("orders.new", Order{...});
//
// Destruction: the bus unsubscribes every remaining subscription, waiting for
// running handlers (except the one that destroys the bus from inside itself, if
// any), then shuts down the pool it owns, if it owns one. A Subscription that
// outlives its bus is harmless. A borrowed pool must outlive the bus. REQUIRES:
// no other call on the bus runs concurrently with its destruction (handlers of
// other subscriptions included).
class MessageBus final {
 public:
  // Delivers on `pool`, which is borrowed. REQUIRES: pool != nullptr, outlives
  // the bus.
  explicit MessageBus(ThreadPool* pool, MessageBusOptions options = {});
  // Delivers on a pool of its own, made with `pool_options`.
  explicit MessageBus(ThreadPoolOptions pool_options,
                      MessageBusOptions options = {});
  // Delivers on a pool of its own named "message-bus" with default limits.
  MessageBus();
  MessageBus(const MessageBus&) = delete;
  MessageBus& operator=(const MessageBus&) = delete;
  MessageBus(MessageBus&&) = delete;
  MessageBus& operator=(MessageBus&&) = delete;
  ~MessageBus();

  // Publishes `payload` on `topic` and returns its sequence on that topic.
  // Enqueues it for every matching subscription (subject to each one's overflow
  // policy) and returns without waiting for any handler; only a full kBlock
  // subscription can make it wait (see OverflowPolicy::kBlock).
  // INVALID_ARGUMENT for a malformed topic, RESOURCE_EXHAUSTED past max_topics.
  // If the pool refuses a subscription's delivery task (its queue is full or
  // it is shut down), the message stays in that subscription's queue and the
  // next message published to it retries.
  absl::StatusOr<uint64_t> Publish(std::string_view topic, Payload payload);

  // Publishes any copyable or movable value: Publish("visits", 1),
  // Publish("orders.new", order). Same as Publish(topic, Payload::Of(value)).
  template <typename T>
  requires(!std::is_same_v<std::decay_t<T>, Payload>)
      absl::StatusOr<uint64_t> Publish(std::string_view topic, T&& value) {
    return Publish(topic, Payload::Of(std::forward<T>(value)));
  }

  // Subscribes `handler` to every topic that `pattern` matches; delivery lasts
  // as long as the returned Subscription (keep it: dropping it unsubscribes).
  // INVALID_ARGUMENT for a malformed pattern, a null handler, max_queue == 0 or
  // a negative block_timeout; RESOURCE_EXHAUSTED past max_subscriptions.
  absl::StatusOr<Subscription> Subscribe(std::string_view pattern,
                                         Handler handler,
                                         SubscribeOptions options = {});

  // One subscription for several patterns: a message whose topic matches more
  // than one of them is delivered once. Same errors as Subscribe, and
  // INVALID_ARGUMENT for an empty list.
  absl::StatusOr<Subscription> SubscribeAny(std::vector<std::string> patterns,
                                            Handler handler,
                                            SubscribeOptions options = {});

  // The sequence of the last message published on `topic`, 0 if none (or if
  // `topic` is not a valid topic).
  uint64_t LastSequence(std::string_view topic) const;

  MessageBusStats Stats() const;
  // Every active subscription's stats, ordered by id.
  std::vector<SubscriptionStats> ListSubscriptions() const;

  // Checks a topic (for Publish) or a pattern (for Subscribe); the message of
  // an error says what to change.
  static absl::Status ValidateTopic(std::string_view topic);
  static absl::Status ValidatePattern(std::string_view pattern);
  // True if `topic` (a valid topic) matches `pattern` (a valid pattern).
  static bool Matches(std::string_view pattern, std::string_view topic);

 private:
  // Declared first so it is destroyed last, after every subscription is closed.
  std::unique_ptr<ThreadPool> owned_pool_;
  std::shared_ptr<bus_internal::BusCore> core_;
};

}  // namespace tshare::core

#endif  // TSHARE_CORE_MESSAGE_BUS_H_
