// The watch machinery behind Client::Watch and WatchHandle.
//
// One thread per watch runs a loop: learn the store's identity (a one-key
// List), open a Watch stream from where the last one left off, deliver its
// frames to the callback, and when the stream ends (a lost connection, a server
// restart, no frame for dead_after) back off and do it again. Resume point: the
// stream restarts at the last delivered revision, dropping the events of that
// revision already delivered (a transaction's events may span two frames), or
// right after it when that revision was delivered whole (a progress frame, a
// snapshot). A different store_id means revisions started over: the next stream
// asks for a snapshot, which reaches the callback as one kResync update.
#include "client/watch.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/internal/connection.h"
#include "client/internal/convert.h"
#include "client/internal/read_stream.h"
#include "client/internal/stream_thread.h"
#include "client/internal/watch_core.h"
#include "google/protobuf/duration.pb.h"

namespace tshare::client {
namespace internal {
namespace {

void ToProtoDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

void AddLoss(const v1::Loss& loss, std::optional<Loss>& pending) {
  if (!pending.has_value()) pending.emplace();
  const Loss l = LossFromProto(loss);
  pending->dropped += l.dropped;
  pending->conflated += l.conflated;
  pending->total_dropped = l.total_dropped;
  pending->total_conflated = l.total_conflated;
}

}  // namespace

bool IsTerminalStreamError(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

WatchCore::WatchCore(std::shared_ptr<const Connection> conn, std::string target,
                     WatchOptions options, WatchCallback callback)
    : conn_(std::move(conn)),
      target_(std::move(target)),
      options_(std::move(options)),
      dead_after_(options_.dead_after > absl::ZeroDuration()
                      ? options_.dead_after
                      : 3 * options_.progress_interval),
      callback_(std::move(callback)) {}

absl::Status WatchCore::Validate(const WatchOptions& options,
                                 bool has_callback) {
  if (!has_callback)
    return absl::InvalidArgumentError("Watch: the callback is empty");
  if (options.progress_interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WatchOptions::progress_interval=",
        absl::FormatDuration(options.progress_interval), " is below 10ms"));
  }
  if (options.dead_after > absl::ZeroDuration() &&
      options.dead_after <= options.progress_interval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WatchOptions::dead_after=", absl::FormatDuration(options.dead_after),
        " must exceed progress_interval=",
        absl::FormatDuration(options.progress_interval),
        " (or be 0 for 3 × progress_interval)"));
  }
  if (options.snapshot && options.start_revision != 0) {
    return absl::InvalidArgumentError(
        "WatchOptions: snapshot starts from the current state; leave "
        "start_revision at 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<WatchCore::Probe> WatchCore::ProbeStore(
    absl::Time deadline) const {
  v1::ListRequest request;
  request.set_prefix(target_);
  request.set_page_size(1);
  request.set_keys_only(true);
  absl::StatusOr<v1::ListResponse> response = CallSync<v1::ListResponse>(
      *conn_, deadline, request,
      [this](grpc::ClientContext* ctx, const v1::ListRequest& req,
             v1::ListResponse* resp) {
        return conn_->shares().List(ctx, req, resp);
      });
  if (!response.ok()) return response.status();
  return Probe{response->store_id(), response->revision()};
}

absl::Status WatchCore::Init(absl::Time deadline) {
  absl::StatusOr<Probe> probe = ProbeStore(deadline);
  if (!probe.ok()) return probe.status();
  absl::MutexLock lock(&mu_);
  store_id_ = probe->store_id;
  need_snapshot_ = options_.snapshot;
  if (options_.start_revision > 0) {
    // Deliver from start_revision on: as if everything before had been
    // delivered whole.
    last_revision_ = options_.start_revision - 1;
  } else {
    last_revision_ = probe->revision;
  }
  return absl::OkStatus();
}

void WatchCore::Start() {
  std::shared_ptr<WatchCore> self = shared_from_this();
  thread_.Start([self] { self->Run(); });
}

void WatchCore::Stop() {
  thread_.Stop();
  absl::MutexLock lock(&mu_);
  active_ = false;
}

bool WatchCore::active() const {
  absl::MutexLock lock(&mu_);
  return active_;
}
uint64_t WatchCore::last_revision() const {
  absl::MutexLock lock(&mu_);
  return last_revision_;
}
std::string WatchCore::store_id() const {
  absl::MutexLock lock(&mu_);
  return store_id_;
}
uint64_t WatchCore::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}
uint64_t WatchCore::callback_exceptions() const {
  absl::MutexLock lock(&mu_);
  return callback_exceptions_;
}

