#include "service/watch_hub.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/errors.h"

namespace tshare::service {
namespace {

using tshare::v1::WatchEvent;

// A CHANGES or SNAPSHOT frame stops growing at this many events or about this
// many bytes (clients accept 4 MiB messages by default).
constexpr size_t kMaxFrameEvents = 1000;
constexpr size_t kMaxFrameBytes = 1 << 20;
// What an event adds to a frame beyond its key and value bytes (type, versions,
// revisions, field tags), about.
constexpr size_t kEventOverheadBytes = 16;

absl::Status ParseDuration(const google::protobuf::Duration& d,
                           absl::string_view field, absl::Duration* out) {
  const bool valid = d.nanos() > -1000000000 && d.nanos() < 1000000000 &&
                     !(d.seconds() > 0 && d.nanos() < 0) &&
                     !(d.seconds() < 0 && d.nanos() > 0);
  if (!valid) return DurationInvalid(field);
  *out = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  return absl::OkStatus();
}

void AddEvent(const ChangeEvent& event, bool prev_kv, WatchEvent* frame) {
  tshare::v1::Event* out = frame->add_events();
  out->set_type(event.type);
  event.kv->CopyTo(out->mutable_kv());
  if (prev_kv && event.prev != nullptr)
    event.prev->CopyTo(out->mutable_prev_kv());
}

size_t EventBytes(const ChangeEvent& event, bool prev_kv) {
  return event.kv_bytes + (prev_kv ? event.prev_bytes : 0) +
         kEventOverheadBytes;
}

}  // namespace

// --- Watcher ---

Watcher::Watcher(WatchHub* hub, uint64_t id, std::string peer,
                 KeyTargets targets, std::vector<std::string> target_names,
                 size_t max_queue, tshare::v1::OverflowPolicy policy,
                 absl::Duration progress_interval, bool prev_kv,
                 std::string store_id)
    : hub_(hub),
      id_(id),
      peer_(std::move(peer)),
      targets_(std::move(targets)),
      target_names_(std::move(target_names)),
      max_queue_(max_queue),
      policy_(policy),
      progress_interval_(progress_interval),
      prev_kv_(prev_kv),
      store_id_(std::move(store_id)),
      last_frame_(absl::Now()) {}

Watcher::~Watcher() = default;

bool Watcher::IdleLocked() const {
  return backlog_.empty() && live_count_ == 0 && !progress_pending_;
}

uint64_t Watcher::DeliveredRevisionLocked(uint64_t published) const {
  if (backlog_.empty() && live_count_ == 0 && !closed_) {
    // Everything this watch was given is handed over: it is up to date with the
    // hub.
    return std::max({delivered_revision_, published, next_revision_ - 1});
  }
  return delivered_revision_;
}

uint64_t Watcher::ResumeRevisionLocked() const {
  return delivered_revision_ + 1;
}

bool Watcher::TakeNotifyLocked() {
  if (!sink_waiting_ || sink_ == nullptr || done_) return false;
  if (!closed_ && IdleLocked()) return false;
  sink_waiting_ = false;
  return true;
}

void Watcher::NotifySink() {
  WatchSink* sink = nullptr;
  {
    absl::MutexLock l(&mu_);
    if (sink_ == nullptr) return;
    sink = sink_;
    ++notifying_;
  }
  sink->OnWatchReady();
  absl::MutexLock l(&mu_);
  --notifying_;
}

void Watcher::CloseLocked(absl::Status status) {
  if (closed_) return;
  closed_ = true;
  close_status_ = std::move(status);
  pending_by_key_.clear();
  conflating_ = false;
  backlog_.clear();
  live_.clear();
  live_count_ = 0;
  progress_pending_ = false;
}

void Watcher::Close(absl::Status status) {
  bool notify = false;
  {
    absl::MutexLock l(&mu_);
    CloseLocked(std::move(status));
    notify = TakeNotifyLocked();
  }
  if (notify) NotifySink();
}

void Watcher::Detach() {
  {
    absl::MutexLock l(&mu_);
    sink_ = nullptr;
    CloseLocked(CallCancelled());
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &notifying_));
  }
  hub_->Unregister(this);
}

bool Watcher::Enqueue(const ChangePtr& change,
                      const std::vector<uint32_t>& indexes) {
  absl::MutexLock l(&mu_);
  if (closed_ || change->revision < next_revision_) return false;
  for (uint32_t index : indexes) {
    EnqueueLocked(change, index);
    if (closed_) break;
  }
  return TakeNotifyLocked();
}

