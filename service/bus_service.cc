#include "service/bus_service.h"

#include <algorithm>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/grpc_status.h"
#include "service/errors.h"
#include "service/internal/stream_pump.h"

namespace tshare::service {
namespace {

constexpr absl::Duration kMinProgressInterval = absl::Milliseconds(10);
// The most messages a subscriber may ask for in one BATCH frame.
constexpr uint32_t kMaxBatch = 1024;
// A BATCH frame stops growing at about this many bytes of topics and values,
// well below a client's default 4 MiB receive limit.
constexpr size_t kMaxBatchBytes = 1 << 20;

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

grpc::Status Unavailable() { return ToGrpcStatus(ShuttingDown()); }

}  // namespace

namespace bus_internal {

// One message waiting in a subscriber's queue. The value is the publisher's,
// shared by every subscriber (never copied per subscriber).
struct PendingMessage {
  std::string topic;
  std::shared_ptr<const v1::Value> value;
  uint64_t sequence = 0;
  absl::Time published_at;
};

class SubscribeReactor;

// The state of one Subscribe stream, shared by its reactor, its bus handler
// (which runs on the publishing thread, or on the pool when a delivery is
// already under way) and the service's ticker.
class SubscriberStream final : public internal::StreamPump<v1::BusMessage> {
 public:
  SubscriberStream(SubscribeReactor* reactor,
                   grpc::CallbackServerContext* context,
                   std::vector<std::string> patterns,
                   BusService::SubscribeParams params)
      : reactor_(reactor),
        context_(context),
        peer_(context->peer()),
        patterns_(std::move(patterns)),
        params_(params) {
    absl::MutexLock lock(&mu_);
    last_sent_ = absl::Now();
  }

  ~SubscriberStream() override {
    absl::MutexLock lock(&mu_);
    ReleaseCurrentLocked();
  }

  void SetSubscription(core::Subscription subscription)
      ABSL_LOCKS_EXCLUDED(sub_mu_) {
    id_ = subscription.Stats().id;
    absl::MutexLock lock(&sub_mu_);
    subscription_ = std::move(subscription);
  }
  // Stops bus delivery; once it returns the handler does not run any more.
  void Unsubscribe() ABSL_LOCKS_EXCLUDED(sub_mu_) {
    absl::MutexLock lock(&sub_mu_);
    subscription_.Unsubscribe();
  }
  uint64_t id() const { return id_; }
  const std::vector<std::string>& patterns() const { return patterns_; }