v1::WatchRequest WatchCore::MakeRequest(uint64_t* floor) const {
  v1::WatchRequest request;
  if (options_.prefix) {
    request.set_prefix(target_);
  } else {
    request.set_key(target_);
  }
  request.set_on_compacted(options_.fail_on_compacted ? v1::FAIL : v1::RESYNC);
  request.set_max_queue(options_.max_queue);
  request.set_policy(PolicyToProto(options_.policy));
  ToProtoDuration(options_.progress_interval,
                  request.mutable_progress_interval());
  request.set_prev_kv(options_.prev_kv);
  absl::MutexLock lock(&mu_);
  if (need_snapshot_) {
    request.set_snapshot(true);
    *floor = 0;
  } else if (!keys_at_last_.empty()) {
    // The last revision may not have been delivered whole: ask for it again;
    // its events already delivered are dropped by key.
    request.set_start_revision(last_revision_);
    *floor = last_revision_;
  } else {
    request.set_start_revision(last_revision_ + 1);
    *floor = last_revision_ + 1;
  }
  return request;
}

void WatchCore::Run() {
  const ClientOptions& client_options = conn_->options();
  Backoff backoff(client_options.reconnect_initial_backoff,
                  client_options.reconnect_max_backoff);
  bool first = true;
  while (!thread_.stopped()) {
    std::string expected_store;
    if (first) {
      absl::MutexLock lock(&mu_);
      expected_store = store_id_;
    } else {
      absl::StatusOr<Probe> probe =
          ProbeStore(absl::Now() + client_options.default_deadline);
      if (!probe.ok()) {
        if (IsTerminalStreamError(probe.status().code())) {
          End(probe.status());
          return;
        }
        if (!thread_.SleepUntil(absl::Now() + backoff.Next())) return;
        continue;
      }
      expected_store = probe->store_id;
      absl::MutexLock lock(&mu_);
      if (expected_store != store_id_) {
        need_snapshot_ = true;
        store_changed_ = true;
      }
    }
    first = false;

    uint64_t floor = 0;
    const v1::WatchRequest request = MakeRequest(&floor);
    auto stream = std::make_shared<ReadStream<v1::WatchEvent>>(
        options_.max_buffered_frames);
    if (!thread_.SetCancel([stream] { stream->Cancel(); })) return;
    stream->Start([this, &request](grpc::ClientContext* ctx,
                                   ReadStream<v1::WatchEvent>* r) {
      conn_->shares().async()->Watch(ctx, &request, r);
    });
    bool got_frame = false;
    const PumpEnd end = Pump(*stream, expected_store, floor, &got_frame);
    const grpc::Status status = stream->Finish();
    thread_.ClearCancel();
    if (end == PumpEnd::kStopped || thread_.stopped()) return;
    if (end == PumpEnd::kStreamEnded &&
        IsTerminalStreamError(
            static_cast<absl::StatusCode>(status.error_code()))) {
      End(conn_->ToStatus(status));
      return;
    }
    if (got_frame) backoff.Reset();
    {
      absl::MutexLock lock(&mu_);
      ++reconnects_;
    }
    // A store change found mid-stream reconnects at once; anything else backs
    // off.
    if (end != PumpEnd::kStoreChanged &&
        !thread_.SleepUntil(absl::Now() + backoff.Next())) {
      return;
    }
  }
}

