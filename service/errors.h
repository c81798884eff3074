// The one table of the error messages tshared's users see.
//
// Every refusal the server sends is built here, so that wording, codes and the
// flag names in messages stay consistent. A message says what was wrong and
// what to do:
//   "key of 5000 bytes exceeds --max_key_bytes=4096; use a shorter key".
// Some statuses carry a payload (type URL "tshare-...") that the gRPC layer
// sends as trailing metadata of the same name: StatusMetadata() lists them.
//
// Thread-safety: pure functions.
#ifndef TSHARE_SERVICE_ERRORS_H_
#define TSHARE_SERVICE_ERRORS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tshare::service {

// Trailing metadata keys (and status payload type URLs) of the public API.
inline constexpr char kOldestRevisionMetadata[] = "tshare-oldest-revision";
inline constexpr char kResumeRevisionMetadata[] = "tshare-resume-revision";
inline constexpr char kResumeSequenceMetadata[] = "tshare-resume-sequence";

// "512 bytes", "4 KiB", "2.1 MiB", "1 GiB".
std::string HumanBytes(uint64_t bytes);

// A key as it appears in messages: quoted, escaped, long keys shortened.
std::string QuoteKey(absl::string_view key);

// The payloads of `status` whose type URL starts with "tshare-", as (key,
// value) pairs for trailing metadata.
std::vector<std::pair<std::string, std::string>> StatusMetadata(
    const absl::Status& status);

// --- Keys and values (INVALID_ARGUMENT unless noted) ---
// `field` names the request field ("key", "compares[2].key").
absl::Status KeyEmpty(absl::string_view field);
absl::Status KeyTooLong(size_t size, size_t limit);
absl::Status ValueMissing(absl::string_view field);
absl::Status ValueTooLarge(size_t size, size_t limit);
// A json_value that has an unset kind somewhere, or a number that JSON cannot
// carry.
absl::Status JsonValueInvalid(absl::string_view field, absl::string_view what);
// NOT_FOUND.
absl::Status KeyNotFound(absl::string_view key);
// FAILED_PRECONDITION: an if_version that does not hold (`have` 0 = the key
// does not exist).
absl::Status VersionMismatch(absl::string_view key, uint64_t want,
                             uint64_t have);

// --- Update ops ---
absl::Status UpdateOpMissing();
// The key holds `value_kind`; the op's operand is `operand_kind`.
absl::Status KindMismatch(absl::string_view op, absl::string_view value_kind,
                          absl::string_view operand_kind);
// The op never takes an operand of this kind ("add takes int_value or
// double_value").
absl::Status OperandKindInvalid(absl::string_view op,
                                absl::string_view operand_kind,
                                absl::string_view accepted);
// OUT_OF_RANGE.
absl::Status IntOverflow(absl::string_view op, int64_t current,
                         int64_t operand);
// FAILED_PRECONDITION.
absl::Status CompareAndSetFailed(absl::string_view key,
                                 absl::string_view have_kind);

// --- Delete ---
absl::Status DeleteTargetMissing();
absl::Status DeleteTargetAmbiguous();
absl::Status DeletePrefixWithVersion();

// --- List ---
absl::Status PageSizeTooLarge(size_t size, size_t limit);
absl::Status PageTokenInvalid(absl::string_view why);

// --- Txn ---
absl::Status TooManyTxnOps(size_t count, size_t limit);
absl::Status TxnOpMissing(absl::string_view branch, size_t index);
absl::Status TxnDuplicateKey(absl::string_view key);
absl::Status TxnPrefixOverlap(absl::string_view prefix, absl::string_view key);
absl::Status CompareTargetMissing(size_t index);
absl::Status CompareOperatorInvalid(size_t index, absl::string_view target,
                                    absl::string_view op);
absl::Status EnumValueInvalid(absl::string_view field, int value);

// --- Watch ---
absl::Status WatchTargetMissing();
absl::Status TooManyWatches(size_t count, size_t limit);
absl::Status WatchQueueTooLarge(size_t size, size_t limit);
absl::Status ProgressIntervalTooShort(absl::Duration interval,
                                      absl::Duration minimum);
absl::Status DurationInvalid(absl::string_view field);
absl::Status SnapshotWithStartRevision(uint64_t start_revision);
// OUT_OF_RANGE with payload kOldestRevisionMetadata = oldest.
absl::Status HistoryCompacted(uint64_t start_revision, uint64_t oldest);
// RESOURCE_EXHAUSTED with payload kResumeRevisionMetadata = resume_revision.
absl::Status WatchQueueOverflow(size_t max_queue, uint64_t resume_revision);

// --- WaitFor --- DEADLINE_EXCEEDED.
absl::Status WaitTimedOut(absl::string_view key, uint64_t after_version);

// --- Session ---
absl::Status TooManySessionOps(size_t count, size_t limit);
absl::Status SessionOpMissing(uint64_t id);

// --- Server ---
// UNAVAILABLE "server is shutting down".
absl::Status ShuttingDown();
// CANCELLED.
absl::Status CallCancelled();

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_ERRORS_H_
