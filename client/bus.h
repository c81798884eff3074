// Subscriptions to the server's message bus (Client::Subscribe): messages on
// topics matching patterns, delivered to a callback per topic in publish order,
// across lost connections.
//
// The bus keeps no history: messages published while a subscriber is
// disconnected are not delivered to it. The client reports such gaps (and the
// server's own drops) on the next message of the topic, through
// BusMessage::missed and BusMessage::loss, so loss is never silent.
//
// Thread-safety: the callback of one subscription runs on a thread the client
// owns for it, one message at a time, never with a client lock held.
// SubscriptionHandle's methods may be called from any thread, including from
// inside the callback; moving, assigning or destroying a handle must not race
// with other calls on the same handle object.
#ifndef TSHARE_CLIENT_BUS_H_
#define TSHARE_CLIENT_BUS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "client/options.h"
#include "client/value.h"

namespace tshare::client {

namespace internal {
class SubscriptionCore;
}  // namespace internal

struct SubscribeOptions {
  // The server's flow control for this subscriber: what happens once
  // `max_queue` messages wait for it (0 = the server's default queue). kDefault
  // is kDropOldest.
  OverflowPolicy policy = OverflowPolicy::kDefault;
  uint32_t max_queue = 0;
  // The server sends a progress frame after this long without a message.
  absl::Duration progress_interval = absl::Seconds(5);
  // A stream that brings nothing for this long is taken for dead and
  // reconnected. Zero means 3 × progress_interval.
  absl::Duration dead_after = absl::ZeroDuration();
  // Messages the server may send in one frame when several wait for this
  // subscriber (1 to 1024; 1 = a frame per message). The callback still gets
  // them one by one, in order.
  uint32_t max_batch = 64;
  // Frames the client buffers ahead of a slow callback before it stops
  // reading.
  size_t max_buffered_frames = 256;
};

struct BusMessage {
  std::string topic;
  Value value;
  // The message's number in its topic.
  uint64_t sequence = 0;
  absl::Time published_at = absl::InfinitePast();
  // Messages of this topic that this subscriber did not get between the
  // previous message it got on the topic and this one, as the sequence numbers
  // show (a reconnect, or the server's drops). 0 for the first message of a
  // topic. After a server restart (sequences started over) it counts the
  // messages before this one since the restart.
  uint64_t missed = 0;
  // Set on the first message after the server dropped or conflated messages of
  // this subscription.
  std::optional<Loss> loss;
};

// Runs on the subscription's own thread; may call any client method, including
// Stop() of its own handle. An exception it throws is caught and counted
// (SubscriptionHandle::callback_exceptions).
using MessageCallback = absl::AnyInvocable<void(const BusMessage&)>;

// Owns one subscription: destroying the handle ends it. Move-only.
//
//   auto sub = client->Subscribe({"orders.*"}, [](const BusMessage& m) {
//   Handle(m); }); client->Publish("orders.new", Json{{"id", 7}});
class SubscriptionHandle final {
 public:
  SubscriptionHandle() = default;
  ~SubscriptionHandle() { Stop(); }

  SubscriptionHandle(SubscriptionHandle&& other) noexcept = default;
  // Stops the subscription this handle held before taking `other`'s.
  SubscriptionHandle& operator=(SubscriptionHandle&& other) noexcept;
  SubscriptionHandle(const SubscriptionHandle&) = delete;
  SubscriptionHandle& operator=(const SubscriptionHandle&) = delete;

  // Ends the subscription. When it returns no callback runs any more, except
  // when called from inside the callback: that one finishes and no other
  // follows. Idempotent.
  void Stop();

  // False once stopped, or ended by an error no reconnect can fix
  // (INVALID_ARGUMENT pattern).
  bool active() const;
  // Why the subscription ended; OK while active or after Stop().
  absl::Status status() const;
  // Streams opened after the first one.
  uint64_t reconnects() const;
  // Exceptions the callback threw. Each is caught and counted; the subscription
  // goes on.
  uint64_t callback_exceptions() const;
  // Blocks until the current stream has heard from the server (its response
  // headers or a first frame) or `deadline`; true if it has. Messages published
  // before the server registered the subscription are not delivered (the bus
  // keeps no history).
  bool WaitUntilConnected(absl::Time deadline) const;

 private:
  friend class Client;
  explicit SubscriptionHandle(std::shared_ptr<internal::SubscriptionCore> core)
      : core_(std::move(core)) {}

  std::shared_ptr<internal::SubscriptionCore> core_;
};

}  // namespace tshare::client

#endif  // TSHARE_CLIENT_BUS_H_
