// counter: many threads, one counter, kept on the server.
//
// Each of --threads threads adds 1 to the share --key, --increments times.
// Even threads use Client::Add (one atomic operation that the server applies),
// odd threads use Client::Update<int64_t> (read, change, write back only if
// nobody wrote in between, retry on a conflict). Neither loses an increment,
// so the final value is exactly threads × increments, however the threads
// interleave. (The seed's ArcThreadShare lost 70-80 % of them.)
//
//   tshared &                          # or ./scripts/serve.sh
//   example_counter --threads=8 --increments=1000
//   tsharectl get examples/counter     # the same number, from any machine
//
// The server is --server, else $TSHARE_SERVER, else 127.0.0.1:7420.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"

ABSL_FLAG(std::string, server, "",
          "tshared address (default: $TSHARE_SERVER or 127.0.0.1:7420)");
ABSL_FLAG(std::string, key, "examples/counter",
          "The share that holds the counter");
ABSL_FLAG(int, threads, 8, "Threads that increment the counter");
ABSL_FLAG(int, increments, 500, "Increments per thread");

namespace {

std::string ServerAddress() {
  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    const char* env = std::getenv("TSHARE_SERVER");
    server = env != nullptr ? env : "127.0.0.1:7420";
  }
  return server;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string key = absl::GetFlag(FLAGS_key);
  const int threads = absl::GetFlag(FLAGS_threads);
  const int increments = absl::GetFlag(FLAGS_increments);

  absl::StatusOr<std::unique_ptr<tshare::client::Client>> client =
      tshare::client::Client::Connect(ServerAddress());
  if (!client.ok()) {
    std::fprintf(stderr, "counter: %s\n", client.status().ToString().c_str());
    return 1;
  }
  tshare::client::Client& c = **client;

  if (absl::StatusOr<tshare::client::WriteResult> reset =
          c.Set(key, int64_t{0});
      !reset.ok()) {
    std::fprintf(stderr, "counter: %s\n", reset.status().ToString().c_str());
    return 1;
  }
  std::printf("counter %s reset to 0; %d threads x %d increments\n",
              key.c_str(), threads, increments);

  // The first error any thread meets.
  absl::Mutex mu;
  absl::Status first_error;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < increments; ++i) {
        absl::Status status;
        if (t % 2 == 0) {
          status = c.Add(key, 1).status();
        } else {
          status = c.Update<int64_t>(key, [](int64_t& v) { ++v; }).status();
        }
        if (!status.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = status;
          return;
        }
      }
      std::printf("thread %d completed (%s)\n", t,
                  t % 2 == 0 ? "Add" : "Update");
    });
  }
  for (std::thread& w : workers) w.join();
  if (!first_error.ok()) {
    std::fprintf(stderr, "counter: %s\n", first_error.ToString().c_str());
    return 1;
  }

  absl::StatusOr<int64_t> final_value = c.Get<int64_t>(key);
  if (!final_value.ok()) {
    std::fprintf(stderr, "counter: %s\n",
                 final_value.status().ToString().c_str());
    return 1;
  }
  const int64_t expected = int64_t{threads} * increments;
  std::printf("final counter: %lld (expected %lld)\n",
              static_cast<long long>(*final_value),
              static_cast<long long>(expected));
  return *final_value == expected ? 0 : 1;
}
