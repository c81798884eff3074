// Promise<T> / Future<T>: a one-shot result that one thread produces and any
// number of threads wait for, with continuations (`Then`).
//
// Thread-safety: a Future<T> is a cheap, copyable handle to shared state; every
// method of every copy may be called from any thread at any time. A Promise<T>
// is move-only and has one owner: its methods are not safe to call concurrently
// on the same Promise object (completing the state it shares with its futures
// is).
//
// Results are absl::StatusOr<T> (absl::Status for T = void). Nothing here
// throws across the API: an exception thrown by a continuation becomes an
// INTERNAL error of the future it feeds.
//
//   tshare::core::Promise<int> promise;
//   tshare::core::Future<int> future = promise.GetFuture();
//   tshare::core::Future<std::string> text =
//       future.Then([](int v) { return absl::StrCat("got ", v); });
//   std::thread producer(
//       [p = std::move(promise)]() mutable { p.SetValue(42); });
//   absl::StatusOr<std::string> s = text.Get();  // "got 42"
//   producer.join();
#ifndef TSHARE_CORE_FUTURE_H_
#define TSHARE_CORE_FUTURE_H_

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/utility/utility.h"

namespace tshare::core {

template <typename T>
class Future;
template <typename T>
class Promise;

namespace internal {

template <typename T>
inline constexpr bool kIsStatusOr = false;
template <typename T>
inline constexpr bool kIsStatusOr<absl::StatusOr<T>> = true;

// What a Future<T> holds once it is ready.
template <typename T>
using Result =
    std::conditional_t<std::is_void_v<T>, absl::Status, absl::StatusOr<T>>;

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// The value type a callable's return type stands for: R for R, U for
// absl::StatusOr<U>, void for absl::Status and void.
template <typename Ret>
struct Unwrap {
  using type = Ret;
};
template <typename U>
struct Unwrap<absl::StatusOr<U>> {
  using type = U;
};
template <>
struct Unwrap<absl::Status> {
  using type = void;
};
template <typename Ret>
using UnwrapT = typename Unwrap<std::remove_cvref_t<Ret>>::type;

// The value type of the future that Future<T>::Then(f) returns.
template <typename T, typename F>
struct ThenValue {
  using type = UnwrapT<std::invoke_result_t<F, const T&>>;
};
template <typename F>
struct ThenValue<void, F> {
  using type = UnwrapT<std::invoke_result_t<F>>;
};

// Calls f(args...) and wraps what it returns (R, absl::StatusOr<R>,
// absl::Status or void) into Result<R>, without catching.
template <typename R, typename F, typename... Args>
Result<R> InvokeToResultNoCatch(F&& f, Args&&... args) {
  using Ret = std::invoke_result_t<F, Args...>;
  if constexpr (std::is_void_v<Ret>) {
    std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
    return absl::OkStatus();
  } else if constexpr (std::is_same_v<std::remove_cvref_t<Ret>, absl::Status> ||
                       kIsStatusOr<std::remove_cvref_t<Ret>>) {
    return std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  } else {
    return absl::StatusOr<R>(
        absl::in_place,
        std::invoke(std::forward<F>(f), std::forward<Args>(args)...));
  }
}

// As InvokeToResultNoCatch, but an exception thrown by f becomes an INTERNAL
// error that names the exception's what().
template <typename R, typename F, typename... Args>
Result<R> InvokeToResult(F&& f, Args&&... args) {
#ifdef ABSL_HAVE_EXCEPTIONS
  try {
    return InvokeToResultNoCatch<R>(std::forward<F>(f),
                                    std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("task threw an exception: ", e.what()));
  } catch (...) {
    return absl::InternalError(
        "task threw an exception not derived from std::exception");
  }
#else
  return InvokeToResultNoCatch<R>(std::forward<F>(f),
                                  std::forward<Args>(args)...);
#endif
}

// The state that one Promise<T> and its Future<T> copies share.
template <typename T>
class FutureState final {
 public:
  using Callback = absl::AnyInvocable<void(const Result<T>&) &&>;

