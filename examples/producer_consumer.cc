// producer_consumer: a producer and a consumer meet on the server's message
// bus.
//
// The consumer subscribes to "jobs.*"; the producer publishes --messages jobs
// on "jobs.new". The consumer is woken by each message (no polling), handles
// them one at a time in publish order, and checks that order: each topic
// numbers its messages, so a gap or a swap would show. (The seed kept the
// queue in a shared Vec, polled it every 50 ms and popped from the wrong end.)
//
//   example_producer_consumer --messages=10
//   tsharectl sub 'jobs.*'       # in another terminal: sees the same jobs
//
// The server is --server, else $TSHARE_SERVER, else 127.0.0.1:7420.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"

ABSL_FLAG(std::string, server, "",
          "tshared address (default: $TSHARE_SERVER or 127.0.0.1:7420)");
ABSL_FLAG(int, messages, 10, "Jobs the producer publishes");

namespace {

using tshare::client::BusMessage;
using tshare::client::Json;

std::string ServerAddress() {
  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    const char* env = std::getenv("TSHARE_SERVER");
    server = env != nullptr ? env : "127.0.0.1:7420";
  }
  return server;
}

// What the consumer has seen; written by the subscription's thread, read by
// main.
struct Consumed {
  absl::Mutex mu;
  int count ABSL_GUARDED_BY(mu) = 0;
  bool in_order ABSL_GUARDED_BY(mu) = true;
  uint64_t last_sequence ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int messages = absl::GetFlag(FLAGS_messages);
  absl::StatusOr<std::unique_ptr<tshare::client::Client>> client =
      tshare::client::Client::Connect(ServerAddress());
  if (!client.ok()) {
    std::fprintf(stderr, "producer_consumer: %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  tshare::client::Client& c = **client;

  // Consumer: runs on the subscription's own thread, one message at a time.
  Consumed consumed;
  tshare::client::SubscribeOptions options;
  // Frequent progress frames tell WaitUntilConnected below quickly that the
  // server has the subscription (the bus keeps no history: a message published
  // before that is not delivered).
  options.progress_interval = absl::Milliseconds(100);
  absl::StatusOr<tshare::client::SubscriptionHandle> subscription = c.Subscribe(
      {"jobs.*"},
      [&consumed](const BusMessage& m) {
        const int id = m.value.kind() == tshare::client::ValueKind::kJson
                           ? m.value.json_value().value("id", -1)
                           : -1;
        const std::string content =
            m.value.kind() == tshare::client::ValueKind::kJson
                ? m.value.json_value().value("content", "")
                : "";
        absl::MutexLock lock(&consumed.mu);
        const bool next = id == consumed.count && m.missed == 0 &&
                          (consumed.last_sequence == 0 ||
                           m.sequence == consumed.last_sequence + 1);
        if (!next) consumed.in_order = false;
        consumed.last_sequence = m.sequence;
        ++consumed.count;
        std::printf("processed: job %d \"%s\" (sequence %llu)\n", id,
                    content.c_str(),
                    static_cast<unsigned long long>(m.sequence));
        std::fflush(stdout);
      },
      options);
  if (!subscription.ok()) {
    std::fprintf(stderr, "producer_consumer: %s\n",
                 subscription.status().ToString().c_str());
    return 1;
  }
  if (!subscription->WaitUntilConnected(absl::Now() + absl::Seconds(10))) {
    std::fprintf(
        stderr,
        "producer_consumer: the subscription did not reach the server: %s\n",
        subscription->status().ToString().c_str());
    return 1;
  }

  // Producer.
  absl::Status produced;
  std::thread producer([&] {
    for (int i = 0; i < messages; ++i) {
      absl::StatusOr<tshare::client::PublishResult> r =
          c.Publish("jobs.new",
                    Json{{"id", i}, {"content", absl::StrCat("Message ", i)}});
      if (!r.ok()) {
        produced = r.status();
        return;
      }
    }
    std::printf("producer: published %d jobs\n", messages);
    std::fflush(stdout);
  });
  producer.join();
  if (!produced.ok()) {
    std::fprintf(stderr, "producer_consumer: %s\n",
                 produced.ToString().c_str());
    return 1;
  }

  // Wait for the consumer to see them all (or give up after 30 s).
  absl::MutexLock lock(&consumed.mu);
  auto all_seen = [&consumed, messages]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                      consumed.mu) { return consumed.count >= messages; };
  consumed.mu.AwaitWithTimeout(absl::Condition(&all_seen), absl::Seconds(30));
  std::printf("consumer: %d of %d jobs, %s\n", consumed.count, messages,
              consumed.in_order ? "in order" : "OUT OF ORDER");
  return consumed.count == messages && consumed.in_order ? 0 : 1;
}
