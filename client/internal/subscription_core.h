// SubscriptionCore: the state and the thread of one bus subscription.
//
// Thread-safety: Stop and the accessors may be called from any thread; Start
// once, by the creating thread. The loop and the callback run on the
// subscription's own thread.
#ifndef TSHARE_CLIENT_INTERNAL_SUBSCRIPTION_CORE_H_
#define TSHARE_CLIENT_INTERNAL_SUBSCRIPTION_CORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/bus.h"
#include "client/internal/connection.h"
#include "client/internal/read_stream.h"
#include "client/internal/stream_thread.h"
#include "tshare/v1/bus.pb.h"

namespace tshare::client::internal {

class SubscriptionCore final
    : public std::enable_shared_from_this<SubscriptionCore> {
 public:
  SubscriptionCore(std::shared_ptr<const Connection> conn,
                   std::vector<std::string> patterns, SubscribeOptions options,
                   MessageCallback callback);
  SubscriptionCore(const SubscriptionCore&) = delete;
  SubscriptionCore& operator=(const SubscriptionCore&) = delete;

  static absl::Status Validate(const std::vector<std::string>& patterns,
                               const SubscribeOptions& options,
                               bool has_callback);

  void Start();
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  bool active() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status status() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t reconnects() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t callback_exceptions() const ABSL_LOCKS_EXCLUDED(mu_);
  bool WaitUntilConnected(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using Stream = ReadStream<v1::BusMessage>;
  enum class PumpEnd { kStreamEnded, kDead, kStopped };

  void Run();
  PumpEnd Pump(Stream& stream, bool* got_frame);
  // One MESSAGE (a frame, or one of a BATCH frame's) to the callback, with the
  // loss noted since the last delivery; false once stopped.
  bool DeliverFrame(const v1::BusMessage& frame,
                    std::optional<Loss>* pending_loss);
  bool Deliver(const BusMessage& message);

  const std::shared_ptr<const Connection> conn_;
  const std::vector<std::string> patterns_;
  const SubscribeOptions options_;
  const absl::Duration dead_after_;
  // Only the subscription's thread touches these two.
  MessageCallback callback_;
  // The last sequence seen per topic, across reconnects.
  absl::flat_hash_map<std::string, uint64_t> last_sequence_;
  StreamThread thread_;

  mutable absl::Mutex mu_;
  bool active_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  uint64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  // The open stream, for WaitUntilConnected.
  std::shared_ptr<Stream> current_ ABSL_GUARDED_BY(mu_);
  uint64_t callback_exceptions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tshare::client::internal

#endif  // TSHARE_CLIENT_INTERNAL_SUBSCRIPTION_CORE_H_