void Watcher::EnqueueLocked(const ChangePtr& change, uint32_t index) {
  if (!conflating_ && live_count_ < max_queue_) {
    live_.push_back(LiveItem{change, index, false});
    ++live_count_;
    return;
  }
  // The queue is full (or CONFLATE already conflates): the policy decides.
  switch (policy_) {
    case tshare::v1::DROP_NEWEST:
      ++dropped_since_;
      ++total_dropped_;
      hub_->dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    case tshare::v1::DROP_OLDEST:
      while (!live_.empty()) {
        const bool dead = live_.front().dead;
        PopLiveFrontLocked();
        if (!dead) break;
      }
      ++dropped_since_;
      ++total_dropped_;
      hub_->dropped_.fetch_add(1, std::memory_order_relaxed);
      live_.push_back(LiveItem{change, index, false});
      ++live_count_;
      return;
    case tshare::v1::CLOSE:
      CloseLocked(WatchQueueOverflow(max_queue_, ResumeRevisionLocked()));
      return;
    default:  // CONFLATE
      break;
  }
  if (!conflating_) EnterConflatingLocked();
  const absl::string_view key = change->events[index].kv->key();
  auto it = pending_by_key_.find(key);
  if (it != pending_by_key_.end()) {
    live_[static_cast<size_t>(it->second - live_front_seq_)].dead = true;
    --live_count_;
    ++conflated_since_;
    ++total_conflated_;
    hub_->conflated_.fetch_add(1, std::memory_order_relaxed);
    pending_by_key_.erase(it);  // its key view points into the dead item
  }
  live_.push_back(LiveItem{change, index, false});
  ++live_count_;
  pending_by_key_[key] = live_front_seq_ + live_.size() - 1;
  if (live_.size() > 2 * live_count_ + 64) CompactLiveLocked();
}

void Watcher::EnterConflatingLocked() {
  conflating_ = true;
  pending_by_key_.clear();
  // From the newest back: the first event seen of a key is the one to keep.
  for (size_t i = live_.size(); i-- > 0;) {
    LiveItem& item = live_[i];
    if (item.dead) continue;
    const absl::string_view key = item.event().kv->key();
    if (pending_by_key_.contains(key)) {
      item.dead = true;
      --live_count_;
      ++conflated_since_;
      ++total_conflated_;
      hub_->conflated_.fetch_add(1, std::memory_order_relaxed);
    } else {
      pending_by_key_.emplace(key, live_front_seq_ + i);
    }
  }
  CompactLiveLocked();
}

void Watcher::CompactLiveLocked() {
  std::deque<LiveItem> kept;
  for (LiveItem& item : live_) {
    if (!item.dead) kept.push_back(std::move(item));
  }
  live_.swap(kept);
  if (conflating_) {
    pending_by_key_.clear();
    for (size_t i = 0; i < live_.size(); ++i) {
      pending_by_key_[live_[i].event().kv->key()] = live_front_seq_ + i;
    }
  }
  // `kept` now holds the old items, whose keys the map no longer references.
}

void Watcher::PopLiveFrontLocked() {
  LiveItem& front = live_.front();
  if (!front.dead) {
    if (conflating_) {
      auto it = pending_by_key_.find(front.event().kv->key());
      if (it != pending_by_key_.end() && it->second == live_front_seq_) {
        pending_by_key_.erase(it);
      }
    }
    --live_count_;
  }
  live_.pop_front();
  ++live_front_seq_;
  if (conflating_ && live_count_ <= max_queue_ / 2) {
    conflating_ = false;
    pending_by_key_.clear();
  }
}