  FutureState() = default;
  FutureState(const FutureState&) = delete;
  FutureState& operator=(const FutureState&) = delete;

  // Stores `result` and runs the registered callbacks on this thread, without
  // the lock. Returns false (and changes nothing) if the state was already
  // complete.
  bool Complete(Result<T> result) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<Callback> callbacks;
    const Result<T>* stored = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (result_.has_value()) return false;
      result_.emplace(std::move(result));
      stored = &*result_;
      callbacks.swap(callbacks_);
    }
    // *stored never changes again and lives as long as this state, which the
    // caller holds.
    for (Callback& callback : callbacks) std::move(callback)(*stored);
    return true;
  }

  // Runs `callback` at once on this thread if the state is complete, otherwise
  // on the thread that completes it. Never with the lock held.
  void OnReady(Callback callback) ABSL_LOCKS_EXCLUDED(mu_) {
    const Result<T>* stored = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (!result_.has_value()) {
        callbacks_.push_back(std::move(callback));
        return;
      }
      stored = &*result_;
    }
    std::move(callback)(*stored);
  }

  bool IsReady() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return result_.has_value();
  }

  bool WaitUntil(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(
        absl::Condition(this, &FutureState::ReadyLocked), deadline);
  }

  Result<T> Get() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &FutureState::ReadyLocked));
    return *result_;
  }

 private:
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return result_.has_value();
  }

  mutable absl::Mutex mu_;
  // Set once, never changed afterwards.
  std::optional<Result<T>> result_ ABSL_GUARDED_BY(mu_);
  // Run (and cleared) when result_ is set.
  std::vector<Callback> callbacks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

// A handle to a result that becomes available later. Copies share one state.
//
//   Future<int> f = pool.Submit([] { return 6 * 7; }).value();
//   if (f.Wait(absl::Seconds(1))) { absl::StatusOr<int> v = f.Get(); }
//
// T must be copy-constructible for Get() and Then(): every waiter gets its own
// copy. T may be void; it may not be absl::Status or absl::StatusOr (the result
// already is one).
template <typename T>
class Future final {
  static_assert(
      !std::is_same_v<std::remove_cv_t<T>, absl::Status> &&
          !internal::kIsStatusOr<std::remove_cv_t<T>>,
      "Future<T>: T is the value type; errors travel in the result already");
  static_assert(!std::is_reference_v<T>, "Future<T>: T may not be a reference");

 public:
  using value_type = T;

  // An invalid future (valid() is false) until assigned from
  // Promise<T>::GetFuture().
  Future() = default;

  // False for a default-constructed future. On an invalid future IsReady() and
  // Wait() return false, Get() returns FAILED_PRECONDITION and Then() returns a
  // future with that error.
  bool valid() const { return state_ != nullptr; }

  bool IsReady() const { return state_ != nullptr && state_->IsReady(); }

  // Blocks until the result is ready or `timeout` passes; true if it is ready.
  bool Wait(absl::Duration timeout) const {
    return WaitUntil(absl::Now() + timeout);
  }
  bool WaitUntil(absl::Time deadline) const {
    return state_ != nullptr && state_->WaitUntil(deadline);
  }

  // Blocks until the result is ready and returns a copy of it:
  // absl::StatusOr<T>, or absl::Status for T = void. Wait() is the variant with
  // a timeout.
  internal::Result<T> Get() const {
    if (state_ == nullptr) return InvalidError();
    return state_->Get();
  }

  // Returns a future of what f makes of this future's value. f runs when this
  // future is ready: at once on the caller's thread if it already is, otherwise
  // on the thread that completes the promise (for Submit, a pool thread), so f
  // should be short or hand work to a pool. f is called with a const T& (with
  // nothing for void) and returns R, absl::StatusOr<R>, absl::Status (R = void)
  // or void. An error of this future is passed through without calling f; an
  // exception thrown by f becomes an INTERNAL error.
  template <typename F>
  auto Then(F&& f) const
      -> Future<typename internal::ThenValue<T, std::decay_t<F>>::type>;

