// worker_control: a worker in this process that the server controls.
//
// Client::RunWorker registers the worker with tshared under --name. Each step
// adds 1 to the share "examples/<name>/steps", reports "step N" as the
// worker's progress and prints it. At every checkpoint the worker obeys what
// the server asked: a pause holds it still until a resume, a stop ends it. So
// from another terminal (or grpcurl):
//
//   example_worker_control --name=indexer
//   tsharectl workers list             # indexer  CLIENT  RUNNING  step 42
//   tsharectl workers pause indexer    # still at its next checkpoint: PAUSED
//   tsharectl workers resume indexer
//   tsharectl workers stop indexer     # it ends; this program exits 0
//
// It also ends by itself after --steps steps (0: never). The server is
// --server, else $TSHARE_SERVER, else 127.0.0.1:7420.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/client.h"

ABSL_FLAG(std::string, server, "",
          "tshared address (default: $TSHARE_SERVER or 127.0.0.1:7420)");
ABSL_FLAG(std::string, name, "indexer", "The worker's name on the server");
ABSL_FLAG(int64_t, steps, 0,
          "Steps before the worker ends by itself; 0: run until stopped");
ABSL_FLAG(absl::Duration, interval, absl::Milliseconds(100),
          "Time between steps");

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
  const std::string name = absl::GetFlag(FLAGS_name);
  const std::string key = absl::StrCat("examples/", name, "/steps");
  const int64_t max_steps = absl::GetFlag(FLAGS_steps);
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);

  absl::StatusOr<std::unique_ptr<tshare::client::Client>> client =
      tshare::client::Client::Connect(ServerAddress());
  if (!client.ok()) {
    std::fprintf(stderr, "worker_control: %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  const tshare::client::Client& c = **client;
  if (absl::StatusOr<tshare::client::WriteResult> reset =
          c.Set(key, int64_t{0});
      !reset.ok()) {
    std::fprintf(stderr, "worker_control: %s\n",
                 reset.status().ToString().c_str());
    return 1;
  }

  absl::StatusOr<tshare::client::WorkerHandle> worker = c.RunWorker(
      name, [&](tshare::client::WorkerContext& ctx) -> absl::Status {
        int64_t done = 0;
        // Checkpoint() blocks while the worker is paused and is false once a
        // stop was asked.
        while (ctx.Checkpoint()) {
          absl::StatusOr<tshare::client::OpResult<int64_t>> step =
              c.Add(key, 1);
          if (!step.ok())
            return step.status();  // The server shows the worker FAILED.
          ctx.ReportProgress(absl::StrCat("step ", step->value));
          std::printf("step %lld\n", static_cast<long long>(step->value));
          std::fflush(stdout);
          if (max_steps != 0 && ++done >= max_steps) break;
          // A sleep that a stop cuts short.
          if (!ctx.SleepFor(interval)) break;
        }
        return absl::OkStatus();
      });
  if (!worker.ok()) {
    std::fprintf(stderr, "worker_control: %s\n",
                 worker.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "worker %s attached; control it with: tsharectl workers "
      "pause|resume|stop %s\n",
      name.c_str(), name.c_str());
  std::fflush(stdout);

  // Returns once the function has returned and the server was told.
  const absl::Status result = worker->Join();
  absl::StatusOr<int64_t> steps = c.Get<int64_t>(key);
  std::printf("worker %s ended (%s) after %lld steps\n", name.c_str(),
              result.ok() ? "stopped" : result.ToString().c_str(),
              static_cast<long long>(steps.ok() ? *steps : -1));
  return result.ok() ? 0 : 1;
}
