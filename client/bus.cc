// The subscription machinery behind Client::Subscribe and SubscriptionHandle:
// one thread per subscription opens a Bus.Subscribe stream, delivers its
// messages, and reconnects with jittered backoff when the stream is lost or
// goes quiet for dead_after. The bus keeps no history, so the client tracks
// each topic's last sequence and reports the gap on the next message.
#include "client/bus.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/internal/connection.h"
#include "client/internal/convert.h"
#include "client/internal/read_stream.h"
#include "client/internal/subscription_core.h"
#include "client/internal/watch_core.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace tshare::client {
namespace internal {
namespace {

// The server's limit on SubscribeRequest.max_batch.
constexpr uint32_t kMaxBatch = 1024;

}  // namespace

SubscriptionCore::SubscriptionCore(std::shared_ptr<const Connection> conn,
                                   std::vector<std::string> patterns,
                                   SubscribeOptions options,
                                   MessageCallback callback)
    : conn_(std::move(conn)),
      patterns_(std::move(patterns)),
      options_(std::move(options)),
      dead_after_(options_.dead_after > absl::ZeroDuration()
                      ? options_.dead_after
                      : 3 * options_.progress_interval),
      callback_(std::move(callback)) {}

absl::Status SubscriptionCore::Validate(
    const std::vector<std::string>& patterns, const SubscribeOptions& options,
    bool has_callback) {
  if (!has_callback)
    return absl::InvalidArgumentError("Subscribe: the callback is empty");
  if (patterns.empty()) {
    return absl::InvalidArgumentError(
        "Subscribe: no patterns; pass topics or patterns such as \"orders.*\" "
        "or \"orders.>\"");
  }
  if (options.progress_interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SubscribeOptions::progress_interval=",
        absl::FormatDuration(options.progress_interval), " is below 10ms"));
  }
  if (options.max_batch < 1 || options.max_batch > kMaxBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("SubscribeOptions::max_batch=", options.max_batch,
                     " is outside 1..", kMaxBatch));
  }
  if (options.dead_after > absl::ZeroDuration() &&
      options.dead_after <= options.progress_interval) {
    return absl::InvalidArgumentError(
        absl::StrCat("SubscribeOptions::dead_after=",
                     absl::FormatDuration(options.dead_after),
                     " must exceed progress_interval=",
                     absl::FormatDuration(options.progress_interval),
                     " (or be 0 for 3 × progress_interval)"));
  }
  return absl::OkStatus();
}

void SubscriptionCore::Start() {
  std::shared_ptr<SubscriptionCore> self = shared_from_this();
  thread_.Start([self] { self->Run(); });
}

void SubscriptionCore::Stop() {
  thread_.Stop();
  absl::MutexLock lock(&mu_);
  active_ = false;
}

bool SubscriptionCore::active() const {
  absl::MutexLock lock(&mu_);
  return active_;
}
absl::Status SubscriptionCore::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}
uint64_t SubscriptionCore::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}
uint64_t SubscriptionCore::callback_exceptions() const {
  absl::MutexLock lock(&mu_);
  return callback_exceptions_;
}

bool SubscriptionCore::WaitUntilConnected(absl::Time deadline) const {
  std::shared_ptr<Stream> seen;
  while (true) {
    std::shared_ptr<Stream> stream;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !active_ || (current_ != nullptr && current_ != seen);
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
      if (!active_ || current_ == nullptr || current_ == seen) return false;
      stream = current_;
    }
    if (stream->WaitForHeaders(deadline)) return true;
    if (absl::Now() >= deadline) return false;
    seen = std::move(stream);
  }
}

void SubscriptionCore::Run() {
  const ClientOptions& client_options = conn_->options();
  Backoff backoff(client_options.reconnect_initial_backoff,
                  client_options.reconnect_max_backoff);
  v1::SubscribeRequest request;
  for (const std::string& pattern : patterns_) request.add_patterns(pattern);
  request.set_max_queue(options_.max_queue);
  request.set_policy(PolicyToProto(options_.policy));
  request.set_max_batch(options_.max_batch);
  const int64_t nanos = absl::ToInt64Nanoseconds(options_.progress_interval);
  request.mutable_progress_interval()->set_seconds(nanos / 1000000000);
  request.mutable_progress_interval()->set_nanos(
      static_cast<int32_t>(nanos % 1000000000));

  bool first = true;
  while (!thread_.stopped()) {
    auto stream = std::make_shared<Stream>(options_.max_buffered_frames);
    if (!thread_.SetCancel([stream] { stream->Cancel(); })) return;
    {
      absl::MutexLock lock(&mu_);
      current_ = stream;
      if (!first) ++reconnects_;
    }
    first = false;
    stream->Start([this, &request](grpc::ClientContext* ctx, Stream* r) {
      conn_->bus().async()->Subscribe(ctx, &request, r);
    });
    bool got_frame = false;
    const PumpEnd end = Pump(*stream, &got_frame);
    const grpc::Status status = stream->Finish();
    thread_.ClearCancel();
    {
      absl::MutexLock lock(&mu_);
      current_ = nullptr;
    }
    if (end == PumpEnd::kStopped || thread_.stopped()) return;
    if (end == PumpEnd::kStreamEnded &&
        IsTerminalStreamError(
            static_cast<absl::StatusCode>(status.error_code()))) {
      absl::MutexLock lock(&mu_);
      active_ = false;
      status_ = conn_->ToStatus(status);
      return;
    }
    if (got_frame) backoff.Reset();
    if (!thread_.SleepUntil(absl::Now() + backoff.Next())) return;
  }
}