 private:
  friend class Promise<T>;

  explicit Future(std::shared_ptr<internal::FutureState<T>> state)
      : state_(std::move(state)) {}

  static absl::Status InvalidError() {
    return absl::FailedPreconditionError(
        "Future has no state: it was default-constructed, not obtained from a "
        "Promise");
  }

  std::shared_ptr<internal::FutureState<T>> state_;
};

// The producing side of a Future<T>. Move-only; complete it once with SetValue,
// SetStatus or SetResult. A Promise destroyed (or assigned over) without a
// result completes its future with CANCELLED ("promise abandoned"). Completing
// it runs the future's Then continuations on the completing thread.
//
//   Promise<void> done;
//   Future<void> f = done.GetFuture();
//   done.SetValue();
template <typename T>
class Promise final {
 public:
  Promise() : state_(std::make_shared<internal::FutureState<T>>()) {}
  ~Promise() { Abandon(); }

  Promise(Promise&& other) noexcept
      : state_(std::move(other.state_)), completed_(other.completed_) {}
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      Abandon();
      state_ = std::move(other.state_);
      completed_ = other.completed_;
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;

  // Every call returns a handle to the same state.
  // REQUIRES: this promise was not moved from.
  Future<T> GetFuture() { return Future<T>(state_); }

  // The first of SetValue / SetStatus / SetResult completes the future; later
  // calls are ignored. REQUIRES: this promise was not moved from.
  template <typename U = T>
  requires(!std::is_void_v<U>) void SetValue(std::type_identity_t<U> v) {
    Complete(absl::StatusOr<T>(absl::in_place, std::move(v)));
  }
  void SetValue() requires std::is_void_v<T> { Complete(absl::OkStatus()); }
  // `error` must not be OK; an OK status is turned into an INTERNAL error that
  // says so.
  void SetStatus(absl::Status error) {
    if (error.ok())
      error =
          absl::InternalError("Promise::SetStatus called with an OK status");
    Complete(std::move(error));
  }
  // absl::StatusOr<T> for non-void T, absl::Status for void.
  void SetResult(internal::Result<T> result) { Complete(std::move(result)); }

 private:
  void Complete(internal::Result<T> result) {
    if (state_ == nullptr || completed_) return;
    completed_ = true;
    state_->Complete(std::move(result));
  }
  void Abandon() {
    if (state_ != nullptr && !completed_) {
      completed_ = true;
      state_->Complete(absl::CancelledError("promise abandoned"));
    }
  }

  std::shared_ptr<internal::FutureState<T>> state_;
  bool completed_ = false;
};

// A future that is ready at once with `v`.
template <typename T>
Future<T> MakeReadyFuture(absl::StatusOr<T> v) {
  Promise<T> promise;
  promise.SetResult(std::move(v));
  return promise.GetFuture();
}
// The void form: ready at once with `status` (OK by default).
inline Future<void> MakeReadyFuture(absl::Status status = absl::OkStatus()) {
  Promise<void> promise;
  promise.SetResult(std::move(status));
  return promise.GetFuture();
}

template <typename T>
template <typename F>
auto Future<T>::Then(F&& f) const
    -> Future<typename internal::ThenValue<T, std::decay_t<F>>::type> {
  using R = typename internal::ThenValue<T, std::decay_t<F>>::type;
  Promise<R> promise;
  Future<R> next = promise.GetFuture();
  if (state_ == nullptr) {
    promise.SetStatus(InvalidError());
    return next;
  }
  state_->OnReady([fn = std::forward<F>(f), p = std::move(promise)](
                      const internal::Result<T>& result) mutable {
    if (!result.ok()) {
      p.SetStatus(internal::StatusOf(result));
      return;
    }
    if constexpr (std::is_void_v<T>) {
      p.SetResult(internal::InvokeToResult<R>(std::move(fn)));
    } else {
      p.SetResult(internal::InvokeToResult<R>(std::move(fn), *result));
    }
  });
  return next;
}

}  // namespace tshare::core

#endif  // TSHARE_CORE_FUTURE_H_