  // The bus handler: queues the message under this subscriber's policy.
  void Offer(const core::Message& message) ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<const v1::Value> value = message.payload.Share<v1::Value>();
    if (value == nullptr) return;  // not published through the Bus service
    std::optional<grpc::Status> close;
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_locked()) return;
      if (queue_.size() >= params_.max_queue) {
        switch (params_.policy) {
          case v1::DROP_NEWEST:
            NoteDroppedLocked(1);
            return;
          case v1::CLOSE:
            close = CloseLocked();
            break;
          case v1::CONFLATE: {
            auto newest = newest_by_topic_.find(message.topic);
            if (newest != newest_by_topic_.end()) {
              PendingMessage& pending = *newest->second;
              pending.value = std::move(value);
              pending.sequence = message.sequence;
              pending.published_at = message.published_at;
              ++conflated_since_;
              ++total_conflated_;
              return;
            }
            // The oldest pending message makes room. If a newer message of
            // its topic is pending too, the topic's newest survives: that is a
            // conflation. Otherwise the topic loses its latest: a drop.
            auto oldest = newest_by_topic_.find(queue_.front().topic);
            const bool superseded = oldest != newest_by_topic_.end() &&
                                    oldest->second != queue_.begin();
            PopFrontLocked();
            if (superseded) {
              ++conflated_since_;
              ++total_conflated_;
            } else {
              NoteDroppedLocked(1);
            }
            break;
          }
          default:  // DROP_OLDEST
            PopFrontLocked();
            NoteDroppedLocked(1);
            break;
        }
      }
      if (!close.has_value()) {
        queue_.push_back(PendingMessage{message.topic, std::move(value),
                                        message.sequence,
                                        message.published_at});
        if (params_.policy == v1::CONFLATE) {
          newest_by_topic_[message.topic] = std::prev(queue_.end());
        }
      }
    }
    if (close.has_value()) {
      RequestFinish(*close);
    } else {
      Pump();
    }
  }

  // Called by the ticker: sends a PROGRESS frame if the stream has been idle
  // for its progress interval, folds in messages the core bus dropped, and
  // returns when it wants to be called again.
  absl::Time Tick(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::Time due;
    bool progress = false;
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_locked()) return absl::InfiniteFuture();
      due = last_sent_ + params_.progress_interval;
      if (now < due) return due;
      if (!writing_locked() && queue_.empty()) {
        progress_due_ = true;
        progress = true;
      }
      due = now + params_.progress_interval;
    }
    uint64_t core_dropped;
    {
      absl::MutexLock lock(&sub_mu_);
      core_dropped = subscription_.Stats().dropped;
    }
    {
      absl::MutexLock lock(&mu_);
      if (core_dropped > core_dropped_seen_) {
        NoteDroppedLocked(core_dropped - core_dropped_seen_);
        core_dropped_seen_ = core_dropped;
      }
    }
    if (progress) Pump();
    return due;
  }

  struct Totals {
    uint64_t delivered = 0;
    uint64_t dropped = 0;
    uint64_t conflated = 0;
  };
  Totals totals() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return Totals{delivered_, total_dropped_ + total_conflated_,
                  total_conflated_};
  }

  v1::SubscriptionInfo Info() const ABSL_LOCKS_EXCLUDED(mu_) {
    v1::SubscriptionInfo info;
    info.set_kind(v1::SubscriptionInfo::SUBSCRIPTION);
    info.set_id(id_);
    info.set_peer(peer_);
    for (const std::string& p : patterns_) info.add_targets(p);
    info.set_max_queue(static_cast<uint32_t>(params_.max_queue));
    info.set_policy(params_.policy);
    absl::MutexLock lock(&mu_);
    info.set_lag(queue_.size());
    info.set_queue_depth(queue_.size());
    info.set_delivered(delivered_);
    info.set_dropped(total_dropped_);
    info.set_conflated(total_conflated_);
    return info;
  }

  bool Matches(std::string_view topic) const {
    for (const std::string& pattern : patterns_) {
      if (core::MessageBus::Matches(pattern, topic)) return true;
    }
    return false;
  }

 protected:
  const v1::BusMessage* NextFrameLocked() override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!queue_.empty()) {
      // As many waiting messages as max_batch allows, and as fit in
      // kMaxBatchBytes (a single message may be larger: it goes alone).
      size_t n = 0;
      size_t bytes = 0;
      for (auto it = queue_.begin();
           it != queue_.end() && n < params_.max_batch; ++it) {
        const size_t size = it->topic.size() + it->value->ByteSizeLong();
        if (n > 0 && bytes + size > kMaxBatchBytes) break;
        bytes += size;
        ++n;
      }
      if (n > 1) {
        current_.set_kind(v1::BusMessage::BATCH);
        for (size_t i = 0; i < n; ++i)
          TakeMessageLocked(current_.add_messages());
      } else {
        TakeMessageLocked(&current_);
      }
    } else if (progress_due_) {
      current_.set_kind(v1::BusMessage::PROGRESS);
    } else {
      return nullptr;
    }
    progress_due_ = false;
    if (dropped_since_ > 0 || conflated_since_ > 0) {
      v1::Loss* loss = current_.mutable_loss();
      loss->set_dropped(dropped_since_);
      loss->set_conflated(conflated_since_);
      loss->set_total_dropped(total_dropped_);
      loss->set_total_conflated(total_conflated_);
      dropped_since_ = 0;
      conflated_since_ = 0;
    }
    last_sent_ = absl::Now();
    return &current_;
  }

  void WriteDoneLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ReleaseCurrentLocked();
  }

  bool MoreQueuedLocked() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty();
  }

  void DiscardLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.clear();
    newest_by_topic_.clear();
  }

  void StartWriteFrame(const v1::BusMessage* frame,
                       grpc::WriteOptions options) override;
  void FinishStream(const grpc::Status& status) override;

 private:
  // CLOSE with a full queue: the status that ends the stream, naming the first
  // message that was not delivered (the oldest queued one).
  grpc::Status CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const PendingMessage& first = queue_.front();
    resume_topic_ = first.topic;
    resume_sequence_ = first.sequence;
    NoteDroppedLocked(queue_.size() + 1);
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat(
            "subscriber too slow: ", params_.max_queue,
            " messages were waiting (max_queue) and the policy is CLOSE; the "
            "first "
            "message not delivered is \"",
            resume_topic_, "\" sequence ", resume_sequence_,
            " (trailing metadata tshare-resume-topic and "
            "tshare-resume-sequence); "
            "subscribe again, with a larger max_queue or another policy"));
  }

  // Removes and returns the oldest queued message (forgetting it as its topic's
  // newest).
  PendingMessage PopFrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (params_.policy == v1::CONFLATE) {
      auto newest = newest_by_topic_.find(queue_.front().topic);
      if (newest != newest_by_topic_.end() &&
          newest->second == queue_.begin()) {
        newest_by_topic_.erase(newest);
      }
    }
    PendingMessage message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }

  void NoteDroppedLocked(uint64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    dropped_since_ += n;
    total_dropped_ += n;
  }

  // Moves the oldest queued message into `out` (the frame, or one message of a
  // BATCH frame). The frame borrows the shared value for the time of the
  // write: no copy per subscriber. ReleaseCurrentLocked() hands it back before
  // anything else touches current_.
  void TakeMessageLocked(v1::BusMessage* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    PendingMessage message = PopFrontLocked();
    out->set_kind(v1::BusMessage::MESSAGE);
    out->set_topic(std::move(message.topic));
    out->set_sequence(message.sequence);
    ToTimestamp(message.published_at, out->mutable_published_at());
    out->unsafe_arena_set_allocated_value(
        const_cast<v1::Value*>(message.value.get()));
    current_values_.push_back(std::move(message.value));
    ++delivered_;
  }

  void ReleaseCurrentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!current_values_.empty()) {
      if (current_.kind() == v1::BusMessage::BATCH) {
        for (v1::BusMessage& m : *current_.mutable_messages()) {
          m.unsafe_arena_release_value();
        }
      } else {
        current_.unsafe_arena_release_value();
      }
      current_values_.clear();
    }
    // Keeps the BATCH frame's message objects for the next batch.
    current_.Clear();
  }

  SubscribeReactor* const
      reactor_;  // alive until FinishStream (see StreamPump)
  grpc::CallbackServerContext* const context_;
  const std::string peer_;
  const std::vector<std::string> patterns_;
  const BusService::SubscribeParams params_;
  // Set once before the stream is registered anywhere else.
  uint64_t id_ = 0;
  // Never held together with mu_ (the handler takes mu_ while Unsubscribe waits
  // for it).
  absl::Mutex sub_mu_;
  core::Subscription subscription_ ABSL_GUARDED_BY(sub_mu_);

  std::list<PendingMessage> queue_ ABSL_GUARDED_BY(mu_);
  // CONFLATE only: the newest queued message of each topic.
  absl::flat_hash_map<std::string, std::list<PendingMessage>::iterator>
      newest_by_topic_ ABSL_GUARDED_BY(mu_);
  // The frame being written and the shared values it borrows.
  v1::BusMessage current_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<const v1::Value>> current_values_
      ABSL_GUARDED_BY(mu_);
  bool progress_due_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_sent_ ABSL_GUARDED_BY(mu_);
  uint64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_since_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t conflated_since_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t total_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t total_conflated_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t core_dropped_seen_ ABSL_GUARDED_BY(mu_) = 0;
  // CLOSE: where to resume.
  std::string resume_topic_ ABSL_GUARDED_BY(mu_);
  uint64_t resume_sequence_ ABSL_GUARDED_BY(mu_) = 0;
};