Watcher::NextResult Watcher::Next(WatchEvent* frame, absl::Status* status) {
  const uint64_t published = hub_->published_revision();
  frame->Clear();
  // Items taken under the lock; the frame is built from them after it is
  // released.
  WatchEvent::Kind kind = WatchEvent::KIND_UNSPECIFIED;
  uint64_t revision = 0;
  std::vector<std::pair<ChangePtr, uint32_t>> events;
  std::vector<KvPtr> snapshot;
  tshare::v1::Loss loss;
  bool has_loss = false;
  {
    absl::MutexLock l(&mu_);
    if (done_) {
      *status = close_status_;
      return NextResult::kDone;
    }
    if (closed_) {
      done_ = true;
      *status = close_status_;
      return NextResult::kDone;
    }
    if (!backlog_.empty()) {
      BacklogItem& item = backlog_.front();
      kind = item.kind;
      revision = item.revision;
      if (kind == WatchEvent::CHANGES) {
        size_t bytes = 0;
        while (!backlog_.empty() &&
               backlog_.front().kind == WatchEvent::CHANGES &&
               events.size() < kMaxFrameEvents && bytes < kMaxFrameBytes) {
          BacklogItem& change = backlog_.front();
          bytes += EventBytes(change.change->events[change.index], prev_kv_);
          revision = change.revision;
          events.emplace_back(std::move(change.change), change.index);
          backlog_.pop_front();
        }
        const bool split = !backlog_.empty() &&
                           backlog_.front().kind == WatchEvent::CHANGES &&
                           backlog_.front().revision == revision;
        delivered_revision_ =
            std::max(delivered_revision_, split ? revision - 1 : revision);
      } else {
        snapshot = std::move(item.kvs);
        backlog_.pop_front();
        if (kind == WatchEvent::RESYNC_END) {
          delivered_revision_ = std::max(delivered_revision_, revision);
        }
      }
    } else if (live_count_ > 0) {
      kind = WatchEvent::CHANGES;
      size_t bytes = 0;
      while (!live_.empty() && events.size() < kMaxFrameEvents &&
             bytes < kMaxFrameBytes) {
        LiveItem& item = live_.front();
        if (!item.dead) {
          bytes += EventBytes(item.event(), prev_kv_);
          revision = item.change->revision;
          events.emplace_back(item.change, item.index);
        }
        PopLiveFrontLocked();
      }
      while (!live_.empty() && live_.front().dead) PopLiveFrontLocked();
      const bool split =
          !live_.empty() && live_.front().change->revision == revision;
      delivered_revision_ =
          std::max(delivered_revision_, split ? revision - 1 : revision);
    } else if (progress_pending_) {
      kind = WatchEvent::PROGRESS;
    } else {
      sink_waiting_ = true;
      delivered_revision_ = DeliveredRevisionLocked(published);
      return NextResult::kIdle;
    }
    progress_pending_ = false;
    if (backlog_.empty() && live_count_ == 0) {
      delivered_revision_ = DeliveredRevisionLocked(published);
    }
    if (kind == WatchEvent::PROGRESS) revision = delivered_revision_;
    if (dropped_since_ > 0 || conflated_since_ > 0) {
      has_loss = true;
      loss.set_dropped(dropped_since_);
      loss.set_conflated(conflated_since_);
      loss.set_total_dropped(total_dropped_);
      loss.set_total_conflated(total_conflated_);
      dropped_since_ = 0;
      conflated_since_ = 0;
    }
    delivered_ += events.size() + snapshot.size();
    last_frame_ = absl::Now();
  }

  frame->set_kind(kind);
  frame->set_revision(revision);
  frame->set_store_id(store_id_);
  if (has_loss) *frame->mutable_loss() = std::move(loss);
  frame->mutable_events()->Reserve(
      static_cast<int>(events.size() + snapshot.size()));
  for (const auto& [change, index] : events) {
    AddEvent(change->events[index], prev_kv_, frame);
  }
  for (const KvPtr& kv : snapshot) {
    tshare::v1::Event* out = frame->add_events();
    out->set_type(tshare::v1::Event::PUT);
    kv->CopyTo(out->mutable_kv());
  }
  hub_->events_sent_.fetch_add(events.size() + snapshot.size(),
                               std::memory_order_relaxed);
  return NextResult::kFrame;
}

absl::Time Watcher::CheckProgress(absl::Time now, bool* notify) {
  absl::MutexLock l(&mu_);
  if (closed_ || done_ || sink_ == nullptr) return absl::InfiniteFuture();
  if (!sink_waiting_ || !IdleLocked()) return now + progress_interval_;
  const absl::Time due = last_frame_ + progress_interval_;
  if (now < due) return due;
  progress_pending_ = true;
  *notify = TakeNotifyLocked();
  return now + progress_interval_;
}

tshare::v1::SubscriptionInfo Watcher::Info(uint64_t head) const {
  const uint64_t published = hub_->published_revision();
  tshare::v1::SubscriptionInfo info;
  info.set_kind(tshare::v1::SubscriptionInfo::WATCH);
  info.set_id(id_);
  info.set_peer(peer_);
  for (const std::string& target : target_names_) info.add_targets(target);
  info.set_max_queue(
      static_cast<uint32_t>(std::min<size_t>(max_queue_, UINT32_MAX)));
  info.set_policy(policy_);
  absl::MutexLock l(&mu_);
  const uint64_t delivered = DeliveredRevisionLocked(published);
  info.set_lag(head > delivered ? head - delivered : 0);
  info.set_queue_depth(live_count_ + backlog_.size());
  info.set_delivered(delivered_);
  info.set_dropped(total_dropped_);
  info.set_conflated(total_conflated_);
  info.set_delivered_revision(delivered);
  return info;
}

