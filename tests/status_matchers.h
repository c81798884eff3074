// GoogleTest matchers for absl::Status and absl::StatusOr<T> (Abseil 20220623
// ships none).
//
//   EXPECT_THAT(pool.Submit(...),
//   StatusIs(absl::StatusCode::kResourceExhausted));
//   EXPECT_THAT(share.FromJson("{"),
//   StatusIs(absl::StatusCode::kInvalidArgument,
//                                             HasSubstr("JSON")));
//   ASSERT_OK(status);  ASSERT_OK_AND_ASSIGN(auto v, StatusOrFn());
#ifndef TSHARE_TESTS_STATUS_MATCHERS_H_
#define TSHARE_TESTS_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tshare::testing {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has status code ") +
               absl::StatusCodeToString(static_cast<absl::StatusCode>(code))) {
  const absl::Status& status = ::tshare::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(
             message_matcher, std::string(status.message()), result_listener);
}

MATCHER_P(StatusIs, code,
          std::string("has status code ") +
              absl::StatusCodeToString(static_cast<absl::StatusCode>(code))) {
  const absl::Status& status = ::tshare::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code;
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = ::tshare::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.ok();
}

}  // namespace tshare::testing

#define TSHARE_MATCHERS_CONCAT_INNER_(a, b) a##b
#define TSHARE_MATCHERS_CONCAT_(a, b) TSHARE_MATCHERS_CONCAT_INNER_(a, b)

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::tshare::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::tshare::testing::IsOk())
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                              \
  auto TSHARE_MATCHERS_CONCAT_(tshare_statusor_, __LINE__) = (rexpr); \
  ASSERT_OK(TSHARE_MATCHERS_CONCAT_(tshare_statusor_, __LINE__));     \
  lhs = *std::move(TSHARE_MATCHERS_CONCAT_(tshare_statusor_, __LINE__))

#endif  // TSHARE_TESTS_STATUS_MATCHERS_H_