// The gRPC side of one Subscribe call; deletes itself in OnDone.
class SubscribeReactor final : public grpc::ServerWriteReactor<v1::BusMessage> {
 public:
  explicit SubscribeReactor(BusService* service) : service_(service) {}

  void set_stream(std::shared_ptr<SubscriberStream> stream) {
    stream_ = std::move(stream);
  }

  void OnWriteDone(bool ok) override { stream_->OnWritten(ok); }
  void OnCancel() override {
    if (stream_ != nullptr) {
      stream_->RequestFinish(
          grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"));
    }
  }
  void OnDone() override {
    if (stream_ != nullptr) {
      stream_->Unsubscribe();
      service_->Unregister(stream_->id());
    }
    delete this;
  }

 private:
  BusService* const service_;
  // Set before the reactor is returned to gRPC; null when the call was refused
  // at once.
  std::shared_ptr<SubscriberStream> stream_;
};

void SubscriberStream::StartWriteFrame(const v1::BusMessage* frame,
                                       grpc::WriteOptions options) {
  reactor_->StartWrite(frame, options);
}

void SubscriberStream::FinishStream(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    std::string topic;
    uint64_t sequence;
    {
      absl::MutexLock lock(&mu_);
      topic = resume_topic_;
      sequence = resume_sequence_;
    }
    context_->AddTrailingMetadata(kResumeSequenceMetadata,
                                  absl::StrCat(sequence));
    context_->AddTrailingMetadata("tshare-resume-topic", topic);
  }
  reactor_->Finish(status);
}

}  // namespace bus_internal

