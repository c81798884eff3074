// Share<T>: a value shared between threads through cheap handles, with a
// version per change, waiting by version or by predicate, and JSON in and out.
//
// Thread-safety: every member of Share<T> may be called from any number of
// threads at once, on one handle or on copies of it; all copies reach one value
// under one reader/writer lock (absl::Mutex). Only assigning to a handle object
// while another thread uses that same object is a race, as for any object.
// Callbacks given to Read, Write, Update and WaitUntil run with the lock held:
// they must not call back into the same share (that deadlocks).
#ifndef TSHARE_CORE_SHARE_H_
#define TSHARE_CORE_SHARE_H_

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace tshare::core {

// True when nlohmann::json can hold a T (to_json) and give one back
// (from_json): built-in types, standard containers of them, and types with
// NLOHMANN_DEFINE_TYPE_* or their own to_json/from_json.
// Share<T>::ToJson/FromJson exist only for such T.
template <typename T>
concept JsonConvertible = std::is_constructible_v<nlohmann::json, const T&> &&
    requires(const nlohmann::json& json) {
  { json.template get<T>() } -> std::same_as<T>;
};

namespace share_internal {

// Adds one to a version when it leaves scope, so that a change counts even if
// the callback that made it throws half way.
class VersionBump final {
 public:
  explicit VersionBump(uint64_t& version) : version_(version) {}
  VersionBump(const VersionBump&) = delete;
  VersionBump& operator=(const VersionBump&) = delete;
  ~VersionBump() { ++version_; }

 private:
  uint64_t& version_;
};

}  // namespace share_internal

// A handle to one shared value of type T and its version. Copies of a handle
// share the same state (never an independent copy): a change made through one
// copy is seen through all of them. The version starts at 0 and grows by one
// with every change (Set, Update, Write, FromJson), so "has anything changed
// since version v?" has an exact answer, and a change made between two waits is
// never missed.
//
// Every member is const: a handle is like a pointer, and a const handle still
// reaches a writable value. Copying a handle costs one reference count; there
// is no move, so a handle is never empty.
//
// Example:
//   auto visits = tshare::core::MakeShare<int64_t>(0);
//   std::thread worker([visits] { visits.Update([](int64_t& v) { ++v; }); });
//   absl::StatusOr<uint64_t> seen = visits.WaitForChange(0, absl::Seconds(1));
//   // seen.ok(): *seen == 1 and visits.Get() == 1.
//   worker.join();
template <typename T>
class Share final {
 public:
  // A share holding T{}, at version 0.
  Share() : state_(std::make_shared<State>(T{})) {}
  // A share holding `initial`, at version 0.
  explicit Share(T initial)
      : state_(std::make_shared<State>(std::move(initial))) {}

  // Copies share the state.
  Share(const Share&) = default;
  Share& operator=(const Share&) = default;
  ~Share() = default;

  // Returns a copy of the value (the only call that hands out a copy of the
  // state).
  T Get() const {
    State& s = *state_;
    absl::ReaderMutexLock lock(&s.mu);
    return s.value;
  }

  // Replaces the value; version +1. The previous value is destroyed after the
  // lock is released.
  void Set(T value) const {
    State& s = *state_;
    {
      absl::MutexLock lock(&s.mu);
      using std::swap;
      swap(s.value, value);
      ++s.version;
    }
  }

  // Calls f(T&) under the writer lock to change the value in place; version +1
  // (also when f throws), and waiters are woken.
  template <std::invocable<T&> F>
  void Update(F&& f) const {
    Write(f);
  }

  // Calls f(const T&) under the reader lock (readers run in parallel) and
  // returns its result by value. The version does not change. The result must
  // not refer into the value.
  template <std::invocable<const T&> F>
  auto Read(F&& f) const {
    State& s = *state_;
    absl::ReaderMutexLock lock(&s.mu);
    return std::invoke(f, std::as_const(s.value));
  }

  // Calls f(T&) under the writer lock and returns its result by value; counts
  // as a change (version +1, also when f throws). The result must not refer
  // into the value.
  template <std::invocable<T&> F>
  auto Write(F&& f) const {
    State& s = *state_;
    absl::MutexLock lock(&s.mu);
    share_internal::VersionBump bump(s.version);
    return std::invoke(f, s.value);
  }

  // The number of changes so far (0 for a new share).
  uint64_t version() const {
    State& s = *state_;
    absl::ReaderMutexLock lock(&s.mu);
    return s.version;
  }

  // Returns the current version as soon as it is greater than `since_version`:
  // at once if it already is (a change made before this call is never missed),
  // otherwise when the next change happens. DEADLINE_EXCEEDED if no change
  // comes within `timeout` (a zero or negative timeout only checks). A loop
  // that never misses a change (quick changes may arrive as one):
  //   uint64_t seen = share.version();
  //   for (;;) {
  //     absl::StatusOr<uint64_t> now = share.WaitForChange(seen, timeout);
  //     if (!now.ok()) break;  // or keep waiting
  //     seen = *now;           // read share.Get() and act on it
  //   }
  absl::StatusOr<uint64_t> WaitForChange(uint64_t since_version,
                                         absl::Duration timeout) const {
    State& s = *state_;
    auto changed = [&s, since_version] {
      s.mu.AssertReaderHeld();
      return s.version > since_version;
    };
    absl::ReaderMutexLock lock(&s.mu);
    if (!s.mu.AwaitWithTimeout(absl::Condition(&changed), timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("Share::WaitForChange: still at version ", s.version,
                       " (waiting for a version after ", since_version,
                       ") after ", absl::FormatDuration(timeout)));
    }
    return s.version;
  }

  // Returns OK as soon as pred(const T&) is true: at once if it already is,
  // otherwise after the change that makes it true. DEADLINE_EXCEEDED if it is
  // still false after `timeout`. pred runs under the lock, possibly on the
  // thread that made the change, and possibly more than once per change: it
  // must be cheap, free of side effects, and must not touch the share.
  template <std::predicate<const T&> Pred>
  absl::Status WaitUntil(Pred&& pred, absl::Duration timeout) const {
    State& s = *state_;
    auto holds = [&s, &pred] {
      s.mu.AssertReaderHeld();
      return static_cast<bool>(std::invoke(pred, std::as_const(s.value)));
    };
    absl::ReaderMutexLock lock(&s.mu);
    if (!s.mu.AwaitWithTimeout(absl::Condition(&holds), timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("Share::WaitUntil: predicate still false at version ",
                       s.version, " after ", absl::FormatDuration(timeout)));
    }
    return absl::OkStatus();
  }

  // The value as JSON text (nlohmann::json's mapping of T). Invalid UTF-8
  // inside strings is written as U+FFFD rather than failing.
  std::string ToJson() const requires JsonConvertible<T> {
    return Read([](const T& value) {
      return nlohmann::json(value).dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace);
    });
  }

  // Parses `text` and sets the value from it (version +1). Text that is not
  // JSON, or JSON that does not map to T (wrong type, missing field, a number
  // that T cannot hold exactly), gives INVALID_ARGUMENT saying what was wrong,
  // and leaves the value and the version unchanged. Parsing and conversion
  // happen outside the lock.
  // clang-format off
  absl::Status FromJson(std::string_view text) const
      requires JsonConvertible<T> {
    // clang-format on
    nlohmann::json parsed;
    try {
      parsed = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("Share::FromJson: not valid JSON: ", e.what()));
    }
    std::optional<T> value;
    try {
      value.emplace(parsed.template get<T>());
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Share::FromJson: JSON does not match the value type: ", e.what()));
    }
    if constexpr (std::is_arithmetic_v<T>) {
      // nlohmann converts numbers with a plain cast: 3.5 would become 3, 300 an
      // int8_t 44.
      if (nlohmann::json(*value) != parsed) {
        return absl::InvalidArgumentError(
            absl::StrCat("Share::FromJson: JSON number ", parsed.dump(),
                         " does not fit the value type exactly"));
      }
    }
    Set(*std::move(value));
    return absl::OkStatus();
  }

  // True when both handles reach the same state (one is a copy of the other).
  bool SameStateAs(const Share& other) const { return state_ == other.state_; }

 private:
  struct State {
    explicit State(T initial) : value(std::move(initial)) {}

    absl::Mutex mu;
    T value ABSL_GUARDED_BY(mu);
    uint64_t version ABSL_GUARDED_BY(mu) = 0;
  };

  // Never null.
  std::shared_ptr<State> state_;
};

// A new share holding `value`; MakeShare(0) is a Share<int>,
// MakeShare<int64_t>(0) a Share<int64_t>.
template <typename T>
Share<T> MakeShare(T value) {
  return Share<T>(std::move(value));
}

}  // namespace tshare::core

#endif  // TSHARE_CORE_SHARE_H_