// --- WatchHub ---

WatchHub::WatchHub(Store* store, const ServerOptions& options)
    : store_(store), options_(options) {
  published_revision_.store(store_->revision(), std::memory_order_release);
  store_->SetChangeListener(this);
  timer_thread_ = std::thread([this] { TimerLoop(); });
}

WatchHub::~WatchHub() {
  store_->SetChangeListener(nullptr);
  {
    absl::MutexLock l(&timer_mu_);
    timer_stop_ = true;
    timer_wake_ = true;
  }
  timer_thread_.join();
}

absl::StatusOr<std::shared_ptr<Watcher>> WatchHub::Start(
    const tshare::v1::WatchRequest& request, absl::string_view peer,
    WatchSink* sink) {
  // Targets.
  KeyTargets targets;
  std::vector<std::string> names;
  if (request.has_key()) targets.keys.push_back(request.key());
  for (const std::string& key : request.keys()) targets.keys.push_back(key);
  if (request.has_prefix()) targets.prefixes.push_back(request.prefix());
  for (const std::string& prefix : request.prefixes())
    targets.prefixes.push_back(prefix);
  const size_t count = targets.keys.size() + targets.prefixes.size();
  if (count == 0) return WatchTargetMissing();
  if (count > options_.max_watches_per_stream) {
    return TooManyWatches(count, options_.max_watches_per_stream);
  }
  for (const std::string& key : targets.keys) {
    if (key.empty()) return KeyEmpty("watch key");
    if (key.size() > options_.max_key_bytes) {
      return KeyTooLong(key.size(), options_.max_key_bytes);
    }
    names.push_back(key);
  }
  for (const std::string& prefix : targets.prefixes) {
    if (prefix.size() > options_.max_key_bytes) {
      return KeyTooLong(prefix.size(), options_.max_key_bytes);
    }
    names.push_back(absl::StrCat(prefix, "*"));
  }

  // Flow control and the rest.
  size_t max_queue = request.max_queue();
  if (max_queue == 0) max_queue = std::max<size_t>(options_.watch_queue, 1);
  if (max_queue > options_.max_watch_queue) {
    return WatchQueueTooLarge(max_queue, options_.max_watch_queue);
  }
  if (!tshare::v1::OverflowPolicy_IsValid(request.policy())) {
    return EnumValueInvalid("policy", request.policy());
  }
  const tshare::v1::OverflowPolicy policy =
      request.policy() == tshare::v1::OVERFLOW_POLICY_UNSPECIFIED
          ? tshare::v1::CONFLATE
          : request.policy();
  if (!tshare::v1::OnCompacted_IsValid(request.on_compacted())) {
    return EnumValueInvalid("on_compacted", request.on_compacted());
  }
  absl::Duration interval = options_.progress_interval;
  if (request.has_progress_interval()) {
    absl::Status s = ParseDuration(request.progress_interval(),
                                   "progress_interval", &interval);
    if (!s.ok()) return s;
    if (interval < kMinProgressInterval) {
      return ProgressIntervalTooShort(interval, kMinProgressInterval);
    }
  }
  if (request.snapshot() && request.start_revision() != 0) {
    return SnapshotWithStartRevision(request.start_revision());
  }
  const uint64_t start = request.start_revision();

  std::shared_ptr<Watcher> watcher;
  WatchStartRead read;
  {
    absl::MutexLock l(&mu_);
    if (shut_down_) return ShuttingDown();
    // Read under the hub's lock: changes after read.revision reach OnChange
    // only after the watcher is indexed below, and the watcher drops live
    // changes up to read.revision.
    read = store_->ReadForWatch(start, request.snapshot(),
                                request.on_compacted() == tshare::v1::RESYNC,
                                targets);
    if (read.compacted)
      return HistoryCompacted(start, read.compacted_revision + 1);
    const uint64_t id = next_id_++;
    watcher.reset(new Watcher(this, id, std::string(peer), targets,
                              std::move(names), max_queue, policy, interval,
                              request.prev_kv(), store_->store_id()));
    {
      absl::MutexLock wl(&watcher->mu_);
      watcher->sink_ = sink;
      watcher->next_revision_ = std::max(read.revision + 1, start);
      if (read.has_snapshot) {
        watcher->delivered_revision_ = start > 0 ? start - 1 : 0;
      } else if (start > 0) {
        watcher->delivered_revision_ = std::min(start - 1, read.revision);
      } else {
        watcher->delivered_revision_ = read.revision;
      }
    }
    for (const std::string& key : watcher->targets_.keys)
      by_key_[key].push_back(watcher.get());
    for (const std::string& prefix : watcher->targets_.prefixes) {
      by_prefix_[prefix].push_back(watcher.get());
      ++prefix_lengths_[prefix.size()];
    }
    watchers_.emplace(id, watcher);
  }
  ScheduleProgress(absl::Now() + interval, watcher);

  // The start frames. The sink calls Next only after Start returns, and live
  // changes go to another queue, so the backlog can be built without the hub's
  // lock.
  std::deque<Watcher::BacklogItem> backlog;
  if (read.has_snapshot) {
    resyncs_.fetch_add(1, std::memory_order_relaxed);
    backlog.push_back(Watcher::BacklogItem{
        WatchEvent::RESYNC_BEGIN, read.revision, {}, {}, 0});
    std::vector<KvPtr> chunk;
    size_t bytes = 0;
    for (KvPtr& kv : read.snapshot) {
      bytes += kv->encoded_bytes() + kEventOverheadBytes;
      chunk.push_back(std::move(kv));
      if (chunk.size() >= kMaxFrameEvents || bytes >= kMaxFrameBytes) {
        backlog.push_back(Watcher::BacklogItem{
            WatchEvent::SNAPSHOT, read.revision, std::move(chunk), {}, 0});
        chunk.clear();
        bytes = 0;
      }
    }
    if (!chunk.empty()) {
      backlog.push_back(Watcher::BacklogItem{
          WatchEvent::SNAPSHOT, read.revision, std::move(chunk), {}, 0});
    }
    backlog.push_back(
        Watcher::BacklogItem{WatchEvent::RESYNC_END, read.revision, {}, {}, 0});
  } else {
    for (const ChangePtr& change : read.changes) {
      for (uint32_t i = 0; i < change->events.size(); ++i) {
        if (watcher->targets_.Matches(change->events[i].kv->key())) {
          backlog.push_back(Watcher::BacklogItem{
              WatchEvent::CHANGES, change->revision, {}, change, i});
        }
      }
    }
  }
  if (!backlog.empty()) {
    absl::MutexLock wl(&watcher->mu_);
    if (!watcher->closed_) watcher->backlog_ = std::move(backlog);
  }
  return watcher;
}

