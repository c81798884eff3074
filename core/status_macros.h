// Helpers for functions that return absl::Status or absl::StatusOr<T>.
//
// Abseil 20220623 (Debian bookworm) has no RETURN_IF_ERROR / ASSIGN_OR_RETURN;
// these are the project's one copy of them. Thread-safety: macros only, no
// state.
#ifndef TSHARE_CORE_STATUS_MACROS_H_
#define TSHARE_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the enclosing function with `expr`'s status if it is not OK.
//   TSHARE_RETURN_IF_ERROR(ValidateKey(key));
#define TSHARE_RETURN_IF_ERROR(expr)                                    \
  do {                                                                  \
    if (::absl::Status tshare_status_ = (expr); !tshare_status_.ok()) { \
      return tshare_status_;                                            \
    }                                                                   \
  } while (false)

#define TSHARE_STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define TSHARE_STATUS_MACROS_CONCAT_(a, b) \
  TSHARE_STATUS_MACROS_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise moves the value into `lhs`, which may be a declaration.
//   TSHARE_ASSIGN_OR_RETURN(auto entry, store.Get(key));
#define TSHARE_ASSIGN_OR_RETURN(lhs, rexpr) \
  TSHARE_ASSIGN_OR_RETURN_IMPL_(            \
      TSHARE_STATUS_MACROS_CONCAT_(tshare_statusor_, __LINE__), lhs, rexpr)

#define TSHARE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) {                                     \
    return std::move(statusor).status();                    \
  }                                                         \
  lhs = *std::move(statusor)

#endif  // TSHARE_CORE_STATUS_MACROS_H_