using bus_internal::SubscribeReactor;
using bus_internal::SubscriberStream;

BusService::BusService(core::MessageBus* bus, const ServerOptions& options)
    : bus_(bus), options_(options) {
  ticker_ = std::thread([this] { TickerLoop(); });
}

BusService::~BusService() {
  BeginShutdown();
  {
    absl::MutexLock lock(&mu_);
    ticker_stop_ = true;
  }
  ticker_.join();
}

absl::Status BusService::ValidateTopic(absl::string_view topic) const {
  if (topic.empty()) {
    return absl::InvalidArgumentError(
        "topic is empty; give a dot-separated topic such as \"orders.new\"");
  }
  if (topic.size() > options_.max_topic_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topic of ", topic.size(), " bytes exceeds --max_topic_bytes=",
        options_.max_topic_bytes, "; use a shorter topic"));
  }
  for (absl::string_view segment : absl::StrSplit(topic, '.')) {
    if (segment == "*" || segment == ">") {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic \"", topic, "\" contains the wildcard \"", segment,
          "\"; Publish needs a concrete topic such as \"orders.new\" "
          "(wildcards are for Subscribe)"));
    }
  }
  return core::MessageBus::ValidateTopic(
      std::string_view(topic.data(), topic.size()));
}

absl::StatusOr<BusService::SubscribeParams> BusService::ValidateSubscribe(
    const v1::SubscribeRequest& request) const {
  if (request.patterns().empty()) {
    return absl::InvalidArgumentError(
        "patterns is empty; give at least one topic or pattern, e.g. "
        "[\"orders.*\"]");
  }
  if (static_cast<size_t>(request.patterns_size()) >
      options_.max_subscriptions_per_stream) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.patterns_size(),
                     " patterns exceed --max_subscriptions_per_stream=",
                     options_.max_subscriptions_per_stream,
                     "; use wildcards or several streams"));
  }
  for (const std::string& pattern : request.patterns()) {
    if (pattern.size() > options_.max_topic_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pattern of ", pattern.size(), " bytes exceeds --max_topic_bytes=",
          options_.max_topic_bytes, "; use a shorter pattern"));
    }
    if (absl::Status s = core::MessageBus::ValidatePattern(pattern); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pattern \"", pattern, "\": ", s.message()));
    }
  }
  SubscribeParams params;
  params.max_queue = request.max_queue() == 0 ? options_.subscription_queue
                                              : request.max_queue();
  if (params.max_queue > options_.max_subscription_queue) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_queue=", request.max_queue(),
        " exceeds --max_subscription_queue=", options_.max_subscription_queue));
  }
  if (!v1::OverflowPolicy_IsValid(request.policy())) {
    return EnumValueInvalid("policy", request.policy());
  }
  if (request.max_batch() > kMaxBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch=", request.max_batch(), " exceeds ", kMaxBatch,
                     "; ask for at most ", kMaxBatch, " messages per frame"));
  }
  params.max_batch = std::max<size_t>(1, request.max_batch());
  params.policy = request.policy() == v1::OVERFLOW_POLICY_UNSPECIFIED
                      ? v1::DROP_OLDEST
                      : request.policy();
  params.progress_interval = options_.progress_interval;
  if (request.has_progress_interval()) {
    const google::protobuf::Duration& d = request.progress_interval();
    if (d.nanos() <= -1000000000 || d.nanos() >= 1000000000 ||
        (d.seconds() > 0 && d.nanos() < 0) ||
        (d.seconds() < 0 && d.nanos() > 0)) {
      return DurationInvalid("progress_interval");
    }
    params.progress_interval =
        absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    if (params.progress_interval < kMinProgressInterval) {
      return ProgressIntervalTooShort(params.progress_interval,
                                      kMinProgressInterval);
    }
  }
  return params;
}