void WatchHub::OnChange(const ChangePtr& change) {
  std::vector<std::shared_ptr<Watcher>> notify;
  {
    absl::MutexLock l(&mu_);
    if (!watchers_.empty()) {
      // (watcher, event index) for every matching target; a watcher whose
      // targets overlap matches an event once.
      std::vector<std::pair<Watcher*, uint32_t>> hits;
      for (uint32_t i = 0; i < change->events.size(); ++i) {
        const absl::string_view key = change->events[i].kv->key();
        if (auto it = by_key_.find(key); it != by_key_.end()) {
          for (Watcher* w : it->second) hits.emplace_back(w, i);
        }
        for (const auto& [length, n] : prefix_lengths_) {
          if (length > key.size()) break;
          auto it = by_prefix_.find(key.substr(0, length));
          if (it == by_prefix_.end()) continue;
          for (Watcher* w : it->second) hits.emplace_back(w, i);
        }
      }
      std::sort(hits.begin(), hits.end());
      hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
      std::vector<uint32_t> indexes;
      for (size_t i = 0; i < hits.size();) {
        Watcher* w = hits[i].first;
        indexes.clear();
        for (; i < hits.size() && hits[i].first == w; ++i)
          indexes.push_back(hits[i].second);
        if (w->Enqueue(change, indexes))
          notify.push_back(w->shared_from_this());
      }
    }
    published_revision_.store(change->revision, std::memory_order_release);
  }
  for (const std::shared_ptr<Watcher>& w : notify) w->NotifySink();
}

void WatchHub::Unregister(Watcher* watcher) {
  std::shared_ptr<Watcher> last;  // released after the lock
  absl::MutexLock l(&mu_);
  auto it = watchers_.find(watcher->id());
  if (it == watchers_.end()) return;
  last = std::move(it->second);
  watchers_.erase(it);
  UnregisterLocked(watcher);
}

