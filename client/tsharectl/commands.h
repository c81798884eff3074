// The verbs of tsharectl, each a function from its parsed arguments to output
// lines and a status. tsharectl_main.cc parses the command line (CLI11) and
// maps the status to the exit code; these functions hold what each verb does.
//
// Thread-safety: Printer and StreamStop may be used from any thread. A verb
// runs on the main thread; streaming verbs print from the client's callback
// thread and end through StreamStop.
#ifndef TSHARE_CLIENT_TSHARECTL_COMMANDS_H_
#define TSHARE_CLIENT_TSHARECTL_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/tsharectl/values.h"

namespace tshare::tsharectl {

// An error in what the user typed (exit code 2), as opposed to one the server
// or the network reported (exit code 1 for NOT_FOUND, 3 otherwise).
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);

// Writes whole lines to stdout, one writer at a time, flushed at once (so that
// a reader of a stream sees each event as it happens).
class Printer final {
 public:
  explicit Printer(bool json) : json_(json) {}
  Printer(const Printer&) = delete;
  Printer& operator=(const Printer&) = delete;

  // --json: one JSON object per line instead of text.
  bool json() const { return json_; }
  void Line(absl::string_view text) ABSL_LOCKS_EXCLUDED(mu_);
  void Object(const OutJson& json) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const bool json_;
  absl::Mutex mu_;
};

// How a streaming verb (watch, sub, workers watch) ends: Interrupt() from the
// signal thread (Ctrl-C, SIGTERM: a normal end), or Finish(status) from the
// stream (--count reached: OK; the stream failed: its error). The first of them
// wins.
class StreamStop final {
 public:
  StreamStop() = default;
  StreamStop(const StreamStop&) = delete;
  StreamStop& operator=(const StreamStop&) = delete;

  void Interrupt() ABSL_LOCKS_EXCLUDED(mu_);
  void Finish(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  bool done() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until done; returns the Finish status (OK after Interrupt).
  absl::Status Wait() const ABSL_LOCKS_EXCLUDED(mu_);
  // As Wait, for at most `timeout`; nullopt if not done by then.
  std::optional<absl::Status> WaitFor(absl::Duration timeout) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// What every verb gets.
struct Env {
  const client::Client& client;
  Printer& out;
  // The --server address, for messages.
  std::string server;
  // The deadline of each call (--timeout).
  absl::Duration timeout;
  // Ends streaming verbs; never null for them.
  StreamStop* stop = nullptr;
};

struct SetArgs {
  std::string key;
  std::string value;
  ValueType type = ValueType::kAuto;
  std::optional<uint64_t> if_version;
};

struct AddArgs {
  std::string key;
  std::string delta;
  ValueType type = ValueType::kAuto;
  std::optional<uint64_t> if_version;
};

// Exactly one of the operations.
struct UpdateArgs {
  std::string key;
  std::optional<std::string> append;
  std::optional<std::string> merge;
  std::vector<std::string> cas;  // expected, new
  std::optional<std::string> min;
  std::optional<std::string> max;
  bool toggle = false;
  ValueType type = ValueType::kAuto;
  std::optional<uint64_t> if_version;
};

struct DelArgs {
  std::string key;
  std::optional<std::string> prefix;
  std::optional<uint64_t> if_version;
};

struct LsArgs {
  std::string prefix;
  bool keys_only = false;
};

struct WatchArgs {
  std::string key;
  std::optional<std::string> prefix;
  uint64_t from = 0;
  bool snapshot = false;
  // Events to print before exiting; 0: until interrupted.
  uint64_t count = 0;
};

struct WaitArgs {
  std::string key;
  uint64_t after_version = 0;
  // How long to wait.
  absl::Duration timeout;
};

struct PubArgs {
  std::string topic;
  std::string value;
  ValueType type = ValueType::kAuto;
};

struct SubArgs {
  std::vector<std::string> patterns;
  uint64_t count = 0;
};

struct WorkersArgs {
  // "list", "pause", "resume", "stop" or "watch".
  std::string action;
  std::string name;
  uint64_t count = 0;
};

absl::Status Get(const Env& env, const std::string& key);
absl::Status Set(const Env& env, const SetArgs& args);
absl::Status Add(const Env& env, const AddArgs& args);
absl::Status Update(const Env& env, const UpdateArgs& args);
absl::Status Del(const Env& env, const DelArgs& args);
absl::Status Ls(const Env& env, const LsArgs& args);
absl::Status Watch(const Env& env, const WatchArgs& args);
absl::Status Wait(const Env& env, const WaitArgs& args);
// `file` holds a tshare.v1.TxnRequest in proto3 JSON; "-" reads stdin.
absl::Status Txn(const Env& env, const std::string& file);
absl::Status Pub(const Env& env, const PubArgs& args);
absl::Status Sub(const Env& env, const SubArgs& args);
absl::Status Workers(const Env& env, const WorkersArgs& args);
absl::Status Stats(const Env& env);
absl::Status Subs(const Env& env);

}  // namespace tshare::tsharectl

#endif  // TSHARE_CLIENT_TSHARECTL_COMMANDS_H_
