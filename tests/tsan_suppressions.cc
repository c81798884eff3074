// Linked into every test binary of a ThreadSanitizer build (see
// cmake/TshareHelpers.cmake).
//
// Abseil 20220623 reports the hand-off of a waiting thread's futex word
// (Waiter::Waiter on the waiter, Waiter::Post on the waker) as a race even when
// Abseil itself is built with -fsanitize=thread: a known false positive inside
// Abseil (google/sanitizers#953, abseil/abseil-cpp#1239, fixed in later
// releases). Only that Abseil frame is suppressed; a race in tshare's code is
// still reported and fails the test.
extern "C" const char* __tsan_default_suppressions() {
  return "race:absl::*synchronization_internal::Waiter::Post\n";
}
