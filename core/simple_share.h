// SimpleShare<T>: the cheapest shared value, one plain absl::Mutex and nothing
// else (no versions, no waiting, no JSON). Use Share<T> when readers should run
// in parallel or wait for changes, AtomicShare<T> for small values updated
// without a lock.
//
// Thread-safety: every member may be called from any number of threads at once,
// on one handle or on copies of it; all copies reach one value under one mutex.
// Only assigning to a handle object while another thread uses that same object
// is a race, as for any object. Callbacks given to Read, Write and Update run
// with the mutex held: they must not call back into the same share (that
// deadlocks).
#ifndef TSHARE_CORE_SIMPLE_SHARE_H_
#define TSHARE_CORE_SIMPLE_SHARE_H_

#include <concepts>
#include <functional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tshare::core {

// A handle to one value of type T behind a mutex. Copies of a handle share the
// value (never an independent copy). Every member is const: a handle is like a
// pointer, and a const handle still reaches a writable value. Copying costs one
// reference count; there is no move, so a handle is never empty.
//
// Example:
//   auto hits = tshare::core::MakeSimpleShare<int64_t>(0);
//   std::thread worker([hits] { hits.Update([](int64_t& v) { ++v; }); });
//   worker.join();
//   int64_t now = hits.Get();  // 1
template <typename T>
class SimpleShare final {
 public:
  // A share holding T{}.
  SimpleShare() : state_(std::make_shared<State>(T{})) {}
  // A share holding `initial`.
  explicit SimpleShare(T initial)
      : state_(std::make_shared<State>(std::move(initial))) {}

  // Copies share the state.
  SimpleShare(const SimpleShare&) = default;
  SimpleShare& operator=(const SimpleShare&) = default;
  ~SimpleShare() = default;

  // Returns a copy of the value.
  T Get() const {
    State& s = *state_;
    absl::MutexLock lock(&s.mu);
    return s.value;
  }

  // Replaces the value. The previous value is destroyed after the mutex is
  // released.
  void Set(T value) const {
    State& s = *state_;
    {
      absl::MutexLock lock(&s.mu);
      using std::swap;
      swap(s.value, value);
    }
  }

  // Calls f(T&) with the mutex held to change the value in place.
  template <std::invocable<T&> F>
  void Update(F&& f) const {
    Write(f);
  }

  // Calls f(const T&) with the mutex held and returns its result by value. The
  // result must not refer into the value.
  template <std::invocable<const T&> F>
  auto Read(F&& f) const {
    State& s = *state_;
    absl::MutexLock lock(&s.mu);
    return std::invoke(f, std::as_const(s.value));
  }

  // Calls f(T&) with the mutex held and returns its result by value. The result
  // must not refer into the value.
  template <std::invocable<T&> F>
  auto Write(F&& f) const {
    State& s = *state_;
    absl::MutexLock lock(&s.mu);
    return std::invoke(f, s.value);
  }

  // True when both handles reach the same state (one is a copy of the other).
  bool SameStateAs(const SimpleShare& other) const {
    return state_ == other.state_;
  }

 private:
  struct State {
    explicit State(T initial) : value(std::move(initial)) {}

    absl::Mutex mu;
    T value ABSL_GUARDED_BY(mu);
  };

  // Never null.
  std::shared_ptr<State> state_;
};

// A new simple share holding `value`; MakeSimpleShare<int64_t>(0) is a
// SimpleShare<int64_t>.
template <typename T>
SimpleShare<T> MakeSimpleShare(T value) {
  return SimpleShare<T>(std::move(value));
}

}  // namespace tshare::core

#endif  // TSHARE_CORE_SIMPLE_SHARE_H_
