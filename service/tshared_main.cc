// tshared: the tshare server. Every ServerOptions field is a flag with the same
// default; `tshared --help` lists them. On start it prints one line with the
// address it listens on (the chosen port when --listen asks for port 0);
// SIGTERM or SIGINT shut it down cleanly (exit 0); a start-up error is one line
// on stderr and exit 1.
#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/options.h"
#include "service/server.h"

namespace {
const tshare::service::ServerOptions kDefaults;
}  // namespace

ABSL_FLAG(
    std::string, listen, kDefaults.listen,
    "gRPC address HOST:PORT; port 0 picks a free port (printed on start)");
ABSL_FLAG(std::string, metrics_listen, kDefaults.metrics_listen,
          "Prometheus /metrics address HOST:PORT; empty turns metrics off");
ABSL_FLAG(uint64_t, max_key_bytes, kDefaults.max_key_bytes,
          "Longest key, in bytes");
ABSL_FLAG(uint64_t, max_value_bytes, kDefaults.max_value_bytes,
          "Largest value (serialized tshare.v1.Value), in bytes");
ABSL_FLAG(uint64_t, max_txn_ops, kDefaults.max_txn_ops,
          "Most compares + ops in one branch of a Txn");
ABSL_FLAG(uint64_t, max_page_size, kDefaults.max_page_size,
          "Largest List page_size");
ABSL_FLAG(uint64_t, max_session_ops, kDefaults.max_session_ops,
          "Most ops in one SessionRequest");
ABSL_FLAG(uint64_t, max_watches_per_stream, kDefaults.max_watches_per_stream,
          "Most keys + prefixes one Watch stream may watch");
ABSL_FLAG(uint64_t, max_subscriptions_per_stream,
          kDefaults.max_subscriptions_per_stream,
          "Most patterns one Bus.Subscribe stream may ask for");
ABSL_FLAG(uint64_t, max_topic_bytes, kDefaults.max_topic_bytes,
          "Longest bus topic or pattern, in bytes");
ABSL_FLAG(uint64_t, history, kDefaults.history,
          "Changes kept for watches to replay (store-wide, newest kept)");
ABSL_FLAG(absl::Duration, compact_interval, kDefaults.compact_interval,
          "How often the history-compactor worker trims the history to "
          "--history changes");
ABSL_FLAG(uint64_t, watch_queue, kDefaults.watch_queue,
          "Default max_queue of a Watch stream (frames waiting before its "
          "policy acts)");
ABSL_FLAG(uint64_t, max_watch_queue, kDefaults.max_watch_queue,
          "Largest max_queue a Watch may ask for");
ABSL_FLAG(uint64_t, subscription_queue, kDefaults.subscription_queue,
          "Default max_queue of a Bus.Subscribe stream (messages waiting "
          "before its policy "
          "acts)");
ABSL_FLAG(uint64_t, max_subscription_queue, kDefaults.max_subscription_queue,
          "Largest max_queue a Bus.Subscribe stream may ask for");
ABSL_FLAG(absl::Duration, progress_interval, kDefaults.progress_interval,
          "Default idle time after which a stream gets a PROGRESS frame");
ABSL_FLAG(int32_t, pool_threads, kDefaults.pool_threads,
          "Threads of the server's pool (bus delivery, watch fan-out, server "
          "workers); 0 = "
          "number of CPUs");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "On SIGTERM/SIGINT: time given to calls in flight before they are "
          "cancelled");

namespace {

tshare::service::ServerOptions OptionsFromFlags() {
  tshare::service::ServerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  o.max_key_bytes = absl::GetFlag(FLAGS_max_key_bytes);
  o.max_value_bytes = absl::GetFlag(FLAGS_max_value_bytes);
  o.max_txn_ops = absl::GetFlag(FLAGS_max_txn_ops);
  o.max_page_size = absl::GetFlag(FLAGS_max_page_size);
  o.max_session_ops = absl::GetFlag(FLAGS_max_session_ops);
  o.max_watches_per_stream = absl::GetFlag(FLAGS_max_watches_per_stream);
  o.max_subscriptions_per_stream =
      absl::GetFlag(FLAGS_max_subscriptions_per_stream);
  o.max_topic_bytes = absl::GetFlag(FLAGS_max_topic_bytes);
  o.history = absl::GetFlag(FLAGS_history);
  o.compact_interval = absl::GetFlag(FLAGS_compact_interval);
  o.watch_queue = absl::GetFlag(FLAGS_watch_queue);
  o.max_watch_queue = absl::GetFlag(FLAGS_max_watch_queue);
  o.subscription_queue = absl::GetFlag(FLAGS_subscription_queue);
  o.max_subscription_queue = absl::GetFlag(FLAGS_max_subscription_queue);
  o.progress_interval = absl::GetFlag(FLAGS_progress_interval);
  o.pool_threads = absl::GetFlag(FLAGS_pool_threads);
  o.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Debian builds Abseil without NDEBUG, so absl::Mutex (which gRPC uses too)
  // runs its deadlock detector on every lock: about 16% of the instructions of
  // a Set. Optimized builds turn it off, as Abseil's own optimized builds do;
  // debug builds and the tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  absl::SetProgramUsageMessage(
      "the tshare server: shares, a message bus and workers over gRPC.\n"
      "Usage: tshared [--listen=HOST:PORT] [--metrics_listen=HOST:PORT] "
      "[limits...]\n"
      "Stop it with SIGTERM or Ctrl-C.");
  // As absl::ParseCommandLine, except that --help (and --helpfull, ...) print
  // to stdout and exit 0: asking for help is not an error.
  std::vector<char*> positional = absl::flags_internal::ParseCommandLineImpl(
      argc, argv, absl::flags_internal::ArgvListAction::kRemoveParsedArgs,
      absl::flags_internal::UsageFlagsAction::kIgnoreUsage,
      absl::flags_internal::OnUndefinedFlag::kAbortIfUndefined);
  if (int usage = absl::flags_internal::HandleUsageFlags(
          std::cout, absl::ProgramUsageMessage());
      usage != -1) {
    return usage == 1 ? 0 : usage;
  }
  if (positional.size() > 1) {
    std::fprintf(stderr,
                 "tshared: unexpected argument '%s'; see tshared --help\n",
                 positional[1]);
    return 2;
  }

  // Block the stop signals in every thread (the server's threads inherit this
  // mask); this thread then takes them with sigwait, so no work runs inside a
  // signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  tshare::service::ServerOptions options = OptionsFromFlags();
  absl::StatusOr<std::unique_ptr<tshare::service::Server>> server =
      tshare::service::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "tshared: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  std::printf("tshared listening on %s (store_id %s)\n",
              (*server)->address().c_str(), (*server)->store_id().c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::printf("tshared: %s, shutting down\n",
              signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  std::fflush(stdout);
  (*server)->Shutdown(options.shutdown_grace);
  (*server)->Wait();
  server->reset();
  return 0;
}