absl::Status BusService::PublishMessage(const v1::PublishRequest& request,
                                        v1::PublishResponse* response) {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return ShuttingDown();
  }
  if (absl::Status s = ValidateTopic(request.topic()); !s.ok()) return s;
  if (!request.has_value() ||
      request.value().kind_case() == v1::Value::KIND_NOT_SET) {
    return ValueMissing("value");
  }
  const size_t value_bytes = request.value().ByteSizeLong();
  if (value_bytes > options_.max_value_bytes) {
    return ValueTooLarge(value_bytes, options_.max_value_bytes);
  }
  auto value = std::make_shared<const v1::Value>(request.value());
  absl::StatusOr<uint64_t> sequence = bus_->Publish(
      request.topic(), core::Payload::FromShared(std::move(value)));
  if (!sequence.ok()) return sequence.status();
  uint64_t receivers = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, stream] : streams_) {
      if (stream->Matches(request.topic())) ++receivers;
    }
  }
  response->set_sequence(*sequence);
  response->set_receivers(receivers);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* BusService::Publish(
    grpc::CallbackServerContext* context, const v1::PublishRequest* request,
    v1::PublishResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(PublishMessage(*request, response)));
  return reactor;
}

grpc::ServerWriteReactor<v1::BusMessage>* BusService::Subscribe(
    grpc::CallbackServerContext* context, const v1::SubscribeRequest* request) {
  auto* reactor = new SubscribeReactor(this);
  absl::StatusOr<SubscribeParams> params = ValidateSubscribe(*request);
  if (!params.ok()) {
    reactor->Finish(ToGrpcStatus(params.status()));
    return reactor;
  }
  std::vector<std::string> patterns(request->patterns().begin(),
                                    request->patterns().end());
  auto stream =
      std::make_shared<SubscriberStream>(reactor, context, patterns, *params);
  core::SubscribeOptions subscribe_options;
  // The stream's own queue applies the subscriber's policy; the core queue only
  // holds messages while a delivery is under way. The handler never blocks
  // (it queues and, if the stream is idle, starts a write), so the publishing
  // thread runs it: no hand-off to a pool thread per message.
  subscribe_options.max_queue =
      std::max(options_.max_subscription_queue, params->max_queue);
  subscribe_options.policy = core::OverflowPolicy::kDropOldest;
  subscribe_options.deliver_on_publisher = true;
  absl::StatusOr<core::Subscription> subscription = bus_->SubscribeAny(
      std::move(patterns),
      [weak = std::weak_ptr<SubscriberStream>(stream)](
          const core::Message& message) {
        if (std::shared_ptr<SubscriberStream> s = weak.lock())
          s->Offer(message);
      },
      subscribe_options);
  if (!subscription.ok()) {
    reactor->Finish(ToGrpcStatus(subscription.status()));
    return reactor;
  }
  stream->SetSubscription(*std::move(subscription));
  reactor->set_stream(stream);
  Register(std::move(stream));
  return reactor;
}