void WatchHub::UnregisterLocked(Watcher* watcher) {
  auto remove = [watcher](std::vector<Watcher*>& list) {
    list.erase(std::remove(list.begin(), list.end(), watcher), list.end());
    return list.empty();
  };
  for (const std::string& key : watcher->targets_.keys) {
    auto it = by_key_.find(key);
    if (it != by_key_.end() && remove(it->second)) by_key_.erase(it);
  }
  for (const std::string& prefix : watcher->targets_.prefixes) {
    auto it = by_prefix_.find(prefix);
    if (it != by_prefix_.end() && remove(it->second)) by_prefix_.erase(it);
    auto length = prefix_lengths_.find(prefix.size());
    if (length != prefix_lengths_.end() && --length->second == 0) {
      prefix_lengths_.erase(length);
    }
  }
}

void WatchHub::Shutdown() {
  std::vector<std::shared_ptr<Watcher>> open;
  {
    absl::MutexLock l(&mu_);
    shut_down_ = true;
    for (const auto& [id, w] : watchers_) open.push_back(w);
  }
  for (const std::shared_ptr<Watcher>& w : open) w->Close(ShuttingDown());
}

std::vector<tshare::v1::SubscriptionInfo> WatchHub::ListWatches() const {
  std::vector<std::shared_ptr<Watcher>> open;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, w] : watchers_) open.push_back(w);
  }
  std::sort(open.begin(), open.end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  const uint64_t head = store_->revision();
  std::vector<tshare::v1::SubscriptionInfo> infos;
  infos.reserve(open.size());
  for (const std::shared_ptr<Watcher>& w : open) infos.push_back(w->Info(head));
  return infos;
}

tshare::v1::WatchStats WatchHub::Stats() const {
  tshare::v1::WatchStats stats;
  uint64_t max_lag = 0;
  const std::vector<tshare::v1::SubscriptionInfo> infos = ListWatches();
  for (const tshare::v1::SubscriptionInfo& info : infos)
    max_lag = std::max(max_lag, info.lag());
  stats.set_watches(infos.size());
  stats.set_events_sent(events_sent_.load(std::memory_order_relaxed));
  stats.set_dropped(dropped_.load(std::memory_order_relaxed));
  stats.set_conflated(conflated_.load(std::memory_order_relaxed));
  stats.set_resyncs(resyncs_.load(std::memory_order_relaxed));
  stats.set_max_lag(max_lag);
  return stats;
}

size_t WatchHub::watch_count() const {
  absl::MutexLock l(&mu_);
  return watchers_.size();
}

void WatchHub::ScheduleProgress(absl::Time due,
                                std::weak_ptr<Watcher> watcher) {
  absl::MutexLock l(&timer_mu_);
  const bool earliest = timers_.empty() || due < timers_.front().due;
  timers_.push_back(TimerEntry{due, std::move(watcher)});
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>());
  if (earliest) timer_wake_ = true;
}

void WatchHub::TimerLoop() {
  std::vector<TimerEntry> due;
  std::vector<TimerEntry> again;
  timer_mu_.Lock();
  while (!timer_stop_) {
    if (timers_.empty()) {
      timer_mu_.Await(absl::Condition(&timer_wake_));
      timer_wake_ = false;
      continue;
    }
    const absl::Time now = absl::Now();
    if (now < timers_.front().due) {
      timer_mu_.AwaitWithDeadline(absl::Condition(&timer_wake_),
                                  timers_.front().due);
      timer_wake_ = false;
      continue;
    }
    while (!timers_.empty() && timers_.front().due <= now) {
      std::pop_heap(timers_.begin(), timers_.end(), std::greater<>());
      due.push_back(std::move(timers_.back()));
      timers_.pop_back();
    }
    timer_mu_.Unlock();
    for (TimerEntry& entry : due) {
      std::shared_ptr<Watcher> w = entry.watcher.lock();
      if (w == nullptr) continue;
      bool notify = false;
      const absl::Time next = w->CheckProgress(now, &notify);
      if (notify) w->NotifySink();
      if (next != absl::InfiniteFuture())
        again.push_back(TimerEntry{next, entry.watcher});
    }
    due.clear();
    timer_mu_.Lock();
    for (TimerEntry& entry : again) {
      timers_.push_back(std::move(entry));
      std::push_heap(timers_.begin(), timers_.end(), std::greater<>());
    }
    again.clear();
  }
  timer_mu_.Unlock();
}

}  // namespace tshare::service
