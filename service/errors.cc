#include "service/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tshare::service {
namespace {

constexpr size_t kMaxQuotedKey = 64;

absl::Status Invalid(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}

absl::Status WithPayload(absl::Status status, absl::string_view key,
                         uint64_t value) {
  status.SetPayload(key, absl::Cord(absl::StrCat(value)));
  return status;
}

// "an int", "a string".
std::string WithArticle(absl::string_view noun) {
  const bool vowel = !noun.empty() && absl::StrContains("aeiou", noun.front());
  return absl::StrCat(vowel ? "an " : "a ", noun);
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return absl::StrCat(bytes, bytes == 1 ? " byte" : " bytes");
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < sizeof(kUnits) / sizeof(kUnits[0])) {
    value /= 1024;
    ++unit;
  }
  // One decimal, without a trailing ".0": "1 MiB", "2.1 MiB". Round down so
  // that a size just over a limit never prints as the limit itself.
  const double tenths = static_cast<double>(static_cast<uint64_t>(value * 10));
  std::string number = absl::StrFormat("%.1f", tenths / 10);
  if (absl::EndsWith(number, ".0")) number.resize(number.size() - 2);
  return absl::StrCat(number, " ", kUnits[unit]);
}

std::string QuoteKey(absl::string_view key) {
  if (key.size() <= kMaxQuotedKey)
    return absl::StrCat("\"", absl::CHexEscape(key), "\"");
  return absl::StrCat("\"", absl::CHexEscape(key.substr(0, kMaxQuotedKey)),
                      "...\" (", key.size(), " bytes)");
}

std::vector<std::pair<std::string, std::string>> StatusMetadata(
    const absl::Status& status) {
  std::vector<std::pair<std::string, std::string>> metadata;
  status.ForEachPayload(
      [&metadata](absl::string_view type_url, const absl::Cord& payload) {
        if (absl::StartsWith(type_url, "tshare-")) {
          metadata.emplace_back(std::string(type_url), std::string(payload));
        }
      });
  return metadata;
}

absl::Status KeyEmpty(absl::string_view field) {
  return Invalid(absl::StrCat(field, " is empty; set a non-empty key"));
}

absl::Status KeyTooLong(size_t size, size_t limit) {
  return Invalid(absl::StrCat("key of ", size,
                              " bytes exceeds --max_key_bytes=", limit,
                              "; use a shorter key"));
}

absl::Status ValueMissing(absl::string_view field) {
  return Invalid(absl::StrCat(
      field,
      " has no kind; set one of int_value, double_value, string_value, "
      "bool_value, bytes_value, json_value"));
}

absl::Status ValueTooLarge(size_t size, size_t limit) {
  std::string have = HumanBytes(size);
  std::string max = HumanBytes(limit);
  if (have == max) {  // just over the limit: rounding would hide the difference
    have = absl::StrCat(size, " bytes");
    max = absl::StrCat(limit, " bytes");
  }
  return Invalid(
      absl::StrCat("value of ", have, " exceeds --max_value_bytes=", max,
                   "; store a smaller value or split it over several keys"));
}

absl::Status JsonValueInvalid(absl::string_view field, absl::string_view what) {
  return Invalid(absl::StrCat(field, ".json_value is not valid JSON: ", what));
}

absl::Status KeyNotFound(absl::string_view key) {
  return absl::NotFoundError(
      absl::StrCat("key ", QuoteKey(key), " does not exist; set it first"));
}

absl::Status VersionMismatch(absl::string_view key, uint64_t want,
                             uint64_t have) {
  std::string wanted = want == 0
                           ? std::string("to be absent (if_version=0)")
                           : absl::StrCat("at version ", want, " (if_version)");
  std::string found = have == 0 ? std::string("it does not exist")
                                : absl::StrCat("it is at version ", have);
  return absl::FailedPreconditionError(absl::StrCat(
      "key ", QuoteKey(key), " was expected ", wanted, " but ", found,
      "; read it again and retry with its current version"));
}

absl::Status UpdateOpMissing() {
  return Invalid(
      "update has no op; set one of add, append, merge, compare_and_set, min, "
      "max, toggle");
}

absl::Status KindMismatch(absl::string_view op, absl::string_view value_kind,
                          absl::string_view operand_kind) {
  return Invalid(
      absl::StrCat(op, " does not fit: the key holds ", WithArticle(value_kind),
                   " value and the operand is ", WithArticle(operand_kind),
                   " value; send an operand that fits ", value_kind,
                   ", or set the key to a new value first"));
}

absl::Status OperandKindInvalid(absl::string_view op,
                                absl::string_view operand_kind,
                                absl::string_view accepted) {
  return Invalid(absl::StrCat(op, " takes ", accepted, ", not ",
                              WithArticle(operand_kind), " value"));
}

absl::Status IntOverflow(absl::string_view op, int64_t current,
                         int64_t operand) {
  return absl::OutOfRangeError(
      absl::StrCat(op, " of ", operand, " to ", current,
                   " overflows int64; the value was not changed"));
}

absl::Status CompareAndSetFailed(absl::string_view key,
                                 absl::string_view have_kind) {
  return absl::FailedPreconditionError(absl::StrCat(
      "compare_and_set on key ", QuoteKey(key), ": the current value (",
      have_kind, ") differs from expected; read it again and retry"));
}

absl::Status DeleteTargetMissing() {
  return Invalid("delete has neither key nor prefix; set exactly one of them");
}

absl::Status DeleteTargetAmbiguous() {
  return Invalid("delete has both key and prefix; set exactly one of them");
}

