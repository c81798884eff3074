// AtomicShare<T>: a shared value changed by atomic operations. Update(f) is a
// compare-and-swap loop that never loses an update, and no callback ever runs
// with a lock held.
//
// Two representations, chosen by T at compile time (kIsLockFree says which):
//
// - Lock-free: small trivially copyable T for which std::atomic<T> is always
//   lock-free (integers, double, pointers, small structs) lives in a
//   std::atomic<T>, and every operation is one atomic instruction or a CAS
//   loop.
//
// - Copy-on-write: any other T (std::string, containers, large structs). The
//   current value is an immutable object held by a std::shared_ptr<const T>;
//   a reader takes a reference to it, a writer builds a new object and swaps
//   the pointer. A reader's reference keeps its object alive, so no reader
//   ever touches freed memory. The pointer sits behind a spin lock that is
//   held only to copy, compare or swap one shared_ptr (a few instructions),
//   never while f or a copy of T runs; a thread that finds it taken spins
//   briefly, then yields its CPU. (An absl::Mutex there cost 3x more per
//   update under two threads, with Debian Abseil's deadlock detector on every
//   lock; std::atomic<std::shared_ptr<const T>> would express the same thing,
//   but in libstdc++ 12 it is not lock-free either, a spin lock in the
//   pointer's low bit, and a load releases that lock with a relaxed store
//   after reading the pointer, so the read is not ordered before the next
//   writer's store: ThreadSanitizer reports it as a data race,
//   google/sanitizers#1558.)
//
// Thread-safety: every member may be called from any number of threads at
// once, on one handle or on copies of it. Each operation is atomic: it takes
// effect at one instant between its call and its return. Only assigning to a
// handle object while another thread uses that same object is a race, as for
// any object.
#ifndef TSHARE_CORE_ATOMIC_SHARE_H_
#define TSHARE_CORE_ATOMIC_SHARE_H_

#include <atomic>
#include <concepts>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"

namespace tshare::core {
namespace atomic_share_internal {

// True when T can live in a std::atomic<T> that is lock-free on every target of
// this build. (std::atomic<T> is ill-formed for other T, so it is named only
// when T qualifies.)
template <typename T>
constexpr bool IsLockFreeAtomic() {
  if constexpr (std::is_trivially_copyable_v<T> &&
                std::is_copy_constructible_v<T> &&
                std::is_move_constructible_v<T> &&
                std::is_copy_assignable_v<T> && std::is_move_assignable_v<T>) {
    return std::atomic<T>::is_always_lock_free;
  } else {
    return false;
  }
}

template <typename T>
struct LockFreeState {
  explicit LockFreeState(T initial) : value(initial) {}

  std::atomic<T> value;
};

// A lock for critical sections of a few instructions: spins on a flag, then
// yields the CPU, so a holder that lost its CPU gets it back.
class ABSL_LOCKABLE SpinLock final {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    int spins = 0;
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < kSpinsBeforeYield) {
          Pause();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    locked_.store(false, std::memory_order_release);
  }

 private:
  static constexpr int kSpinsBeforeYield = 100;
  static void Pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  std::atomic<bool> locked_{false};
};

class ABSL_SCOPED_LOCKABLE SpinLockHolder final {
 public:
  explicit SpinLockHolder(SpinLock* lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock)
      : lock_(lock) {
    lock_->Lock();
  }
  ~SpinLockHolder() ABSL_UNLOCK_FUNCTION() { lock_->Unlock(); }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock* const lock_;
};

template <typename T>
struct CopyOnWriteState {
  explicit CopyOnWriteState(T initial)
      : current(std::make_shared<const T>(std::move(initial))) {}

  SpinLock lock;
  // Never null. The pointee is immutable: a change installs a new object.
  std::shared_ptr<const T> current ABSL_GUARDED_BY(lock);
};

// a + b; for integers modulo 2^N, as std::atomic's fetch_add computes it (no
// signed overflow).
template <typename T>
T WrappingAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(
        static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}

// What Update accepts: f(const T&) (or f(T)) returning the new value.
template <typename F, typename T>
concept UpdateFunction = std::invocable<F&, const T&> &&
    std::convertible_to<std::invoke_result_t<F&, const T&>, T>;

// Types that Add works on.
template <typename T>
concept Addable = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

}  // namespace atomic_share_internal

// A handle to one value of type T changed by atomic operations. Copies of a
// handle share the value (never an independent copy). Every member is const: a
// handle is like a pointer, and a const handle still reaches a writable value.
// Copying costs one reference count; there is no move, so a handle is never
// empty.
//
// Example:
//   auto hits = tshare::core::MakeAtomicShare<int64_t>(0);
//   std::thread a([hits] { hits.Add(1); });
//   std::thread b([hits] { hits.Update([](int64_t v) { return v * 2; }); });
//   a.join();
//   b.join();
//   // hits.Get() is 1 or 2, depending on which ran first; none is lost.
//
//   tshare::core::AtomicShare<std::string> log;  // copy-on-write
//   log.Update([](const std::string& s) { return s + "line\n"; });
template <typename T>
class AtomicShare final {
 public:
  static_assert(std::is_copy_constructible_v<T>,
                "AtomicShare<T> hands out copies of T: T must be copyable");

