// The server's settings: one field per tshared flag, with the flag's default.
// Thread-safety: a plain struct; the server copies it at start and never
// changes it.
#ifndef TSHARE_SERVICE_OPTIONS_H_
#define TSHARE_SERVICE_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace tshare::service {

struct ServerOptions {
  // gRPC address, host:port; port 0 picks a free port (Server::port() tells
  // which).
  std::string listen = "127.0.0.1:7420";
  // Prometheus /metrics address; empty turns metrics off.
  std::string metrics_listen = "127.0.0.1:9464";

  // Limits. A request over one is refused with a status naming the limit and
  // its flag.
  size_t max_key_bytes = 4096;       // --max_key_bytes
  size_t max_value_bytes = 1 << 20;  // --max_value_bytes (serialized Value)
  size_t max_txn_ops = 128;     // --max_txn_ops (compares + ops of one branch)
  size_t max_page_size = 1000;  // --max_page_size (List)
  size_t max_session_ops =
      1024;  // --max_session_ops (ops in one SessionRequest)
  size_t max_watches_per_stream = 64;        // --max_watches_per_stream
  size_t max_subscriptions_per_stream = 64;  // --max_subscriptions_per_stream
  size_t max_topic_bytes = 1024;             // --max_topic_bytes

  // Changes kept for watches to replay (store-wide, newest kept). --history
  size_t history = 100000;
  // How often the history compactor trims history to `history` changes.
  // --compact_interval
  absl::Duration compact_interval = absl::Seconds(1);

  // Flow control defaults for streams that do not ask for their own.
  size_t watch_queue = 1024;                // --watch_queue
  size_t max_watch_queue = 1 << 20;         // --max_watch_queue
  size_t subscription_queue = 1024;         // --subscription_queue
  size_t max_subscription_queue = 1 << 20;  // --max_subscription_queue
  absl::Duration progress_interval = absl::Seconds(5);  // default for streams

  // Server threads: the core ThreadPool that runs bus delivery, watch fan-out
  // and the server's workers. 0 = number of CPUs.
  int pool_threads = 0;  // --pool_threads

  // On SIGTERM/SIGINT: streams end with UNAVAILABLE and the process exits
  // within this.
  absl::Duration shutdown_grace = absl::Seconds(3);  // --shutdown_grace
};

}  // namespace tshare::service

#endif  // TSHARE_SERVICE_OPTIONS_H_