absl::Status DeletePrefixWithVersion() {
  return Invalid(
      "if_version applies to a delete by key, not by prefix; remove "
      "if_version");
}

absl::Status PageSizeTooLarge(size_t size, size_t limit) {
  return Invalid(absl::StrCat("page_size ", size,
                              " exceeds --max_page_size=", limit,
                              "; ask for at most ", limit, " keys per page"));
}

absl::Status PageTokenInvalid(absl::string_view why) {
  return Invalid(
      absl::StrCat("page_token is not valid (", why,
                   "); pass next_page_token of the previous page unchanged, or "
                   "leave it empty for the first page"));
}

absl::Status TooManyTxnOps(size_t count, size_t limit) {
  return Invalid(absl::StrCat("txn has ", count,
                              " compares and ops in a branch, more than "
                              "--max_txn_ops=",
                              limit, "; split it into smaller txns"));
}

absl::Status TxnOpMissing(absl::string_view branch, size_t index) {
  return Invalid(absl::StrCat(
      branch, "[", index, "] has no op; set one of get, set, update, delete"));
}

absl::Status TxnDuplicateKey(absl::string_view key) {
  return Invalid(
      absl::StrCat("txn changes key ", QuoteKey(key),
                   " more than once; a key may be changed by one op of a txn"));
}

absl::Status TxnPrefixOverlap(absl::string_view prefix, absl::string_view key) {
  return Invalid(absl::StrCat("txn deletes prefix ", QuoteKey(prefix),
                              " and also changes ", QuoteKey(key),
                              "; a key may be changed by one op of a txn"));
}

absl::Status CompareTargetMissing(size_t index) {
  return Invalid(
      absl::StrCat("compares[", index,
                   "] has no target; set one of value, version, exists, "
                   "mod_revision"));
}

absl::Status CompareOperatorInvalid(size_t index, absl::string_view target,
                                    absl::string_view op) {
  return Invalid(absl::StrCat("compares[", index, "]: ", op,
                              " does not apply to ", target,
                              "; use EQUAL or NOT_EQUAL"));
}

absl::Status EnumValueInvalid(absl::string_view field, int value) {
  return Invalid(absl::StrCat(field, " has unknown value ", value,
                              "; use one of the documented names"));
}

absl::Status WatchTargetMissing() {
  return Invalid(
      "watch has no target; set key, prefix (\"\" for every key), keys or "
      "prefixes");
}

absl::Status TooManyWatches(size_t count, size_t limit) {
  return Invalid(absl::StrCat(
      "watch names ", count,
      " keys and prefixes, more than --max_watches_per_stream=", limit,
      "; use a common prefix or several streams"));
}

absl::Status WatchQueueTooLarge(size_t size, size_t limit) {
  return Invalid(
      absl::StrCat("max_queue ", size, " exceeds --max_watch_queue=", limit,
                   "; ask for at most ", limit, " (0 = the server's default)"));
}

absl::Status ProgressIntervalTooShort(absl::Duration interval,
                                      absl::Duration minimum) {
  return Invalid(
      absl::StrCat("progress_interval ", absl::FormatDuration(interval),
                   " is below the minimum of ", absl::FormatDuration(minimum),
                   "; ask for a longer interval or leave it unset (5s)"));
}

absl::Status DurationInvalid(absl::string_view field) {
  return Invalid(absl::StrCat(
      field,
      " is not a valid duration; seconds and nanos must have the same "
      "sign and nanos must be below 1e9"));
}

absl::Status SnapshotWithStartRevision(uint64_t start_revision) {
  return Invalid(
      absl::StrCat("snapshot starts at the current revision, so start_revision "
                   "must be 0, not ",
                   start_revision, "; drop one of them"));
}

absl::Status HistoryCompacted(uint64_t start_revision, uint64_t oldest) {
  return WithPayload(
      absl::OutOfRangeError(absl::StrCat(
          "start_revision ", start_revision,
          " is older than the kept history; the oldest revision kept is ",
          oldest,
          "; re-read the keys and watch from their revision, or use "
          "on_compacted=RESYNC")),
      kOldestRevisionMetadata, oldest);
}

absl::Status WatchQueueOverflow(size_t max_queue, uint64_t resume_revision) {
  return WithPayload(absl::ResourceExhaustedError(absl::StrCat(
                         "watch fell behind: its queue of ", max_queue,
                         " events is full and its policy is CLOSE; watch again "
                         "with start_revision=",
                         resume_revision, " (trailing metadata ",
                         kResumeRevisionMetadata, ")")),
                     kResumeRevisionMetadata, resume_revision);
}

absl::Status WaitTimedOut(absl::string_view key, uint64_t after_version) {
  return absl::DeadlineExceededError(
      absl::StrCat("key ", QuoteKey(key), " did not pass version ",
                   after_version, " before the deadline; call WaitFor again"));
}

absl::Status TooManySessionOps(size_t count, size_t limit) {
  return Invalid(absl::StrCat("session request has ", count,
                              " ops, more than --max_session_ops=", limit,
                              "; send them in several requests"));
}

absl::Status SessionOpMissing(uint64_t id) {
  return Invalid(absl::StrCat(
      "session op ", id,
      " has no op; set one of get, set, update, delete, txn, list, publish"));
}

absl::Status ShuttingDown() {
  return absl::UnavailableError("server is shutting down");
}

absl::Status CallCancelled() {
  return absl::CancelledError("the client cancelled the call");
}

}  // namespace tshare::service