void BusService::Register(std::shared_ptr<SubscriberStream> stream) {
  {
    absl::MutexLock lock(&mu_);
    if (!shutting_down_) {
      streams_[stream->id()] = stream;
      ++generation_;
      return;
    }
  }
  stream->RequestFinish(Unavailable());
}

void BusService::Unregister(uint64_t id) {
  // Released after the lock.
  std::shared_ptr<SubscriberStream> stream;
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  SubscriberStream::Totals totals = it->second->totals();
  closed_delivered_ += totals.delivered;
  closed_dropped_ += totals.dropped;
  closed_conflated_ += totals.conflated;
  stream = std::move(it->second);
  streams_.erase(it);
  ++generation_;
}

void BusService::BeginShutdown() {
  std::vector<std::shared_ptr<SubscriberStream>> streams;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (const auto& [id, stream] : streams_) streams.push_back(stream);
  }
  for (const auto& stream : streams) stream->RequestFinish(Unavailable());
}

BusServiceStats BusService::Stats() const {
  core::MessageBusStats core_stats = bus_->Stats();
  BusServiceStats stats;
  stats.published = core_stats.published;
  stats.topics = core_stats.topics;
  absl::MutexLock lock(&mu_);
  stats.subscriptions = streams_.size();
  stats.delivered = closed_delivered_;
  stats.dropped = closed_dropped_;
  stats.conflated = closed_conflated_;
  for (const auto& [id, stream] : streams_) {
    SubscriberStream::Totals totals = stream->totals();
    stats.delivered += totals.delivered;
    stats.dropped += totals.dropped;
    stats.conflated += totals.conflated;
  }
  return stats;
}

std::vector<v1::SubscriptionInfo> BusService::ListSubscriptions() const {
  std::vector<std::shared_ptr<SubscriberStream>> streams;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, stream] : streams_) streams.push_back(stream);
  }
  std::sort(streams.begin(), streams.end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  std::vector<v1::SubscriptionInfo> infos;
  infos.reserve(streams.size());
  for (const auto& stream : streams) infos.push_back(stream->Info());
  return infos;
}

void BusService::TickerLoop() {
  mu_.Lock();
  while (!ticker_stop_) {
    ticker_generation_ = generation_;
    std::vector<std::shared_ptr<SubscriberStream>> streams;
    streams.reserve(streams_.size());
    for (const auto& [id, stream] : streams_) streams.push_back(stream);
    mu_.Unlock();
    const absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    for (const auto& stream : streams) next = std::min(next, stream->Tick(now));
    streams.clear();
    mu_.Lock();
    mu_.AwaitWithDeadline(absl::Condition(this, &BusService::TickerShouldWake),
                          next);
  }
  mu_.Unlock();
}

}  // namespace tshare::service