SubscriptionCore::PumpEnd SubscriptionCore::Pump(Stream& stream,
                                                 bool* got_frame) {
  std::optional<Loss> pending_loss;
  v1::BusMessage frame;
  while (true) {
    switch (stream.Wait(&frame, dead_after_)) {
      case Stream::Next::kEnded:
        return PumpEnd::kStreamEnded;
      case Stream::Next::kIdle:
        return PumpEnd::kDead;
      case Stream::Next::kFrame:
        break;
    }
    *got_frame = true;
    if (frame.has_loss()) {
      const Loss loss = LossFromProto(frame.loss());
      if (!pending_loss.has_value()) pending_loss.emplace();
      pending_loss->dropped += loss.dropped;
      pending_loss->conflated += loss.conflated;
      pending_loss->total_dropped = loss.total_dropped;
      pending_loss->total_conflated = loss.total_conflated;
    }
    if (frame.kind() == v1::BusMessage::MESSAGE) {
      if (!DeliverFrame(frame, &pending_loss)) return PumpEnd::kStopped;
    } else if (frame.kind() == v1::BusMessage::BATCH) {
      for (const v1::BusMessage& m : frame.messages()) {
        if (!DeliverFrame(m, &pending_loss)) return PumpEnd::kStopped;
      }
    }
  }
}

bool SubscriptionCore::DeliverFrame(const v1::BusMessage& frame,
                                    std::optional<Loss>* pending_loss) {
  absl::StatusOr<Value> value = ValueFromProto(frame.value());
  if (!value.ok()) return true;
  BusMessage message;
  message.topic = frame.topic();
  message.value = *std::move(value);
  message.sequence = frame.sequence();
  if (frame.has_published_at()) {
    message.published_at =
        absl::FromUnixSeconds(frame.published_at().seconds()) +
        absl::Nanoseconds(frame.published_at().nanos());
  }
  auto [it, inserted] =
      last_sequence_.try_emplace(message.topic, message.sequence);
  if (!inserted) {
    const uint64_t last = it->second;
    // A sequence at or below the last one means the server started over.
    message.missed = message.sequence > last ? message.sequence - last - 1
                                             : message.sequence - 1;
    it->second = message.sequence;
  }
  message.loss = std::exchange(*pending_loss, std::nullopt);
  return Deliver(message);
}

bool SubscriptionCore::Deliver(const BusMessage& message) {
  if (thread_.stopped()) return false;
#ifdef ABSL_HAVE_EXCEPTIONS
  try {
    callback_(message);
  } catch (...) {
    // A callback's exception must not end the process or the subscription; it
    // is counted.
    absl::MutexLock lock(&mu_);
    ++callback_exceptions_;
  }
#else
  callback_(message);
#endif
  return !thread_.stopped();
}

}  // namespace internal

SubscriptionHandle& SubscriptionHandle::operator=(
    SubscriptionHandle&& other) noexcept {
  if (this != &other) {
    Stop();
    core_ = std::move(other.core_);
  }
  return *this;
}

void SubscriptionHandle::Stop() {
  if (core_ != nullptr) core_->Stop();
}
bool SubscriptionHandle::active() const {
  return core_ != nullptr && core_->active();
}
absl::Status SubscriptionHandle::status() const {
  return core_ == nullptr ? absl::OkStatus() : core_->status();
}
uint64_t SubscriptionHandle::reconnects() const {
  return core_ == nullptr ? 0 : core_->reconnects();
}
uint64_t SubscriptionHandle::callback_exceptions() const {
  return core_ == nullptr ? 0 : core_->callback_exceptions();
}
bool SubscriptionHandle::WaitUntilConnected(absl::Time deadline) const {
  return core_ != nullptr && core_->WaitUntilConnected(deadline);
}

}  // namespace tshare::client