WatchCore::PumpEnd WatchCore::Pump(ReadStream<v1::WatchEvent>& stream,
                                   const std::string& expected_store,
                                   uint64_t floor, bool* got_frame) {
  std::optional<WatchUpdate>
      resync;  // Being assembled between RESYNC_BEGIN and RESYNC_END.
  std::optional<Loss> pending_loss;
  v1::WatchEvent frame;
  while (true) {
    switch (stream.Wait(&frame, dead_after_)) {
      case ReadStream<v1::WatchEvent>::Next::kEnded:
        return PumpEnd::kStreamEnded;
      case ReadStream<v1::WatchEvent>::Next::kIdle:
        return PumpEnd::kDead;
      case ReadStream<v1::WatchEvent>::Next::kFrame:
        break;
    }
    *got_frame = true;
    if (!frame.store_id().empty() && frame.store_id() != expected_store) {
      // The server restarted between the probe and this stream.
      absl::MutexLock lock(&mu_);
      need_snapshot_ = true;
      store_changed_ = true;
      return PumpEnd::kStoreChanged;
    }
    if (frame.has_loss()) AddLoss(frame.loss(), pending_loss);
    switch (frame.kind()) {
      case v1::WatchEvent::CHANGES: {
        WatchUpdate update;
        update.kind = WatchUpdate::Kind::kChanges;
        update.store_id = expected_store;
        {
          absl::MutexLock lock(&mu_);
          for (const v1::Event& event : frame.events()) {
            const uint64_t revision = event.kv().mod_revision();
            if (revision < floor || revision < last_revision_) continue;
            if (revision == last_revision_ &&
                keys_at_last_.contains(event.kv().key()))
              continue;
            absl::StatusOr<WatchEvent> converted = ConvertEvent(event);
            if (!converted.ok()) continue;
            if (revision > last_revision_) {
              last_revision_ = revision;
              keys_at_last_.clear();
            }
            keys_at_last_.insert(event.kv().key());
            update.events.push_back(*std::move(converted));
          }
          update.revision = last_revision_;
        }
        if (update.events.empty() && !pending_loss.has_value()) break;
        update.loss = std::exchange(pending_loss, std::nullopt);
        if (!Deliver(update)) return PumpEnd::kStopped;
        break;
      }
      case v1::WatchEvent::PROGRESS: {
        if (!resync.has_value()) {
          absl::MutexLock lock(&mu_);
          // Idle at this revision: everything up to it was sent.
          if (frame.revision() >= last_revision_) {
            last_revision_ = frame.revision();
            keys_at_last_.clear();
          }
        }
        if (pending_loss.has_value() && !resync.has_value()) {
          WatchUpdate update;
          update.kind = WatchUpdate::Kind::kChanges;
          update.store_id = expected_store;
          update.revision = last_revision();
          update.loss = std::exchange(pending_loss, std::nullopt);
          if (!Deliver(update)) return PumpEnd::kStopped;
        }
        break;
      }
      case v1::WatchEvent::RESYNC_BEGIN:
        resync.emplace();
        resync->kind = WatchUpdate::Kind::kResync;
        resync->revision = frame.revision();
        resync->store_id = expected_store;
        break;
      case v1::WatchEvent::SNAPSHOT:
        if (!resync.has_value()) break;
        for (const v1::Event& event : frame.events()) {
          absl::StatusOr<KeyValue> kv = KeyValueFromProto(event.kv());
          if (kv.ok()) resync->snapshot.push_back(*std::move(kv));
        }
        break;
      case v1::WatchEvent::RESYNC_END: {
        if (!resync.has_value()) break;
        {
          absl::MutexLock lock(&mu_);
          resync->store_changed = store_changed_;
          store_id_ = expected_store;
          last_revision_ = resync->revision;
          keys_at_last_.clear();
          need_snapshot_ = false;
          store_changed_ = false;
        }
        floor = resync->revision + 1;
        resync->loss = std::exchange(pending_loss, std::nullopt);
        const bool go_on = Deliver(*resync);
        resync.reset();
        if (!go_on) return PumpEnd::kStopped;
        break;
      }
      default:
        break;
    }
  }
}

absl::StatusOr<WatchEvent> WatchCore::ConvertEvent(const v1::Event& event) {
  WatchEvent out;
  out.type = event.type() == v1::Event::DELETE ? WatchEvent::Type::kDelete
                                               : WatchEvent::Type::kPut;
  absl::StatusOr<KeyValue> kv = KeyValueFromProto(event.kv());
  if (!kv.ok()) return kv.status();
  out.kv = *std::move(kv);
  if (event.has_prev_kv()) {
    absl::StatusOr<KeyValue> prev = KeyValueFromProto(event.prev_kv());
    if (!prev.ok()) return prev.status();
    out.prev_kv = *std::move(prev);
  }
  return out;
}

bool WatchCore::Deliver(const WatchUpdate& update) {
  if (thread_.stopped()) return false;
#ifdef ABSL_HAVE_EXCEPTIONS
  try {
    callback_(update);
  } catch (...) {
    // A callback's exception must not end the process or the watch; it is
    // counted.
    absl::MutexLock lock(&mu_);
    ++callback_exceptions_;
  }
#else
  callback_(update);
#endif
  return !thread_.stopped();
}

void WatchCore::End(absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    active_ = false;
  }
  WatchUpdate update;
  update.kind = WatchUpdate::Kind::kEnded;
  update.store_id = store_id();
  update.revision = last_revision();
  update.status = std::move(status);
  Deliver(update);
}

}  // namespace internal

WatchHandle& WatchHandle::operator=(WatchHandle&& other) noexcept {
  if (this != &other) {
    Stop();
    core_ = std::move(other.core_);
  }
  return *this;
}

void WatchHandle::Stop() {
  if (core_ != nullptr) core_->Stop();
}
bool WatchHandle::active() const { return core_ != nullptr && core_->active(); }
uint64_t WatchHandle::last_revision() const {
  return core_ == nullptr ? 0 : core_->last_revision();
}
std::string WatchHandle::store_id() const {
  return core_ == nullptr ? std::string() : core_->store_id();
}
uint64_t WatchHandle::reconnects() const {
  return core_ == nullptr ? 0 : core_->reconnects();
}
uint64_t WatchHandle::callback_exceptions() const {
  return core_ == nullptr ? 0 : core_->callback_exceptions();
}

}  // namespace tshare::client