  // True when every operation is a lock-free std::atomic<T> operation; false
  // when T lives copy-on-write behind a pointer.
  static constexpr bool kIsLockFree =
      atomic_share_internal::IsLockFreeAtomic<T>();

  // A share holding T{}.
  AtomicShare() : state_(std::make_shared<State>(T{})) {}
  // A share holding `initial`.
  explicit AtomicShare(T initial)
      : state_(std::make_shared<State>(std::move(initial))) {}

  // Copies share the state.
  AtomicShare(const AtomicShare&) = default;
  AtomicShare& operator=(const AtomicShare&) = default;
  ~AtomicShare() = default;

  // Returns a copy of the current value.
  T Get() const {
    if constexpr (kIsLockFree) {
      return state_->value.load();
    } else {
      return *Snapshot();
    }
  }

  // Replaces the value. (Copy-on-write: the previous value is freed when its
  // last reader is done with it.)
  void Set(T value) const {
    if constexpr (kIsLockFree) {
      state_->value.store(value);
    } else {
      std::shared_ptr<const T> next =
          std::make_shared<const T>(std::move(value));
      State& s = *state_;
      atomic_share_internal::SpinLockHolder lock(&s.lock);
      s.current.swap(next);
    }
  }

  // Calls f(const T&) on the current value and returns its result by value,
  // with no lock held. Copy-on-write: f reads the value as it was when Read
  // began, without copying it; lock-free: f reads a copy.
  template <std::invocable<const T&> F>
  auto Read(F&& f) const {
    if constexpr (kIsLockFree) {
      const T value = state_->value.load();
      return std::invoke(f, value);
    } else {
      const std::shared_ptr<const T> snapshot = Snapshot();
      return std::invoke(f, *snapshot);
    }
  }

  // Replaces the value v with f(v) atomically and returns the value it
  // installed. f takes the current value (as const T& or by value) and returns
  // the new one; it runs with no lock held. If another change lands while f
  // runs, f runs again on the newer value, so f may run more than once per call
  // and must have no side effects beyond computing its result. No update is
  // ever lost, whatever the contention.
  template <atomic_share_internal::UpdateFunction<T> F>
  T Update(F&& f) const {
    if constexpr (kIsLockFree) {
      std::atomic<T>& value = state_->value;
      T expected = value.load();
      for (;;) {
        T desired = std::invoke(f, std::as_const(expected));
        // On failure `expected` becomes the value now there (padding bits
        // included), so the next round computes from it.
        if (value.compare_exchange_weak(expected, desired)) return desired;
      }
    } else {
      State& s = *state_;
      std::shared_ptr<const T> seen = Snapshot();
      for (;;) {
        // f's result moves into the new object; the caller gets a copy of it,
        // made only once the object is installed (an attempt that loses the
        // race copies nothing). `installed` keeps the object alive for that
        // copy; its reference is taken here, on a count no other thread has
        // seen yet.
        std::shared_ptr<const T> next =
            std::make_shared<const T>(std::invoke(f, *seen));
        std::shared_ptr<const T> installed = next;
        std::shared_ptr<const T> newer;
        {
          atomic_share_internal::SpinLockHolder lock(&s.lock);
          // Pointer equality is enough: `seen` keeps its object alive, so its
          // address cannot have been reused by a newer value (no ABA). The
          // replaced value's reference moves to `next`: no reference count
          // changes under the lock, and the value is freed after it.
          if (s.current == seen) {
            s.current.swap(next);
          } else {
            newer = s.current;
          }
        }
        if (newer == nullptr) return *installed;
        seen = std::move(newer);
      }
    }
  }

  // Adds n atomically and returns the new value. Integers wrap modulo 2^N like
  // std::atomic::fetch_add (one fetch_add when lock-free); floating point uses
  // Update's CAS loop.
  T Add(T n) const requires atomic_share_internal::Addable<T> {
    if constexpr (kIsLockFree && std::is_integral_v<T>) {
      return atomic_share_internal::WrappingAdd(state_->value.fetch_add(n), n);
    } else {
      return Update(
          [n](const T& v) { return atomic_share_internal::WrappingAdd(v, n); });
    }
  }

  // True when both handles reach the same state (one is a copy of the other).
  bool SameStateAs(const AtomicShare& other) const {
    return state_ == other.state_;
  }

 private:
  using State =
      std::conditional_t<kIsLockFree, atomic_share_internal::LockFreeState<T>,
                         atomic_share_internal::CopyOnWriteState<T>>;

  // Copy-on-write only: a reference to the current value, which stays valid and
  // unchanged for as long as the caller holds it.
  std::shared_ptr<const T> Snapshot() const {
    State& s = *state_;
    atomic_share_internal::SpinLockHolder lock(&s.lock);
    return s.current;
  }

  // Never null.
  std::shared_ptr<State> state_;
};

// A new atomic share holding `value`; MakeAtomicShare<int64_t>(0) is an
// AtomicShare<int64_t>.
template <typename T>
AtomicShare<T> MakeAtomicShare(T value) {
  return AtomicShare<T>(std::move(value));
}

}  // namespace tshare::core

#endif  // TSHARE_CORE_ATOMIC_SHARE_H_
